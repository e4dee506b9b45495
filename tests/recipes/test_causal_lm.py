"""The causal_lm recipe and `kerasft generate`: learning, LoRA, the command
line, kill -9 resume and the errors raised before training."""

import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import kerasft
from kerasft import cli
from kerasft.data import corpus
from kerasft.generation import load_run
from kerasft.recipes import _resume
from kerasft.recipes.causal_lm import loss_weights, token_ids
from tests.fixtures.tiny_generative import gpt2_folder
from tests.recipes import kill9
from tests.recipes.causal_lm_data import (
    counting_corpus,
    tiny_gpt2,
    unigram_perplexity,
    write_folder,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMMON = dict(precision="float32", strategy="default", verbose=0)


def _logits(task, packed):
    preprocessor, task.preprocessor = task.preprocessor, None
    try:
        x = {"token_ids": packed.token_ids, "padding_mask": packed.padding_mask}
        return np.asarray(task.predict(x, verbose=0), "float64")
    finally:
        task.preprocessor = preprocessor


def _masked_perplexity(logits, packed):
    logits = logits - logits.max(-1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -np.take_along_axis(log_probs, packed.labels[..., None], -1)[..., 0]
    return math.exp((nll * packed.label_mask).sum() / packed.label_mask.sum())


@pytest.mark.slow
def test_validation_perplexity_falls_well_below_the_unigram_perplexity(tmp_path):
    documents = counting_corpus(800)
    folder = write_folder(tmp_path / "corpus", documents, per_file=1)
    out = str(tmp_path / "run")
    result = kerasft.recipes.causal_lm(
        train=folder, backbone=tiny_gpt2(hidden_dim=96), sequence_length=32,
        epochs=5, batch_size=8, learning_rate=1e-3, warmup_ratio=0.1,
        prompts=["three four", "ten"], sample_length=16, sampler="top_k",
        top_k=5, output_dir=out, **COMMON,
    )
    task, metrics = result.model, result.metrics
    # The split and packing the recipe made, rebuilt here.
    tokenizer = task.preprocessor.tokenizer
    ids = corpus.tokenize_documents(documents, lambda b: token_ids(tokenizer, b))
    train, val = corpus.split_documents(ids, 0.1)
    end = tokenizer.end_token_id
    train = corpus.pack(train, 32, end)
    val = corpus.pack(val, 32, end, score_each_token_once=True)
    assert metrics["train_tokens"] == train.num_tokens
    assert metrics["val_tokens"] == val.num_tokens
    assert metrics["train_windows"] == train.num_windows
    assert metrics["train_documents"] == train.num_documents
    assert train.num_tokens + val.num_tokens > sum(map(len, ids))  # nothing cut
    unigram = unigram_perplexity(train, val)
    assert unigram > 15
    assert metrics["val_perplexity"] < 0.5 * unigram, (metrics, unigram)
    # One perplexity over every scored validation token, masked.
    np.testing.assert_allclose(
        metrics["val_perplexity"], _masked_perplexity(_logits(task, val), val),
        rtol=1e-3,
    )
    assert metrics["val_loss"] == pytest.approx(math.log(metrics["val_perplexity"]))
    with open(os.path.join(out, "samples.json")) as f:
        samples = json.load(f)
    assert [s["prompt"] for s in samples["samples"]] == ["three four", "ten"]
    assert all(s["text"].startswith(s["prompt"]) and len(s["text"]) > len(s["prompt"])
               for s in samples["samples"])
    assert (samples["sampler"], samples["top_k"], samples["seed"]) == ("top_k", 5, 0)
    with open(os.path.join(out, "generative.json")) as f:
        info = json.load(f)
    assert info == {"kind": "causal_lm", "base": None, "lora_rank": None,
                    "merged": False, "task_prefix": "", "sequence_length": 32}
    # The run folder generates again, seeded samples repeat.
    again = [kerasft.generate(out, ["seven eight"], max_length=16, sampler="top_p",
                              top_p=0.9, seed=3) for _ in range(2)]
    assert again[0] == again[1] and again[0][0].startswith("seven eight")


@pytest.mark.slow
def test_lora_trains_adapters_only_and_merge_lora_gives_the_same_outputs(tmp_path):
    base = tiny_gpt2()
    def by_path(weights):
        return {w.path: keras.ops.convert_to_numpy(w)
                for w in weights if "lora" not in w.path}

    original = by_path(base.weights)
    common = dict(train=counting_corpus(120), backbone=base, sequence_length=32,
                  epochs=1, batch_size=8, learning_rate=1e-2, lora_rank=4,
                  **COMMON)
    adapters = kerasft.recipes.causal_lm(output_dir=str(tmp_path / "a"), **common)
    merged = kerasft.recipes.causal_lm(output_dir=str(tmp_path / "m"), merge_lora=True,
                                       **common)
    files_a = set(os.listdir(tmp_path / "a"))
    files_m = set(os.listdir(tmp_path / "m"))
    assert {"lora.weights.h5", "base_preset"} <= files_a and "model.keras" not in files_a
    assert "model.keras" in files_m and "lora.weights.h5" not in files_m
    # Only the adapters trained: every other weight is the base's.
    frozen = by_path(adapters.model.weights)
    assert frozen.keys() == original.keys()
    for path, value in frozen.items():
        np.testing.assert_array_equal(value, original[path], err_msg=path)
    trained = [w for w in adapters.model.trainable_weights]
    assert trained and all("lora" in w.path for w in trained)
    # Base + lora.weights.h5 and the merged model.keras give the same logits,
    # unlike the base.
    with_adapters, _ = load_run(str(tmp_path / "a"))
    merged_task, info = load_run(str(tmp_path / "m"))
    assert info["merged"] and info["lora_rank"] == 4
    assert not any("lora" in w.path for w in merged_task.weights)
    packed = corpus.pack([[5, 9, 13, 2, 7] * 5], 32, separator_id=0)
    a, m = _logits(with_adapters, packed), _logits(merged_task, packed)
    np.testing.assert_allclose(a, m, atol=1e-4)
    assert np.abs(a - _logits(base, packed)).max() > 1e-3


def _cli(args, capsys):
    code = cli.main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.slow
def test_cli_causal_lm_then_generate_full_and_lora(tmp_path, capsys):
    table = tmp_path / "docs.csv"
    rows = "\n".join(f'{i},"{doc}"' for i, doc in enumerate(counting_corpus(60)))
    table.write_text("id,body\n" + rows + "\n")
    runs = {}
    for name, extra in (("full", ["--prompts", "three four|ten"]),
                        ("lora", ["--lora-rank", "2"])):
        out = str(tmp_path / name)
        code, stdout, err = _cli(
            ["causal-lm", "--train", str(table), "--text-column", "body",
             "--backbone", gpt2_folder(), "--sequence-length", "32",
             "--stride", "24", "--epochs", "1", "--batch-size", "8",
             "--sample-length", "12", "--precision", "float32",
             "--strategy", "default", "--verbose", "0", "--output", out,
             *extra], capsys)
        assert code == 0, err
        assert "val_perplexity" in stdout
        runs[name] = out
    with open(os.path.join(runs["full"], "samples.json")) as f:
        assert len(json.load(f)["samples"]) == 2
    assert "model.keras" not in os.listdir(runs["lora"])
    with open(os.path.join(runs["lora"], "generative.json")) as f:
        assert json.load(f)["base"] == gpt2_folder()
    code, stdout, err = _cli(["generate", runs["full"], "--prompt", "five six",
                              "--max-length", "12"], capsys)
    assert code == 0, err
    assert stdout.startswith("five six")
    command = ["generate", runs["lora"], "--prompt", "three four", "--prompt",
               "ten", "--max-length", "12", "--sampler", "top_k", "--top-k",
               "5", "--seed", "7"]
    code, first, err = _cli(command, capsys)
    assert code == 0, err
    texts = first.rstrip("\n").split("\n---\n")
    assert len(texts) == 2 and texts[0].startswith("three four")
    assert texts[1].startswith("ten")
    assert _cli(command, capsys)[1] == first  # seeded: the same text


@pytest.mark.slow
def test_generate_reads_a_seq2seq_run(tmp_path, capsys):
    from tests.recipes.seq2seq_data import tiny_t5

    out = str(tmp_path / "s2s")
    pairs = [(w, str(i)) for i, w in enumerate(["one", "two", "three", "four"] * 4)]
    kerasft.recipes.seq2seq(
        train=pairs, backbone=tiny_t5(hidden_dim=32, num_layers=1),
        task_prefix="digits: ",
        source_length=8, target_length=4, epochs=1, batch_size=8,
        output_dir=out, **COMMON)
    code, stdout, err = _cli(["generate", out, "--prompt", "three",
                              "--max-length", "4"], capsys)
    assert code == 0, err
    task, info = load_run(out)
    assert info["kind"] == "seq2seq" and info["task_prefix"] == "digits: "
    task.compile(sampler="greedy")
    expected = task.generate(["digits: three"], max_length=4)[0]
    assert stdout.strip() == expected.strip()


def _child(out, *extra):
    env = {**os.environ, "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.recipes.causal_lm_data", out, *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


@pytest.mark.slow
def test_kill_9_mid_epoch_then_same_command_matches_uninterrupted(tmp_path):
    straight, killed = str(tmp_path / "straight"), str(tmp_path / "killed")
    reference = _child(straight)
    victim = _child(killed, "--hold-at-epoch", "2")
    kill9.kill_when_held(victim, killed + ".marker")
    assert _resume.latest_checkpoint(os.path.join(killed, "backup"))[0] == 2
    assert not set(os.listdir(killed)) & {"model.keras", "metrics.json",
                                          "generative.json"}
    for proc in (_child(killed), reference):
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, output.decode()[-3000:]
    kill9.assert_same_history(straight, killed, atol=0)
    metrics = [json.load(open(os.path.join(d, "metrics.json"))) for d in (straight, killed)]
    assert metrics[1]["val_perplexity"] == pytest.approx(metrics[0]["val_perplexity"], rel=1e-4)
    assert "backup" not in os.listdir(killed)


# === Errors before training ===


def test_bad_corpus_and_length_fail_before_training(tmp_path, capsys):
    table = tmp_path / "docs.csv"
    table.write_text("id,body\n1,one two three\n")
    out = str(tmp_path / "out")
    base = ["causal-lm", "--backbone", gpt2_folder(), "--sequence-length", "32",
            "--precision", "float32", "--strategy", "default", "--verbose", "0",
            "--output", out]
    code, _, err = _cli([*base, "--train", str(table)], capsys)
    assert code == 2
    assert "no column 'text'" in err and "['id', 'body']" in err
    assert "--text-column" in err
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n")
    code, _, err = _cli([*base, "--train", str(blank)], capsys)
    assert code == 2 and "holds no text" in err
    code, _, err = _cli([*base, "--train", str(table), "--text-column", "body",
                         "--sequence-length", "256"], capsys)
    assert code == 2 and "maximum of 128" in err, err
    left = set(os.listdir(out)) if os.path.isdir(out) else set()
    assert not {"model.keras", "backup", "metrics.json"} & left
    with pytest.raises(ValueError, match="maximum of 128"):
        kerasft.recipes.causal_lm(train=["one two"], backbone=tiny_gpt2(),
                                  sequence_length=200, output_dir=out, **COMMON)


def test_config_rejects_bad_options():
    from kerasft.recipes import CausalLMConfig

    with pytest.raises(ValueError, match="stride"):
        CausalLMConfig(train="x", sequence_length=16, stride=17)
    with pytest.raises(ValueError, match="merge_lora` needs `lora_rank"):
        CausalLMConfig(train="x", merge_lora=True)
    with pytest.raises(ValueError, match="sample_length"):
        CausalLMConfig(train="x", sample_length=0)
    with pytest.raises(ValueError, match="export"):
        CausalLMConfig(train="x", export="tflite")
    assert CausalLMConfig(train="x", prompts="a b|c").prompts == "a b|c"


def test_generate_refuses_a_folder_that_is_not_a_finished_generative_run(
        tmp_path, capsys):
    with pytest.raises(ValueError, match="does not exist"):
        kerasft.generate(str(tmp_path / "missing"), "hi")
    code, _, err = _cli(["generate", str(tmp_path / "missing"), "--prompt", "hi"], capsys)
    assert code == 2 and "kerasft generate: error: Run folder" in err
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="has not finished"):
        kerasft.generate(str(tmp_path), "hi")
    (tmp_path / "metrics.json").write_text("{}")
    with pytest.raises(ValueError, match="not a finished seq2seq or causal-lm run"):
        kerasft.generate(str(tmp_path), "hi")
    with pytest.raises(ValueError, match="sampler"):
        kerasft.generate(str(tmp_path), "hi", sampler="nucleus")


@pytest.mark.slow
def test_lora_mixed_bfloat16_python_base_preset_loads_for_generate(tmp_path):
    """Under mixed_bfloat16, a Python task's `base_preset/` is written in
    float32 (KerasHub cannot load a mixed-policy preset) into a run folder
    that does not exist yet, and `kerasft.generate` reads the run back."""
    out = str(tmp_path / "new" / "run")
    result = kerasft.recipes.causal_lm(
        train=counting_corpus(24), backbone=tiny_gpt2(hidden_dim=16),
        sequence_length=16, epochs=1, batch_size=8, lora_rank=2,
        output_dir=out, precision="mixed_bfloat16", strategy="default",
        verbose=0,
    )
    assert all("lora_kernel" in w.path for w in result.model.trainable_weights)
    with open(os.path.join(out, "base_preset", "config.json")) as f:
        assert "mixed" not in f.read()
    text = kerasft.generate(out, "three four", max_length=10)
    assert text.startswith("three four")


def test_loss_weights_make_the_window_mean_the_scored_token_mean():
    packed = corpus.pack([[5, 6, 7, 8, 9], [4]], sequence_length=4,
                         separator_id=0, stride=2, score_each_token_once=True)
    assert packed.label_mask.sum() < packed.label_mask.size  # masked positions
    nll = np.random.default_rng(0).uniform(1, 5, packed.labels.shape)
    weights = loss_weights(packed)
    # Keras: the weighted sum over every position, divided by them all.
    keras_mean = (nll * weights).sum() / nll.size
    token_mean = (nll * packed.label_mask).sum() / packed.label_mask.sum()
    assert keras_mean == pytest.approx(token_mean)


@pytest.mark.slow
def test_cli_logged_val_loss_is_the_metrics_val_loss(tmp_path):
    """One validation loss: the epoch log and history.csv agree with
    metrics.json and its perplexity (overlapping windows mask tokens)."""
    text = tmp_path / "corpus.txt"
    text.write_text("\n".join(counting_corpus(60)))
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        [sys.executable, "-m", "kerasft.cli", "causal-lm", "--train", str(text),
         "--backbone", gpt2_folder(), "--sequence-length", "32", "--stride",
         "24", "--epochs", "2", "--precision", "float32", "--strategy",
         "default", "--output", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out / "metrics.json") as f:
        metrics = json.load(f)
    with open(out / "history.csv") as f:
        last = f.read().strip().splitlines()[-1].split(",")
    header = (out / "history.csv").read_text().splitlines()[0].split(",")
    logged = dict(zip(header, map(float, last)))
    assert logged["val_loss"] == pytest.approx(metrics["val_loss"], rel=1e-4)
    assert metrics["val_loss"] == pytest.approx(math.log(metrics["val_perplexity"]))
    assert logged["loss"] == pytest.approx(math.log(logged["perplexity"]), rel=1e-4)
    assert f"val_loss: {metrics['val_loss']:.4f}" in result.stdout
    assert (out / "training_curves.png").stat().st_size > 1000
