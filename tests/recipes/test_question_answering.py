"""`kerasft.recipes.question_answering` on contexts longer than one window."""

import json
import os

import numpy as np
import pytest

from kerasft import cli, recipes
from tests.fixtures.tiny_hf import make_tiny_folder
from tests.recipes.ner_data import FILLER

FAST = dict(precision="float32", strategy="default", verbose=0)


def _long_squad(path, n, seed, unanswerable=0):
    """Contexts of 50-60 one-token words; the answer "paris" sits past the
    first 32-token window (word 30 or later). The last `unanswerable`
    questions have no "paris" in their context (SQuAD v2.0)."""
    rng = np.random.default_rng(seed)
    paragraphs = []
    for i in range(n):
        words = [str(w) for w in rng.choice(FILLER, int(rng.integers(50, 60)))]
        qa = {"id": f"q{i}", "question": "where is it"}
        if i < n - unanswerable:
            words.insert(int(rng.integers(30, len(words))), "paris")
            context = " ".join(words)
            qa["answers"] = [{"text": "paris", "answer_start": context.index("paris")}]
        else:
            context = " ".join(words)
            qa["answers"], qa["is_impossible"] = [], True
        paragraphs.append({"context": context, "qas": [qa]})
    with open(path, "w") as f:
        json.dump({"version": "v2.0", "data": [{"title": "t", "paragraphs": paragraphs}]}, f)
    return str(path)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder, _ = make_tiny_folder(
        str(tmp_path_factory.mktemp("qa") / "bert"), hidden=32, intermediate=64
    )
    return folder


@pytest.mark.slow
def test_answers_in_later_windows_are_found(tmp_path, folder):
    """Every answer lies past the first window: with doc_stride the trained
    tiny model finds them (exact match ~1 here); one window per question
    cannot (0)."""
    train = _long_squad(tmp_path / "train.json", 48, seed=0)
    val = _long_squad(tmp_path / "val.json", 16, seed=1)
    common = dict(train=train, validation=val, backbone=folder, batch_size=16,
                  max_length=32, learning_rate=3e-3, dropout=0.0, **FAST)
    result = recipes.question_answering(
        epochs=6, doc_stride=8, n_best=3, output_dir=str(tmp_path / "windows"), **common
    )
    metrics = result.metrics
    assert metrics["val_exact_match"] >= 0.9, metrics
    assert metrics["val_windows"] > 16 * 2  # several windows per question
    out = str(tmp_path / "windows")
    with open(os.path.join(out, "predictions.json")) as f:
        predictions = json.load(f)
    assert sum(v == "paris" for v in predictions.values()) >= 15
    with open(os.path.join(out, "nbest_predictions.json")) as f:
        nbest = json.load(f)
    assert all(1 <= len(v) <= 3 for v in nbest.values())
    assert nbest["q0"][0]["text"] == predictions["q0"]
    one_window = recipes.question_answering(
        epochs=1, doc_stride=None, output_dir=str(tmp_path / "one"), **common
    )
    assert one_window.metrics["val_exact_match"] == 0.0
    assert one_window.metrics["val_windows"] == 16


def test_cli_squad_v2_with_doc_stride(tmp_path, folder, capsys):
    data = _long_squad(tmp_path / "v2.json", 6, seed=2, unanswerable=2)
    out = str(tmp_path / "cli")
    args = ["question-answering", "--train", data, "--val", data,
            "--backbone", folder, "--epochs", "1", "--batch-size", "8",
            "--max-length", "32", "--doc-stride", "8", "--max-answer-length",
            "4", "--n-best", "2", "--version-2-with-negative",
            "--precision", "float32", "--strategy", "default", "--verbose", "0",
            "--output", out]
    assert cli.main(args) == 0
    with open(os.path.join(out, "metrics.json")) as f:
        metrics = json.load(f)
    for key in ("val_exact_match", "val_f1", "val_has_ans_exact_match",
                "val_has_ans_f1", "val_no_ans_exact_match", "val_no_ans_f1"):
        assert 0 <= metrics[key] <= 1, key
    assert metrics["val_has_ans_total"] == 4 and metrics["val_no_ans_total"] == 2
    with open(os.path.join(out, "null_odds.json")) as f:
        assert set(json.load(f)) == {f"q{i}" for i in range(6)}
    with open(os.path.join(out, "nbest_predictions.json")) as f:
        nbest = json.load(f)
    # n_best spans plus the null candidate.
    assert all(len(v) <= 3 and any(c["text"] == "" for c in v) for v in nbest.values())
    # SQuAD v2.0 data without the flag is refused, naming the flag.
    args[args.index("--version-2-with-negative")] = "--no-version-2-with-negative"
    assert cli.main(args + ["--overwrite"]) == 2
    assert "--version-2-with-negative" in capsys.readouterr().err


def test_doc_stride_must_leave_a_step(tmp_path):
    with pytest.raises(ValueError, match=r"`doc_stride` must be an integer in \[0, 15\)"):
        recipes.question_answering(
            train="x.json", max_length=32, doc_stride=16,
            output_dir=str(tmp_path / "r"), **FAST,
        )


def test_head_scores_match_evaluate_on_one_batch():
    """On a single batch `evaluate`'s numbers are the whole-split ones, so
    the scores computed from collected predictions must equal them, key by
    key."""
    import keras

    from kerasft.evaluation import collect_predictions
    from kerasft.heads import question_answering
    from kerasft.recipes._runner import head_scores

    sequence = keras.Input((6, 4))
    head = question_answering()
    model = keras.Model(sequence, head({"sequence_output": sequence}))
    model.compile(optimizer="sgd", **head.compile_kwargs())
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 6, 4)).astype("float32")
    y = {"start_logits": rng.integers(0, 6, 5), "end_logits": rng.integers(0, 6, 5)}
    expected = model.evaluate(x, y, batch_size=5, verbose=0, return_dict=True)
    got = head_scores(head, *collect_predictions(model, (x, y)))
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(float(value), rel=1e-5), key


@pytest.mark.parametrize("option", ["feature_extraction", "lora_rank"])
def test_frozen_encoder_or_lora_and_a_test_split(tmp_path, folder, option):
    """QA takes the text recipes' encoder options (one implementation):
    a frozen encoder stays bit-identical; LoRA trains only its adapters;
    `test` is scored like validation."""
    import keras

    data = _long_squad(tmp_path / "qa.json", 8, seed=3)
    result = recipes.question_answering(
        train=data, test=data, backbone=folder, epochs=1, batch_size=8,
        max_length=32, doc_stride=8, learning_rate=1e-2,
        output_dir=str(tmp_path / option),
        **({"mode": "feature_extraction"} if option == "feature_extraction"
           else {"lora_rank": 2}), **FAST)
    assert "test_exact_match" in result.metrics and "test_f1" in result.metrics
    from kerasft import backbones

    reference = backbones.bert(folder, sequence_length=32).model
    saved = {w.path: w for w in reference.weights}
    encoder = next(layer for layer in result.model.layers
                   if isinstance(layer, keras.Model))
    compared = 0
    for w in encoder.weights:
        if "lora" in w.path:
            continue
        if w.path in saved:
            np.testing.assert_array_equal(np.asarray(w), np.asarray(saved[w.path]))
            compared += 1
    assert compared > 10
