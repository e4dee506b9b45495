"""T5's tokenizer with its sentinels, as Hugging Face's `T5Tokenizer` cuts.

A T5 checkpoint's vocabulary is the SentencePiece model (`spiece.model`,
`n` pieces) followed by `extra_ids` sentinels (`tokenizer_config.json`,
Hugging Face's default 100): `<extra_id_0>` is the last id,
`n + extra_ids - 1`, `<extra_id_k>` is `n + extra_ids - 1 - k`. KerasHub's
`T5Tokenizer` is the bare SentencePiece model, which spells `<extra_id_0>`
out as pieces and `<unk>`. `T5SentinelTokenizer` splits the text at each
sentinel first, eating the whitespace around it (Hugging Face's sentinels
are added tokens with `lstrip`/`rstrip`), tokenizes the pieces between with
SentencePiece, and puts each sentinel's single id in place. `detokenize`
prints sentinels back, and `vocabulary_size()` counts them, so generation
(`kerasft.generation.limit_vocabulary`) can emit them.

Between sentinels the text is SentencePiece's, the tokenizer T5 was
trained with, except that U+0085 (NEL) becomes a space as in Hugging
Face's fast tokenizer (SentencePiece maps it to `<unk>`). Hugging Face's
fast T5 tokenizer, converted from `spiece.model`, also differs from
SentencePiece inside some runs of unknown characters mixed with combining
marks (about 1% of the multilingual test corpus); there kerasft keeps
SentencePiece's ids (see docs/text.md).
"""

import re

import keras
import keras_hub

from kerasft.backbones._wordpiece import _WHITESPACE
from kerasft.backbones._wordpiece import _WHITESPACE_RE


def _sentinel_pattern(extra_ids, whitespace):
    names = "|".join(str(k) for k in range(extra_ids - 1, -1, -1))
    return f"{whitespace}*<extra_id_(?:{names})>{whitespace}*"


@keras.saving.register_keras_serializable(package="kerasft")
class T5SentinelTokenizer(keras_hub.models.T5Tokenizer):
    """KerasHub `T5Tokenizer` plus Hugging Face's `<extra_id_N>` ids.

    Args:
        proto: the SentencePiece model (path or bytes), as for
            `keras_hub.models.T5Tokenizer`.
        extra_ids: number of sentinels after the SentencePiece pieces
            (`tokenizer_config.json`'s `extra_ids`). Defaults to `100`.
        **kwargs: passed to `keras_hub.models.T5Tokenizer`.

    Example:
    ```python
    tokenizer = T5SentinelTokenizer(proto="t5/spiece.model", extra_ids=100)
    tokenizer("The <extra_id_0> walks in <extra_id_1> park")
    ```
    """

    def __init__(self, proto=None, extra_ids=100, **kwargs):
        if (
            isinstance(extra_ids, bool)
            or not isinstance(extra_ids, int)
            or extra_ids < 0
        ):
            raise ValueError(
                "`extra_ids` must be a non-negative integer. "
                f"Received: extra_ids={extra_ids!r}"
            )
        self.extra_ids = extra_ids
        self._spm = None
        self._tf_spm = None
        super().__init__(proto=proto, **kwargs)

    def set_proto(self, proto):
        self._spm = None
        self._tf_spm = None
        super().set_proto(proto)
        if self.proto is not None:
            # tf.data pipelines need it built outside their graphs.
            self._tf_sentencepiece()

    # === Vocabulary ===

    def piece_count(self):
        """Number of SentencePiece pieces (ids below are pieces)."""
        return super().vocabulary_size()

    def vocabulary_size(self):
        return self.piece_count() + self.extra_ids

    def get_vocabulary(self):
        return super().get_vocabulary() + [
            f"<extra_id_{k}>" for k in range(self.extra_ids - 1, -1, -1)
        ]

    def id_to_token(self, id):
        pieces = self.piece_count()
        if pieces <= id < self.vocabulary_size():
            return f"<extra_id_{self.vocabulary_size() - 1 - id}>"
        return super().id_to_token(id)

    def token_to_id(self, token):
        if hasattr(token, "numpy"):
            token = token.numpy()
        if isinstance(token, bytes):
            token = token.decode("utf-8")
        match = re.fullmatch(r"<extra_id_(\d+)>", token)
        if match and int(match.group(1)) < self.extra_ids:
            return self.vocabulary_size() - 1 - int(match.group(1))
        return super().token_to_id(token)

    # === Tokenize ===

    def _python_spm(self):
        if self._spm is None:
            import sentencepiece

            self._spm = sentencepiece.SentencePieceProcessor(
                model_proto=self.proto
            )
        return self._spm

    def _tf_sentencepiece(self):
        if self._tf_spm is None:
            import tensorflow as tf
            import tensorflow_text as tf_text

            # Built eagerly, even on a first call inside tf.data, so that
            # later graphs can use it too.
            with tf.init_scope():
                self._tf_spm = tf_text.SentencepieceTokenizer(
                    model=self.proto, out_type="int32"
                )
        return self._tf_spm

    def token_ids(self, text):
        """Hugging Face's ids of one string (no `</s>`)."""
        text = text.replace("\x85", " ")
        if not self.extra_ids:
            return self._python_spm().encode(text)
        ws = "[" + _WHITESPACE + "]"
        pattern = _sentinel_pattern(self.extra_ids, ws)
        ids, position = [], 0
        for match in re.finditer(pattern, text):
            ids += self._python_spm().encode(text[position : match.start()])
            ids.append(self.token_to_id(match.group(0).strip(_WHITESPACE)))
            position = match.end()
        return ids + self._python_spm().encode(text[position:])

    def tokenize(self, inputs):
        import tensorflow as tf

        if tf.inside_function():
            return self._tokenize_graph(inputs)
        from kerasft.backbones._wordpiece import _python_strings

        texts, batched = _python_strings(inputs)
        rows = [self.token_ids(t) for t in texts]
        return _shape_rows(self, rows, batched)

    def _tokenize_graph(self, inputs):
        import tensorflow as tf
        import tensorflow_text as tf_text

        text = tf.convert_to_tensor(inputs)
        unbatched = text.shape.rank == 0
        if unbatched:
            text = tf.expand_dims(text, 0)
        spm = self._tf_sentencepiece()
        text = tf.strings.regex_replace(text, "\x85", " ")
        # tf_text's SentencePiece stops at NUL, which SentencePiece
        # itself reads as an unknown character; a private-use character
        # is unknown in the same way (it is not in T5's vocabulary).
        text = tf.strings.regex_replace(text, "\x00", "\ue000")
        if self.extra_ids:
            pattern = _sentinel_pattern(self.extra_ids, _WHITESPACE_RE)
            chunks = tf_text.regex_split(text, pattern, pattern)
            flat = chunks.flat_values
            sentinel = tf.strings.regex_full_match(flat, pattern)
            number = tf.strings.to_number(
                tf.strings.regex_replace(
                    tf.where(sentinel, flat, "<extra_id_0>"),
                    r"[^0-9]",
                    "",
                ),
                tf.int32,
            )
            pieces = spm.tokenize(tf.where(sentinel, "", flat))
            ids = tf.where(sentinel, self.vocabulary_size() - 1 - number, -1)
            extra = tf.RaggedTensor.from_row_lengths(
                tf.boolean_mask(ids, sentinel), tf.cast(sentinel, tf.int64)
            )
            per_chunk = tf.concat([pieces, extra], axis=1)
            tokens = tf.RaggedTensor.from_row_splits(
                per_chunk, chunks.row_splits
            ).merge_dims(1, 2)
        else:
            tokens = spm.tokenize(text)
        tokens = tf.cast(tokens, self.compute_dtype)
        if self.sequence_length:
            tokens = tokens.to_tensor(
                shape=[None, self.sequence_length],
                default_value=self.pad_token_id,
            )
        if unbatched:
            tokens = tf.squeeze(tokens, 0)
        return tokens

    # === Detokenize ===

    def detokenize(self, inputs):
        import tensorflow as tf

        if tf.inside_function():
            return self._detokenize_graph(inputs)
        rows, batched = _id_rows(inputs)
        texts = [self.text_of(row) for row in rows]
        return texts if batched else texts[0]

    def text_of(self, ids):
        """One string from ids: SentencePiece runs decoded, sentinels
        printed as `<extra_id_N>` (as Hugging Face's `decode` does)."""
        pieces = self.piece_count()
        out, run = [], []

        def flush():
            if run:
                text = self._python_spm().decode(run)
                first = self._python_spm().id_to_piece(run[0])
                if out and first.startswith("\u2581"):
                    text = " " + text
                out.append(text)
                run.clear()

        for t in ids:
            t = int(t)
            if t >= pieces:
                flush()
                out.append(self.id_to_token(t))
            else:
                run.append(t)
        flush()
        return "".join(out)

    def _detokenize_graph(self, inputs):
        import tensorflow as tf

        ids = inputs
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.convert_to_tensor(ids)
        unbatched = ids.shape.rank == 1
        if unbatched:
            ids = tf.expand_dims(ids, 0)
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(ids)
        ids = tf.cast(ids, tf.int32)
        pieces = self.piece_count()
        spm = self._tf_sentencepiece()
        flat = ids.flat_values
        is_sentinel = flat >= pieces
        names = tf.strings.join(
            [
                "<extra_id_",
                tf.strings.as_string(self.vocabulary_size() - 1 - flat),
                ">",
            ]
        )
        strings = tf.where(
            is_sentinel,
            names,
            spm.id_to_string(tf.where(is_sentinel, 0, flat)),
        )
        text = tf.strings.reduce_join(ids.with_flat_values(strings), axis=1)
        text = tf.strings.regex_replace(text, "\u2581", " ")
        text = tf.strings.regex_replace(text, "^ ", "")
        return text[0] if unbatched else text

    def get_config(self):
        config = super().get_config()
        config["extra_ids"] = self.extra_ids
        return config


def _shape_rows(tokenizer, rows, batched):
    import numpy as np

    if tokenizer.sequence_length:
        length = tokenizer.sequence_length
        rows = [r[:length] + [tokenizer.pad_token_id] * (length - len(r)) for r in rows]
        rows = np.array(rows, dtype=tokenizer.compute_dtype).reshape(len(rows), length)
    if not batched:
        return np.array(rows[0], dtype=tokenizer.compute_dtype)
    return rows


def _id_rows(inputs):
    """`(list of id lists, batched)` from ints, lists, arrays or tensors."""
    import numpy as np

    if hasattr(inputs, "to_list"):
        inputs = inputs.to_list()
    elif hasattr(inputs, "numpy"):
        inputs = inputs.numpy()
    if isinstance(inputs, np.ndarray):
        inputs = inputs.tolist()
    if isinstance(inputs, int):
        return [[inputs]], False
    if not inputs or not isinstance(inputs[0], (list, tuple)):
        return [list(inputs)], False
    return [list(r) for r in inputs], True


def sentinel_tokenizer_class():
    """The `T5SentinelTokenizer` class."""
    return T5SentinelTokenizer
