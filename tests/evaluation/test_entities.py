"""`kerasft.evaluation.entity_scores` against `seqeval` (its default,
conlleval-compatible mode)."""

import numpy as np
import pytest

from kerasft.evaluation import entities
from tests._required import import_required


def _seqeval(module="metrics"):
    return import_required(f"seqeval.{module}", "pip install seqeval")


# seqeval's own averages over empty sets warn; its values are still the ones
# compared.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::UserWarning")

FIXED_TRUE = [
    ["B-PER", "I-PER", "O", "B-LOC", "O"],
    ["O", "B-ORG", "I-ORG", "I-ORG", "O", "B-MISC"],
    ["B-LOC", "B-LOC", "I-LOC", "O"],
    ["O", "O"],
]
FIXED_PRED = [
    ["B-PER", "I-PER", "O", "B-ORG", "O"],     # type error
    ["O", "B-ORG", "I-ORG", "O", "O", "B-MISC"],  # boundary error
    ["B-LOC", "I-LOC", "I-LOC", "O"],          # merged entities
    ["I-PER", "O"],                            # I- after O starts one
]


def _check(y_true, y_pred):
    seqeval_metrics = _seqeval()
    ours = entities.entity_scores(y_true, y_pred)
    assert ours["precision"] == pytest.approx(seqeval_metrics.precision_score(y_true, y_pred))
    assert ours["recall"] == pytest.approx(seqeval_metrics.recall_score(y_true, y_pred))
    assert ours["f1"] == pytest.approx(seqeval_metrics.f1_score(y_true, y_pred))
    assert ours["accuracy"] == pytest.approx(seqeval_metrics.accuracy_score(y_true, y_pred))
    report = seqeval_metrics.classification_report(
        y_true, y_pred, output_dict=True, zero_division=0
    )
    for kind, values in ours["per_type"].items():
        assert values["precision"] == pytest.approx(report[kind]["precision"]), kind
        assert values["recall"] == pytest.approx(report[kind]["recall"]), kind
        assert values["f1"] == pytest.approx(report[kind]["f1-score"]), kind
        assert values["support"] == report[kind]["support"], kind
    return ours


def test_fixed_cases_match_seqeval():
    ours = _check(FIXED_TRUE, FIXED_PRED)
    # Gold: PER, LOC, ORG, MISC, LOC, LOC = 6; predicted: PER, ORG, ORG,
    # MISC, LOC(0-2), PER = 6; correct: PER, MISC = 2.
    assert ours["precision"] == pytest.approx(2 / 6)
    assert ours["recall"] == pytest.approx(2 / 6)


def test_get_entities_matches_seqeval_on_ill_formed_sequences():
    seqeval_sequence = _seqeval("metrics.sequence_labeling")
    for tags in FIXED_TRUE + FIXED_PRED + [
        ["I-PER", "I-PER", "B-PER", "I-LOC", "O"],
        ["B-PER", "I-LOC", "I-LOC"],
        ["O", "I-MISC"],
        ["S-PER", "B-LOC", "E-LOC", "I-LOC"],  # IOBES prefixes too
    ]:
        assert entities.get_entities(tags) == seqeval_sequence.get_entities(tags), tags


def test_random_sequences_match_seqeval():
    rng = np.random.default_rng(0)
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
    for trial in range(20):
        lengths = rng.integers(1, 12, size=rng.integers(1, 8))
        y_true = [list(rng.choice(tags, n, p=[0.5] + [1 / 12] * 6)) for n in lengths]
        y_pred = [
            [t if rng.random() < 0.7 else str(rng.choice(tags)) for t in seq]
            for seq in y_true
        ]
        _check(y_true, y_pred)


def test_no_entities_and_errors():
    ours = entities.entity_scores([["O", "O"]], [["O", "O"]])
    assert (ours["precision"], ours["recall"], ours["f1"]) == (0.0, 0.0, 0.0)
    assert ours["accuracy"] == 1.0
    with pytest.raises(ValueError, match="2 gold tags but 1"):
        entities.entity_scores([["O", "O"]], [["O"]])
    with pytest.raises(ValueError, match="sequences"):
        entities.entity_scores([["O"]], [])
