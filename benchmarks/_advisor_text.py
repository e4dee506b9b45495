"""Text half of the `mode="auto"` panel (`benchmarks/advisor.py`).

A tiny KerasHub `BertBackbone` (3 transformer layers, hidden 32, a
word-level WordPiece vocabulary: every word one token) is pretrained
in-process as a sentiment classifier on short "sentences" of real rated
words (the `afinn` package's human-rated English word list, 600 words,
300 positive and 300 negative) among neutral filler words, then saved as a
KerasHub preset folder (`save_to_preset` of the backbone and its
preprocessor) and loaded by every run as users do, through
`kerasft.backbones.bert(folder, sequence_length=MAX_LENGTH)` inside
`kerasft.recipes.text_classification(backbone=folder, ...)`.

Targets, the same rated words in new sentences:

| target | distance | classes | a user would judge it |
|---|---|---|---|
| negative / neutral / positive (neutral: no rated word) | near | 3 | similar |
| agreement: do the sentence's two rated words share their sign | middle | 2 | similar |
| position: which half of an 8-word sentence holds the rated word | far | 2 | different |
| order: does the negative word come before the positive one | far | 2 | different |

Tried and dropped (seed 1, 500/class: every strategy within a point of
the others at the panel's steps budget, so they could not rank
strategies): negated sentiment ("not" flips the word), strength
(|score| >= 3 vs <= 2) and the dominant word of a mixed pair.
"""

import os

import numpy as np

MAX_LENGTH = 12  # [CLS] + at most 10 words + [SEP]
RATED_PER_SIGN = 300
PRETRAIN_SENTENCES = 20000
PRETRAIN_EPOCHS = 2
HELD_OUT_PER_CLASS = 100
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Neutral filler (none is an afinn word; checked in `vocabulary`).
FILLER = (
    "the a an this that these those movie film book story day night food "
    "place service room staff time people city car house music song show "
    "game phone table window road friend family week morning evening was "
    "is were be been it they we he she you my our their his her its of to "
    "in on at for with from by about as and or then also there here today "
    "yesterday tomorrow after before during while because which who what "
    "when where one two three some many most other each every same new old "
    "first last next long small large big little street train bus station "
    "school office paper letter name color water coffee tea bread chair door"
).split()

# (name, distance, similar as a user judges, sizes)
TARGETS = (
    ("sentiment neg/neutral/pos", "near", True, (10, 50, 500)),
    ("agreement of two rated words", "middle", True, (10, 50, 500)),
    ("position of the rated word", "far", False, (10, 50, 500)),
    ("order of neg and pos words", "far", False, (10, 50, 500)),
)


# === Words ===


def rated_words():
    """`{word: score}`: 300 negative and 300 positive single afinn words
    (a fixed draw, the same for every seed)."""
    try:
        import afinn
    except ImportError:
        raise ImportError(
            "The text half of the advisor panel needs afinn: "
            ".venv/bin/pip install afinn") from None
    path = os.path.join(os.path.dirname(afinn.__file__), "data",
                        "AFINN-en-165.txt")
    scores = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            word, score = line.rstrip("\n").rsplit("\t", 1)
            if word.isalpha() and word.islower() and int(score) != 0:
                scores[word] = int(score)
    rng = np.random.RandomState(12345)
    out = {}
    for sign in (-1, 1):
        words = sorted(w for w, s in scores.items() if s * sign > 0)
        for w in rng.choice(words, RATED_PER_SIGN, replace=False):
            out[str(w)] = scores[w]
    return out


def vocabulary(rated):
    filler = [w for w in dict.fromkeys(FILLER) if w not in rated]
    return SPECIALS + filler + sorted(rated)


# === Sentences ===


class _Sentences:
    """Sentence generator over the fixed word lists."""

    def __init__(self, rated, seed):
        self.rng = np.random.RandomState(seed)
        self.filler = [w for w in dict.fromkeys(FILLER) if w not in rated]
        self.neg = sorted(w for w, s in rated.items() if s < 0)
        self.pos = sorted(w for w, s in rated.items() if s > 0)

    def _filler(self, n):
        return list(self.rng.choice(self.filler, n))

    def _word(self, sign):
        return str(self.rng.choice(self.pos if sign > 0 else self.neg))

    def _place(self, length, words, positions=None):
        sentence = self._filler(length)
        if positions is None:
            positions = sorted(self.rng.choice(length, len(words), replace=False))
        for p, w in zip(positions, words):
            sentence[p] = w
        return " ".join(sentence)

    def _length(self):
        return int(self.rng.randint(7, 11))

    def source(self):
        """Sentiment (0 negative, 1 positive): 1 or 2 same-sign words."""
        label = int(self.rng.randint(2))
        sign = 1 if label else -1
        words = [self._word(sign) for _ in range(1 + self.rng.randint(2))]
        return self._place(self._length(), words), label

    def near(self, label):
        """0 negative, 1 neutral (no rated word), 2 positive."""
        words = [] if label == 1 else [self._word(label - 1)]
        return self._place(self._length(), words)

    def agreement(self, label):
        """1 when the sentence's two rated words share their sign."""
        first = self.rng.choice([-1, 1])
        second = first if label else -first
        return self._place(self._length(), [self._word(first),
                                            self._word(second)])

    def position(self, label):
        """Which half (0 first, 1 second) of an 8-word sentence holds the
        rated word."""
        p = 4 * label + int(self.rng.randint(4))
        return self._place(8, [self._word(self.rng.choice([-1, 1]))], [p])

    def order(self, label):
        """1 when the negative word comes before the positive one."""
        length = self._length()
        first, second = sorted(self.rng.choice(length, 2, replace=False))
        words = [self._word(-1), self._word(1)]
        if not label:
            words.reverse()
        return self._place(length, words, [first, second])


_MAKERS = {
    "sentiment neg/neutral/pos": ("near", 3),
    "agreement of two rated words": ("agreement", 2),
    "position of the rated word": ("position", 2),
    "order of neg and pos words": ("order", 2),
}


def _examples(name, per_class, rated, seed):
    method, classes = _MAKERS[name]
    gen = _Sentences(rated, seed)
    texts, labels = [], []
    for label in range(classes):
        for _ in range(per_class):
            texts.append(getattr(gen, method)(label))
            labels.append(label)
    order = np.random.RandomState(seed).permutation(len(labels))
    return [texts[i] for i in order], np.asarray(labels, "int64")[order]


def tasks(seed, sizes_kept=None, targets_kept=None, per_class=None):
    """`[(name, distance, similar, per_class, train, held_out)]` (the
    image half's shape: `train`/`held_out` are `(texts, labels)`)."""
    rated = rated_words()
    out = []
    for index, name, distance, similar, n in selected(
            TARGETS, sizes_kept, targets_kept, per_class):
        train = _examples(name, n, rated, seed * 1000 + n + 17 * index)
        held = _examples(name, HELD_OUT_PER_CLASS, rated,
                         seed * 1000 + 7 + 17 * index)
        out.append((name, distance, similar, n, train, held))
    return out


def selected(targets, sizes_kept=None, targets_kept=None, per_class=None):
    """`[(index, name, distance, similar, per_class)]` of a half's
    `targets` (`(name, distance, similar, sizes)` each), as both halves'
    `tasks` take them: `targets_kept` (indices into `targets`) limits the
    targets, `sizes_kept` (indices into each target's sizes) the sizes,
    and `per_class` (a list of sizes) replaces every target's sizes."""
    out = []
    for index, (name, distance, similar, sizes) in enumerate(targets):
        if targets_kept is not None and index not in targets_kept:
            continue
        if per_class is not None:
            sizes = list(per_class)
        elif sizes_kept is not None:
            sizes = [sizes[i] for i in sizes_kept]
        out += [(index, name, distance, similar, n) for n in sizes]
    return out


# === The pretrained transformer ===


def pretrained_folder(seed, root, verbose=0):
    """Pretrains the tiny BERT on the source sentiment task and saves it as
    a KerasHub preset folder; returns the folder."""
    import keras
    import keras_hub

    rated = rated_words()
    keras.utils.set_random_seed(1 + 10 * seed)
    tokenizer = keras_hub.models.BertTokenizer(
        vocabulary=vocabulary(rated), lowercase=True)
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(
        tokenizer, sequence_length=MAX_LENGTH)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=tokenizer.vocabulary_size(), num_layers=3,
        num_heads=2, hidden_dim=32, intermediate_dim=64, dropout=0.1,
        max_sequence_length=MAX_LENGTH)
    classifier = keras_hub.models.BertTextClassifier(
        backbone=backbone, num_classes=2, preprocessor=None, dropout=0.1)
    gen = _Sentences(rated, 100 + seed)
    pairs = [gen.source() for _ in range(PRETRAIN_SENTENCES)]
    inputs = preprocessor([t for t, _ in pairs])
    labels = np.asarray([y for _, y in pairs], "int64")
    classifier.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"])
    history = classifier.fit(inputs, labels, batch_size=64,
                             epochs=PRETRAIN_EPOCHS, verbose=verbose)
    folder = os.path.join(root, f"tiny_sentiment_bert_{seed}")
    backbone.save_to_preset(folder)
    preprocessor.save_to_preset(folder)
    return folder, float(history.history["accuracy"][-1])
