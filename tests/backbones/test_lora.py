"""`kerasft.backbones.enable_lora/save_lora/load_lora/merge_lora` on KerasHub
models: what trains, adapters saved alone, loaded back, merged."""

import os
import re

import keras
import numpy as np
import pytest

import kerasft
from kerasft.backbones import enable_lora
from kerasft.backbones import from_keras_hub
from kerasft.backbones import load_lora
from kerasft.backbones import merge_lora
from kerasft.backbones import save_lora
from tests.backbones import tiny_keras_hub as tiny


def _randomize_adapters(model, seed=0):
    """Stands in for training: adapters start with `b = 0` (no effect);
    with `train_bias=True` the adapted layers' biases train too."""
    rng = np.random.default_rng(seed)
    for v in model.trainable_weights:
        v.assign(rng.normal(0, 0.3, v.shape).astype("float32"))


def _logits(task, batch):
    return np.asarray(task.predict_on_batch(batch[0]))


@pytest.mark.slow
def test_enable_lora_trains_only_query_value_adapters_of_a_task(capsys):
    task = tiny.gpt2_lm()
    total, trainable = enable_lora(task, rank=2)
    assert "LoRA rank 2 on 4 layers" in capsys.readouterr().out
    paths = [v.path for v in task.trainable_weights]
    assert all(
        re.search(r"/(query|value)/lora_kernel_[ab]$", p) for p in paths
    ), paths
    # 2 layers x (query + value) x (A: 8x2x2 + B: 2x4): the adapters only,
    # the biases Keras leaves trainable frozen too.
    assert trainable == sum(int(np.prod(v.shape)) for v in task.trainable_weights)
    assert trainable == 2 * 2 * (32 + 8)
    assert total == sum(int(np.prod(v.shape)) for v in task.weights)
    with pytest.raises(ValueError, match="already enabled"):
        enable_lora(task, rank=2)

    snapshot = [v.numpy().copy() for v in task.weights]
    x, y, w = tiny.lm_batch()
    task.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    # Two steps: `lora_kernel_a` gets a gradient once `lora_kernel_b` != 0.
    task.fit(x, y, sample_weight=w, batch_size=4, epochs=2, verbose=0)
    changed = {
        v.path
        for v, before in zip(task.weights, snapshot)
        if not np.array_equal(before, v.numpy())
    }
    assert changed == set(paths)


def test_t5_default_target_and_custom_patterns():
    t5 = tiny.t5_lm()
    backbone = from_keras_hub(t5)
    _, trainable = enable_lora(backbone, rank=2, verbose=False)
    # 2 encoder self + 2 decoder self + 2 cross attentions, query and value
    # projections (no biases): A 8x2 + B 2x8.
    assert trainable == 12 * (16 + 16)
    # Adapters belong to their transformer layer's group.
    patterns = backbone.group_patterns()
    for v in backbone.model.weights:
        if "lora_kernel" in v.path:
            assert sum(bool(re.search(p, v.path)) for p in patterns.values()) == 1

    gpt2 = tiny.gpt2_backbone()
    enable_lora(gpt2, rank=1, target=["query", "attention_output"], verbose=False)
    adapted = {v.path.rsplit("/", 2)[-2] for v in gpt2.weights if "lora" in v.path}
    assert adapted == {"query", "attention_output"}
    trained = [v.path for v in gpt2.trainable_weights]
    assert trained and all("lora_kernel" in p for p in trained), trained
    # `train_bias=True`: Keras's own rule, the adapted layers' biases train:
    # 2 layers x query (2 heads x 4) + attention_output (8).
    with_bias = tiny.gpt2_backbone()
    _, biased = enable_lora(with_bias, rank=1, target=["query", "attention_output"],
                            verbose=False, train_bias=True)
    adapters_only = sum(int(np.prod(v.shape)) for v in gpt2.trainable_weights)
    assert biased == adapters_only + 2 * (8 + 8)
    with pytest.raises(ValueError, match="matches no layer.*Layers with `enable_lora`"):
        enable_lora(tiny.gpt2_backbone(), rank=1, target="nope")
    with pytest.raises(ValueError, match="rank"):
        enable_lora(tiny.gpt2_backbone(), rank=0)
    with pytest.raises(TypeError, match="KerasHub"):
        enable_lora("gpt2", rank=1)


@pytest.mark.slow
def test_adapters_save_alone_load_onto_a_fresh_base_and_merge(tmp_path):
    batch = tiny.lm_batch()
    task = tiny.gpt2_lm(hidden_dim=64, vocabulary_size=512)
    base_file = str(tmp_path / "base.weights.h5")
    task.save_weights(base_file)
    # Trained biases too: `save_lora` stores them, `load_lora` restores them.
    enable_lora(task, rank=2, verbose=False, train_bias=True)
    _randomize_adapters(task)
    expected = _logits(task, batch)

    adapters = str(tmp_path / "lora.weights.h5")
    save_lora(task, adapters)
    # Adapters alone: a small fraction of the full weights file.
    assert os.path.getsize(adapters) < 0.1 * os.path.getsize(base_file)

    fresh = tiny.gpt2_lm(hidden_dim=64, vocabulary_size=512)
    fresh.load_weights(base_file)
    load_lora(fresh, adapters)  # enables LoRA with the file's rank
    np.testing.assert_allclose(_logits(fresh, batch), expected, atol=1e-6)

    other = tiny.gpt2_lm(hidden_dim=64, vocabulary_size=512)
    enable_lora(other, rank=3, verbose=False)
    with pytest.raises(ValueError, match="rank"):
        load_lora(other, adapters)
    with pytest.raises(ValueError, match=r"\.weights\.h5"):
        save_lora(task, str(tmp_path / "lora.h5"))

    assert merge_lora(fresh) == 4
    assert not any("lora" in v.path for v in fresh.weights)
    np.testing.assert_allclose(_logits(fresh, batch), expected, atol=1e-5)
    with pytest.raises(ValueError, match="no LoRA adapters"):
        merge_lora(fresh)
    # The merged task saves and reloads as a plain model.
    path = str(tmp_path / "merged.keras")
    fresh.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(_logits(reloaded, batch), expected, atol=1e-5)


def test_merge_on_a_kerasft_backbone_of_a_seq2seq_task(tmp_path):
    task = tiny.t5_lm()
    backbone = from_keras_hub(task)
    batch = tiny.seq2seq_batch()
    kerasft.backbones.enable_lora(backbone, rank=2, verbose=False)
    _randomize_adapters(task, seed=1)
    expected = np.asarray(task(batch[0]))  # eager: no tracing cost
    kerasft.backbones.merge_lora(backbone)
    np.testing.assert_allclose(np.asarray(task(batch[0])), expected, atol=1e-5)
