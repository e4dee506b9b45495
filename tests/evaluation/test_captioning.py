"""`kerasft.evaluation.captioning`: multi-reference BLEU and CIDEr-D."""

import math
import random

import pytest

from kerasft.evaluation.captioning import caption_bleu, caption_scores, cider_d
from tests._required import import_required

sacrebleu = import_required("sacrebleu", "pip install sacrebleu")


def _corpus(seed=0, n=40):
    rng = random.Random(seed)
    words = "a red blue green square circle above below left right of .".split()
    sentence = lambda: " ".join(  # noqa: E731
        rng.choice(words) for _ in range(rng.randint(2, 9))
    )
    predictions = [sentence() for _ in range(n)]
    references = [[sentence() for _ in range(rng.randint(1, 4))] for _ in range(n)]
    return predictions, references


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_bleu_matches_sacrebleu_with_several_references(order):
    predictions, references = _corpus(seed=order)
    streams = [[refs[i] if i < len(refs) else None for refs in references]
               for i in range(4)]
    expected = sacrebleu.metrics.BLEU(max_ngram_order=order).corpus_score(
        predictions, streams
    ).score
    assert caption_bleu(predictions, references, order) == pytest.approx(
        expected, abs=1e-9
    )


def test_cider_d_hand_computed():
    """Two images, one reference each; every reference n-gram appears in one
    of the two images, so each weight is tf * ln 2.

    Image 2 ("c d" for "c d"): cosine 1 for unigrams and bigrams, 0 for the
    absent 3-/4-grams, no length gap: 10 * (1 + 1) / 4 = 5.
    Image 1 ("a b b" for "a b"): unigrams (1, 2).(1, 1) clipped to 2 over
    sqrt(5) sqrt(2); bigrams {ab, bb}.{ab} = 1 over sqrt(2) * 1; the length
    (bigram count, as coco-caption counts it) is 2 against 1, penalty
    exp(-1 / (2 * 6**2)).
    """
    image1 = 10 / 4 * (2 / math.sqrt(10) + 1 / math.sqrt(2)) * math.exp(-1 / 72)
    score = cider_d(["a b b", "c d"], [["a b"], ["c d"]])
    assert score == pytest.approx((image1 + 5.0) / 2, rel=1e-12)
    assert cider_d(["c d"] * 2, [["a b"], ["c d"]]) == pytest.approx(2.5)


def test_scores_of_perfect_and_wrong_captions():
    references = [["a red square", "a square"], ["a blue circle"]]
    perfect = caption_scores(["a red square", "a blue circle"], references)
    assert perfect["bleu1"] == pytest.approx(100.0)
    assert perfect["rougeL"] == pytest.approx(1.0)
    wrong = caption_scores(["green", "green"], references)
    assert wrong["bleu4"] == 0.0 and wrong["cider"] == 0.0
    with pytest.raises(ValueError, match="at least one reference"):
        caption_scores(["x"], [[]])
