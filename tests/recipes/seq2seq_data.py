"""Tiny random-init seq2seq models and the number-words task, for tests.

`tiny_t5()` is a KerasHub `T5Seq2SeqLM` built in Python with the
sentencepiece tokenizer of the tiny T5 fixture (trained on English number
words and digits, which it splits one per token). Its output layer is not
tied to the embeddings (Flan-T5 style): measured here, a tied 64-wide T5
(embeddings drawn with std 1, logits scaled by 1/8) had not even learnt the
target's unigram distribution after 300 Adam steps at 1e-3, while the
untied one memorised 64 pairs in those steps and mastered held-out numbers
in ~1500. `tiny_bart()` a
`BartSeq2SeqLM` on the tiny GPT-2 fixture's byte-level BPE. The synthetic
task maps number words to digits: "three hundred twelve" -> "312".
"""

import csv
import json
import os
import random

from tests.fixtures.tiny_generative import gpt2_folder, number_words, t5_folder


def number_pairs(numbers):
    return [(number_words(n), str(n)) for n in numbers]


def split_numbers(held_out=100, seed=0, limit=1000):
    """`(train, held_out)` disjoint lists of numbers below `limit`."""
    numbers = random.Random(seed).sample(range(limit), limit)
    return numbers[held_out:], numbers[:held_out]


def write_pairs_csv(path, pairs, columns=("source", "target")):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows(pairs)
    return str(path)


def tiny_t5(seed=0, hidden_dim=64, num_layers=2, source_length=16,
            target_length=8, dropout=0.0, tie_embedding_weights=False):
    import keras
    import keras_hub

    keras.utils.set_random_seed(seed)
    tokenizer = keras_hub.models.T5Tokenizer(
        proto=os.path.join(t5_folder(), "spiece.model")
    )
    preprocessor = keras_hub.models.T5Seq2SeqLMPreprocessor(
        tokenizer, encoder_sequence_length=source_length,
        decoder_sequence_length=target_length,
    )
    backbone = keras_hub.models.T5Backbone(
        vocabulary_size=tokenizer.vocabulary_size(), num_layers=num_layers,
        num_heads=4, hidden_dim=hidden_dim, intermediate_dim=2 * hidden_dim,
        key_value_dim=hidden_dim // 4, dropout=dropout,
        tie_embedding_weights=tie_embedding_weights,
    )
    return keras_hub.models.T5Seq2SeqLM(backbone, preprocessor)


def tiny_bart(seed=0, source_length=16, target_length=8):
    import keras
    import keras_hub

    keras.utils.set_random_seed(seed)
    with open(os.path.join(gpt2_folder(), "vocab.json"), encoding="utf-8") as f:
        vocabulary = json.load(f)
    for token in ("<s>", "<pad>", "</s>", "<mask>"):
        vocabulary.setdefault(token, len(vocabulary))
    with open(os.path.join(gpt2_folder(), "merges.txt"), encoding="utf-8") as f:
        merges = [line.rstrip("\n") for line in f
                  if line.strip() and not line.startswith("#version")]
    tokenizer = keras_hub.models.BartTokenizer(vocabulary=vocabulary, merges=merges)
    preprocessor = keras_hub.models.BartSeq2SeqLMPreprocessor(
        tokenizer, encoder_sequence_length=source_length,
        decoder_sequence_length=target_length,
    )
    backbone = keras_hub.models.BartBackbone(
        vocabulary_size=len(vocabulary), num_layers=1, num_heads=2,
        hidden_dim=32, intermediate_dim=64, dropout=0.0,
        max_sequence_length=32,
    )
    return keras_hub.models.BartSeq2SeqLM(backbone, preprocessor)
