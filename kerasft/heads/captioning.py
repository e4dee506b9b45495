"""The captioning model: image backbone -> tokens -> Transformer decoder.

`caption_model(backbone, vocabulary_size, max_length)` builds a functional
model with inputs `{"image": raw pixels, "tokens": caption ids}` and
next-token logits (float32) as output:

- encoder: preprocessing, the backbone nested and called with
  `training=False` (BatchNorm kept in inference mode, as `build_model`
  does), its feature map `[b, h, w, c]` flattened into `h * w` tokens (a
  pooled vector is one token, patch tokens `[b, n, c]` such as a
  `ViTBackbone`'s stay as they are), a Dense projection to `embed_dim` plus
  a learned position embedding (so "above" and "left of" are visible);
- decoder (a nested functional model named `"caption_decoder"`):
  `keras_hub.layers.TokenAndPositionEmbedding`, then
  `num_layers` `keras_hub.layers.TransformerDecoder` blocks, causal
  self-attention and cross-attention over the encoder tokens, then a Dense
  layer to the vocabulary computed in float32.

Only Keras and KerasHub layers are used, so the model round-trips through
`.keras` files; the variables of every layer outside the backbone belong to
the `"head"` group (`kerasft.optimizers.LayerwiseLR`). The tokenizer side
(`build_vocabulary`, `caption_tokenizer`, `encode_captions`,
`decode_captions`) and generation (`CaptionGenerator`) live here too.
"""

import re

import keras
import numpy as np

__all__ = [
    "RESERVED_TOKENS",
    "build_vocabulary",
    "caption_model",
    "caption_tokenizer",
    "decode_captions",
    "encode_captions",
    "encode_table",
]

PAD, UNK, START, END = "[PAD]", "[UNK]", "[START]", "[END]"
RESERVED_TOKENS = (PAD, UNK, START, END)
ENCODER_TOKENS = "caption_encoder_tokens"
# How WordPieceTokenizer splits text before word pieces: words, punctuation.
_WORDS = re.compile(r"\w+|[^\w\s]")
DECODER = "caption_decoder"


# === Tokenizer ===


def build_vocabulary(captions, vocabulary_size=2000):
    """A WordPiece vocabulary of `captions`, `RESERVED_TOKENS` first
    (`[PAD]` is id 0).

    KerasHub's `compute_word_piece_vocabulary` (lower-cased) learns it, but
    keeps whole words only when they occur at least 10 times (its learner's
    lower count threshold): in a small caption set most words would be
    spelled letter by letter. So the words it left out are appended whole,
    most frequent first, while the vocabulary has room
    (`vocabulary_size`).
    """
    import collections

    import keras_hub
    import tensorflow as tf

    captions = list(captions)
    if not captions:
        raise ValueError("`captions` must not be empty: no vocabulary to build.")
    vocabulary = list(keras_hub.tokenizers.compute_word_piece_vocabulary(
        tf.data.Dataset.from_tensor_slices(captions).batch(256),
        vocabulary_size=vocabulary_size, lowercase=True,
        reserved_tokens=list(RESERVED_TOKENS),
    ))
    known = set(vocabulary)
    words = collections.Counter(
        w for c in captions for w in _WORDS.findall(c.lower())
    )
    for word, _ in sorted(words.items(), key=lambda item: (-item[1], item[0])):
        if len(vocabulary) >= vocabulary_size:
            break
        if word not in known:
            vocabulary.append(word)
            known.add(word)
    return vocabulary


def caption_tokenizer(vocabulary):
    """`keras_hub.tokenizers.WordPieceTokenizer` over `vocabulary` (a list
    of tokens or a vocabulary file), lower-casing."""
    import keras_hub

    tokenizer = keras_hub.tokenizers.WordPieceTokenizer(
        vocabulary=vocabulary, lowercase=True, oov_token=UNK
    )
    missing = [t for t in RESERVED_TOKENS if tokenizer.token_to_id(t) is None]
    if missing or tokenizer.token_to_id(PAD) != 0:
        raise ValueError(
            f"The caption vocabulary must start with {list(RESERVED_TOKENS)} "
            f"([PAD] as id 0). Missing: {missing}"
        )
    return tokenizer


def encode_captions(tokenizer, captions, max_length):
    """`(ids [n, max_length + 1], truncated count)`: `[START] words [END]`
    then `[PAD]`s; captions longer than `max_length - 1` tokens are cut."""
    import keras_hub

    packer = keras_hub.layers.StartEndPacker(
        sequence_length=max_length + 1,
        start_value=tokenizer.token_to_id(START),
        end_value=tokenizer.token_to_id(END),
        pad_value=0,
    )
    import tensorflow as tf

    tokens = tokenizer(list(captions))
    if not isinstance(tokens, tf.RaggedTensor):
        tokens = tf.ragged.constant(
            tokens if isinstance(tokens, list) else np.asarray(tokens).tolist(),
            dtype=tf.int32, ragged_rank=1,
        )
    lengths = tokens.row_lengths().numpy()
    ids = np.asarray(packer(tokens), "int32")
    return ids, int(np.sum(lengths > max_length - 1))


def encode_table(tokenizer, captions, max_length):
    """`(ids per image, truncated count)` for captions grouped by image
    (`CaptionTable.captions`): one `encode_captions` pass, split back."""
    flat = [c for group in captions for c in group]
    ids, truncated = encode_captions(tokenizer, flat, max_length)
    bounds = np.cumsum([0, *(len(group) for group in captions)])
    return [ids[a:b] for a, b in zip(bounds[:-1], bounds[1:])], truncated


def decode_captions(tokenizer, ids):
    """Captions of generated ids `[n, length]`: the tokens up to the first
    `[END]` (or `[PAD]`), detokenized, without `[START]` (the first token,
    and one an undertrained decoder may emit again mid-caption)."""
    start, end = tokenizer.token_to_id(START), tokenizer.token_to_id(END)
    rows = []
    for row in np.asarray(ids).tolist():
        out = []
        for token in row:
            if token in (end, 0):
                break
            if token != start:
                out.append(token)
        rows.append(out)
    texts = [tokenizer.detokenize([r]) if r else "" for r in rows]
    return [_text(t) for t in texts]


def _text(value):
    if hasattr(value, "numpy"):
        value = value.numpy()
    value = np.asarray(value).reshape(-1)[0] if np.ndim(value) else value
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    return " ".join(str(value).split())


# === Model ===


def caption_model(backbone, vocabulary_size, max_length, embed_dim=256,
                  num_layers=2, num_heads=4, intermediate_dim=None,
                  dropout=0.1, train_batchnorm=False, remat=False, name=None):
    """Builds the captioning model (see the module docstring).

    Args:
        backbone: a `kerasft.backbones.Backbone` for images.
        vocabulary_size: tokens of the tokenizer.
        max_length: decoder positions (start token included).
        embed_dim: width of the decoder. Defaults to `256`.
        num_layers: `TransformerDecoder` blocks. Defaults to `2`.
        num_heads: attention heads. Defaults to `4`.
        intermediate_dim: feed-forward width. Defaults to `4 * embed_dim`.
        dropout: dropout in the decoder. Defaults to `0.1`.
        train_batchnorm: leave the backbone's BatchNorm trainable.
            Defaults to `False`.
        remat: gradient checkpointing: each backbone group runs as one
            rematerialized segment (`kerasft.remat.rematerialize`), the
            decoder as it is. Defaults to `False`.
        name: model name. Defaults to `f"{backbone.name}_captioner"`.

    Returns:
        An uncompiled `keras.Model`.

    Example:
    ```python
    backbone = kerasft.backbones.get("mobilenetv2", weights=None,
                                     input_shape=(64, 64, 3))
    model = caption_model(backbone, vocabulary_size=500, max_length=20)
    ```
    """
    import keras_hub

    from kerasft import _grouping
    from kerasft.freezing import freeze_batchnorm

    if getattr(backbone, "task", None) == "text":
        raise ValueError(
            "`backbone` must be an image backbone. Received a text backbone: "
            f"{backbone.name!r}"
        )
    for arg, value in (("vocabulary_size", vocabulary_size),
                       ("max_length", max_length), ("embed_dim", embed_dim),
                       ("num_layers", num_layers), ("num_heads", num_heads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                f"`{arg}` must be a positive integer. Received: {arg}={value!r}"
            )
    image = keras.Input(tuple(backbone.model.input_shape[1:]), name="image")
    tokens = keras.Input((max_length,), dtype="int32", name="tokens")
    x = image
    if backbone.preprocess_mode not in (None, "none"):
        from kerasft.layers import Preprocess

        x = Preprocess(backbone.preprocess_mode)(x)
    if remat:
        from kerasft.remat import rematerialize

        encoder = rematerialize(backbone)
    else:
        encoder = backbone.model
    features = encoder(x, training=False)
    shape = tuple(features.shape[1:])
    if len(shape) == 3:
        features = keras.layers.Reshape(
            (shape[0] * shape[1], shape[2]), name="caption_feature_tokens"
        )(features)
    elif len(shape) == 1:
        features = keras.layers.Reshape((1, shape[0]),
                                        name="caption_feature_tokens")(features)
    elif len(shape) != 2:
        raise ValueError(
            "The backbone must output a feature map [b, h, w, c], tokens "
            f"[b, n, c] or a vector [b, c]. Received output shape {shape}."
        )
    encoded = keras.layers.Dense(embed_dim, name="caption_encoder_projection")(
        features
    )
    positions = keras_hub.layers.PositionEmbedding(
        int(encoded.shape[1]), name="caption_encoder_positions"
    )(encoded)
    encoded = keras.layers.Add(name=ENCODER_TOKENS)([encoded, positions])
    decoder = _decoder(tuple(encoded.shape[1:]), vocabulary_size, max_length,
                       num_layers, num_heads, intermediate_dim or 4 * embed_dim,
                       dropout)
    logits = decoder({"encoder_tokens": encoded, "tokens": tokens})
    model = keras.Model({"image": image, "tokens": tokens}, logits,
                        name=name or f"{backbone.name}_captioner")
    if not train_batchnorm:
        freeze_batchnorm(backbone.model)
    _grouping.tag_model(model, backbone)
    return model


def _decoder(encoder_shape, vocabulary_size, max_length, num_layers,
             num_heads, intermediate_dim, dropout):
    """The decoder as its own functional model (`DECODER`): generation
    calls it alone, step after step, on the encoder tokens computed once.
    (A sub-model cut out of the whole model's graph would add nodes to its
    layers that break saving the whole model.)"""
    import keras_hub

    encoded = keras.Input(encoder_shape, name="encoder_tokens")
    tokens = keras.Input((max_length,), dtype="int32", name="tokens")
    x = keras_hub.layers.TokenAndPositionEmbedding(
        vocabulary_size, max_length, encoder_shape[-1],
        name="caption_token_embedding",
    )(tokens)
    for i in range(num_layers):
        x = keras_hub.layers.TransformerDecoder(
            intermediate_dim, num_heads, dropout=dropout,
            name=f"caption_decoder_{i}",
        )(x, encoded)
    logits = keras.layers.Dense(vocabulary_size, dtype="float32",
                                name="caption_logits")(x)
    return keras.Model({"encoder_tokens": encoded, "tokens": tokens}, logits,
                       name=DECODER)


def caption_loss():
    """Token cross-entropy on logits (padding weighted 0 by the data)."""
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
