"""`kerasft.backbones.t5_checkpoint`: Hugging Face T5 / Flan-T5 -> KerasHub.

The fixtures in `tests/fixtures/t5_tiny` (Flan-T5 style) and `t5_v1_tiny`
(original T5) hold Hugging Face PyTorch's logits for fixed inputs, made once
by `tools/make_generative_fixtures.py`.
"""

import copy
import json
import os

import keras
import numpy as np
import pytest

from kerasft.backbones import load_task
from kerasft.backbones import t5_checkpoint
from tests.fixtures.tiny_generative import reference
from tests.fixtures.tiny_generative import t5_folder

INPUTS = (
    "encoder_token_ids",
    "encoder_padding_mask",
    "decoder_token_ids",
    "decoder_padding_mask",
)


@pytest.fixture(scope="module")
def flan():
    return load_task(t5_folder(), "seq2seq", sequence_length=(32, 16))


def _hf_config(variant="flan"):
    with open(os.path.join(t5_folder(variant), "config.json")) as f:
        return json.load(f)


def _tensors(variant="flan"):
    path = os.path.join(t5_folder(variant), "model.safetensors")
    return t5_checkpoint.read_safetensors(path)


def _logits_error(task, ref):
    logits = np.asarray(task({k: ref[k] for k in INPUTS}))
    mask = ref["decoder_padding_mask"].astype(bool)
    return np.abs(logits - ref["logits"])[mask].max()


def test_flan_t5_logits_match_hugging_face(flan):
    ref = reference(t5_folder())
    assert _logits_error(flan, ref) <= 1e-3
    encoder = np.asarray(
        flan.backbone({k: ref[k] for k in INPUTS})["encoder_sequence_output"]
    )
    mask = ref["encoder_padding_mask"].astype(bool)
    assert np.abs(encoder - ref["encoder_sequence_output"])[mask].max() <= 1e-3
    # Flan-T5: separate, unscaled head; tanh-approximate gated GELU.
    assert not flan.backbone.tie_embedding_weights
    assert flan.backbone.use_gated_activation
    assert flan.backbone.activation is t5_checkpoint.gelu_approximate


def test_original_t5_logits_match_hugging_face():
    task = load_task(t5_folder("t5"), "seq2seq")
    ref = reference(t5_folder("t5"))
    assert _logits_error(task, ref) <= 1e-3
    # Original T5: relu, head tied to the embedding and scaled by KerasHub.
    assert task.backbone.tie_embedding_weights
    assert not task.backbone.use_gated_activation
    # Without the tanh GELU, the Flan logits would be off: exact GELU is
    # not what Hugging Face's "gated-gelu" computes.
    assert t5_checkpoint.t5_backbone_config(_hf_config())["activation"] != "gelu"


def test_tokenizer_matches_sentencepiece_and_transformers(flan):
    ref = reference(t5_folder())
    tokenizer = flan.preprocessor.tokenizer
    for text, ids, mask in zip(
        ref["texts"], ref["tokenized_ids"], ref["tokenized_mask"]
    ):
        # Hugging Face appends "</s>" (id 1); the KerasHub preprocessor does
        # the same through its packer.
        got = list(np.asarray(tokenizer(str(text)))) + [1]
        assert got == list(ids[mask.astype(bool)])
    batch = flan.preprocessor.generate_preprocess([str(ref["texts"][0])])
    n = int(ref["tokenized_mask"][0].sum())
    np.testing.assert_array_equal(
        np.asarray(batch["encoder_token_ids"])[0, :n], ref["tokenized_ids"][0, :n]
    )


def test_unmapped_and_missing_weights_are_named():
    tensors = _tensors()
    tensors["encoder.block.0.layer.0.SelfAttention.extra.weight"] = np.zeros(3)
    with pytest.raises(ValueError, match="SelfAttention.extra.weight"):
        t5_checkpoint.load_t5_backbone(_hf_config(), tensors)
    tensors = _tensors()
    del tensors["decoder.block.1.layer.1.EncDecAttention.v.weight"]
    with pytest.raises(ValueError, match="EncDecAttention.v.weight"):
        t5_checkpoint.load_t5_backbone(_hf_config(), tensors)
    # A gated checkpoint read with a non-gated config misses `wi.weight`.
    config = dict(_hf_config(), feed_forward_proj="relu")
    with pytest.raises(ValueError, match="DenseReluDense.wi.weight"):
        t5_checkpoint.load_t5_backbone(config, _tensors())


def test_inconsistent_tied_copy_and_wrong_shape_are_refused():
    tensors = _tensors("t5")
    tensors["decoder.embed_tokens.weight"] = tensors["shared.weight"] + 1.0
    with pytest.raises(ValueError, match="decoder.embed_tokens.weight"):
        t5_checkpoint.load_t5_backbone(_hf_config("t5"), tensors)
    config = dict(_hf_config(), d_ff=48)
    with pytest.raises(ValueError, match="do not match config.json"):
        t5_checkpoint.load_t5_backbone(config, _tensors())


@pytest.mark.parametrize(
    "change, message",
    [
        ({"num_decoder_layers": 3}, "num_decoder_layers=3"),
        ({"relative_attention_num_buckets": 64}, "num_buckets=64"),
        ({"feed_forward_proj": "gated-tanhshrink"}, "tanhshrink"),
        ({"feed_forward_proj": "double-gated-gelu"}, "gated-ACT"),
        ({"model_type": "umt5"}, "umt5"),
    ],
)
def test_configs_keras_hub_cannot_express_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        t5_checkpoint.t5_backbone_config(dict(_hf_config(), **change))


def test_tied_unscaled_head_keeps_the_logits():
    """transformers 5 saves Flan-T5 with a tied head and
    `scale_decoder_outputs=False`: the head becomes an unscaled copy."""
    config = dict(_hf_config(), tie_word_embeddings=True, scale_decoder_outputs=False)
    tensors = _tensors()
    del tensors["lm_head.weight"]
    shared = tensors["shared.weight"].copy()
    backbone = t5_checkpoint.load_t5_backbone(config, tensors)
    assert not backbone.tie_embedding_weights
    np.testing.assert_array_equal(
        np.asarray(backbone.token_embedding.reverse_embeddings), shared.T
    )


def test_read_safetensors_reads_bfloat16(tmp_path):
    values = np.array([[1.0, -2.5], [0.15625, 49152.0]], "float32")
    bf16 = (values.view("<u4") >> 16).astype("<u2")
    header = json.dumps(
        {"w": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]}}
    ).encode()
    path = tmp_path / "model.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header + bf16.tobytes())
    got = t5_checkpoint.read_safetensors(str(path))["w"]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, values)


def test_saved_model_reloads_with_the_same_logits(flan, tmp_path):
    ref = reference(t5_folder())
    path = str(tmp_path / "t5.keras")
    flan.save(path)
    restored = keras.saving.load_model(path)
    x = {k: ref[k] for k in INPUTS}
    np.testing.assert_allclose(
        np.asarray(restored(x)), np.asarray(flan(x)), atol=1e-6
    )
    assert restored.backbone.activation is t5_checkpoint.gelu_approximate


def test_config_is_not_mutated():
    config = _hf_config()
    before = copy.deepcopy(config)
    t5_checkpoint.t5_backbone_config(config)
    assert config == before
