"""`kerasft.backbones.load_task`: sources, safety checks, GPT-2/BART parity.

`tests/fixtures/gpt2_tiny` and `bart_tiny` hold Hugging Face PyTorch's
logits for fixed inputs (`tools/make_generative_fixtures.py`); the T5
parity tests are in `test_t5_checkpoint.py`.
"""

import builtins
import io
import json
import os
import shutil

import keras_hub
import numpy as np
import pytest

from kerasft import _keras_compat
from kerasft.backbones import generative
from kerasft.backbones import load_task
from tests.fixtures.tiny_generative import bart_folder
from tests.fixtures.tiny_generative import gpt2_folder
from tests.fixtures.tiny_generative import reference
from tests.fixtures.tiny_generative import t5_folder


@pytest.fixture(scope="module")
def gpt2():
    return load_task(gpt2_folder(), "causal_lm")


def _gpt2_logits(task, ref):
    inputs = {"token_ids": ref["token_ids"], "padding_mask": ref["padding_mask"]}
    return np.asarray(task(inputs))


def test_gpt2_folder_logits_match_hugging_face(gpt2):
    ref = reference(gpt2_folder())
    mask = ref["padding_mask"].astype(bool)
    error = np.abs(_gpt2_logits(gpt2, ref) - ref["logits"])[mask]
    assert error.max() <= 1e-3
    assert isinstance(gpt2, keras_hub.models.GPT2CausalLM)
    # Tokenization matches transformers' GPT2Tokenizer on the same files.
    for text, ids, row_mask in zip(ref["texts"], ref["token_ids"], mask):
        got = np.asarray(gpt2.preprocessor.tokenizer(str(text)))
        np.testing.assert_array_equal(got, ids[row_mask])
    # KerasHub's default length (1024) is capped at n_positions.
    assert gpt2.preprocessor.sequence_length == 128


def test_bart_folder_logits_match_hugging_face(tmp_path):
    task = load_task(bart_folder(), "seq2seq", sequence_length=(48, 16))
    assert isinstance(task, keras_hub.models.BartSeq2SeqLM)
    assert task.preprocessor.encoder_sequence_length == 48
    assert task.preprocessor.decoder_sequence_length == 16
    ref = reference(bart_folder())
    inputs = {k: ref[k] for k in (
        "encoder_token_ids", "encoder_padding_mask",
        "decoder_token_ids", "decoder_padding_mask",
    )}
    mask = ref["decoder_padding_mask"].astype(bool)
    error = np.abs(np.asarray(task(inputs)) - ref["logits"])[mask]
    assert error.max() <= 1e-3
    with pytest.raises(ValueError, match="maximum of 64"):
        load_task(bart_folder(), "seq2seq", sequence_length=(65, 16))
    # A config written by transformers 5 lacks the key KerasHub reads.
    copy = tmp_path / "bart"
    shutil.copytree(bart_folder(), copy)
    config = json.loads((copy / "config.json").read_text())
    del config["num_hidden_layers"]
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match='"num_hidden_layers": 2'):
        load_task(str(copy), "seq2seq")


@pytest.mark.parametrize(
    "change",
    [{"n_inner": 64}, {"activation_function": "relu"},
     {"scale_attn_by_inverse_layer_idx": True}],
)
def test_gpt2_configs_keras_hub_would_misread_are_refused(tmp_path, change):
    shutil.copytree(gpt2_folder(), tmp_path / "gpt2")
    config = json.loads((tmp_path / "gpt2" / "config.json").read_text())
    config.update(change)
    (tmp_path / "gpt2" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=f"{next(iter(change))}.*cannot express"):
        load_task(str(tmp_path / "gpt2"), "causal_lm")


def test_sequence_length_is_set_and_checked(gpt2):
    task = load_task(gpt2, "causal_lm", sequence_length=64)
    assert task is gpt2 and gpt2.preprocessor.sequence_length == 64
    gpt2.preprocessor.sequence_length = 128
    with pytest.raises(ValueError, match="at most the model's maximum of 128"):
        load_task(gpt2_folder(), "causal_lm", sequence_length=129)
    with pytest.raises(ValueError, match="at most the model's maximum of 128"):
        load_task(gpt2, "causal_lm", sequence_length=200)
    with pytest.raises(ValueError, match="positive int"):
        load_task(gpt2, "causal_lm", sequence_length=(64, 8))
    with pytest.raises(ValueError, match=r"\(source_length, target_length\)"):
        load_task(t5_folder(), "seq2seq", sequence_length=0)


def test_too_long_is_refused_before_reading_weights(tmp_path):
    """The length check reads only config.json / tokenizer_config.json:
    the weights here are garbage and must never be parsed."""
    for folder, kind, length in (
        (gpt2_folder(), "causal_lm", 4096),
        (t5_folder(), "seq2seq", (1024, 16)),
    ):
        copy = tmp_path / os.path.basename(folder)
        shutil.copytree(folder, copy)
        (copy / "model.safetensors").write_bytes(b"not a safetensors file")
        with pytest.raises(ValueError, match="at most the model's maximum"):
            load_task(str(copy), kind, sequence_length=length)


@pytest.mark.parametrize("weights", ["pytorch_model.bin", "model.pt", "ckpt.pth"])
def test_pickle_only_folder_is_refused_before_reading(tmp_path, monkeypatch, weights):
    shutil.copy(os.path.join(gpt2_folder(), "config.json"), tmp_path)
    pickle_path = tmp_path / weights
    pickle_path.write_bytes(b"\x80\x04garbage, never unpickled")
    opened = []
    real_open = builtins.open

    def recording_open(file, *args, **kwargs):
        opened.append(os.fspath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", recording_open)
    monkeypatch.setattr(io, "open", recording_open)
    with pytest.raises(ValueError, match="only pickle weights") as info:
        load_task(str(tmp_path), "causal_lm")
    assert "safetensors" in str(info.value)
    assert str(pickle_path) not in opened and not any(
        p.endswith(weights) for p in opened
    )


def test_bad_sources_get_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="not a folder, nor a KerasHub"):
        load_task("no_such_preset_xyz", "causal_lm")
    with pytest.raises(ValueError, match="is not a folder"):
        load_task(str(tmp_path / "missing" / "model"), "seq2seq")
    with pytest.raises(ValueError, match="has no config.json"):
        load_task(str(tmp_path), "seq2seq")
    with pytest.raises(ValueError, match="kind='causal_lm'"):
        load_task(gpt2_folder(), "seq2seq")
    with pytest.raises(ValueError, match="kind='seq2seq'"):
        load_task(t5_folder(), "causal_lm")
    with pytest.raises(ValueError, match="`kind` must be one of"):
        load_task(gpt2_folder(), "classifier")
    with pytest.raises(TypeError, match="`source` must be"):
        load_task(42, "causal_lm")
    no_spiece = tmp_path / "t5"
    shutil.copytree(t5_folder(), no_spiece)
    os.remove(no_spiece / "spiece.model")
    with pytest.raises(ValueError, match="no spiece.model"):
        load_task(str(no_spiece), "seq2seq")


def test_preset_folder_round_trip(gpt2, tmp_path):
    gpt2.save_to_preset(str(tmp_path / "preset"))
    task = load_task(str(tmp_path / "preset"), "causal_lm", sequence_length=32)
    ref = reference(gpt2_folder())
    np.testing.assert_allclose(
        _gpt2_logits(task, ref), _gpt2_logits(gpt2, ref), atol=1e-6
    )
    assert task.preprocessor.sequence_length == 32
    with pytest.raises(ValueError, match="at most the model's maximum of 128"):
        load_task(str(tmp_path / "preset"), "causal_lm", sequence_length=256)
    with pytest.raises(ValueError, match="GPT2Backbone preset, a causal_lm"):
        load_task(str(tmp_path / "preset"), "seq2seq")


def test_backbone_is_wrapped_with_a_tokenizer(gpt2):
    with pytest.raises(ValueError, match="has no preprocessor"):
        load_task(gpt2.backbone, "causal_lm")
    task = load_task(
        gpt2.backbone, "causal_lm", sequence_length=16,
        tokenizer=gpt2.preprocessor.tokenizer,
    )
    assert isinstance(task, keras_hub.models.GPT2CausalLM)
    assert task.backbone is gpt2.backbone
    assert task.preprocessor.sequence_length == 16
    with pytest.raises(ValueError, match="KerasHub has no seq2seq task"):
        load_task(gpt2.backbone, "seq2seq")


def test_t5_from_hf_handle_and_preset_round_trip(monkeypatch, tmp_path):
    """An `hf://` T5 repository goes through kerasft's converter; served
    here from the local fixture instead of the network."""
    def path(handle, name, feature=None):
        assert handle == "hf://kerasft/t5-tiny"
        return os.path.join(t5_folder(), name)

    def load_json(handle, name, feature=None):
        with open(path(handle, name)) as f:
            return json.load(f)

    monkeypatch.setattr(_keras_compat, "preset_get_file", path)
    monkeypatch.setattr(_keras_compat, "preset_load_json", load_json)
    monkeypatch.setattr(
        _keras_compat, "preset_file_exists",
        lambda handle, name, feature=None: os.path.exists(path(handle, name)),
    )
    task = load_task("hf://kerasft/t5-tiny", "seq2seq", sequence_length=(24, 12))
    assert isinstance(task, keras_hub.models.T5Seq2SeqLM)
    assert task.preprocessor.encoder_sequence_length == 24
    assert task.preprocessor.decoder_sequence_length == 12
    ref = reference(t5_folder())
    inputs = {k: ref[k] for k in (
        "encoder_token_ids", "encoder_padding_mask",
        "decoder_token_ids", "decoder_padding_mask",
    )}
    logits = np.asarray(task(inputs))
    mask = ref["decoder_padding_mask"].astype(bool)
    assert np.abs(logits - ref["logits"])[mask].max() <= 1e-3

    task.save_to_preset(str(tmp_path / "preset"))
    restored = load_task(str(tmp_path / "preset"), "seq2seq", sequence_length=24)
    np.testing.assert_allclose(np.asarray(restored(inputs)), logits, atol=1e-6)
    assert restored.preprocessor.decoder_sequence_length == 24


def test_hf_handle_without_safetensors_is_refused(monkeypatch):
    monkeypatch.setattr(
        _keras_compat, "preset_load_json",
        lambda handle, name, feature=None: {"model_type": "gpt2", "n_positions": 64},
    )
    monkeypatch.setattr(
        _keras_compat, "preset_file_exists",
        lambda handle, name, feature=None: name == "pytorch_model.bin",
    )
    with pytest.raises(ValueError, match="no model.safetensors"):
        load_task("hf://someone/pickled-gpt2", "causal_lm")


def test_kinds_are_exported():
    assert generative.KINDS == ("seq2seq", "causal_lm")
