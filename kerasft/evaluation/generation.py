"""Scores of generated text: corpus BLEU, ROUGE-1/2/L and exact match.

Pure Python, no TensorFlow, and no dependency: each score reproduces the
reference tool the field reports with, and the tests compare against it.

- `bleu`: sacreBLEU's `corpus_bleu` with its defaults (13a tokenization,
  `exp` smoothing, 4-grams, case-sensitive), on its 0-100 scale.
- `rouge`: Google's `rouge-score` (`RougeScorer(["rouge1", "rouge2",
  "rougeL"], use_stemmer=False)`): lower-cased `[a-z0-9]+` tokens, the
  F-measure of each pair, averaged over the corpus (as
  `keras_hub.metrics.RougeN`/`RougeL` average it), in [0, 1].
- `exact_match`: the fraction of predictions equal to their reference
  after stripping surrounding whitespace, in [0, 1].
"""

import collections
import math
import re

__all__ = ["bleu", "exact_match", "generation_scores", "rouge"]

MAX_ORDER = 4

# sacrebleu.tokenizers.tokenizer_re.TokenizerRegexp (used by 13a).
_13A_RULES = (
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
)
_NON_ALPHANUMERIC = re.compile(r"[^a-z0-9]+")
# sacrebleu.utils.my_log: log(0) is floored, not -inf.
_LOG_ZERO = -9999999999


def tokenize_13a(text):
    """sacreBLEU's `13a` tokenization (mteval-v13a, used by WMT): the tokens
    of `text` as a list of strings."""
    line = text.rstrip()
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = (line.replace("&quot;", '"').replace("&amp;", "&")
                .replace("&lt;", "<").replace("&gt;", ">"))
    line = f" {line} "
    for pattern, replacement in _13A_RULES:
        line = pattern.sub(replacement, line)
    return line.split()


def _check_pairs(predictions, references):
    predictions, references = list(predictions), list(references)
    if len(predictions) != len(references):
        raise ValueError(
            "`predictions` and `references` must have the same length. "
            f"Received: {len(predictions)} predictions, {len(references)} "
            "references."
        )
    for name, values in (("predictions", predictions), ("references", references)):
        bad = [v for v in values if not isinstance(v, str)]
        if bad:
            raise TypeError(
                f"`{name}` must be strings. Received: {bad[0]!r} "
                f"({type(bad[0]).__name__})"
            )
    return predictions, references


def _ngrams(tokens, max_order):
    counts = collections.Counter()
    for n in range(1, max_order + 1):
        for i in range(len(tokens) - n + 1):
            counts[tuple(tokens[i:i + n])] += 1
    return counts


def bleu(predictions, references):
    """Corpus BLEU as sacreBLEU computes it by default, in [0, 100].

    Args:
        predictions: generated texts (strings).
        references: one reference text per prediction.

    Returns:
        A float: `sacrebleu.corpus_bleu(predictions, [references]).score`.

    Example:

    ```python
    from kerasft.evaluation import bleu

    bleu(["the cat sat on the mat"], ["the cat sat on the mat"])  # 100.0
    ```
    """
    predictions, references = _check_pairs(predictions, references)
    correct = [0] * MAX_ORDER
    total = [0] * MAX_ORDER
    sys_len = ref_len = 0
    for prediction, reference in zip(predictions, references):
        hyp, ref = tokenize_13a(prediction), tokenize_13a(reference)
        sys_len += len(hyp)
        ref_len += len(ref)
        ref_counts = _ngrams(ref, MAX_ORDER)
        for ngram, count in _ngrams(hyp, MAX_ORDER).items():
            total[len(ngram) - 1] += count
            correct[len(ngram) - 1] += min(count, ref_counts.get(ngram, 0))
    return _bleu_from_counts(correct, total, sys_len, ref_len)


def _bleu_from_counts(correct, total, sys_len, ref_len, max_order=MAX_ORDER):
    """sacrebleu.BLEU.compute_bleu with smooth_method="exp" (effective
    order off) over 1..`max_order`-grams; `kerasft.evaluation.captioning`
    shares it for BLEU-1..4 over several references."""
    if not any(correct):
        return 0.0
    brevity = 1.0
    if sys_len < ref_len:
        brevity = math.exp(1 - ref_len / sys_len) if sys_len > 0 else 0.0
    precisions = [0.0] * max_order
    smooth = 1.0
    for n in range(max_order):
        if total[n] == 0:
            break
        if correct[n] == 0:
            smooth *= 2
            precisions[n] = 100.0 / (smooth * total[n])
        else:
            precisions[n] = 100.0 * correct[n] / total[n]
    logs = [math.log(p) if p > 0 else _LOG_ZERO for p in precisions]
    return brevity * math.exp(sum(logs) / max_order)


def _rouge_tokens(text):
    """rouge-score's default tokenizer (no stemming)."""
    return [t for t in _NON_ALPHANUMERIC.sub(" ", text.lower()).split() if t]


def _f_measure(overlap, predicted, reference):
    precision = overlap / max(predicted, 1)
    recall = overlap / max(reference, 1)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def _rouge_n(pred_tokens, ref_tokens, n):
    pred = collections.Counter(
        tuple(pred_tokens[i:i + n]) for i in range(len(pred_tokens) - n + 1)
    )
    ref = collections.Counter(
        tuple(ref_tokens[i:i + n]) for i in range(len(ref_tokens) - n + 1)
    )
    overlap = sum(min(count, pred[gram]) for gram, count in ref.items())
    return _f_measure(overlap, sum(pred.values()), sum(ref.values()))


def _lcs_length(a, b):
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(
                previous[j] + 1 if x == y else max(previous[j + 1], current[j])
            )
        previous = current
    return previous[-1]


def _rouge_l(pred_tokens, ref_tokens):
    if not pred_tokens or not ref_tokens:
        return 0.0
    lcs = _lcs_length(ref_tokens, pred_tokens)
    return _f_measure(lcs, len(pred_tokens), len(ref_tokens))


def rouge(predictions, references):
    """Mean ROUGE-1, ROUGE-2 and ROUGE-L F-measures, in [0, 1].

    Args:
        predictions: generated texts (strings).
        references: one reference text per prediction.

    Returns:
        `{"rouge1": float, "rouge2": float, "rougeL": float}`; zeros for an
        empty corpus.

    Example:

    ```python
    from kerasft.evaluation import rouge

    rouge(["the cat sat"], ["the cat sat down"])["rouge1"]  # 0.857...
    ```
    """
    predictions, references = _check_pairs(predictions, references)
    sums = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for prediction, reference in zip(predictions, references):
        pred, ref = _rouge_tokens(prediction), _rouge_tokens(reference)
        sums["rouge1"] += _rouge_n(pred, ref, 1)
        sums["rouge2"] += _rouge_n(pred, ref, 2)
        sums["rougeL"] += _rouge_l(pred, ref)
    count = max(len(predictions), 1)
    return {name: value / count for name, value in sums.items()}


def exact_match(predictions, references):
    """The fraction of predictions equal to their reference (surrounding
    whitespace ignored), in [0, 1]; 0.0 for an empty corpus."""
    predictions, references = _check_pairs(predictions, references)
    if not predictions:
        return 0.0
    hits = sum(p.strip() == r.strip() for p, r in zip(predictions, references))
    return hits / len(predictions)


def generation_scores(predictions, references):
    """`{"bleu", "rouge1", "rouge2", "rougeL", "exact_match"}` of a corpus
    (see `bleu`, `rouge`, `exact_match` for the scales)."""
    return {
        "bleu": bleu(predictions, references),
        **rouge(predictions, references),
        "exact_match": exact_match(predictions, references),
    }
