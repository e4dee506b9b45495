"""Token ids and character offsets, as Hugging Face's `offset_mapping`.

`token_offsets(tokenizer, text)` returns kerasft's own ids of `text` and,
for each token, the `(start, end)` characters of `text` it came from,
equal to Hugging Face's fast tokenizer's `offset_mapping` for the same
folder (`encode(text, add_special_tokens=False)`). One implementation per
tokenizer kind; none calls Hugging Face:

- WordPiece (`kerasft.backbones.bert`): `_wordpiece.encode_with_offsets`
  (a plain KerasHub `WordPieceTokenizer`: `kerasft.data.squad`'s word walk).
- Byte-level BPE (GPT-2, BART, RoBERTa; KerasHub `BytePairTokenizer`):
  each token is a run of the text's UTF-8 bytes; a token spans the
  characters holding its first and last byte (so two tokens that split a
  multi-byte character both span all of it), then Hugging Face's
  `trim_offsets` drops the spaces (`Ġ`) at either end of a token, as the
  folder says (`folder_trim_steps`, kept in the tokenizer's
  `offset_trims`); without it, RoBERTa/BART tokenizers trim and GPT-2's
  do not.
- T5 (`T5SentinelTokenizer`): the ids are SentencePiece's; the offsets
  follow Hugging Face's pipeline: the text is cut at each sentinel (which
  spans its `<extra_id_N>`), each chunk normalised as `tokenizers`'
  `Precompiled` normaliser aligns characters (graphemes looked up whole
  by their shortest mapped prefix, the i-th output character aligned to
  the i-th input character, removed characters in no span), split at
  whitespace, with a "▁" aligned to each word's first character; each
  piece spans the characters its normalised characters are aligned to.
  Where SentencePiece and Hugging Face normalise a chunk differently (so
  that their ids may differ too, see docs/text.md), SentencePiece's own
  piece spans are given, without the whitespace before a word.
"""

import weakref

import numpy as np

_TABLES = weakref.WeakKeyDictionary()  # BPE tokenizer -> per-id table


def token_offsets(tokenizer, text, trim_offsets=None):
    """Ids of `text` and each token's `(start, end)` character span.

    Args:
        tokenizer: a kerasft/KerasHub text tokenizer: WordPiece
            (`kerasft.backbones.bert(...).tokenizer.tokenizer` or a KerasHub
            `WordPieceTokenizer`), byte-level BPE (the GPT-2, BART or
            RoBERTa tokenizer `kerasft.backbones.load_task` / `bert` build)
            or T5 (`T5SentinelTokenizer`).
        text: a string, or a list of strings.
        trim_offsets: byte-level BPE only: drop the spaces at either end
            of a token's span, as Hugging Face's `trim_offsets` post
            processing. Defaults to `None`: what Hugging Face does for the
            folder the tokenizer was loaded from (the tokenizer's
            `offset_trims`, which `kerasft.backbones` sets from the folder
            and which survives `get_config`); for a tokenizer without it,
            what Hugging Face does for the model type's default files:
            `True` for RoBERTa and BART, `False` for GPT-2.

    Returns:
        `(ids, offsets)`: a list of ids and a list of `(start, end)`
        character spans into `text`, equal to Hugging Face's `input_ids`
        and `offset_mapping` without special tokens; for a list of
        strings, a list of such pairs.

    Example:
    ```python
    ids, offsets = token_offsets(task.preprocessor.tokenizer, "Café, naïve")
    ```
    """
    batched = isinstance(text, (list, tuple))
    texts = list(text) if batched else [text]
    for t in texts:
        if not isinstance(t, str):
            raise TypeError(
                "`text` must be a string or a list of strings. "
                f"Received an item of type {type(t).__name__}: {t!r}"
            )
    kind = tokenizer_kind(tokenizer)
    if trim_offsets is not None and not isinstance(trim_offsets, bool):
        raise TypeError(
            "`trim_offsets` must be `None`, `True` or `False`. Received: "
            f"trim_offsets={trim_offsets!r}"
        )
    if trim_offsets is not None and kind != "byte_level_bpe":
        raise ValueError(
            "`trim_offsets` applies to byte-level BPE tokenizers only. "
            f"Received: trim_offsets={trim_offsets!r} with a {kind} tokenizer "
            f"({type(tokenizer).__name__}); leave it out."
        )
    if kind == "byte_level_bpe":
        out = _byte_level_offsets(tokenizer, texts, trim_offsets)
    elif kind == "t5":
        out = [_t5_offsets(tokenizer, t) for t in texts]
    else:
        from kerasft.data.squad import _wordpiece_offsets

        out = [_wordpiece_offsets(tokenizer, t) for t in texts]
    return out if batched else out[0]


def tokenizer_kind(tokenizer):
    """`"wordpiece"`, `"byte_level_bpe"` or `"t5"`: which offsets apply.

    Args:
        tokenizer: a tokenizer (see `token_offsets`).

    Returns:
        The kind, a string.

    Example:
    ```python
    tokenizer_kind(task.preprocessor.tokenizer)  # "byte_level_bpe"
    ```
    """
    kind = _kind(tokenizer)
    if kind is not None:
        return kind
    raise TypeError(
        "`tokenizer` must be a WordPiece, byte-level BPE (GPT-2, BART, "
        "RoBERTa) or T5 tokenizer from `kerasft.backbones`. Received: "
        f"{type(tokenizer).__name__} (a bare KerasHub T5Tokenizer has no "
        "sentinels: load the folder with `kerasft.backbones.load_task`)."
    )


def _kind(tokenizer):
    import keras_hub

    from kerasft.backbones._t5_tokenizer import T5SentinelTokenizer

    if isinstance(tokenizer, T5SentinelTokenizer):
        return "t5"
    if isinstance(tokenizer, keras_hub.tokenizers.BytePairTokenizer):
        return "byte_level_bpe"
    if isinstance(tokenizer, keras_hub.tokenizers.WordPieceTokenizer):
        return "wordpiece"
    return None


# === Byte-level BPE ===

_BYTE_CHARS = None  # the 256 characters GPT-2 writes bytes as


def _byte_chars():
    global _BYTE_CHARS
    if _BYTE_CHARS is None:
        printable = (list(range(ord("!"), ord("~") + 1))
                     + list(range(ord("¡"), ord("¬") + 1))
                     + list(range(ord("®"), ord("ÿ") + 1)))
        chars, extra = {}, 0
        for b in range(256):
            if b in printable:
                chars[chr(b)] = b
            else:
                chars[chr(256 + extra)] = b
                extra += 1
        _BYTE_CHARS = chars
    return _BYTE_CHARS


def _token_row(token):
    """`(bytes, leading spaces, trailing spaces)` of one BPE token."""
    from kerasft.backbones._wordpiece import _WHITESPACE

    chars = _byte_chars()
    size = sum(1 if c in chars else len(c.encode("utf-8")) for c in token)
    lead = len(token) - len(token.lstrip("\u0120" + _WHITESPACE))
    trail = len(token) - len(token.rstrip("\u0120" + _WHITESPACE))
    return size, lead, trail


def _table(tokenizer):
    """Per id: byte count, leading and trailing spaces (cached)."""
    size = tokenizer.vocabulary_size()
    cached = _TABLES.get(tokenizer)
    if cached is not None and len(cached) == size:
        return cached
    table = np.zeros((size, 3), "int64")
    for token, i in tokenizer.vocabulary.items():
        if 0 <= int(i) < size:
            table[int(i)] = _token_row(token)
    _TABLES[tokenizer] = table
    return table


# Hugging Face tokenizer classes whose constructor sets the post processor
# itself (`RobertaProcessing` from `tokenizer_config.json`'s `trim_offsets`
# and `add_prefix_space`, ignoring `tokenizer.json`'s); transformers 5 makes
# BartTokenizer an alias of RobertaTokenizer.
_ROBERTA_CLASSES = ("RobertaTokenizer", "RobertaTokenizerFast",
                    "BartTokenizer", "BartTokenizerFast")
_NO_TRIM_PROCESSORS = ("TemplateProcessing", "BertProcessing")


def folder_trim_steps(tokenizer_class, tokenizer_json=None, tokenizer_config=None):
    """Hugging Face's offset trimming for a byte-level BPE folder.

    What `transformers.AutoTokenizer.from_pretrained(folder)` post
    processes with (checked on transformers 5.25 with tokenizers 0.23):
    RoBERTa and BART tokenizers build `RobertaProcessing` from
    `tokenizer_config.json` (`trim_offsets`, default true, and
    `add_prefix_space`, default false), whatever `tokenizer.json` holds;
    the others (GPT-2, `PreTrainedTokenizerFast`) keep `tokenizer.json`'s
    `post_processor`: a `ByteLevel` or `RobertaProcessing` with
    `trim_offsets` trims, a `Sequence` runs each of its processors in turn,
    `TemplateProcessing` (and no `tokenizer.json`) does not trim.

    Args:
        tokenizer_class: the Hugging Face tokenizer class name the folder's
            model type maps to (`"GPT2Tokenizer"`, `"BartTokenizer"`,
            `"RobertaTokenizer"`); `tokenizer_config.json`'s
            `tokenizer_class`, when present, takes precedence.
        tokenizer_json: the folder's parsed `tokenizer.json`, or `None`.
        tokenizer_config: the folder's parsed `tokenizer_config.json`, or
            `None`.

    Returns:
        A tuple with one entry per trimming pass, each the pass's
        `add_prefix_space` (which keeps a single leading space on the first
        token); `()` when offsets are not trimmed.

    Example:
    ```python
    folder_trim_steps("GPT2Tokenizer", {"post_processor": {
        "type": "ByteLevel", "add_prefix_space": False,
        "trim_offsets": True, "use_regex": True}})  # (False,)
    ```
    """
    config = tokenizer_config or {}
    name = config.get("tokenizer_class") or tokenizer_class
    if name in _ROBERTA_CLASSES:
        if not config.get("trim_offsets", True):
            return ()
        return (bool(config.get("add_prefix_space", False)),)
    return _processor_trims((tokenizer_json or {}).get("post_processor"))


def _processor_trims(processor):
    if processor is None:
        return ()
    kind = processor.get("type")
    if kind == "Sequence":
        return tuple(
            step for inner in processor.get("processors", [])
            for step in _processor_trims(inner)
        )
    if kind == "RobertaProcessing" and not {"trim_offsets", "add_prefix_space"} <= set(processor):
        return ()  # `tokenizers` reads it as a BertProcessing: no trimming.
    if kind in ("ByteLevel", "RobertaProcessing"):
        if "trim_offsets" not in processor or "add_prefix_space" not in processor:
            raise ValueError(
                "A ByteLevel post processor in tokenizer.json must set "
                "`trim_offsets` and `add_prefix_space` (Hugging Face refuses "
                f"it too). Received: {processor!r}"
            )
        return (bool(processor["add_prefix_space"]),) if processor["trim_offsets"] else ()
    if kind in _NO_TRIM_PROCESSORS:
        return ()
    raise ValueError(
        "tokenizer.json's `post_processor` must be one of ByteLevel, "
        f"RobertaProcessing, {', '.join(_NO_TRIM_PROCESSORS)} or Sequence "
        f"for a byte-level BPE folder. Received: type={kind!r}"
    )


def read_folder_trims(source, tokenizer_class, feature):
    """`folder_trim_steps` of a local folder or `hf://` handle, reading its
    `tokenizer.json` and `tokenizer_config.json` where it has them.

    Args:
        source: a local folder or an `hf://` handle.
        tokenizer_class: as in `folder_trim_steps`.
        feature: what is loading it, named in errors about KerasHub
            internals.

    Returns:
        The trimming passes, a tuple (see `folder_trim_steps`).

    Example:
    ```python
    read_folder_trims("path/to/gpt2", "GPT2Tokenizer", "load_task")  # ()
    ```
    """
    from kerasft import _keras_compat

    files = {}
    for name in ("tokenizer.json", "tokenizer_config.json"):
        if _keras_compat.preset_file_exists(source, name, feature):
            files[name] = _keras_compat.preset_load_json(source, name, feature)
    return folder_trim_steps(
        tokenizer_class, files.get("tokenizer.json"), files.get("tokenizer_config.json")
    )


def _trim_steps(tokenizer, trim_offsets):
    """The trimming passes for `tokenizer` (see `folder_trim_steps`)."""
    import keras_hub

    prefix = bool(getattr(tokenizer, "add_prefix_space", False))
    if trim_offsets is not None:
        return (prefix,) if trim_offsets else ()
    folder = getattr(tokenizer, "offset_trims", None)
    if folder is not None:
        return tuple(folder)
    # Not loaded from a folder by kerasft: Hugging Face's rule for the
    # model type's own files (RobertaProcessing for RoBERTa and BART; a
    # GPT-2 folder without tokenizer.json gets TemplateProcessing, and
    # OpenAI's tokenizer.json says ByteLevel with trim_offsets=false).
    trimmed = tuple(
        getattr(keras_hub.models, name)
        for name in ("RobertaTokenizer", "BartTokenizer")
        if hasattr(keras_hub.models, name)
    )
    return (prefix,) if isinstance(tokenizer, trimmed) else ()


def _byte_level_offsets(tokenizer, texts, trim_offsets):
    if getattr(tokenizer, "sequence_length", None):
        raise ValueError(
            "`token_offsets` needs a tokenizer without `sequence_length` "
            "(padded rows have no offsets). Received: sequence_length="
            f"{tokenizer.sequence_length}; use a tokenizer built with "
            "`sequence_length=None`."
        )
    steps = _trim_steps(tokenizer, trim_offsets)
    prefix = bool(getattr(tokenizer, "add_prefix_space", False))
    table = _table(tokenizer)
    rows = tokenizer(texts) if texts else []
    rows = rows.to_list() if hasattr(rows, "to_list") else [list(np.asarray(r)) for r in rows]
    out = []
    for text, ids in zip(texts, rows):
        ids = [int(i) for i in ids]
        out.append((ids, _byte_spans(text, ids, table, steps, prefix)))
    return out


def _byte_spans(text, ids, table, steps, prefix):
    data = np.frombuffer(text.encode("utf-8"), np.uint8)
    # Character index of each UTF-8 byte (continuation bytes are 10xxxxxx).
    char_of = np.cumsum((data & 0xC0) != 0x80) - 1
    rows = table[ids] if ids else np.zeros((0, 3), "int64")
    sizes, lead, trail = rows[:, 0], rows[:, 1], rows[:, 2]
    total = int(sizes.sum())
    if prefix and total == len(char_of) + 1:
        # The space the tokenizer put in front belongs to the first char.
        char_of = np.concatenate([[0], char_of])
    elif total != len(char_of):
        raise ValueError(
            "The tokens' bytes do not spell the text, so no offsets exist: "
            f"{total} token bytes for {len(char_of)} text bytes. Received: "
            f"text={text!r}. The vocabulary lacks some of the text's bytes "
            "(they were dropped), or the ids come from KerasHub's own "
            "tokenizer rather than the one `kerasft.backbones` builds (see "
            "docs/text.md)."
        )
    if not len(ids):
        return []
    if (sizes == 0).any():
        raise ValueError(
            f"Ids {sorted(set(np.asarray(ids)[sizes == 0].tolist()))} are not in the "
            "tokenizer's vocabulary, so they have no offsets."
        )
    stops = np.cumsum(sizes)
    starts = char_of[stops - sizes]
    ends = char_of[stops - 1] + 1
    for keep_prefix in steps:
        # Hugging Face's byte-level `process_offsets`, once per trimming
        # post processor: a single leading space is kept on the first token
        # (or one starting at 0) when the processor says `add_prefix_space`.
        first = (np.arange(len(ids)) == 0) | (starts == 0)
        drop = np.where(keep_prefix & (lead == 1) & first, 0, lead)
        starts = np.minimum(starts + drop, ends)
        ends = np.where((trail > 0) & (ends >= trail), np.maximum(ends - trail, starts), ends)
    return list(zip(starts.tolist(), ends.tolist()))


# === T5 (SentencePiece + sentinels) ===


def _t5_offsets(tokenizer, text):
    import re

    from kerasft.backbones._t5_tokenizer import _sentinel_pattern
    from kerasft.backbones._wordpiece import _WHITESPACE

    ids, offsets, position = [], [], 0
    clean = text.replace("\x85", " ")
    if tokenizer.extra_ids:
        pattern = _sentinel_pattern(tokenizer.extra_ids, "[" + _WHITESPACE + "]")
        for match in re.finditer(pattern, clean):
            # Hugging Face cuts the text at the sentinel itself: the
            # whitespace around it stays in the chunks (which matters where
            # a chunk starts with a character its normaliser removes).
            name = match.group(0).strip(_WHITESPACE)
            begin = match.start() + match.group(0).index(name)
            _t5_chunk(tokenizer, clean, position, begin, ids, offsets)
            ids.append(tokenizer.token_to_id(name))
            offsets.append((begin, begin + len(name)))
            position = begin + len(name)
    _t5_chunk(tokenizer, clean, position, len(clean), ids, offsets)
    return ids, offsets


def _t5_chunk(tokenizer, text, begin, stop, ids, offsets):
    """SentencePiece ids and Hugging Face offsets of `text[begin:stop]`.

    Hugging Face's T5 tokenizer normalises the chunk (`Precompiled`, see
    `_normalized`), splits it at whitespace, puts a "▁" aligned to each
    word's first character in front, and gives each piece the original
    characters its normalised characters are aligned to. The pieces are
    SentencePiece's; an `<unk>` covers the run of characters that are not
    pieces of their own.
    """
    chunk = text[begin:stop]
    if not chunk:
        return
    from kerasft.backbones._wordpiece import _WHITESPACE

    spm = tokenizer._python_spm()
    chars, align = [], []
    word = False
    for c, a in _normalized(tokenizer, chunk):
        if c in _WHITESPACE:
            word = False
            continue
        if not word:
            chars.append("\u2581")
            align.append(a)
            word = True
        chars.append(c)
        align.append(a)
    pieces = _pieces_on(tokenizer, spm.encode(chunk), chars)
    if pieces is None:
        # SentencePiece normalises this chunk differently from Hugging
        # Face (where their ids differ too, docs/text.md): SentencePiece's
        # own spans, without the whitespace before a word.
        _spm_spans(tokenizer, chunk, begin, ids, offsets)
        return
    for piece_id, position, end in pieces:
        # Alignments never decrease: the first and last give the span.
        spans = [a for a in align[position:end] if a is not None]
        ids.append(piece_id)
        if spans:
            offsets.append((begin + spans[0][0], begin + spans[-1][1]))
        else:
            offsets.append((begin, begin))


def _pieces_on(tokenizer, piece_ids, chars):
    """`(id, start, end)` of each piece on the normalised `chars`, or
    `None` where the pieces do not spell them."""
    known = _single_pieces(tokenizer)
    names = _caches(tokenizer)["pieces"]
    unk = tokenizer._python_spm().unk_id()
    out, position = [], 0
    for piece_id in piece_ids:
        if piece_id == unk:
            end = position + 1
            while end < len(chars) and chars[end] not in known:
                end += 1
        else:
            piece = names[piece_id]
            end = position + len(piece)
            if "".join(chars[position:end]) != piece:
                return None
        out.append((piece_id, position, end))
        position = end
    return out if position == len(chars) else None


def _spm_spans(tokenizer, chunk, begin, ids, offsets):
    from kerasft.backbones._wordpiece import _WHITESPACE

    proto = tokenizer._python_spm().encode(chunk, out_type="proto")
    char_at = [0]
    for index, ch in enumerate(chunk):
        char_at.extend([index + 1] * len(ch.encode("utf-8")))
    for piece in proto.pieces:
        start, end = char_at[piece.begin], char_at[piece.end]
        while start < end and chunk[start] in _WHITESPACE:
            start += 1
        ids.append(piece.id)
        offsets.append((begin + start, begin + end))


_CACHES = weakref.WeakKeyDictionary()  # T5 tokenizer -> caches


def _caches(tokenizer):
    return _CACHES.setdefault(tokenizer, {"units": {}, "single": None, "pieces": None})


def _single_pieces(tokenizer):
    """One-character pieces (the characters that are not `<unk>`)."""
    cache = _caches(tokenizer)
    if cache["single"] is None:
        spm = tokenizer._python_spm()
        cache["pieces"] = [spm.id_to_piece(i) for i in range(spm.get_piece_size())]
        cache["single"] = {
            piece for i, piece in enumerate(cache["pieces"])
            if len(piece) == 1 and not spm.is_unknown(i)
        }
    return cache["single"]


def _unit_output(tokenizer, unit):
    """`spiece.model`'s normalisation of `unit` ("" if removed)."""
    cache = _caches(tokenizer)["units"]
    out = cache.get(unit)
    if out is None:
        # Between two "一" (which composes with nothing) so that
        # SentencePiece keeps leading and trailing whitespace ("▁").
        out = tokenizer._python_spm().normalize("\u4e00" + unit + "\u4e00")
        if out.startswith("\u2581\u4e00") and out.endswith("\u4e00"):
            out = out[2:-1]
        out = out.replace("\u2581", " ")
        cache[unit] = out
    return out


def _normalized(tokenizer, chunk):
    """`(character, (start, end) or None)` of Hugging Face's `Precompiled`
    normalisation of `chunk`, with its alignments to `chunk`'s characters.

    As `tokenizers`' `Precompiled.normalize`: each grapheme shorter than 6
    bytes that the character map changes as a whole is replaced whole,
    else each character; the output's i-th character takes the i-th input
    character, extra output characters the previous one's, and a removed
    unit's characters are taken by the previous output character (none if
    it is the first, which shifts every later alignment one character
    back, as Hugging Face does).
    """
    import regex  # a KerasHub dependency

    units = _caches(tokenizer)["units"]
    changes = []  # (output char, change) as tokenizers' transform
    for grapheme in regex.findall(r"\X", chunk):
        if len(grapheme) == 1:
            out = units.get(grapheme)
            if out is None:
                out = _unit_output(tokenizer, grapheme)
            if out == grapheme:  # most characters: kept as they are
                changes.append((grapheme, 0))
            else:
                _replace(changes, 1, out)
            continue
        if len(grapheme.encode("utf-8")) < 6:
            # Hugging Face looks the grapheme up by its shortest prefix in
            # the character map and drops the rest of the grapheme.
            whole = _prefix_output(tokenizer, grapheme)
            if whole is not None:
                _replace(changes, len(grapheme), whole)
                continue
        for c in grapheme:
            _replace(changes, 1, _unit_output(tokenizer, c))
    out, cursor = [], 0
    for c, change in changes:
        if change > 0:
            out.append((c, out[-1][1] if out else None))
            continue
        span = (cursor, cursor + 1) if cursor < len(chunk) else None
        out.append((c, span))
        cursor += 1 - change
    return out


def _prefix_output(tokenizer, grapheme):
    """The output of the shortest prefix of `grapheme` (2+ characters)
    that the character map changes, or `None`."""
    for k in range(1, len(grapheme) + 1):
        prefix = grapheme[:k]
        out = _unit_output(tokenizer, prefix)
        if out != "".join(_unit_output(tokenizer, c) if k > 1 else c for c in prefix):
            return out
    return None


def _replace(changes, old_count, new):
    changes.extend((c, 0) for c in new)
    diff = len(new) - old_count
    if diff > 0:
        for k in range(len(changes) - diff, len(changes)):
            changes[k] = (changes[k][0], 1)
    elif diff < 0 and changes:
        changes[-1] = (changes[-1][0], changes[-1][1] + diff)
