"""Byte-level BPE (GPT-2, BART, RoBERTa) exactly as Hugging Face's tokenizer.

KerasHub 0.32's `BytePairTokenizer` differs from Hugging Face's GPT-2
tokenizer on any vocabulary with merges across its own word boundaries:

- eagerly it runs the Rust `tokenizers` library with a `Split` whose
  pattern is a plain string (never found in text) and `ByteLevel(
  use_regex=False)`, so the whole text is one word and merges such as
  "Ġ Ġ" join spaces that GPT-2's regex keeps apart (a `tokenizers`-trained
  3,000-token vocabulary: 1,540 of the 5,000 test-corpus strings differ);
- inside `tf.data` it approximates GPT-2's regex with RE2 (ASCII `\\s`, a
  "६" placeholder that input text may hold) and `tf_text.regex_split`,
  which cuts a string at U+0000 (1,491 of 5,000 differ);
- BART's `<unk>` and `<mask>` in text are not kept whole.

`HFGPT2Tokenizer`, `HFBartTokenizer` and `HFRobertaTokenizer` are the
KerasHub classes with Hugging Face's pipeline, on the same vocabulary and
merges: split out the special tokens (`unsplittable_tokens`), put a space
in front of each other segment that does not start with one (when
`add_prefix_space`), split it with GPT-2's regex
`'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+`
(`\\s`: Unicode White_Space), then merge each piece's bytes. Eagerly this is
a `tokenizers.Tokenizer` set up as `transformers` sets up GPT-2's; in a
TensorFlow graph the regex runs as one RE2 rewrite (the lookahead spelled
out as alternatives; pieces separated by the byte 0xFF, which UTF-8 text
never holds) and the merges are KerasHub's own TensorFlow merges.
`kerasft.backbones.load_task` and `bert` return these for Hugging Face
folders.
"""

import re

import keras
import keras_hub

from kerasft import _keras_compat
from kerasft.backbones._wordpiece import _WHITESPACE

# Unicode White_Space (Rust's `char::is_whitespace`): `\s` in Hugging
# Face's regex.
_CODES = "".join(f"\\x{{{ord(c):04X}}}" for c in _WHITESPACE)
_S, _OTHER = f"[{_CODES}]", rf"[^{_CODES}\pL\pN]"
# GPT-2's regex for RE2, leftmost-first like Hugging Face's. Without
# lookahead, `\s+(?!\S)|\s+` becomes: a whitespace run at the end (group
# 1); a run whose last character is a space, that space starting the next
# word (groups 2, 3); any other run before a non-space, its last
# character alone (groups 4, 5).
_PATTERN = (
    rf"('s|'t|'re|'ve|'m|'ll|'d| ?\pL+| ?\pN+| ?{_OTHER}+|{_S}+$)"
    rf"|({_S}*)( (?:\pL+|\pN+|{_OTHER}+))"
    rf"|({_S}*)({_S})"
)
_SEP = b"\xff"  # never in UTF-8 text
_REWRITE = b"\\1\xff\\2\xff\\3\xff\\4\xff\\5\xff"


class _HFByteLevelMixin:
    """KerasHub byte-level BPE with Hugging Face's pre-tokenization."""

    def __init__(self, vocabulary=None, merges=None, offset_trims=None, **kwargs):
        if offset_trims is not None and (
            not isinstance(offset_trims, (list, tuple))
            or not all(isinstance(t, bool) for t in offset_trims)
        ):
            raise TypeError(
                "`offset_trims` must be `None` or a list of bools (one per "
                "trimming pass, see `kerasft.backbones._offsets."
                f"folder_trim_steps`). Received: offset_trims={offset_trims!r}"
            )
        self.offset_trims = None if offset_trims is None else tuple(offset_trims)
        super().__init__(vocabulary=vocabulary, merges=merges, **kwargs)

    def get_config(self):
        config = super().get_config()
        trims = self.offset_trims
        config["offset_trims"] = None if trims is None else list(trims)
        return config

    def set_vocabulary_and_merges(self, vocabulary, merges):
        self.__dict__["_hf_backend"] = None
        super().set_vocabulary_and_merges(vocabulary, merges)

    def tokenize(self, inputs):
        import tensorflow as tf

        if tf.inside_function():  # tf.data / tf.function: TensorFlow ops
            return self._tokenize_graph(inputs)
        return self._tokenize_eager(inputs)

    # === Eager: Hugging Face's own pipeline in `tokenizers` ===

    def _backend(self):
        backend = self.__dict__.get("_hf_backend")
        if backend is None:
            try:
                import tokenizers
            except ImportError as e:
                raise ImportError(
                    "Byte-level BPE (GPT-2, BART, RoBERTa) tokenizes eagerly "
                    "with the `tokenizers` package, which is not installed: "
                    "`pip install 'kerasft[text]'`, or tokenize inside "
                    "`tf.data` (TensorFlow ops, the same ids)."
                ) from e

            merges = [
                tuple(m.split(" ")) for m in self.merges
                if not m.lstrip().startswith("#version:")
            ]
            backend = tokenizers.Tokenizer(tokenizers.models.BPE(
                vocab=dict(self.vocabulary), merges=merges, dropout=None,
                continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False,
            ))
            backend.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(
                add_prefix_space=bool(self.add_prefix_space), use_regex=True
            )
            backend.add_special_tokens([
                tokenizers.AddedToken(t, special=True, normalized=False)
                for t in self.unsplittable_tokens or []
            ])
            self.__dict__["_hf_backend"] = backend
        return backend

    def _tokenize_eager(self, inputs):
        """Hugging Face's ids, shaped as KerasHub's Python path shapes them
        (lists, or arrays when dense)."""
        import numpy as np

        from kerasft.backbones._wordpiece import _python_strings

        self._check_vocabulary()
        texts, batched = _python_strings(inputs)
        encodings = self._backend().encode_batch(texts, add_special_tokens=False)
        strings = not keras.backend.is_int_dtype(self.compute_dtype)
        rows = [e.tokens if strings else e.ids for e in encodings]
        if self.sequence_length:
            pad = getattr(self, "pad_token_id", 0)
            rows = [
                r[: self.sequence_length] + [pad] * (self.sequence_length - len(r))
                for r in rows
            ]
            if not strings:
                rows = np.array(rows, dtype=self.compute_dtype).reshape(
                    len(rows), self.sequence_length
                )
        if not batched:
            return rows[0] if strings else np.array(rows[0], dtype=self.compute_dtype)
        return rows

    # === Graph: RE2 pre-tokenization + KerasHub's TensorFlow merges ===

    def _tokenize_graph(self, inputs):
        import tensorflow as tf

        from kerasft.backbones._wordpiece import string_batch

        self._check_vocabulary()
        inputs, scalar = string_batch(inputs)
        if inputs.shape.rank != 1:
            raise ValueError(
                "`tokenize()` inputs must be a string or a 1-D batch of "
                f"strings. Received: shape={inputs.shape}"
            )
        words = self._words_graph(inputs)  # [batch, (words)]
        pieces, ids = _keras_compat.bpe_merge_words(self, words.flat_values)
        tokens = pieces if self.compute_dtype == "string" else ids
        # A byte missing from the vocabulary is dropped, as Hugging Face's
        # BPE (without an unknown token) drops it.
        tokens = tf.ragged.boolean_mask(tokens, ids >= 0)
        tokens = words.with_flat_values(tokens).merge_dims(1, 2)
        if self.sequence_length:
            tokens = tokens.to_tensor(shape=[None, self.sequence_length])
        return tokens[0] if scalar else tokens

    def _words_graph(self, inputs):
        """Hugging Face's pre-tokens of each string, as raw UTF-8 pieces."""
        import tensorflow as tf

        specials = sorted(self.unsplittable_tokens or [], key=len, reverse=True)
        if specials:
            pattern = "|".join(re.escape(t) for t in specials)
            marked = tf.strings.regex_replace(inputs, pattern, _SEP + b"\\0" + _SEP)
            segments = tf.strings.split(marked, sep=_SEP)
        else:
            segments = tf.RaggedTensor.from_tensor(inputs[:, None])
        # No empty segment: Hugging Face adds no prefix space to nothing.
        segments = tf.ragged.boolean_mask(segments, segments != "")
        flat = segments.flat_values
        text = flat
        if self.add_prefix_space:
            # Hugging Face adds the space only where a segment does not
            # start with one.
            text = tf.strings.regex_replace(text, "^([^ ]|$)", " \\1")
        text = tf.strings.regex_replace(text, _PATTERN, _REWRITE)
        if specials:
            # A special token stays whole: its segment is not split.
            special = tf.strings.regex_full_match(flat, pattern)
            text = tf.where(special, flat, text)
        pieces = tf.strings.split(text, sep=_SEP)
        pieces = tf.ragged.boolean_mask(pieces, pieces != "")
        return segments.with_flat_values(pieces).merge_dims(1, 2)


@keras.saving.register_keras_serializable(package="kerasft")
class HFGPT2Tokenizer(_HFByteLevelMixin, keras_hub.models.GPT2Tokenizer):
    """KerasHub's `GPT2Tokenizer` with Hugging Face's exact ids, eagerly and
    inside `tf.data` (see the module docstring).

    Args:
        vocabulary: `{token: id}` or a path to `vocab.json`.
        merges: merge rules or a path to `merges.txt`.
        offset_trims: how `kerasft.backbones.token_offsets` trims spaces
            from token spans by default: a list with one bool per trimming
            pass (`_offsets.folder_trim_steps`, read from the folder by
            the loaders), or `None` for the model type's rule. Defaults
            to `None`.
        **kwargs: as `keras_hub.models.GPT2Tokenizer` (`sequence_length`,
            `add_prefix_space`, `unsplittable_tokens`: the special tokens
            kept whole, Hugging Face's added tokens).

    Example:
    ```python
    tokenizer = HFGPT2Tokenizer(vocabulary="vocab.json", merges="merges.txt")
    tokenizer(["Hello  world"])
    ```
    """


@keras.saving.register_keras_serializable(package="kerasft")
class HFBartTokenizer(_HFByteLevelMixin, keras_hub.models.BartTokenizer):
    """KerasHub's `BartTokenizer` with Hugging Face's exact ids (see
    `HFGPT2Tokenizer`).

    Example:
    ```python
    tokenizer = HFBartTokenizer(vocabulary="vocab.json", merges="merges.txt")
    ```
    """


@keras.saving.register_keras_serializable(package="kerasft")
class HFRobertaTokenizer(_HFByteLevelMixin, keras_hub.models.RobertaTokenizer):
    """KerasHub's `RobertaTokenizer` with Hugging Face's exact ids (see
    `HFGPT2Tokenizer`).

    Example:
    ```python
    tokenizer = HFRobertaTokenizer(vocabulary="vocab.json", merges="merges.txt")
    ```
    """


# === From a Hugging Face folder ===

_CLASSES = (  # KerasHub class -> its Hugging Face-exact subclass
    (keras_hub.models.GPT2Tokenizer, HFGPT2Tokenizer),
    (keras_hub.models.BartTokenizer, HFBartTokenizer),
    (keras_hub.models.RobertaTokenizer, HFRobertaTokenizer),
)
# transformers' special tokens of each class when tokenizer_config.json
# does not name them.
_DEFAULT_SPECIALS = {
    "GPT2Tokenizer": {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
                      "unk_token": "<|endoftext|>"},
    "RobertaTokenizer": {"bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>",
                         "cls_token": "<s>", "unk_token": "<unk>", "pad_token": "<pad>",
                         "mask_token": "<mask>"},
}
_DEFAULT_SPECIALS["BartTokenizer"] = _DEFAULT_SPECIALS["RobertaTokenizer"]


def special_tokens(tokenizer_class, vocabulary, tokenizer_config=None):
    """The tokens Hugging Face keeps whole in text for a byte-level BPE
    folder: its named special tokens (`bos_token`, ..., `mask_token`, the
    class's defaults where `tokenizer_config.json` names none) and the
    `added_tokens_decoder` entries, those in `vocabulary`, longest first.

    Args:
        tokenizer_class: `"GPT2Tokenizer"`, `"BartTokenizer"` or
            `"RobertaTokenizer"`.
        vocabulary: the `{token: id}` vocabulary.
        tokenizer_config: the folder's parsed `tokenizer_config.json`, or
            `None`.

    Returns:
        A list of strings. A token that is not in `vocabulary` is left out:
        Hugging Face gives it a new id past the vocabulary, which the
        model has no embedding for.

    Example:
    ```python
    special_tokens("BartTokenizer", tokenizer.vocabulary)
    # ["<mask>", "<pad>", "<unk>", "</s>", "<s>"]
    ```
    """
    config = tokenizer_config or {}
    named = dict(_DEFAULT_SPECIALS.get(tokenizer_class, {}))
    named.update({k: v for k, v in config.items() if k in _DEFAULT_SPECIALS["RobertaTokenizer"]})
    found = [_content(v) for v in named.values()]
    found += [_content(v) for v in (config.get("added_tokens_decoder") or {}).values()]
    kept = {t for t in found if t and t in vocabulary}
    return sorted(kept, key=lambda t: (-len(t), t))


def _content(value):
    return value.get("content") if isinstance(value, dict) else value


def exact_preprocessor(preprocessor, source, feature):
    """`preprocessor` with its byte-level BPE tokenizer replaced by the
    Hugging Face-exact one for the folder (or `hf://` handle) `source`.

    Same vocabulary, merges and settings; `unsplittable_tokens` are the
    folder's special tokens (`special_tokens`), `add_prefix_space` is
    `tokenizer_config.json`'s, and `offset_trims` (how `token_offsets`
    trims) the folder's (`_offsets.read_folder_trims`). Other
    preprocessors are returned as they are.

    Args:
        preprocessor: a KerasHub preprocessor built from `source`.
        source: a local folder or an `hf://` handle.
        feature: what is loading it, named in errors about KerasHub
            internals.

    Returns:
        A preprocessor of the same class.

    Example:
    ```python
    preprocessor = exact_preprocessor(task.preprocessor, folder, "load_task")
    ```
    """
    from kerasft.backbones import _offsets

    tokenizer = preprocessor.tokenizer
    exact_cls = next((new for old, new in _CLASSES if type(tokenizer) is old), None)
    if exact_cls is None:
        return preprocessor
    base = next(old for old, new in _CLASSES if new is exact_cls).__name__
    tokenizer_config = None
    if _keras_compat.preset_file_exists(source, "tokenizer_config.json", feature):
        tokenizer_config = _keras_compat.preset_load_json(source, "tokenizer_config.json", feature)
    config = tokenizer.get_config()
    config["unsplittable_tokens"] = special_tokens(base, tokenizer.vocabulary, tokenizer_config)
    # transformers builds the pre-tokenizer from this key (default false);
    # KerasHub's converter does not read it.
    config["add_prefix_space"] = bool((tokenizer_config or {}).get("add_prefix_space", False))
    config["offset_trims"] = list(_offsets.read_folder_trims(source, base, feature))
    exact = exact_cls.from_config(config)
    exact.set_vocabulary_and_merges(dict(tokenizer.vocabulary), list(tokenizer.merges))
    return type(preprocessor).from_config({**preprocessor.get_config(), "tokenizer": exact})
