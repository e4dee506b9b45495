"""`kerasft.evaluation.squad_scores` against the official SQuAD v1.1/v2.0 rules."""

import json

import pytest

from kerasft.data.squad import read_squad
from kerasft.evaluation import squad as squad_eval
from tests.evaluation import squad_official

# (question id, gold answer texts, prediction): each case probes one rule.
CASES = [
    ("exact", ["Denver Broncos"], "Denver Broncos"),
    ("case_and_articles", ["the Eiffel Tower"], "Eiffel tower"),
    ("punctuation", ["Paris, France."], "paris france"),
    ("hyphen_joins", ["well-known"], "wellknown"),
    ("article_inside_word", ["theater"], "ater"),
    ("an_article", ["an apple"], "a apple"),
    ("whitespace", ["  New   York "], "New York"),
    ("partial_overlap", ["in central Paris"], "Paris"),
    ("bag_counts", ["paris paris london"], "paris paris paris"),
    ("max_over_golds", ["1889", "in 1889", "the year 1889"], "year 1889"),
    ("no_overlap", ["Saint Bernadette Soubirous"], "a copper statue"),
    ("empty_prediction", ["Notre Dame"], ""),
    ("unicode_quotes", ["\u201cHamlet\u201d"], "Hamlet"),
    ("gold_only_article", ["the"], "a"),
    ("gold_only_article_empty_pred", ["The"], ""),
    ("numbers", ["3.5 million"], "35 million"),
    ("unanswerable_right", [], ""),
    ("unanswerable_wrong", [], "the tower"),
    ("unanswerable_article", [], "the"),
]


def _dataset(cases):
    paragraphs = []
    for qid, golds, _ in cases:
        context = " | ".join(golds) or "no answer here"
        answers, cursor = [], 0
        for g in golds:
            start = context.index(g, cursor)
            answers.append({"text": g, "answer_start": start})
            cursor = start + len(g)
        paragraphs.append({
            "context": context,
            "qas": [{"id": qid, "question": "q?", "answers": answers,
                     "is_impossible": not golds}],
        })
    return [{"title": "t", "paragraphs": paragraphs}]


@pytest.fixture()
def examples(tmp_path):
    path = tmp_path / "dev.json"
    path.write_text(json.dumps({"version": "v2.0", "data": _dataset(CASES)}))
    return read_squad(str(path))


def test_normalize_answer_matches_the_official_rule():
    for _, golds, prediction in CASES:
        for text in golds + [prediction]:
            assert squad_eval.normalize_answer(text) == squad_official.normalize_answer(text)


def test_v2_scores_match_the_official_script(examples):
    predictions = {qid: pred for qid, _, pred in CASES}
    official = squad_official.evaluate_v2(_dataset(CASES), predictions)
    ours = squad_eval.squad_scores(predictions, examples, version="2.0")
    assert ours["exact_match"] * 100 == pytest.approx(official["exact"])
    assert ours["f1"] * 100 == pytest.approx(official["f1"])
    assert ours["total"] == official["total"]
    for prefix, name in (("has_ans", "HasAns"), ("no_ans", "NoAns")):
        assert ours[f"{prefix}_exact_match"] * 100 == pytest.approx(official[f"{name}_exact"])
        assert ours[f"{prefix}_f1"] * 100 == pytest.approx(official[f"{name}_f1"])
        assert ours[f"{prefix}_total"] == official[f"{name}_total"]
    # Per question too, so that no two errors cancel out.
    exact, f1 = squad_official.get_raw_scores(_dataset(CASES), predictions)
    for example in examples:
        single = squad_eval.squad_scores(
            {example.id: predictions[example.id]}, [example], version="2.0"
        )
        assert single["exact_match"] == exact[example.id], example.id
        assert single["f1"] == pytest.approx(f1[example.id]), example.id


def test_v1_scores_match_the_official_script(examples):
    answerable = [c for c in CASES if c[1]]
    predictions = {qid: pred for qid, _, pred in answerable}
    official = squad_official.evaluate_v1(_dataset(answerable), predictions)
    ours = squad_eval.squad_scores(
        predictions, [e for e in examples if e.answers], version="1.1"
    )
    assert ours["exact_match"] * 100 == pytest.approx(official["exact_match"])
    assert ours["f1"] * 100 == pytest.approx(official["f1"])
    for qid, golds, prediction in answerable:
        one = squad_official.evaluate_v1(_dataset([(qid, golds, prediction)]), {qid: prediction})
        example = [e for e in examples if e.id == qid]
        mine = squad_eval.squad_scores([prediction], example, version="1.1")
        assert mine["f1"] * 100 == pytest.approx(one["f1"]), qid
        assert mine["exact_match"] * 100 == pytest.approx(one["exact_match"]), qid


def test_hand_computed_values_and_errors(examples):
    by_id = {e.id: e for e in examples}
    # "in central paris" vs "paris": P = 1, R = 1/3 -> F1 = 0.5.
    scores = squad_eval.squad_scores(["Paris"], [by_id["partial_overlap"]])
    assert scores["f1"] == pytest.approx(0.5) and scores["exact_match"] == 0.0
    # v1.1 gives an empty side 0, v2.0 gives 1 when both are empty.
    assert squad_eval.token_f1("", "the", version="1.1") == 0.0
    assert squad_eval.token_f1("", "the", version="2.0") == 1.0
    with pytest.raises(ValueError, match="version"):
        squad_eval.squad_scores([""], [by_id["exact"]], version="3")
    with pytest.raises(ValueError, match="No prediction"):
        squad_eval.squad_scores({}, [by_id["exact"]])
