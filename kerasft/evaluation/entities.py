"""Entity-level precision, recall and F1 for BIO/IOB2 (and IOBES) tags.

Spans follow the CoNLL-2000 `conlleval` chunking rules that `seqeval`
uses by default: an `I-X` after `O` (or after another type) starts an
entity, as in IOB1; a tag's type change ends the previous entity. An
entity counts as correct only when its type, first and last token all
match. Scores are micro-averaged over entities, as `seqeval.metrics`'
`precision_score`, `recall_score` and `f1_score`.
"""

import collections

__all__ = ["entity_scores", "get_entities"]


def _split(tag):
    """`(prefix, type)`: `"B-PER"` -> `("B", "PER")`, `"O"` -> `("O", "_")`."""
    prefix = tag[:1]
    kind = tag[1:].split("-", maxsplit=1)[-1] or "_"
    return prefix, kind


def _ends(prev_tag, tag, prev_type, kind):
    if prev_tag in ("E", "S"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev_tag not in ("O", ".") and prev_type != kind


def _starts(prev_tag, tag, prev_type, kind):
    if tag in ("B", "S"):
        return True
    if tag in ("E", "I") and prev_tag in ("E", "S", "O"):
        return True
    return tag not in ("O", ".") and prev_type != kind


def get_entities(tags):
    """The `(type, first, last)` entity spans of one tag sequence.

    Args:
        tags: tag strings (`"B-PER"`, `"I-PER"`, `"O"`, ...).

    Returns:
        A list of `(type, first index, last index)` tuples, in order.

    Example:
    ```python
    get_entities(["B-PER", "I-PER", "O", "I-LOC"])
    # [('PER', 0, 1), ('LOC', 3, 3)]
    ```
    """
    entities = []
    prev_tag, prev_type, begin = "O", "", 0
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, kind = _split(tag)
        if _ends(prev_tag, prefix, prev_type, kind):
            entities.append((prev_type, begin, i - 1))
        if _starts(prev_tag, prefix, prev_type, kind):
            begin = i
        prev_tag, prev_type = prefix, kind
    return entities


def entity_scores(y_true, y_pred):
    """Micro precision/recall/F1 over entities, per type, and tag accuracy.

    Args:
        y_true: a list of gold tag sequences (one per sentence).
        y_pred: predicted tag sequences, the same lengths.

    Returns:
        `{"precision", "recall", "f1", "accuracy", "per_type"}`:
        `accuracy` is the fraction of tags (words) predicted exactly,
        `per_type` maps each entity type to `{"precision", "recall", "f1",
        "support"}`. Undefined ratios (no predicted or no gold entities)
        are 0, as seqeval's default.

    Example:
    ```python
    scores = entity_scores([["B-PER", "I-PER", "O"]], [["B-PER", "O", "O"]])
    # scores["f1"] == 0.0; scores["accuracy"] == 2 / 3
    ```
    """
    y_true, y_pred = list(y_true), list(y_pred)
    if len(y_true) != len(y_pred):
        raise ValueError(
            f"`y_true` has {len(y_true)} sequences, `y_pred` {len(y_pred)}."
        )
    gold, pred = set(), set()
    correct_tags = total_tags = 0
    for n, (true_tags, pred_tags) in enumerate(zip(y_true, y_pred)):
        if len(true_tags) != len(pred_tags):
            raise ValueError(
                f"Sequence {n}: {len(true_tags)} gold tags but "
                f"{len(pred_tags)} predicted."
            )
        gold.update((n, *e) for e in get_entities(true_tags))
        pred.update((n, *e) for e in get_entities(pred_tags))
        correct_tags += sum(t == p for t, p in zip(true_tags, pred_tags))
        total_tags += len(true_tags)
    out = _prf(len(gold & pred), len(pred), len(gold))
    out["accuracy"] = correct_tags / total_tags if total_tags else 0.0
    per_type = {}
    for kind in sorted({e[1] for e in gold | pred}):
        g = {e for e in gold if e[1] == kind}
        p = {e for e in pred if e[1] == kind}
        per_type[kind] = {**_prf(len(g & p), len(p), len(g)), "support": len(g)}
    out["per_type"] = per_type
    return out


def _prf(correct, predicted, actual):
    precision = correct / predicted if predicted else 0.0
    recall = correct / actual if actual else 0.0
    denominator = precision + recall
    f1 = 2 * precision * recall / denominator if denominator else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def tag_counts(sequences):
    """`{type: entity count}` over tag sequences (a data summary)."""
    counts = collections.Counter(
        e[0] for tags in sequences for e in get_entities(tags)
    )
    return dict(sorted(counts.items()))

