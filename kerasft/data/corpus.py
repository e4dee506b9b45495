"""Text corpora for causal language models: read, tokenize, pack into windows.

A corpus is a list of documents: a text file (one document), a folder of
`.txt` files (one document per file, in sorted path order, sub-folders
included), a CSV/TSV column (one document per row) or, in Python, a list of
strings. `pack` joins the tokenized documents into one stream, each document
preceded by the end-of-text separator and the last one followed by it (as
GPT-2 was trained, and as `generate` prompts start), and cuts the stream
into windows of `sequence_length + 1` tokens (inputs and their next-token
labels) starting every `stride` tokens. Every token of the stream is a label
in some window; the last, partial window is padded and masked rather than
dropped, so a long corpus is used in full and nothing is silently cut.

The packing is plain numpy, free of TensorFlow and Keras.
"""

import csv
import dataclasses
import os

import numpy as np

_TEXT_SUFFIXES = (".txt",)
_TABLE_SUFFIXES = (".csv", ".tsv")


@dataclasses.dataclass(frozen=True)
class PackedCorpus:
    """Windows of a packed token stream, ready for a causal LM.

    Attributes:
        token_ids: int32 `(num_windows, sequence_length)` inputs.
        padding_mask: bool `(num_windows, sequence_length)`: real inputs.
        labels: int32 `(num_windows, sequence_length)`: the next tokens.
        label_mask: float32 `(num_windows, sequence_length)`: 1 where a label
            is scored (a real token, and with `score_each_token_once` one no
            earlier window scored), else 0.
        num_documents: documents packed.
        num_tokens: tokens in the stream, separators included.
        stride: tokens between the starts of consecutive windows.
    """

    token_ids: np.ndarray
    padding_mask: np.ndarray
    labels: np.ndarray
    label_mask: np.ndarray
    num_documents: int
    num_tokens: int
    stride: int

    @property
    def num_windows(self):
        return int(self.token_ids.shape[0])

    @property
    def num_labels(self):
        """Scored labels (the tokens a loss or a perplexity averages over)."""
        return int(self.label_mask.sum())

    def __len__(self):
        return self.num_windows


def read_corpus(source, text_column="text"):
    """Reads the documents of a corpus.

    Args:
        source: a text file, a folder of `.txt` files, a `.csv`/`.tsv` file,
            or a list/tuple of strings.
        text_column: the column holding the documents of a CSV/TSV.
            Defaults to `"text"`.

    Returns:
        A list of strings, one per document.

    Raises:
        ValueError: a missing path, a folder without `.txt` files, an
            unreadable file (named), a CSV without `text_column` (the
            columns found are named), or a corpus with no text at all.

    Example:
    >>> read_corpus(["first document.", "second one."])
    ['first document.', 'second one.']
    """
    if isinstance(source, (list, tuple)):
        documents = list(source)
        bad = [type(d).__name__ for d in documents if not isinstance(d, str)]
        if bad:
            raise TypeError(
                "A corpus given as a list must hold strings. Received: a list "
                f"with {bad[0]} items."
            )
        where = "the documents given"
    elif isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        documents = _read_path(path, text_column)
        where = repr(path)
    else:
        raise TypeError(
            "A corpus must be a text file, a folder of .txt files, a CSV/TSV "
            "file or a list of strings. Received: "
            f"{type(source).__name__}"
        )
    if not any(d.strip() for d in documents):
        raise ValueError(
            f"The corpus {where} holds no text ({len(documents)} empty "
            "document(s)). Pass a file, folder or column with text in it."
        )
    return documents


def _read_path(path, text_column):
    if os.path.isdir(path):
        files = sorted(
            os.path.join(directory, name)
            for directory, _, names in os.walk(path)
            for name in names
            if name.lower().endswith(_TEXT_SUFFIXES) and not name.startswith(".")
        )
        if not files:
            raise ValueError(
                f"The folder {path!r} holds no .txt files. Pass a folder of "
                ".txt files, a text file or a CSV/TSV file."
            )
        return [_read_text(f) for f in files]
    if not os.path.isfile(path):
        raise ValueError(
            f"The corpus {path!r} does not exist. Pass a text file, a folder "
            "of .txt files or a CSV/TSV file."
        )
    if path.lower().endswith(_TABLE_SUFFIXES):
        return _read_column(path, text_column)
    return [_read_text(path)]


def _read_text(path):
    try:
        with open(path, encoding="utf-8-sig") as f:
            return f.read()
    except UnicodeDecodeError as e:
        raise ValueError(
            f"Cannot read {path!r} as UTF-8 text ({e.reason} at byte "
            f"{e.start}). Convert it to UTF-8 or leave it out."
        ) from None
    except OSError as e:
        raise ValueError(f"Cannot read {path!r}: {e.strerror}.") from None


def _read_column(path, text_column):
    delimiter = "\t" if path.lower().endswith(".tsv") else ","
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f, delimiter=delimiter)
            columns = list(reader.fieldnames or ())
            if text_column not in columns:
                raise ValueError(
                    f"{path!r} has no column {text_column!r}. Columns found: "
                    f"{columns}. Pass the column of the documents as "
                    "`text_column`."
                )
            return [row[text_column] or "" for row in reader]
    except UnicodeDecodeError as e:
        raise ValueError(
            f"Cannot read {path!r} as UTF-8 text ({e.reason} at byte "
            f"{e.start}). Convert it to UTF-8."
        ) from None
    except csv.Error as e:
        raise ValueError(f"Cannot read {path!r} as CSV: {e}.") from None


def tokenize_documents(documents, tokenize, chunk=256):
    """Token ids of each document.

    Args:
        documents: a list of strings.
        tokenize: a function from a list of strings to a list of token id
            lists (for a KerasHub tokenizer: `tokenizer(texts).to_list()`).
        chunk: documents per call of `tokenize`. Defaults to `256`.

    Returns:
        A list of lists of ints.
    """
    out = []
    for start in range(0, len(documents), chunk):
        out.extend(list(ids) for ids in tokenize(documents[start:start + chunk]))
    return out


def pack(documents, sequence_length, separator_id, stride=None, pad_id=0,
         score_each_token_once=False):
    """Packs tokenized documents into `sequence_length` windows.

    The stream is `[sep] doc_1 [sep] doc_2 ... [sep] doc_n [sep]`. Window
    `k` holds stream tokens `[k * stride, k * stride + sequence_length]`:
    the first `sequence_length` are the inputs, the last `sequence_length`
    the labels. Windows follow until every stream token after the first is
    a label; the last one is padded with `pad_id` and masked.

    Args:
        documents: a list of token id lists.
        sequence_length: tokens per window (the model's input length).
        separator_id: the end-of-text token put between documents.
        stride: tokens between window starts, in `[1, sequence_length]`;
            below `sequence_length` consecutive windows overlap by
            `sequence_length - stride` tokens of context. Defaults to
            `None`, meaning `sequence_length` (no overlap).
        pad_id: the token filling the last window. Defaults to `0`.
        score_each_token_once: mask the labels an earlier window already
            scored, so that a loss or perplexity averaged over the windows
            counts every token once (for evaluation with overlap).
            Defaults to `False`.

    Returns:
        A `PackedCorpus`.

    Example:
    >>> packed = pack([[5, 6, 7], [8]], sequence_length=4, separator_id=0)
    >>> packed.token_ids.tolist(), packed.labels.tolist()
    ([[0, 5, 6, 7], [0, 8, 0, 0]], [[5, 6, 7, 0], [8, 0, 0, 0]])
    >>> packed.label_mask.tolist()
    [[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0]]
    """
    if isinstance(sequence_length, bool) or not isinstance(
        sequence_length, (int, np.integer)
    ) or sequence_length < 1:
        raise ValueError(
            "`sequence_length` must be a positive integer. Received: "
            f"sequence_length={sequence_length!r}"
        )
    stride = sequence_length if stride is None else stride
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or not (
        1 <= stride <= sequence_length
    ):
        raise ValueError(
            f"`stride` must be an integer in [1, sequence_length="
            f"{sequence_length}]. Received: stride={stride!r}"
        )
    stream = _stream(documents, separator_id)
    n = len(stream)
    labels_needed = n - 1  # stream positions 1 .. n - 1
    if labels_needed <= sequence_length:
        count = 1
    else:
        count = 1 + -(-(labels_needed - sequence_length) // stride)
    starts = np.arange(count, dtype="int64") * stride
    positions = starts[:, None] + np.arange(sequence_length + 1)[None, :]
    real = positions < n
    padded = np.concatenate([stream, np.full(sequence_length + 1, pad_id, "int32")])
    windows = padded[np.minimum(positions, n)]
    windows[~real] = pad_id
    label_mask = real[:, 1:].astype("float32")
    if score_each_token_once and count > 1:
        # Window k scores labels past the last one window k-1 scored.
        previous_end = np.concatenate([[0], starts[:-1] + sequence_length])
        label_mask[positions[:, 1:] <= previous_end[:, None]] = 0.0
    return PackedCorpus(
        token_ids=windows[:, :-1].astype("int32"),
        padding_mask=real[:, :-1],
        labels=windows[:, 1:].astype("int32"),
        label_mask=label_mask,
        num_documents=len(documents),
        num_tokens=n,
        stride=int(stride),
    )


def take_windows(packed, keep):
    """The windows `keep` (sorted indices) of `packed`: a subset for
    `max_train_samples` / `max_eval_samples`.

    Each window keeps its label mask, so a subset of windows made with
    `score_each_token_once` still scores each of its tokens once.
    `num_tokens` becomes the number of stream positions the kept windows
    read as inputs, each counted once (overlapping windows share some);
    `num_documents` stays that of the packed corpus.

    Args:
        packed: a `PackedCorpus`.
        keep: sorted window indices.

    Returns:
        A `PackedCorpus`.

    Example:
    >>> packed = pack([[5, 6, 7], [8]], sequence_length=2, separator_id=0)
    >>> take_windows(packed, [0, 2]).token_ids.tolist()
    [[0, 5], [0, 8]]
    """
    keep = np.asarray(keep, dtype="int64")
    starts = keep * packed.stride
    ends = starts + packed.padding_mask[keep].sum(axis=1)
    covered, reached = 0, -1
    for start, end in zip(starts.tolist(), ends.tolist()):
        covered += max(0, end - max(start, reached))
        reached = max(reached, end)
    return PackedCorpus(
        token_ids=packed.token_ids[keep],
        padding_mask=packed.padding_mask[keep],
        labels=packed.labels[keep],
        label_mask=packed.label_mask[keep],
        num_documents=packed.num_documents,
        num_tokens=int(covered),
        stride=packed.stride,
    )


def _stream(documents, separator_id):
    parts = []
    for ids in documents:
        parts.append([separator_id])
        parts.append(ids)
    parts.append([separator_id])
    return np.concatenate([np.asarray(p, "int32") for p in parts])


def split_documents(documents, fraction):
    """`(train, validation)` token lists: the last `fraction` of the tokens
    held out, cut inside a document when needed (so a single long document
    can be split too), the two parts never sharing a token.

    Args:
        documents: a list of token id lists.
        fraction: the share of tokens held out, in (0, 1).

    Returns:
        Two lists of token id lists.
    """
    if not 0 < fraction < 1:
        raise ValueError(
            f"`validation_split` must be in (0, 1). Received: "
            f"validation_split={fraction!r}"
        )
    total = sum(len(d) for d in documents)
    keep = total - max(1, int(round(total * fraction)))
    train, validation, seen = [], [], 0
    for ids in documents:
        if seen + len(ids) <= keep:
            train.append(ids)
        elif seen >= keep:
            validation.append(ids)
        else:
            cut = keep - seen
            train.append(ids[:cut])
            validation.append(ids[cut:])
        seen += len(ids)
    return [d for d in train if len(d)], [d for d in validation if len(d)]
