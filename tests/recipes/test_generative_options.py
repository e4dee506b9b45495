"""seq2seq and causal_lm honour the fine-tuning options of their configs:
the modes over the T5/BART/GPT-2 groups (and their refusals), gradient
checkpointing, and the causal LM's subsets and test corpus."""

import json
import math
import os

import keras
import numpy as np
import pytest

from kerasft import recipes
from kerasft.backbones import from_keras_hub
from kerasft.recipes import _generative
from tests.recipes.causal_lm_data import counting_corpus, tiny_gpt2
from tests.recipes.seq2seq_data import number_pairs, tiny_bart, tiny_t5

COMMON = dict(precision="float32", strategy="default", verbose=0)


def _group_weights(task):
    """`{group: [arrays]}` of the task's backbone groups."""
    backbone = from_keras_hub(task)
    layers = {layer.name: layer for layer in task.backbone.layers}
    return {
        group.name: [keras.ops.convert_to_numpy(w) for name in group.layers
                     for w in layers[name].weights]
        for group in backbone.groups
    }


def _changed(before, after):
    return {
        name: any(not np.array_equal(a, b) for a, b in zip(before[name], after[name]))
        for name in before
    }


def _causal(tmp_path, task, **options):
    fields = dict(
        train=counting_corpus(40), backbone=task, sequence_length=16,
        epochs=1, batch_size=4, learning_rate=1e-2, validation_split=0.0,
        output_dir=str(tmp_path / "run"),
    )
    fields.update(COMMON)
    fields.update(options)
    return recipes.causal_lm(**fields)


def _seq2seq(tmp_path, task, **options):
    fields = dict(
        train=number_pairs(range(24)), backbone=task, source_length=16,
        target_length=8, epochs=1, batch_size=8, learning_rate=1e-2,
        output_dir=str(tmp_path / "run"),
    )
    fields.update(COMMON)
    fields.update(options)
    return recipes.seq2seq(**fields)


# === Modes ===


def test_partial_gpt2_keeps_lower_groups_bit_identical(tmp_path):
    task = tiny_gpt2(hidden_dim=32, num_layers=2, sequence_length=16)
    before = _group_weights(task)
    result = _causal(tmp_path, task, mode="partial", unfreeze_groups=1)
    changed = _changed(before, _group_weights(result.model))
    assert changed == {"embeddings": False, "layer_0": False, "layer_1": True}


@pytest.mark.slow
def test_partial_t5_opens_the_top_decoder_layers_only(tmp_path):
    task = tiny_t5(hidden_dim=32)
    before = _group_weights(task)
    result = _seq2seq(tmp_path, task, mode="partial", unfreeze_groups=2,
                      validation_split=0.0)
    changed = _changed(before, _group_weights(result.model))
    assert changed == {
        "embeddings": False, "encoder_layer_0": False, "encoder_layer_1": False,
        "decoder_layer_0": True, "decoder_layer_1": True,
    }


def test_progressive_opens_the_top_then_every_group(tmp_path):
    task = tiny_gpt2(hidden_dim=32, num_layers=2, sequence_length=16)
    before = _group_weights(task)
    result = _causal(tmp_path, task, mode="progressive", unfreeze_groups=1,
                     epochs=2, lr_schedule="constant", warmup_ratio=0.0)
    changed = _changed(before, _group_weights(result.model))
    assert all(changed.values()), changed


def test_default_full_mode_trains_every_group_without_unfreeze_callback(tmp_path):
    task = tiny_gpt2(hidden_dim=32, num_layers=2, sequence_length=16)
    before = _group_weights(task)
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append(len(self.model.trainable_weights))

    result = _causal(tmp_path, task, callbacks=[Spy()])
    assert all(_changed(before, _group_weights(result.model)).values())
    assert seen == [len(result.model.weights)]


@pytest.mark.parametrize("make", [
    lambda: tiny_gpt2(hidden_dim=32, sequence_length=16),
    lambda: tiny_t5(hidden_dim=32),  # untied (v1.1/Flan) output layer
    lambda: tiny_t5(hidden_dim=32, tie_embedding_weights=True),
    lambda: tiny_bart(),
], ids=["gpt2", "t5_untied", "t5_tied", "bart"])
def test_no_weight_outside_the_backbone(make):
    """Why the generative configs refuse head-only stages: every weight of
    these tasks is in their backbone (the output layer is the token
    embedding's, or T5 v1.1's untied one in the same layer)."""
    task = make()
    inside = {id(layer) for layer in task.backbone.layers}
    outside = [w for layer in task.layers
               if layer is not task.backbone and id(layer) not in inside
               for w in layer.weights]
    assert outside == []
    assert task.backbone.weights


@pytest.mark.parametrize("config_class", ["CausalLMConfig", "Seq2SeqConfig"])
def test_configs_refuse_head_only_stages_in_one_line(config_class):
    make = getattr(recipes.configs, config_class)
    for mode in ("feature_extraction", "feature-extraction"):
        with pytest.raises(ValueError, match=r"^mode='feature_extraction' "
                           r"trains only a head, and GPT-2, T5 and BART have "
                           r"no layer outside.*Use mode='partial'"):
            make(train="x", mode=mode)
    with pytest.raises(ValueError, match=r"^`head_epochs` trains only a head "
                       r"first.*Use head_epochs=0. Received: head_epochs=1$"):
        make(train="x", mode="partial", head_epochs=1, epochs=2)
    assert make(train="x", mode="partial").head_epochs == 0


def test_recipes_refuse_feature_extraction_before_training(tmp_path):
    with pytest.raises(ValueError, match="GPT-2, T5 and BART have no layer"):
        _causal(tmp_path, tiny_gpt2(hidden_dim=32, sequence_length=16),
                mode="feature_extraction")
    with pytest.raises(ValueError, match="`head_epochs` trains only a head"):
        _seq2seq(tmp_path, tiny_t5(hidden_dim=32), mode="full", head_epochs=1,
                 epochs=2)
    assert not os.path.exists(tmp_path / "run")


def test_cli_refuses_feature_extraction_in_one_line(tmp_path, capsys):
    from kerasft import cli

    corpus = tmp_path / "c.txt"
    corpus.write_text("one two three.\nfour five.\n")
    common = ["causal-lm", "--train", str(corpus),
              "--output", str(tmp_path / "run")]
    assert cli.main([*common, "--mode", "feature_extraction"]) == 2
    err = capsys.readouterr().err
    # One line saying why, not argparse's "invalid choice".
    assert "--mode 'feature_extraction' trains only a head" in err
    assert "invalid choice" not in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    with pytest.raises(SystemExit):
        cli.main([*common, "--head-epochs", "1"])
    err = capsys.readouterr().err
    assert "unrecognized arguments: --head-epochs 1 (not an option here: " \
        "`head_epochs` trains only a head first" in err
    # A --config FILE can still hold them: the config's one line answers.
    options = tmp_path / "options.json"
    options.write_text(json.dumps({"mode": "feature_extraction"}))
    assert cli.main([*common, "--config", str(options)]) == 2
    err = capsys.readouterr().err
    assert "--mode 'feature_extraction' trains only a head" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    options.write_text(json.dumps({"head_epochs": 2}))
    assert cli.main([*common, "--config", str(options)]) == 2
    err = capsys.readouterr().err.strip()
    # `head_epochs` has no flag: the message keeps the config file's name.
    assert err.endswith("Use head_epochs=0. Received: head_epochs=2"), err
    assert len(err.splitlines()) == 1


def test_optimizer_options_reach_the_task(tmp_path):
    from kerasft.optimizers import LayerwiseLR

    seen = []

    class Spy(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append(self.model.optimizer)

    _causal(tmp_path, tiny_gpt2(hidden_dim=32, sequence_length=16),
            layer_decay=0.5, lr_schedule="one_cycle", weight_decay=0.05,
            callbacks=[Spy()])
    (optimizer,) = seen
    assert isinstance(optimizer, LayerwiseLR) and optimizer.layer_decay == 0.5
    inner = optimizer.inner_optimizer.get_config()
    assert inner["weight_decay"] == pytest.approx(0.05)
    assert inner["learning_rate"]["class_name"] == "OneCycle"


# === Gradient checkpointing ===


def _seed_states(task):
    return [np.array(g.state) for g in _generative._seed_generators(task.backbone)]


def _set_seed_states(task, states):
    for g, s in zip(_generative._seed_generators(task.backbone), states):
        g.state.assign(s)


def _loss_and_grads(task, x, y, weights):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        logits = task(x, training=True)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(
            y, logits, sample_weight=weights
        )
    variables = task.trainable_variables
    grads = tape.gradient(loss, [v.value for v in variables])
    return float(loss), [np.array(tf.convert_to_tensor(g)) for g in grads]


@pytest.mark.parametrize("kind", ["gpt2", "t5"])
def test_gradient_checkpointing_recomputes_blocks_with_equal_gradients(kind):
    import tensorflow as tf

    if kind == "gpt2":
        task = tiny_gpt2(hidden_dim=32, sequence_length=16)
        ids = np.random.default_rng(0).integers(1, 50, (2, 16)).astype("int32")
        x = {"token_ids": ids, "padding_mask": np.ones_like(ids, bool)}
    else:
        task = tiny_t5(hidden_dim=32, dropout=0.3)  # masks must repeat
        ids = np.random.default_rng(0).integers(1, 50, (2, 8)).astype("int32")
        x = {"encoder_token_ids": ids, "encoder_padding_mask": np.ones_like(ids, bool),
             "decoder_token_ids": ids, "decoder_padding_mask": np.ones_like(ids, bool)}
    y, weights = np.roll(ids, -1, axis=1), np.ones(ids.shape, "float32")
    backbone = from_keras_hub(task)
    states = _seed_states(task)
    plain = _loss_and_grads(task, x, y, weights)
    calls = []
    blocks = _generative.blocks(backbone)
    assert len(blocks) == (2 if kind == "gpt2" else 4)
    for block in blocks:  # counts the calls of each block's own `call`
        block.call = (lambda f: lambda *a, **k: calls.append(1) or f(*a, **k))(
            block.call)
    _set_seed_states(task, states)
    with _generative.rematerialized(backbone):
        remat = _loss_and_grads(task, x, y, weights)
        # In a tf.function too (as `fit` runs it).
        _set_seed_states(task, states)
        graph = tf.function(lambda: _loss_and_grads_graph(task, x, y, weights))()
    assert len(calls) > 2 * len(blocks)  # forward + recomputation
    assert all("call" in b.__dict__ for b in blocks)  # the counters are back
    np.testing.assert_allclose(remat[0], plain[0], rtol=1e-5)
    np.testing.assert_allclose(float(graph[0]), plain[0], rtol=1e-5)
    for a, b, c in zip(plain[1], remat[1], graph[1]):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(np.array(tf.convert_to_tensor(c)), a,
                                   rtol=1e-4, atol=1e-6)


def _loss_and_grads_graph(task, x, y, weights):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        logits = task(x, training=True)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(
            y, logits, sample_weight=weights
        )
    grads = tape.gradient(loss, [v.value for v in task.trainable_variables])
    return loss, grads


@pytest.mark.slow
def test_gradient_checkpointing_run_matches_a_plain_run(tmp_path):
    patched = []

    class Spy(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            block = self.model.backbone.get_layer("transformer_layer_0")
            patched.append("call" in block.__dict__)

    plain = _causal(tmp_path / "a", tiny_gpt2(hidden_dim=32, sequence_length=16),
                    validation_split=0.2)
    remat = _causal(tmp_path / "b", tiny_gpt2(hidden_dim=32, sequence_length=16),
                    validation_split=0.2, gradient_checkpointing=True,
                    callbacks=[Spy()])
    assert patched and all(patched)
    np.testing.assert_allclose(remat.metrics["val_loss"],
                               plain.metrics["val_loss"], rtol=1e-4)
    # The saved model has no trace of the recomputation.
    assert "call" not in remat.model.backbone.get_layer(
        "transformer_layer_0").__dict__


# === Causal LM subsets and test corpus ===


def test_causal_lm_subsets_and_test_metrics(tmp_path, capsys):
    held_out = counting_corpus(12, seed=1)
    result = _causal(
        tmp_path, tiny_gpt2(hidden_dim=32, sequence_length=16),
        validation=held_out, test=held_out, max_train_samples=3,
        max_eval_samples=2, verbose=1,
    )
    metrics = result.metrics
    assert metrics["train_windows"] == 3
    assert metrics["val_windows"] == metrics["test_windows"] == 2
    # The same corpus and subset: scored exactly like validation.
    for key in ("loss", "perplexity", "tokens"):
        assert metrics[f"test_{key}"] == pytest.approx(metrics[f"val_{key}"])
    assert math.isclose(math.exp(metrics["test_loss"]), metrics["test_perplexity"],
                        rel_tol=1e-6)
    with open(tmp_path / "run" / "metrics.json") as f:
        saved = json.load(f)
    assert {"test_loss", "test_perplexity", "test_windows"} <= set(saved)
    out = capsys.readouterr().out
    assert "Using 3 of" in out and "train windows" in out
    assert "Using 2 of" in out and "test windows" in out


def test_causal_lm_test_corpus_without_subsets(tmp_path):
    result = _causal(tmp_path, tiny_gpt2(hidden_dim=32, sequence_length=16),
                     validation_split=0.2, test=counting_corpus(6, seed=2))
    assert result.metrics["test_windows"] >= 1
    assert result.metrics["val_windows"] >= 1
    assert result.metrics["test_perplexity"] > 1


# === seq2seq subsets, validation_split and test ===


@pytest.mark.slow
def test_seq2seq_subsets_validation_split_and_test(tmp_path, capsys):
    result = _seq2seq(
        tmp_path, tiny_t5(hidden_dim=32), validation_split=0.25,
        test=number_pairs(range(100, 106)), max_train_samples=8,
        max_eval_samples=3, verbose=1, mode="partial", unfreeze_groups=1,
    )
    out = capsys.readouterr().out
    assert "Holding out 6 of 24 training pairs" in out
    assert "Using 8 of 18 train pairs" in out
    assert "Using 3 of 6 validation pairs" in out
    assert "Using 3 of 6 test pairs" in out
    assert {"val_loss", "val_bleu", "test_loss", "test_bleu"} <= set(result.metrics)
    with open(tmp_path / "run" / "predictions.csv") as f:
        assert len(f.read().strip().splitlines()) == 1 + 3
