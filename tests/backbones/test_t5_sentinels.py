"""T5 `<extra_id_N>` sentinels: single ids in and out, as Hugging Face.

The reference is `transformers.T5Tokenizer` (Hugging Face's fast T5
tokenizer in transformers 5) on the tiny T5 fixture with `extra_ids=12`
(444 SentencePiece pieces + 12 sentinels = the model's 456 rows).
"""

import json
import os
import random
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from kerasft.backbones import t5_checkpoint
from kerasft.backbones import token_offsets
from kerasft.backbones._t5_tokenizer import T5SentinelTokenizer
from tests.backbones.text_corpus import corpus
from tests.fixtures.tiny_generative import t5_folder

EXTRA_IDS = 12
SENTINEL_TEXTS = [
    "Hello <extra_id_0> world",
    "a<extra_id_0>b",
    "<extra_id_0>",
    "x <extra_id_1>  y <extra_id_11> z",
    "<extra_id_3> hundred",
    "hi <extra_id_12> no <extra_id_99>",  # not sentinels of this tokenizer
    "one hundred<extra_id_0>\t<extra_id_1>\u3000two",
    " <extra_id_0> ",
    "three <extra_id_0> five <extra_id_1> seven <extra_id_2>",
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("t5") / "t5")
    shutil.copytree(t5_folder(), path)
    with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
        json.dump({"model_max_length": 512, "extra_ids": EXTRA_IDS}, f)
    return path


@pytest.fixture
def tokenizer(folder):
    # Per test: the autouse `clear_session` frees tf_text's resources.
    return t5_checkpoint.t5_tokenizer(t5_checkpoint.local_t5_files(folder), 456)


@pytest.fixture(scope="module")
def reference(folder):
    transformers = pytest.importorskip("transformers")
    return transformers.T5Tokenizer.from_pretrained(folder)


def _with_sentinels(texts, seed=0):
    rng = random.Random(seed)
    out = []
    for t in texts:
        k = rng.randint(0, EXTRA_IDS + 1)  # sometimes not a sentinel
        t = t.replace(" ", f" <extra_id_{k}>", 1)
        out.append(t + rng.choice(["", "<extra_id_0>", " <extra_id_11>\t"]))
    return out


def test_sentinel_ids_are_hugging_faces(tokenizer, reference):
    assert tokenizer.vocabulary_size() == len(reference) == 456
    assert tokenizer.token_to_id("<extra_id_0>") == 455
    assert tokenizer.token_to_id("<extra_id_11>") == 444
    assert tokenizer.id_to_token(455) == "<extra_id_0>"
    assert tokenizer.get_vocabulary()[444:] == reference.convert_ids_to_tokens(
        list(range(444, 456))
    )
    expected = [reference(t, add_special_tokens=False).input_ids for t in SENTINEL_TEXTS]
    assert [list(map(int, r)) for r in tokenizer(SENTINEL_TEXTS)] == expected
    graph = tf.data.Dataset.from_tensor_slices(SENTINEL_TEXTS).batch(4).map(tokenizer)
    assert [r for b in graph for r in b.to_list()] == expected


def test_corpus_with_sentinels_matches_up_to_sentencepiece(tokenizer, reference):
    """Every string of the corpus, sentinels added, gets Hugging Face's ids,
    except where Hugging Face's converted fast tokenizer itself differs
    from SentencePiece (documented in docs/text.md); eager and tf.data
    agree on all of them."""
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor(model_file=tokenizer_proto_path())
    texts = _with_sentinels(corpus(5000))
    eager = [list(map(int, r)) for r in tokenizer(texts)]
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(512)
    graph = [r for b in dataset.map(tokenizer) for r in b.to_list()]
    assert graph == eager
    differ = 0
    for text, ids in zip(texts, eager):
        expected = reference(text, add_special_tokens=False).input_ids
        if ids == expected:
            continue
        differ += 1
        chunks = [text.replace("\x85", " ")]
        for k in range(EXTRA_IDS):
            chunks = [p for c in chunks for p in c.split(f"<extra_id_{k}>")]
        assert any(
            reference(c.strip(), add_special_tokens=False).input_ids
            != sp.encode(c.strip())
            for c in chunks
        ), text
    assert differ / len(texts) < 0.02, differ


def test_offsets_equal_hugging_face_wherever_the_ids_do(tokenizer, reference):
    """`token_offsets` gives kerasft's ids and, on every corpus string
    (with and without sentinels) whose ids equal Hugging Face's, its
    `offset_mapping` too; the others (Hugging Face's converted tokenizer
    differing from SentencePiece, documented) still get one span per id
    inside the text."""
    texts = SENTINEL_TEXTS + corpus(5000) + _with_sentinels(corpus(5000))
    got = token_offsets(tokenizer, texts)
    assert [ids for ids, _ in got] == [tokenizer.token_ids(t) for t in texts]
    equal = 0
    for text, (ids, offsets) in zip(texts, got):
        expected = reference(text, add_special_tokens=False, return_offsets_mapping=True)
        assert len(offsets) == len(ids)
        assert all(0 <= s <= e <= len(text) for s, e in offsets), text
        if ids != expected.input_ids:
            continue
        equal += 1
        assert list(offsets) == [tuple(o) for o in expected.offset_mapping], text
    assert equal / len(texts) > 0.98, equal
    ids, offsets = token_offsets(tokenizer, "a <extra_id_0>  b")
    assert ids[1] == 455 and offsets[1] == (2, 14)


def tokenizer_proto_path():
    return os.path.join(t5_folder(), "spiece.model")


def test_detokenize_prints_sentinels(tokenizer, reference):
    for text in ["three <extra_id_0> five <extra_id_1> seven", "<extra_id_3> hundred",
                 "a<extra_id_0>b"]:
        ids = reference(text, add_special_tokens=False).input_ids
        assert tokenizer.detokenize(ids) == reference.decode(ids)
        graph = tf.function(tokenizer.detokenize)(tf.constant([ids]))
        assert graph.numpy()[0].decode() == reference.decode(ids)


def test_folder_loads_with_sentinels_and_generation_keeps_them(folder):
    from kerasft.backbones import load_task
    from kerasft.generation import limit_vocabulary

    import keras_hub

    task = load_task(folder, "seq2seq")
    assert isinstance(task.preprocessor.tokenizer, T5SentinelTokenizer)
    assert task.preprocessor.tokenizer.vocabulary_size() == 456
    sampler = keras_hub.samplers.GreedySampler()
    # No id is masked any more: sentinels can be generated.
    assert limit_vocabulary(sampler, task) is sampler


def test_round_trips_through_config(tokenizer):
    config = tokenizer.get_config()
    assert config["extra_ids"] == EXTRA_IDS
    clone = T5SentinelTokenizer.from_config({**config, "proto": tokenizer.proto})
    assert clone.token_ids("a <extra_id_2> b") == tokenizer.token_ids("a <extra_id_2> b")


def test_added_tokens_and_special_tokens_map(folder, tmp_path):
    files = t5_checkpoint.local_t5_files(folder)
    good = tmp_path / "added_tokens.json"
    good.write_text(json.dumps({f"<extra_id_{k}>": 455 - k for k in range(12)}))
    special = tmp_path / "special_tokens_map.json"
    special.write_text(json.dumps({
        "eos_token": "</s>", "pad_token": "<pad>", "unk_token": {"content": "<unk>"},
        "additional_special_tokens": [f"<extra_id_{k}>" for k in range(12)],
    }))
    t5_checkpoint.t5_tokenizer(
        {**files, "added_tokens": str(good), "special_tokens_map": str(special)}, 456
    )
    bad = tmp_path / "bad_added.json"
    bad.write_text(json.dumps({"<extra_id_0>": 444}))
    with pytest.raises(ValueError, match="Only the <extra_id_N> sentinels"):
        t5_checkpoint.t5_tokenizer({**files, "added_tokens": str(bad)}, 456)
    other = tmp_path / "other_added.json"
    other.write_text(json.dumps({"<new>": 456}))
    with pytest.raises(ValueError, match="<new>"):
        t5_checkpoint.t5_tokenizer({**files, "added_tokens": str(other)}, 456)
    wrong = tmp_path / "wrong_special.json"
    wrong.write_text(json.dumps({"eos_token": "<eos>"}))
    with pytest.raises(ValueError, match="eos_token='<eos>'"):
        t5_checkpoint.t5_tokenizer({**files, "special_tokens_map": str(wrong)}, 456)


def test_too_many_sentinels_for_the_model_is_refused(folder):
    files = dict(t5_checkpoint.local_t5_files(folder))
    files.pop("tokenizer_config")  # Hugging Face's default: 100 sentinels
    with pytest.raises(ValueError, match="extra_ids=100 sentinels = 544 ids"):
        t5_checkpoint.t5_tokenizer(files, 456)


# === Span filling end to end ===

DIGITS = "zero one two three four five six seven eight nine".split()


def span_pairs(seed=0):
    """"five five <extra_id_0> five" -> "<extra_id_0> five": a digit word
    repeated four times, one repetition masked (filling it needs the
    neighbours)."""
    pairs = []
    for word in DIGITS:
        for masked in range(4):
            source = [word] * 4
            source[masked] = "<extra_id_0>"
            pairs.append((" ".join(source), f"<extra_id_0> {word}"))
    random.Random(seed).shuffle(pairs)
    return pairs


def tiny_sentinel_t5(folder, seed=0, hidden_dim=64):
    import keras
    import keras_hub

    keras.utils.set_random_seed(seed)
    tokenizer = t5_checkpoint.t5_tokenizer(t5_checkpoint.local_t5_files(folder), 456)
    preprocessor = keras_hub.models.T5Seq2SeqLMPreprocessor(
        tokenizer, encoder_sequence_length=12, decoder_sequence_length=6
    )
    backbone = keras_hub.models.T5Backbone(
        vocabulary_size=tokenizer.vocabulary_size(), num_layers=2, num_heads=4,
        hidden_dim=hidden_dim, intermediate_dim=2 * hidden_dim,
        key_value_dim=hidden_dim // 4, dropout=0.0, tie_embedding_weights=False,
    )
    return keras_hub.models.T5Seq2SeqLM(backbone, preprocessor)


@pytest.mark.slow
def test_tiny_t5_learns_span_filling_and_cli_prints_sentinels(folder, tmp_path):
    """Threshold: exact match >= 0.9 on 12 of the 40 training pairs (the
    untrained model scores 0); then `kerasft generate` prints the
    sentinel."""
    from kerasft import recipes

    pairs = span_pairs()
    out = str(tmp_path / "run")
    result = recipes.seq2seq(
        # Ten copies per epoch: fewer, longer epochs (less per-epoch work).
        train=pairs * 10, validation=pairs[:12], backbone=tiny_sentinel_t5(folder),
        source_length=12, target_length=6, epochs=30, batch_size=16,
        learning_rate=3e-3, warmup_ratio=0.05, output_dir=out,
        precision="float32", strategy="default", verbose=0,
    )
    assert result.metrics["val_exact_match"] >= 0.9, result.metrics
    kerasft_bin = os.path.join(os.path.dirname(sys.executable), "kerasft")
    printed = subprocess.run(
        [kerasft_bin, "generate", out, "--prompt", pairs[0][0]],
        capture_output=True, text=True, check=True,
    ).stdout
    assert "<extra_id_0>" in printed, printed
    assert printed.strip().splitlines()[-1] == pairs[0][1]
    np.testing.assert_equal(len(result.metrics) > 0, True)
