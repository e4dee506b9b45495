"""Answers from SQuAD JSON or question,context CSV, decoded as the recipe
decodes them, with character offsets into the context."""

import json

import numpy as np
import pytest

from kerasft import recipes
from kerasft.predictors import question_answering
from tests.predictors._load import assert_export_matches_predict, header, load, read_csv
from tests.recipes.ner_data import FILLER


def _squad(path, n, seed):
    """Contexts of 20-30 one-token words, "paris" somewhere in them."""
    rng = np.random.default_rng(seed)
    paragraphs = []
    for i in range(n):
        words = [str(w) for w in rng.choice(FILLER, int(rng.integers(20, 30)))]
        words.insert(int(rng.integers(0, len(words))), "paris")
        context = " ".join(words)
        paragraphs.append({"context": context, "qas": [{
            "id": f"q{i}", "question": "where is it",
            "answers": [{"text": "paris", "answer_start": context.index("paris")}],
        }]})
    with open(path, "w") as f:
        json.dump({"data": [{"title": "t", "paragraphs": paragraphs}]}, f)
    return str(path)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from tests.fixtures.tiny_hf import make_tiny_folder

    root = tmp_path_factory.mktemp("qa")
    folder, _ = make_tiny_folder(str(root / "bert"), hidden=32, intermediate=64)
    recipes.question_answering(
        train=_squad(root / "train.json", 48, seed=0), backbone=folder,
        epochs=4, batch_size=16, max_length=32, doc_stride=8, n_best=3,
        learning_rate=3e-3, dropout=0.0, output_dir=str(root / "run"),
        precision="float32", strategy="default", verbose=0)
    return load(root / "run", "question_answering"), folder, root


@pytest.mark.slow
def test_answers_equal_the_recipes_decoding(run, tmp_path):
    from kerasft import backbones
    from kerasft.data.squad import (postprocess_predictions, read_squad,
                                    squad_features)

    run, folder, root = run
    data = _squad(tmp_path / "new.json", 6, seed=7)
    out = tmp_path / "answers.csv"
    result = question_answering.predict(run, data, str(out), batch_size=4,
                                        verbose=0)
    assert header(out) == ["id", "question", "answer", "score", "start", "end",
                           "error"]
    examples = read_squad(data)
    features = squad_features(
        examples, backbones.bert(folder, sequence_length=32).tokenizer, 32,
        doc_stride=8)
    logits = run.model.predict(features.inputs, verbose=0)
    expected = postprocess_predictions(
        examples, features, logits["start_logits"], logits["end_logits"],
        n_best=3, max_answer_length=30)
    rows = read_csv(out)
    assert [r["id"] for r in rows] == [f"q{i}" for i in range(6)]
    assert [r["answer"] for r in rows] == [a.text for a in expected]
    for row, example in zip(rows, examples):
        start, end = int(row["start"]), int(row["end"])
        assert example.context[start:end] == row["answer"]
        assert 0 < float(row["score"]) <= 1
    assert sum(r["answer"] == "paris" for r in rows) >= 4  # it learned
    # The same questions from a CSV (no ids: row numbers), as JSON lines.
    table = tmp_path / "questions.csv"
    import csv

    with open(table, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["question", "context"])
        writer.writerows((e.question, e.context) for e in examples)
    out = tmp_path / "answers.jsonl"
    question_answering.predict(run, str(table), str(out), verbose=0)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [l["id"] for l in lines] == [str(i) for i in range(6)]
    assert [l["answer"] for l in lines] == [r["answer"] for r in result.rows]
    bad = tmp_path / "bad.csv"
    bad.write_text("question,text\nwhere,here\n")
    with pytest.raises(ValueError, match="no column 'context'"):
        question_answering.predict(run, str(bad), str(tmp_path / "x.csv"))


@pytest.mark.slow
def test_export_serves_token_ids_and_question_context_pairs(run, tmp_path):
    import tensorflow as tf

    from kerasft import backbones
    from kerasft.data.squad import read_squad, squad_features

    run, folder, _ = run
    examples = read_squad(_squad(tmp_path / "new.json", 4, seed=9))
    tokenizer = backbones.bert(folder, sequence_length=32).tokenizer
    batch = squad_features(examples, tokenizer, 32).inputs
    served = assert_export_matches_predict(run.directory, batch, tmp_path / "saved")
    questions = tf.constant([e.question for e in examples])
    contexts = tf.constant([e.context for e in examples])
    got = served.serve_text(questions, contexts)
    expected = run.model.predict(tokenizer(x=(questions, contexts)), verbose=0)
    for key in ("start_logits", "end_logits"):
        np.testing.assert_allclose(got[key].numpy(), expected[key], atol=1e-5)
