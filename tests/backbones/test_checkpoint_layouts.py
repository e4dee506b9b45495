"""Checkpoint layouts users download: sharded safetensors, float16 and
bfloat16 weights, pickle-only folders (refused, never unpickled), and
`added_tokens.json` / `special_tokens_map.json` (T5's are tested in
`test_t5_sentinels.py`). Folders are made in `tmp_path` from the fixtures
(`tests/backbones/checkpoint_layouts.py`)."""

import json
import os
import shutil

import numpy as np
import pytest

from kerasft.backbones import load_task
from kerasft.backbones.bert import bert
from tests.backbones import checkpoint_layouts as layouts
from tests.fixtures.tiny_generative import gpt2_folder, t5_folder
from tests.fixtures.tiny_hf import make_tiny_folder


def _bf16_rounded(folder):
    """The same folder with float32 weights holding bf16-truncated values
    (what a BF16 file decodes to)."""
    path = os.path.join(folder, "model.safetensors")
    tensors = layouts.read(path)
    for name, array in tensors.items():
        if array.dtype.kind == "f":
            bits = array.astype("<f4").view("<u4") >> 16 << 16
            tensors[name] = bits.astype("<u4").view("<f4")
    layouts.write(path, tensors)
    return folder


def _copy(source, tmp_path, name):
    target = str(tmp_path / name)
    shutil.copytree(source, target)
    return target


@pytest.fixture
def bert_folder(tmp_path):
    folder, _ = make_tiny_folder(str(tmp_path / "base"))
    return folder


def _bert_output(folder):
    backbone = bert(folder, sequence_length=8)
    inputs = backbone.tokenizer(["the film was good", "a dull book"])
    return np.asarray(backbone.model(inputs)["sequence_output"])


@pytest.mark.parametrize("dtype", [None, "F16", "BF16"])
def test_bert_sharded_and_half_precision(bert_folder, tmp_path, dtype):
    reference_folder = _copy(bert_folder, tmp_path, "reference")
    if dtype == "F16":
        layouts.write(
            os.path.join(reference_folder, "model.safetensors"),
            {
                k: v.astype("<f2").astype("<f4") if v.dtype.kind == "f" else v
                for k, v in layouts.read(
                    os.path.join(reference_folder, "model.safetensors")
                ).items()
            },
        )
    elif dtype == "BF16":
        _bf16_rounded(reference_folder)
    expected = _bert_output(reference_folder)
    sharded = layouts.shard(_copy(bert_folder, tmp_path, "sharded"), 3, dtype)
    assert "model.safetensors" not in os.listdir(sharded)
    np.testing.assert_allclose(_bert_output(sharded), expected, atol=1e-5)
    if dtype is not None:
        single = layouts.cast(_copy(bert_folder, tmp_path, "single"), dtype)
        np.testing.assert_allclose(_bert_output(single), expected, atol=1e-5)


def _generative_logits(folder, kind):
    task = load_task(folder, kind)
    x, _, _ = task.preprocessor(
        {"encoder_text": ["one two"], "decoder_text": ["three"]}
        if kind == "seq2seq"
        else ["one two three"]
    )
    return np.asarray(task(x))


@pytest.mark.parametrize("name,kind", [("gpt2", "causal_lm"), ("t5", "seq2seq")])
@pytest.mark.parametrize("dtype", ["F16", "BF16"])
def test_generative_sharded_half_precision(tmp_path, name, kind, dtype):
    source = {"gpt2": gpt2_folder(), "t5": t5_folder()}[name]
    reference = _copy(source, tmp_path, "reference")
    path = os.path.join(reference, "model.safetensors")
    if dtype == "BF16":
        _bf16_rounded(reference)
    else:
        layouts.write(
            path,
            {
                k: v.astype("<f2").astype("<f4") if v.dtype.kind == "f" else v
                for k, v in layouts.read(path).items()
            },
        )
    expected = _generative_logits(reference, kind)
    sharded = layouts.shard(_copy(source, tmp_path, "sharded"), 2, dtype)
    np.testing.assert_allclose(
        _generative_logits(sharded, kind), expected, atol=1e-4
    )


def test_pickle_only_folders_are_refused_unread(bert_folder, tmp_path):
    marker = str(tmp_path / "unpickled")
    folder = layouts.pickle_only(bert_folder, marker)
    with pytest.raises(ValueError, match="pickle weights.*safetensors"):
        bert(folder, sequence_length=8)
    for source, kind in ((gpt2_folder(), "causal_lm"), (t5_folder(), "seq2seq")):
        copy = layouts.pickle_only(_copy(source, tmp_path, kind), marker)
        with pytest.raises(ValueError, match="only pickle weights"):
            load_task(copy, kind)
    assert not os.path.exists(marker)


def test_bert_special_and_added_tokens_files(bert_folder):
    special = os.path.join(bert_folder, "special_tokens_map.json")
    with open(special, "w") as f:
        json.dump({"unk_token": "[UNK]", "cls_token": {"content": "[CLS]"},
                   "sep_token": "[SEP]", "pad_token": "[PAD]",
                   "mask_token": "[MASK]"}, f)
    added = os.path.join(bert_folder, "added_tokens.json")
    with open(added, "w") as f:
        json.dump({"[MASK]": 4}, f)
    bert(bert_folder, sequence_length=8, load_weights=False)
    with open(added, "w") as f:
        json.dump({"<new>": 70}, f)
    with pytest.raises(ValueError, match="added tokens"):
        bert(bert_folder, sequence_length=8, load_weights=False)
    os.remove(added)
    with open(special, "w") as f:
        json.dump({"cls_token": "<s>"}, f)
    with pytest.raises(ValueError, match="cls_token='<s>'"):
        bert(bert_folder, sequence_length=8, load_weights=False)
