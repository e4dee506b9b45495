"""Synthetic NER sentences over the tiny BERT vocabulary (tests/fixtures).

Words are drawn from the tiny vocabulary; entities are inserted: "paris"
alone is a place (B-LOC), "paris tower" a facility (B-FAC I-FAC: the tag
of "paris" depends on the next word), and a four-digit year a date
(B-DATE, one word of four WordPiece tokens).
"""

import numpy as np

FILLER = (
    "the a is was good bad great awful fine dull film movie book very not "
    "really it this that and or of to in on what who where when built year"
).split()


def ner_sentences(n, seed=0):
    rng = np.random.default_rng(seed)
    sentences, tags = [], []
    for _ in range(n):
        words = list(rng.choice(FILLER, rng.integers(3, 8)))
        labels = ["O"] * len(words)
        for _ in range(rng.integers(1, 3)):
            at = int(rng.integers(0, len(words) + 1))
            kind = rng.integers(0, 3)
            if kind == 0:
                piece, piece_tags = ["paris"], ["B-LOC"]
            elif kind == 1:
                piece, piece_tags = ["paris", "tower"], ["B-FAC", "I-FAC"]
            else:
                piece, piece_tags = [str(rng.integers(1000, 2100))], ["B-DATE"]
            words[at:at] = piece
            labels[at:at] = piece_tags
        # "paris" followed by "tower" by chance is a facility too.
        for i in range(len(words) - 1):
            if words[i] == "paris" and words[i + 1] == "tower":
                labels[i], labels[i + 1] = "B-FAC", "I-FAC"
        sentences.append([str(w) for w in words])
        tags.append(labels)
    return sentences, tags
