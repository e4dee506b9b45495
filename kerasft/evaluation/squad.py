"""SQuAD exact match and F1, v1.1 and v2.0 rules, as fractions in [0, 1].

The official scripts (`evaluate-v1.1.py`, `evaluate-v2.0.py`) normalize
answers the same way: lowercase, drop punctuation, drop the articles
a/an/the, collapse whitespace. F1 counts common tokens as bags; each
question takes the best score over its gold answers. v2.0 adds
unanswerable questions: gold answers that normalize to nothing are
dropped, a question left with none expects the empty prediction, and an
empty prediction or gold scores 1 only against an empty one. The official
scripts report percentages; these functions report fractions (x100 to
compare).
"""

import collections
import re
import string

import numpy as np

__all__ = ["normalize_answer", "squad_scores"]

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text):
    """Lowercase, no punctuation, no articles, single spaces (SQuAD's rule).

    Example:
    ```python
    normalize_answer("The  Eiffel-Tower!")  # 'eiffeltower'
    ```
    """
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _tokens(text):
    return normalize_answer(text).split() if text else []


def exact_match(prediction, gold):
    """1.0 when the normalized texts are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction, gold, version="2.0"):
    """F1 of the normalized token bags of `prediction` and `gold`.

    Args:
        prediction: predicted answer text.
        gold: one gold answer text.
        version: `"1.1"` (an empty side scores 0) or `"2.0"` (an empty side
            scores 1 only when both are empty). Defaults to `"2.0"`.
    """
    pred, truth = _tokens(prediction), _tokens(gold)
    if version == "2.0" and (not pred or not truth):
        return float(pred == truth)
    common = collections.Counter(pred) & collections.Counter(truth)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(truth)
    return 2 * precision * recall / (precision + recall)


def _golds(answers, version):
    if version == "2.0":
        answers = [a for a in answers if normalize_answer(a)]
        return answers or [""]
    return answers


def squad_scores(predictions, examples, version="1.1"):
    """SQuAD exact match and F1 over examples, with v2.0's HasAns/NoAns split.

    Args:
        predictions: answer texts in the order of `examples`, or a dict
            `{example id: text}`; `""` predicts "no answer".
        examples: `SquadExample`s (their `answers`, else `answer_text`).
        version: `"1.1"` or `"2.0"` (unanswerable questions). Defaults to
            `"1.1"`.

    Returns:
        `{"exact_match", "f1", "total"}`; for `"2.0"` also
        `has_ans_exact_match`, `has_ans_f1`, `has_ans_total`,
        `no_ans_exact_match`, `no_ans_f1`, `no_ans_total` (as the official
        script's `HasAns_*`/`NoAns_*`, present when that part is not empty).

    Example:
    ```python
    scores = squad_scores({"q1": "Paris"}, examples, version="2.0")
    ```
    """
    if version not in ("1.1", "2.0"):
        raise ValueError(
            f"`version` must be '1.1' or '2.0'. Received: version={version!r}"
        )
    examples = list(examples)
    if isinstance(predictions, dict):
        missing = [e.id for e in examples if e.id not in predictions]
        if missing:
            raise ValueError(
                f"No prediction for {len(missing)} question(s), e.g. {missing[:3]}."
            )
        predictions = [predictions[e.id] for e in examples]
    predictions = list(predictions)
    if len(predictions) != len(examples):
        raise ValueError(
            f"Got {len(predictions)} predictions for {len(examples)} examples."
        )
    em, f1, has_answer = [], [], []
    for prediction, example in zip(predictions, examples):
        answers = list(example.answers) or (
            [example.answer_text] if example.answer_text else []
        )
        golds = _golds(answers, version) or [""]  # v1.1 without answers
        em.append(max(exact_match(prediction, g) for g in golds))
        f1.append(max(token_f1(prediction, g, version) for g in golds))
        has_answer.append(bool(answers))  # as the official `qid_to_has_ans`
    em, f1, has_answer = np.asarray(em), np.asarray(f1), np.asarray(has_answer, bool)
    out = {
        "exact_match": float(em.mean()) if len(em) else 0.0,
        "f1": float(f1.mean()) if len(f1) else 0.0,
        "total": len(em),
    }
    if version == "2.0":
        for prefix, part in (("has_ans", has_answer), ("no_ans", ~has_answer)):
            if part.any():
                out[f"{prefix}_exact_match"] = float(em[part].mean())
                out[f"{prefix}_f1"] = float(f1[part].mean())
                out[f"{prefix}_total"] = int(part.sum())
    return out
