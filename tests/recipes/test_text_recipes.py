"""text_classification and question_answering on a tiny random BERT folder."""

import csv
import json
import os
import random

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
def test_text_classification_learns_imbalanced_string_labels(tmp_path):
    """1:3 imbalanced classes, told apart by one word; focal loss, label
    smoothing and balanced class weights; ~30 s on 2 cores."""
    folder, _ = make_tiny_folder(str(tmp_path / "bert"))
    rng = random.Random(0)
    filler = ["a", "the", "film", "book", "movie", "very", "really"]
    rows = []
    for i in range(48):
        label = "pos" if i % 4 == 0 else "neg"
        word = "good" if label == "pos" else "bad"
        rows.append((f"{rng.choice(filler)} {word} {rng.choice(filler)}", label))
    train = _csv(str(tmp_path / "train.csv"), rows)
    out = str(tmp_path / "run")
    result = recipes.text_classification(
        train=train, validation=train, backbone=folder, epochs=6, batch_size=8,
        max_length=8, learning_rate=5e-3, loss="focal", label_smoothing=0.1,
        class_weight="balanced", output_dir=out, **FAST,
    )
    assert result.metrics["val_accuracy"] > 0.9  # majority class: 0.75
    assert result.metrics["val_recall"] > 0.9  # macro: the rare class too
    with open(os.path.join(out, "labels.json")) as f:
        assert json.load(f) == ["neg", "pos"]  # names in id order, as everywhere
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
        max_length=24, doc_stride=4, output_dir=str(tmp_path / "qa"), **FAST,
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
