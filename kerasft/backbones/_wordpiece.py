"""BERT WordPiece exactly as Hugging Face's fast tokenizer (`tokenizer.json`).

KerasHub's `WordPieceTokenizer` lowercases with `tf_text.case_fold_utf8`
(NFKC normalisation plus full case folding: "2½" -> "21⁄2", "straße" ->
"strasse", "…" -> "...") and caps words at 100 *bytes*. Hugging Face's
`BertNormalizer` + `BertPreTokenizer` + `WordPiece` (the same rules as
BERT's original `tokenization.py`, which every BERT checkpoint was trained
with) do, in order:

1. clean text: drop U+0000, U+FFFD and every "other" character (categories
   Cc, Cf, Co, Cs; unassigned code points stay) except tab/newline/CR; turn every
   White_Space character into a space;
2. put spaces around CJK ideographs;
3. strip accents (when asked): NFD, then drop nonspacing marks (Mn);
4. lowercase (when asked): each character's full lowercase mapping, with no
   final-sigma rule (Σ is always σ);
5. split on whitespace and around each punctuation character (ASCII
   punctuation and Unicode category P);
6. WordPiece: greedy longest match, `##` continuations, a word longer than
   100 *characters* or with an unmatched remainder is one `[UNK]`.

`HFBertTokenizer` / `HFDistilBertTokenizer` do steps 1-5 with TensorFlow
ops (so they run inside `tf.data` graphs) and step 6 with KerasHub's
`FastWordpieceTokenizer`. `encode_with_offsets` does the same steps in
Python, keeping each normalised character's source character, so it also
returns Hugging Face's character offsets (used by SQuAD windows).

Known differences from Hugging Face (documented in docs/text.md): the
Unicode tables differ between RE2/ICU (TensorFlow), Python's `unicodedata`
and Rust, so characters assigned in a recent Unicode version may be
classified differently; literal special-token strings such as "[SEP]" in
the text are tokenized as text (Hugging Face matches them as its added
tokens).
"""

import dataclasses
import json
import unicodedata

import keras
import keras_hub

from kerasft import _keras_compat

_FEATURE = "kerasft's Hugging Face WordPiece tokenizer"

# Rust's `char::is_whitespace` (the White_Space property).
_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_WHITESPACE_RE = "[" + "".join(f"\\x{{{ord(c):04X}}}" for c in _WHITESPACE) + "]"
# The same without " " (replacing a space by a space is wasted work).
_OTHER_WHITESPACE_RE = (
    "[" + "".join(f"\\x{{{ord(c):04X}}}" for c in _WHITESPACE if c != " ") + "]"
)
# Removed by clean_text: NUL, U+FFFD and "other" characters (Cc except
# \t\n\r, Cf, Co; Cs cannot occur in UTF-8). Unassigned code points are
# kept, as Hugging Face keeps them.
_CONTROL_RE = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x{9F}\x{FFFD}\p{Cf}\p{Co}]"
# Ranges of Hugging Face's `BertNormalizer` (`is_chinese_char`).
_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B920, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)
_CJK_RE = "[" + "".join(f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in _CJK_RANGES) + "]"
_PUNCTUATION_RE = r"[!-/:-@\[-`{-~\p{P}]"


@dataclasses.dataclass(frozen=True)
class Normalization:
    """Hugging Face `BertNormalizer` / `WordPiece` settings of a folder.

    Args:
        lowercase: lowercase the text (`do_lower_case`).
        strip_accents: NFD + drop nonspacing marks. Hugging Face defaults it
            to `lowercase`.
        chinese_chars: spaces around CJK ideographs
            (`tokenize_chinese_chars`).
        clean_text: drop control characters, map whitespace to spaces.
        max_chars_per_word: longer words become the unknown token.
    """

    lowercase: bool = True
    strip_accents: bool = True
    chinese_chars: bool = True
    clean_text: bool = True
    max_chars_per_word: int = 100


def read_normalization(source, feature=_FEATURE):
    """The `Normalization` Hugging Face applies for `source`.

    `tokenizer.json`'s `BertNormalizer` and `WordPiece` are read first; keys
    present in `tokenizer_config.json` (`do_lower_case`, `strip_accents`,
    `tokenize_chinese_chars`) override them, as `BertTokenizerFast` does.

    Args:
        source: a local folder or an `hf://` handle.
        feature: the feature named in errors.

    Returns:
        A `Normalization`.

    Example:
    ```python
    norm = read_normalization("path/to/bert-base-cased")
    ```
    """
    values = {}
    if _keras_compat.preset_file_exists(source, "tokenizer.json", feature):
        spec = _keras_compat.preset_load_json(source, "tokenizer.json", feature)
        normalizer = spec.get("normalizer") or {}
        if normalizer.get("type") == "BertNormalizer":
            values["lowercase"] = normalizer.get("lowercase", True)
            values["strip_accents"] = normalizer.get("strip_accents")
            values["chinese_chars"] = normalizer.get("handle_chinese_chars", True)
            values["clean_text"] = normalizer.get("clean_text", True)
        model = spec.get("model") or {}
        if "max_input_chars_per_word" in model:
            values["max_chars_per_word"] = model["max_input_chars_per_word"]
    if _keras_compat.preset_file_exists(source, "tokenizer_config.json", feature):
        config = _keras_compat.preset_load_json(
            source, "tokenizer_config.json", feature
        )
        for key, name in (
            ("do_lower_case", "lowercase"),
            ("strip_accents", "strip_accents"),
            ("tokenize_chinese_chars", "chinese_chars"),
        ):
            if key in config:
                values[name] = config[key]
    lowercase = bool(values.get("lowercase", True))
    strip = values.get("strip_accents")
    return Normalization(
        lowercase=lowercase,
        strip_accents=lowercase if strip is None else bool(strip),
        chinese_chars=bool(values.get("chinese_chars", True)),
        clean_text=bool(values.get("clean_text", True)),
        max_chars_per_word=int(values.get("max_chars_per_word", 100)),
    )


# === TensorFlow ops (graph mode) ===


def normalize_tf(text, norm):
    """Steps 1-4 on a string tensor of any shape."""
    import tensorflow as tf
    import tensorflow_text as tf_text

    if norm.clean_text:
        text = tf.strings.regex_replace(text, _CONTROL_RE, "")
        text = tf.strings.regex_replace(text, _OTHER_WHITESPACE_RE, " ")
    if norm.chinese_chars:
        text = tf.strings.regex_replace(text, _CJK_RE, r" \0 ")
    if norm.strip_accents:
        text = tf_text.normalize_utf8(text, "NFD")
        text = tf.strings.regex_replace(text, r"\p{Mn}", "")
    if norm.lowercase:
        # ICU's toLower applies the final-sigma rule; Hugging Face does not.
        text = tf.strings.regex_replace(text, "\u03a3", "\u03c3")
        text = tf.strings.lower(text, encoding="utf-8")
    return text


def words_tf(text, norm, unknown_token):
    """Steps 1-5: `(batch,)` strings -> `(batch, None)` ragged words (a
    scalar gives `(None,)`); words over `max_chars_per_word` characters
    become `unknown_token`."""
    import tensorflow as tf
    import tensorflow_text as tf_text

    text = normalize_tf(tf.convert_to_tensor(text), norm)
    words = tf_text.regex_split(
        text,
        delim_regex_pattern=_WHITESPACE_RE + "|" + _PUNCTUATION_RE,
        keep_delim_regex_pattern=_PUNCTUATION_RE,
    )
    flat = words.flat_values if isinstance(words, tf.RaggedTensor) else words
    if norm.max_chars_per_word < 1000:  # RE2 repeats at most 1000 times
        # Much faster than a ragged `tf.strings.length` + `tf.where`.
        long = f"^.{{{norm.max_chars_per_word + 1},}}$"
        flat = tf.strings.regex_replace(
            flat, long, _escape_replacement(unknown_token)
        )
    else:
        too_long = tf.strings.length(flat, unit="UTF8_CHAR") > norm.max_chars_per_word
        flat = tf.where(too_long, tf.constant(unknown_token), flat)
    if isinstance(words, tf.RaggedTensor):
        return words.with_flat_values(flat)
    return flat


def _escape_replacement(text):
    """`text` as a literal RE2 replacement (backslashes doubled)."""
    return text.replace("\\", "\\\\")


# === Python (with character offsets) ===


def _is_other(ch):
    return unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs")


def _is_chinese(cp):
    return any(a <= cp <= b for a, b in _CJK_RANGES)


def _is_punctuation(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def normalize_python(text, norm):
    """Steps 1-4 in Python: `(chars, origin)`, the normalised characters and
    for each the index of the character of `text` it came from."""
    chars, origin = [], []
    for index, ch in enumerate(text):
        if norm.clean_text:
            if ch in "\x00\ufffd" or (ch not in "\t\n\r" and _is_other(ch)):
                continue
            if ch in _WHITESPACE:
                ch = " "
        if norm.chinese_chars and _is_chinese(ord(ch)):
            out = " " + ch + " "
        else:
            out = ch
        if norm.strip_accents:
            out = "".join(
                c
                for c in unicodedata.normalize("NFD", out)
                if unicodedata.category(c) != "Mn"
            )
        if norm.lowercase:
            out = "".join(c.lower() for c in out)
        chars.extend(out)
        origin.extend([index] * len(out))
    return chars, origin


def words_python(text, norm):
    """Steps 1-5 in Python: `[(word, start, end)]` with character offsets
    into `text`."""
    chars, origin = normalize_python(text, norm)
    words, current = [], []

    def flush():
        if current:
            word = "".join(chars[k] for k in current)
            words.append((word, [origin[k] for k in current]))
            current.clear()

    for k, ch in enumerate(chars):
        if ch in _WHITESPACE:
            flush()
        elif _is_punctuation(ch):
            flush()
            current.append(k)
            flush()
        else:
            current.append(k)
    flush()
    return words


def wordpiece_python(word, vocabulary, norm, unknown_token, prefix="##"):
    """Step 6: `[(piece, start, end)]` with `start/end` indices into `word`
    (the whole word for the unknown token)."""
    if len(word) > norm.max_chars_per_word:
        return [(unknown_token, 0, len(word))]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = word[start:end] if start == 0 else prefix + word[start:end]
            if piece in vocabulary:
                break
            end -= 1
        if end == start:
            return [(unknown_token, 0, len(word))]
        pieces.append((piece, start, end))
        start = end
    return pieces


def encode_with_offsets(tokenizer, text):
    """Hugging Face's ids and character offsets of `text` (no specials).

    Args:
        tokenizer: an `HFBertTokenizer` or `HFDistilBertTokenizer`.
        text: a string.

    Returns:
        `(ids, offsets)`: a list of ids and a list of `(start, end)`
        character spans into `text`, as `tokenizer.json`'s
        `encode(text, add_special_tokens=False)` gives.

    Example:
    ```python
    ids, offsets = encode_with_offsets(backbone.tokenizer.tokenizer, "Café!")
    ```
    """
    ids, offsets = [], []
    # Whitespace separates words and no step joins across it, so each
    # whitespace-free chunk is tokenized on its own, once (cached). With
    # clean_text, \x0b \x0c \x85 are removed as controls, not spaces.
    separators = _WHITESPACE
    if tokenizer.normalization.clean_text:
        separators = "".join(c for c in _WHITESPACE if not _is_other(c))
    start = None
    for index, ch in enumerate(text + " "):
        if ch in separators:
            if start is not None:
                for token, s, e in tokenizer.chunk_tokens(text[start:index]):
                    ids.append(token)
                    offsets.append((start + s, start + e))
                start = None
        elif start is None:
            start = index
    return ids, offsets


def _chunk_tokens(tokenizer, chunk):
    """`(id, start, end)` of a whitespace-free `chunk`."""
    vocabulary = tokenizer.token_index()
    out = []
    for word, origin in words_python(chunk, tokenizer.normalization):
        for piece, s, e in wordpiece_python(
            word, vocabulary, tokenizer.normalization, tokenizer.oov_token,
            tokenizer.suffix_indicator,
        ):
            out.append((vocabulary[piece], origin[s], origin[e - 1] + 1))
    return tuple(out)


# === Keras tokenizers ===


class _HFWordPieceMixin:
    """KerasHub WordPiece with Hugging Face's normalisation in front."""

    def __init__(
        self,
        vocabulary=None,
        lowercase=True,
        strip_accents=None,
        chinese_chars=True,
        clean_text=True,
        max_chars_per_word=100,
        **kwargs,
    ):
        for fixed in ("split", "split_on_cjk"):
            kwargs.pop(fixed, None)
        self.normalization = Normalization(
            lowercase=bool(lowercase),
            strip_accents=bool(lowercase if strip_accents is None else strip_accents),
            chinese_chars=bool(chinese_chars),
            clean_text=bool(clean_text),
            max_chars_per_word=int(max_chars_per_word),
        )
        self._token_index = None
        # KerasHub sees pre-split, normalised words only.
        super().__init__(vocabulary=vocabulary, split=False, **kwargs)
        self.lowercase = False
        self.strip_accents = False

    def set_vocabulary(self, vocabulary):
        super().set_vocabulary(vocabulary)
        self._token_index = None
        self.__dict__["_chunk_cache"] = {}
        if self.vocabulary is not None:
            # Words of up to `max_chars_per_word` characters (4 UTF-8 bytes
            # each) must reach WordPiece; KerasHub caps them at 100 bytes.
            _keras_compat.wordpiece_set_max_bytes(
                self, 4 * self.normalization.max_chars_per_word
            )

    def token_index(self):
        """`{token: id}` of the vocabulary."""
        if self._token_index is None:
            self._token_index = {t: i for i, t in enumerate(self.vocabulary)}
        return self._token_index

    def tokenize(self, inputs):
        import tensorflow as tf

        if tf.inside_function():  # tf.data / tf.function: TensorFlow ops
            inputs, scalar = string_batch(inputs)
            words = words_tf(inputs, self.normalization, self.oov_token)
            tokens = super().tokenize(words)
            return tokens[0] if scalar else tokens
        return self._tokenize_eager(inputs)

    def _tokenize_eager(self, inputs):
        """The same ids in Python, shaped as KerasHub's Python path shapes
        them (lists, or arrays when dense)."""
        import numpy as np

        texts, batched = _python_strings(inputs)
        rows = [self.token_ids(text) for text in texts]
        if self.sequence_length:
            rows = [
                r[: self.sequence_length] + [0] * (self.sequence_length - len(r))
                for r in rows
            ]
            rows = np.array(rows, dtype=self.compute_dtype).reshape(
                len(rows), self.sequence_length
            )
        if not batched:
            return np.array(rows[0], dtype=self.compute_dtype)
        return rows

    def chunk_tokens(self, chunk):
        """`(id, start, end)` of a whitespace-free piece of text (cached)."""
        cache = self.__dict__.setdefault("_chunk_cache", {})
        found = cache.get(chunk)
        if found is None:
            if len(cache) >= 200_000:
                cache.clear()
            found = cache[chunk] = _chunk_tokens(self, chunk)
        return found

    def clear_cache(self):
        """Forgets the cached chunk tokenizations (e.g. for benchmarks)."""
        self.__dict__["_chunk_cache"] = {}

    def token_ids(self, text):
        """Hugging Face's ids of one string (no special tokens)."""
        return encode_with_offsets(self, text)[0]

    def get_config(self):
        config = super().get_config()
        for key in ("split", "split_on_cjk", "strip_accents"):
            config.pop(key, None)
        norm = self.normalization
        config.update(
            lowercase=norm.lowercase,
            strip_accents=norm.strip_accents,
            chinese_chars=norm.chinese_chars,
            clean_text=norm.clean_text,
            max_chars_per_word=norm.max_chars_per_word,
        )
        return config


def string_batch(inputs):
    """`(strings, scalar)`: `inputs` (a string, a list or a tensor) as a
    string tensor of rank >= 1, and whether it was one string."""
    import tensorflow as tf

    if isinstance(inputs, (list, tuple)):
        inputs = tf.constant(list(inputs), dtype=tf.string)
    inputs = tf.convert_to_tensor(inputs)
    scalar = inputs.shape.rank == 0
    return (inputs[None] if scalar else inputs), scalar


def _python_strings(inputs):
    """`(list of str, batched)` from a string, a list, or a rank 0/1 string
    array or tensor."""
    import numpy as np

    if hasattr(inputs, "numpy"):
        inputs = inputs.numpy()
    if isinstance(inputs, np.ndarray):
        if inputs.ndim > 1:
            raise ValueError(
                "Text inputs must be a string or a 1-D batch of strings. "
                f"Received: shape={inputs.shape}"
            )
        inputs = inputs.tolist() if inputs.ndim == 1 else inputs.item()
    batched = isinstance(inputs, (list, tuple))
    texts = list(inputs) if batched else [inputs]
    texts = [t.decode("utf-8") if isinstance(t, bytes) else t for t in texts]
    for t in texts:
        if not isinstance(t, str):
            raise TypeError(
                f"Text inputs must be strings. Received: {type(t).__name__}"
            )
    return texts, batched


@keras.saving.register_keras_serializable(package="kerasft")
class HFBertTokenizer(_HFWordPieceMixin, keras_hub.models.BertTokenizer):
    """KerasHub `BertTokenizer` cutting text as Hugging Face's
    `tokenizer.json` does (see this module's docstring)."""


@keras.saving.register_keras_serializable(package="kerasft")
class HFDistilBertTokenizer(_HFWordPieceMixin, keras_hub.models.DistilBertTokenizer):
    """KerasHub `DistilBertTokenizer` cutting text as Hugging Face's
    `tokenizer.json` does (see this module's docstring)."""


_CLASSES = {"bert": HFBertTokenizer, "distilbert": HFDistilBertTokenizer}


def tokenizer_class(family):
    """The Hugging Face-exact tokenizer class for `"bert"`/`"distilbert"`."""
    return _CLASSES[family]


def make_tokenizer(family, vocabulary, norm, unknown_token="[UNK]"):
    """An `HF*Tokenizer` for `family` with `vocabulary` and `norm`."""
    return tokenizer_class(family)(
        vocabulary=vocabulary,
        lowercase=norm.lowercase,
        strip_accents=norm.strip_accents,
        chinese_chars=norm.chinese_chars,
        clean_text=norm.clean_text,
        max_chars_per_word=norm.max_chars_per_word,
        oov_token=unknown_token,
    )


def has_wordpiece_vocabulary(path):
    """Whether the `tokenizer.json` at `path` holds a WordPiece model."""
    with open(path, encoding="utf-8") as f:
        spec = json.load(f)
    model = spec.get("model") or {}
    return model.get("type") == "WordPiece" and isinstance(model.get("vocab"), dict)


def vocabulary_from_tokenizer_json(path):
    """The WordPiece vocabulary (a list by id) in a `tokenizer.json`."""
    with open(path, encoding="utf-8") as f:
        spec = json.load(f)
    vocab = (spec.get("model") or {}).get("vocab")
    if not isinstance(vocab, dict):
        raise ValueError(f"{path!r} holds no WordPiece vocabulary (model.vocab).")
    return [t for t, _ in sorted(vocab.items(), key=lambda item: item[1])]
