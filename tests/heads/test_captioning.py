"""`kerasft.heads.captioning` and `caption_decoding`: model, tokenizer,
generation."""

import keras
import numpy as np
import pytest

from kerasft.heads.caption_decoding import CaptionGenerator
from kerasft.heads.captioning import (
    RESERVED_TOKENS,
    build_vocabulary,
    caption_model,
    caption_tokenizer,
    decode_captions,
    encode_captions,
)
from tests.recipes.caption_tiny import caption_backbone

CAPTIONS = ["a red square above a blue circle", "a green circle left of a red square"]


@pytest.fixture(scope="module")
def tokenizer():
    return caption_tokenizer(build_vocabulary(CAPTIONS, 100))


@pytest.fixture(scope="module")
def model(tokenizer):
    keras.utils.set_random_seed(3)
    return caption_model(caption_backbone(16), len(tokenizer.get_vocabulary()),
                         8, embed_dim=16, num_layers=1, num_heads=2)


def test_tokens_round_trip_with_start_end_and_truncation(tokenizer):
    assert tokenizer.get_vocabulary()[:4] == list(RESERVED_TOKENS)
    ids, cut = encode_captions(tokenizer, CAPTIONS + ["a red"], 9)
    assert ids.shape == (3, 10) and cut == 0  # 7 and 8 words fit
    assert ids[2].tolist()[:4] == [2, tokenizer.token_to_id("a"),
                                   tokenizer.token_to_id("red"), 3]
    assert decode_captions(tokenizer, ids) == CAPTIONS + ["a red"]
    short, cut = encode_captions(tokenizer, CAPTIONS, 4)
    assert cut == 2 and short.shape == (2, 5)


def test_decoded_captions_never_show_start_even_when_generated_again(tokenizer):
    start, end = tokenizer.token_to_id("[START]"), tokenizer.token_to_id("[END]")
    a, red = tokenizer.token_to_id("a"), tokenizer.token_to_id("red")
    ids = [[start, a, start, red, end, a], [start, start, end, 0, 0, 0]]
    assert decode_captions(tokenizer, ids) == ["a red", ""]


def test_model_saves_and_loads_with_equal_outputs(model, tmp_path):
    images = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3))
    tokens = np.array([[2, 5, 6, 0, 0, 0, 0, 0]] * 2, "int32")
    before = model({"image": images, "tokens": tokens})
    assert before.dtype == "float32" and tuple(before.shape) == (
        2, 8, model.output_shape[-1]
    )
    path = str(tmp_path / "captioner.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(
        loaded({"image": images, "tokens": tokens}), before, atol=1e-5
    )


def test_greedy_equals_a_step_by_step_argmax_loop(model, tokenizer):
    images = np.random.default_rng(1).uniform(0, 255, (3, 16, 16, 3))
    generator = CaptionGenerator(model, tokenizer)
    ids = generator.generate_ids(images)
    prompt = np.zeros((3, 8), "int32")
    prompt[:, 0] = 2
    for t in range(1, 8):
        logits = np.asarray(model({"image": images, "tokens": prompt}))
        prompt[:, t] = logits[:, t - 1].argmax(-1)
    ended = [list(row).index(3) if 3 in row else 8 for row in prompt]
    for row, expected, end in zip(ids, prompt, ended):
        np.testing.assert_array_equal(row[:end + 1], expected[:end + 1])
    beams = generator.generate_ids(images, num_beams=3)
    assert beams.shape == (3, 8) and (beams[:, 0] == 2).all()
    assert generator.caption(images, num_beams=3) == decode_captions(
        tokenizer, beams
    )
    with pytest.raises(ValueError, match="num_beams"):
        generator.caption(images, num_beams=0)


def test_vit_patch_tokens_are_the_encoder_tokens():
    import keras_hub

    from kerasft import backbones

    vit = keras_hub.models.ViTBackbone(
        image_shape=(16, 16, 3), patch_size=8, num_layers=1, num_heads=2,
        hidden_dim=8, mlp_dim=16,
    )
    model = caption_model(backbones.from_keras_hub(vit), 12, 5, embed_dim=8,
                          num_layers=1, num_heads=2)
    # 4 patches + the class token, projected to embed_dim.
    assert tuple(model.get_layer("caption_encoder_tokens").output.shape) == (
        None, 5, 8
    )
    out = model({"image": np.zeros((1, 16, 16, 3)), "tokens": np.zeros((1, 5))})
    assert tuple(out.shape) == (1, 5, 12)
