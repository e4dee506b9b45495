"""Caption scores with several references per image: BLEU-1..4, CIDEr-D.

Pure Python, no TensorFlow. ROUGE-L comes from `kerasft.evaluation.
generation` (best reference per image, as coco-caption scores it).

- `caption_bleu`: sacreBLEU's `corpus_bleu(predictions, [refs_1, refs_2,
  ...])` with `max_ngram_order=n` (13a tokens, `exp` smoothing, closest
  reference length), on sacreBLEU's 0-100 scale. The tokenizer and n-gram
  counter are those of `kerasft.evaluation.generation`; what is added is
  the multi-reference clipping (the largest count in any reference) and
  the closest reference length, as sacreBLEU does them.
- `cider_d`: CIDEr-D as coco-caption's `pycocoevalcap/cider` computes it
  (n = 1..4, sigma = 6, document frequencies over the references of the
  corpus, clipped tf-idf vectors, a Gaussian length penalty, x10), on
  lower-cased words with punctuation removed (coco-caption's PTB
  tokenizer does the same for plain captions).
"""

import collections
import math
import re

from kerasft.evaluation import generation

__all__ = ["caption_bleu", "caption_scores", "cider_d"]

_PUNCTUATION = re.compile(r"[^\w\s]")


def _check(predictions, references):
    predictions, references = list(predictions), [list(r) for r in references]
    if len(predictions) != len(references):
        raise ValueError(
            "`predictions` and `references` must have the same length (one "
            f"list of references per prediction). Received: {len(predictions)} "
            f"predictions, {len(references)} reference lists."
        )
    empty = [i for i, refs in enumerate(references) if not refs]
    if empty:
        raise ValueError(
            "Every prediction needs at least one reference. Received: no "
            f"references for prediction {empty[0]}."
        )
    return predictions, references


def caption_bleu(predictions, references, max_order=4):
    """Corpus BLEU-`max_order` with several references per prediction.

    Args:
        predictions: generated captions (strings).
        references: for each prediction, a list of reference captions.
        max_order: the largest n-gram order (1 to 4). Defaults to `4`.

    Returns:
        A float in [0, 100]: `sacrebleu.corpus_bleu(predictions,
        reference_streams, ...)` with `BLEU(max_ngram_order=max_order)`.

    Example:

    ```python
    caption_bleu(["a red square"], [["a red square", "a square"]], 1)  # 100.0
    ```
    """
    if max_order not in (1, 2, 3, 4):
        raise ValueError(
            f"`max_order` must be 1, 2, 3 or 4. Received: max_order={max_order!r}"
        )
    predictions, references = _check(predictions, references)
    correct, total = [0] * max_order, [0] * max_order
    sys_len = ref_len = 0
    for prediction, refs in zip(predictions, references):
        hyp = generation.tokenize_13a(prediction)
        tokenized = [generation.tokenize_13a(r) for r in refs]
        sys_len += len(hyp)
        # sacrebleu: the reference length closest to the hypothesis, the
        # shorter one on a tie.
        ref_len += min((abs(len(r) - len(hyp)), len(r)) for r in tokenized)[1]
        clip = collections.Counter()
        for ref in tokenized:
            for ngram, count in generation._ngrams(ref, max_order).items():
                clip[ngram] = max(clip[ngram], count)
        for ngram, count in generation._ngrams(hyp, max_order).items():
            total[len(ngram) - 1] += count
            correct[len(ngram) - 1] += min(count, clip.get(ngram, 0))
    return generation._bleu_from_counts(
        correct, total, sys_len, ref_len, max_order
    )


def _words(text):
    return _PUNCTUATION.sub(" ", text.lower()).split()


def _counts(words, n=4):
    return collections.Counter(
        tuple(words[i:i + k]) for k in range(1, n + 1)
        for i in range(len(words) - k + 1)
    )


def cider_d(predictions, references, sigma=6.0):
    """Corpus CIDEr-D (coco-caption's `CiderD`), usually in [0, 10].

    Args:
        predictions: generated captions (strings).
        references: for each prediction, a list of reference captions.
        sigma: width of the Gaussian length penalty. Defaults to `6.0`.

    Returns:
        A float: the mean over images of CIDEr-D (x10).
    """
    predictions, references = _check(predictions, references)
    if not predictions:
        return 0.0
    refs = [[_counts(_words(r)) for r in rs] for rs in references]
    frequency = collections.Counter()
    for counts in refs:
        frequency.update(set().union(*counts))
    log_images = math.log(float(len(refs)))

    def vector(counts):
        vec = [{} for _ in range(4)]
        norm = [0.0] * 4
        length = 0
        for ngram, tf in counts.items():
            n = len(ngram) - 1
            vec[n][ngram] = tf * (log_images - math.log(max(1.0, frequency[ngram])))
            norm[n] += vec[n][ngram] ** 2
            if n == 1:  # coco-caption counts bigrams as the length
                length += tf
        return vec, [math.sqrt(v) for v in norm], length

    def similarity(hyp, ref):
        (vec_h, norm_h, len_h), (vec_r, norm_r, len_r) = hyp, ref
        penalty = math.exp(-((len_h - len_r) ** 2) / (2 * sigma ** 2))
        values = []
        for n in range(4):
            value = sum(
                min(v, vec_r[n].get(g, 0.0)) * vec_r[n].get(g, 0.0)
                for g, v in vec_h[n].items()
            )
            if norm_h[n] and norm_r[n]:
                value /= norm_h[n] * norm_r[n]
            values.append(value * penalty)
        return values

    scores = []
    for prediction, ref_counts in zip(predictions, refs):
        hyp = vector(_counts(_words(prediction)))
        total = [0.0] * 4
        for counts in ref_counts:
            total = [t + s for t, s in zip(total, similarity(hyp, vector(counts)))]
        scores.append(sum(total) / 4 / len(ref_counts) * 10.0)
    return sum(scores) / len(scores)


def caption_scores(predictions, references):
    """`{"bleu1".."bleu4", "rougeL", "cider"}` of generated captions.

    BLEU on sacreBLEU's 0-100 scale (`caption_bleu`), ROUGE-L in [0, 1]
    (the best reference's F-measure per image, averaged), CIDEr-D
    (`cider_d`).
    """
    predictions, references = _check(predictions, references)
    out = {f"bleu{n}": caption_bleu(predictions, references, n)
           for n in (1, 2, 3, 4)}
    rouge_l = [
        max(generation.rouge([p], [r])["rougeL"] for r in refs)
        for p, refs in zip(predictions, references)
    ]
    out["rougeL"] = sum(rouge_l) / max(len(rouge_l), 1)
    out["cider"] = cider_d(predictions, references)
    return out
