"""Tiny random-init KerasHub models (no dropout) and synthetic batches."""

import numpy as np

VOCAB = 64
LENGTH = 8


def _hub():
    import keras_hub

    return keras_hub


def gpt2_backbone(hidden_dim=8, vocabulary_size=VOCAB):
    return _hub().models.GPT2Backbone(
        vocabulary_size=vocabulary_size,
        num_layers=2,
        num_heads=2,
        hidden_dim=hidden_dim,
        intermediate_dim=2 * hidden_dim,
        dropout=0.0,
        max_sequence_length=16,
    )


def gpt2_lm(**kwargs):
    return _hub().models.GPT2CausalLM(
        backbone=gpt2_backbone(**kwargs), preprocessor=None
    )


def t5_backbone(tie_embedding_weights=True):
    return _hub().models.T5Backbone(
        vocabulary_size=VOCAB,
        num_layers=2,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        key_value_dim=4,
        dropout=0.0,
        tie_embedding_weights=tie_embedding_weights,
    )


def t5_lm(**kwargs):
    return _hub().models.T5Seq2SeqLM(
        backbone=t5_backbone(**kwargs), preprocessor=None
    )


def bart_backbone():
    return _hub().models.BartBackbone(
        vocabulary_size=VOCAB,
        num_layers=2,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        dropout=0.0,
        max_sequence_length=16,
    )


def bert_classifier():
    backbone = _hub().models.BertBackbone(
        vocabulary_size=VOCAB,
        num_layers=2,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        dropout=0.0,
        max_sequence_length=16,
    )
    return _hub().models.BertTextClassifier(
        backbone=backbone, num_classes=2, preprocessor=None, dropout=0.0
    )


def vit_backbone():
    return _hub().models.ViTBackbone(
        image_shape=(16, 16, 3),
        patch_size=8,
        num_layers=2,
        num_heads=2,
        hidden_dim=8,
        mlp_dim=16,
        dropout_rate=0.0,
        attention_dropout=0.0,
    )


def lm_batch(batch=4, seed=0):
    """`(x, y, sample_weight)` for a preprocessor-less `CausalLM`."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, VOCAB, (batch, LENGTH + 1)).astype("int32")
    mask = np.ones((batch, LENGTH), bool)
    x = {"token_ids": ids[:, :-1], "padding_mask": mask}
    return x, ids[:, 1:], mask.astype("float32")


def seq2seq_batch(batch=4, seed=0):
    """`(x, y, sample_weight)` for a preprocessor-less `Seq2SeqLM`."""
    rng = np.random.default_rng(seed)
    source = rng.integers(1, VOCAB, (batch, LENGTH)).astype("int32")
    target = rng.integers(1, VOCAB, (batch, LENGTH + 1)).astype("int32")
    mask = np.ones((batch, LENGTH), bool)
    x = {
        "encoder_token_ids": source,
        "encoder_padding_mask": mask,
        "decoder_token_ids": target[:, :-1],
        "decoder_padding_mask": mask,
    }
    return x, target[:, 1:], mask.astype("float32")
