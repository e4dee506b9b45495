"""text_classification and question_answering on a tiny random BERT folder."""

import csv
import json
import os

import pytest

from kerasft import recipes
from kerasft.recipes.question_answering import squad_scores
from tests.fixtures.tiny_hf import make_tiny_folder

FAST = dict(precision="float32", strategy="default", verbose=0)


def _csv(path, rows, header=("text", "label")):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.mark.slow
def test_text_classification_string_labels_from_csv(tmp_path):
    folder, _ = make_tiny_folder(str(tmp_path / "bert"))
    good = ["a good film", "a great book", "very fine movie", "really good"]
    bad = ["a bad film", "an awful book", "very dull movie", "not good"]
    rows = [(t, "pos") for t in good] + [(t, "neg") for t in bad]
    train = _csv(str(tmp_path / "train.csv"), rows)
    out = str(tmp_path / "run")
    result = recipes.text_classification(
        train=train, validation=train, backbone=folder, epochs=1, batch_size=4,
        max_length=8, learning_rate=1e-3, output_dir=out, **FAST,
    )
    assert 0 <= result.metrics["val_accuracy"] <= 1
    with open(os.path.join(out, "labels.json")) as f:
        assert json.load(f) == {"neg": 0, "pos": 1}
    assert {"model.keras", "history.csv", "metrics.json"} <= set(os.listdir(out))
    assert result.model.output_shape == (None, 2)


def test_text_csv_without_named_columns(tmp_path):
    path = _csv(str(tmp_path / "t.csv"), [("hi", 1)], header=("sentence", "label"))
    with pytest.raises(ValueError, match="text"):
        recipes.text_classification(
            train=path, backbone="unused", output_dir=str(tmp_path / "r"), **FAST
        )


@pytest.mark.slow
def test_question_answering_on_a_squad_file(tmp_path):
    folder, _ = make_tiny_folder(str(tmp_path / "bert"))
    context = "the tower was built in paris"
    squad = {"data": [{"paragraphs": [{"context": context, "qas": [
        {"id": str(i), "question": q,
         "answers": [{"text": a, "answer_start": context.index(a)}]}
        for i, (q, a) in enumerate([("where was it built", "paris"),
                                    ("what was built", "the tower")])
    ]}]}]}
    path = str(tmp_path / "squad.json")
    with open(path, "w") as f:
        json.dump(squad, f)
    result = recipes.question_answering(
        train=path, validation=path, backbone=folder, epochs=1, batch_size=2,
        max_length=24, output_dir=str(tmp_path / "qa"), **FAST,
    )
    for key in ("val_exact_match", "val_f1", "val_loss"):
        assert key in result.metrics


def test_squad_scores_hand_computed():
    class Example:
        def __init__(self, answers):
            self.answers, self.answer_text = answers, answers[0]

    scores = squad_scores(
        ["The Eiffel tower", "in Paris"],
        [Example(("eiffel tower",)), Example(("Paris", "paris france"))],
    )
    # 1) exact after dropping "the" and case; 2) "in paris" vs "paris":
    # precision 1/2, recall 1 -> F1 2/3; vs "paris france": 1/2, 1/2 -> 1/2.
    assert scores["exact_match"] == pytest.approx(0.5)
    assert scores["f1"] == pytest.approx((1 + 2 / 3) / 2)
