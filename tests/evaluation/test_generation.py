"""BLEU against sacreBLEU, ROUGE against rouge-score, exact match by hand."""

import random

import pytest

from kerasft import evaluation
from kerasft.evaluation import generation
from tests._required import import_required

# Tokenization corner cases of 13a: punctuation, numbers with separators,
# hyphens after digits, HTML entities, non-ASCII letters, case.
_WORDS = (
    "the a cat dog sat on mat , . 3.5 1,000 hello-world don't (x) & &amp; "
    "U.S. Zoë 12-3 Der Fuchs schlief ."
).split()


def _random_corpus(rng):
    refs = [
        " ".join(rng.choice(_WORDS) for _ in range(rng.randint(0, 14)))
        for _ in range(rng.randint(1, 10))
    ]
    hyps = [
        r if rng.random() < 0.3
        else " ".join(rng.choice(_WORDS) for _ in range(rng.randint(0, 14)))
        for r in refs
    ]
    return hyps, refs


def test_bleu_matches_sacrebleu_corpus_bleu():
    sacrebleu = import_required("sacrebleu", "pip install sacrebleu")
    cases = [
        (["the cat sat on the mat"], ["the cat sat on the mat"]),
        (["the cat"], ["the cat sat on the mat"]),  # brevity penalty
        (["a b c d e"], ["a b x d e"]),  # no 3/4-gram match: exp smoothing
        (["nothing alike"], ["totally different words"]),  # 0
        (["Hello, world!"], ["hello , world !"]),  # case-sensitive, 13a
        (["3.5 million, U.S."], ["3.5 million , U.S ."]),
        (["", "x"], ["a b", "x"]),  # empty hypothesis
    ]
    rng = random.Random(0)
    cases += [_random_corpus(rng) for _ in range(200)]
    for hyps, refs in cases:
        expected = sacrebleu.corpus_bleu(hyps, [refs]).score
        assert generation.bleu(hyps, refs) == pytest.approx(expected, abs=1e-6), (
            hyps, refs,
        )


def test_bleu_scale_and_identity():
    assert generation.bleu(["the cat sat on the mat"] * 3, ["the cat sat on the mat"] * 3) == pytest.approx(100.0)
    assert generation.bleu(["zz"], ["the cat sat on the mat"]) == 0.0


def test_13a_tokenization_matches_sacrebleu():
    import_required("sacrebleu", "pip install sacrebleu")
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    reference = Tokenizer13a()
    rng = random.Random(1)
    for _ in range(100):
        line = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(0, 10)))
        assert generation.tokenize_13a(line) == reference(line).split()


def test_rouge_matches_rouge_score():
    import_required("rouge_score", "pip install rouge-score")
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    rng = random.Random(2)
    for _ in range(100):
        hyps, refs = _random_corpus(rng)
        ours = generation.rouge(hyps, refs)
        for key in ("rouge1", "rouge2", "rougeL"):
            expected = sum(
                scorer.score(r, h)[key].fmeasure for h, r in zip(hyps, refs)
            ) / len(hyps)
            assert ours[key] == pytest.approx(expected, abs=1e-9), (key, hyps, refs)


def test_rouge_by_hand():
    scores = generation.rouge(["the cat sat"], ["the cat sat down"])
    # 3 of 3 predicted unigrams, 3 of 4 reference ones: F = 6/7.
    assert scores["rouge1"] == pytest.approx(6 / 7)
    # 2 of 2 predicted bigrams, 2 of 3 reference ones: F = 0.8.
    assert scores["rouge2"] == pytest.approx(0.8)
    assert scores["rougeL"] == pytest.approx(6 / 7)


def test_exact_match_ignores_surrounding_whitespace_only():
    preds = ["312", " 45 ", "7", "Cat"]
    refs = ["312", "45", "8", "cat"]
    assert generation.exact_match(preds, refs) == pytest.approx(0.5)
    assert generation.exact_match([], []) == 0.0


def test_generation_scores_keys_and_errors():
    scores = evaluation.generation_scores(["a b"], ["a b"])
    assert set(scores) == {"bleu", "rouge1", "rouge2", "rougeL", "exact_match"}
    assert scores["exact_match"] == 1.0 and scores["rouge1"] == 1.0
    with pytest.raises(ValueError, match="same length"):
        generation.bleu(["a"], ["a", "b"])
    with pytest.raises(TypeError, match="must be strings"):
        generation.rouge([1], ["a"])
