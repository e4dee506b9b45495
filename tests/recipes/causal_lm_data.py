"""A synthetic corpus and a tiny random-init GPT-2 for the causal LM tests.

Documents count up in English number words ("three four five six."): after
the first word every token is predictable, so a model that learns the
corpus ends far below the unigram perplexity of the same text. The
tokenizer is the byte-level BPE of `tests/fixtures/gpt2_tiny` (trained on
these words); the model is built here, wider than the fixture, to learn in
seconds.
"""

import collections
import math
import os

import numpy as np

from tests.fixtures.tiny_generative import ONES, TENS, gpt2_folder

COUNTING = ONES + TENS


def counting_corpus(n, seed=0):
    """`n` documents, each 4-9 consecutive number words and a full stop."""
    rng = np.random.default_rng(seed)
    docs = []
    for _ in range(n):
        start = int(rng.integers(0, len(COUNTING) - 9))
        length = int(rng.integers(4, 10))
        docs.append(" ".join(COUNTING[start:start + length]) + ".")
    return docs


def write_folder(root, documents, per_file=20):
    """Writes the documents as `.txt` files of `per_file` lines each."""
    os.makedirs(root, exist_ok=True)
    for i in range(0, len(documents), per_file):
        with open(os.path.join(root, f"part_{i // per_file:03d}.txt"), "w") as f:
            f.write("\n".join(documents[i:i + per_file]))
    return str(root)


def tiny_gpt2(hidden_dim=64, num_layers=2, sequence_length=32, max_length=128,
              seed=0):
    """A random-init `GPT2CausalLM` (weights from `seed`) with the fixture's
    tokenizer."""
    import keras
    import keras_hub

    keras.utils.set_random_seed(seed)

    folder = gpt2_folder()
    tokenizer = keras_hub.tokenizers.GPT2Tokenizer(
        vocabulary=os.path.join(folder, "vocab.json"),
        merges=os.path.join(folder, "merges.txt"),
    )
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=tokenizer.vocabulary_size(), num_layers=num_layers,
        num_heads=2, hidden_dim=hidden_dim, intermediate_dim=2 * hidden_dim,
        dropout=0.0, max_sequence_length=max_length,
    )
    preprocessor = keras_hub.models.GPT2CausalLMPreprocessor(
        tokenizer, sequence_length=sequence_length
    )
    return keras_hub.models.GPT2CausalLM(backbone, preprocessor)


def unigram_perplexity(train_packed, val_packed):
    """Perplexity on the validation labels of the unigram model counted on
    the training labels (add-one smoothed)."""
    counts = collections.Counter(
        train_packed.labels[train_packed.label_mask > 0].tolist()
    )
    total, vocabulary = sum(counts.values()), len(counts) + 1
    labels = val_packed.labels[val_packed.label_mask > 0].tolist()
    nll = -np.mean([math.log((counts[t] + 1) / (total + vocabulary)) for t in labels])
    return float(math.exp(nll))


def _child(argv):
    """`python -m tests.recipes.causal_lm_data OUT [--hold-at-epoch E]`: a
    tiny causal_lm run in its own process (the kill -9 resume test). With
    --hold-at-epoch E it writes OUT.marker after the second batch of epoch
    E and waits to be killed."""
    import time

    import keras

    from kerasft import recipes

    out = argv[0]
    callbacks = []
    if "--hold-at-epoch" in argv:
        hold = int(argv[argv.index("--hold-at-epoch") + 1])

        class Hold(keras.callbacks.Callback):
            epoch = None

            def on_epoch_begin(self, epoch, logs=None):
                self.epoch = epoch

            def on_train_batch_end(self, batch, logs=None):
                if self.epoch == hold and batch == 1:
                    with open(out + ".marker", "w") as f:
                        f.write("held")
                    time.sleep(300)

        callbacks.append(Hold())
    recipes.causal_lm(
        train=counting_corpus(160), backbone=tiny_gpt2(), sequence_length=32,
        epochs=4, batch_size=8, learning_rate=3e-3, output_dir=out,
        precision="float32", strategy="default", verbose=0,
        callbacks=callbacks,
    )


if __name__ == "__main__":
    import sys

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    _child(sys.argv[1:])
