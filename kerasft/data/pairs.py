"""Text pairs for sequence-to-sequence models: read, check, measure.

A pair source is a CSV/TSV file with a source and a target column (names
configurable), in Python a list of `(source, target)` pairs, a `TextPairs`,
or a `tf.data.Dataset` yielding `(source, target)` strings or dicts with
the two columns. Everything is checked before training: a missing column
is named with the columns found, an empty source or target with its row
number, an empty file or a file with only a header as such.

`token_lengths` and `count_longer` measure what truncation to a fixed
number of tokens will cut, so a recipe can report it instead of cutting
silently.
"""

import csv
import dataclasses
import os

import numpy as np

from kerasft import _io

_TOKENIZE_CHUNK = 1024


@dataclasses.dataclass(frozen=True)
class TextPairs:
    """Source and target texts, aligned.

    Args:
        sources: list of strings (the encoder inputs).
        targets: list of strings (what the decoder learns to write).
    """

    sources: list
    targets: list

    def __len__(self):
        return len(self.sources)

    def take(self, indices):
        """The pairs at `indices`, in that order."""
        return TextPairs(
            [self.sources[i] for i in indices], [self.targets[i] for i in indices]
        )


def read_pairs(data, source_column="source", target_column="target",
               delimiter=None):
    """Reads and checks `(source, target)` text pairs.

    Args:
        data: a `.csv`/`.tsv` path (UTF-8, header row), a list of
            `(source, target)` pairs, a `TextPairs`, or a `tf.data.Dataset`
            of `(source, target)` string tensors or of dicts holding
            `source_column` and `target_column`.
        source_column: column (or dict key) of the sources. Defaults to
            `"source"`.
        target_column: column (or dict key) of the targets. Defaults to
            `"target"`.
        delimiter: CSV delimiter; `None` means tab for `.tsv` files and
            comma otherwise. Defaults to `None`.

    Returns:
        A `TextPairs`.

    Raises:
        ValueError: a missing file, an empty file, a missing column (the
            columns found are listed), an empty source or target (its row
            is named).

    Example:

    ```python
    from kerasft.data import read_pairs

    pairs = read_pairs([("three hundred twelve", "312"), ("four", "4")])
    assert pairs.targets == ["312", "4"]
    ```
    """
    if isinstance(data, TextPairs):
        pairs, where = data, "the pairs"
    elif isinstance(data, (str, os.PathLike)):
        pairs = _read_table(os.fspath(data), source_column, target_column, delimiter)
        where = repr(os.fspath(data))
    elif hasattr(data, "element_spec"):
        pairs, where = _read_dataset(data, source_column, target_column), "the dataset"
    elif isinstance(data, (list, tuple)):
        pairs, where = _from_python(data), "the pairs"
    else:
        raise TypeError(
            "Pairs must be a CSV/TSV path, a list of (source, target) pairs, "
            "a TextPairs or a tf.data.Dataset. Received: "
            f"{type(data).__name__}"
        )
    _check(pairs, where, header=isinstance(data, (str, os.PathLike)))
    return pairs


def _read_table(path, source_column, target_column, delimiter):
    if not os.path.isfile(path):
        raise ValueError(f"Pairs file {path!r} does not exist.")
    if delimiter is None:
        delimiter = "\t" if path.lower().endswith(".tsv") else ","
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        found = list(reader.fieldnames or [])
        rows = list(reader)
    if not found:
        raise ValueError(f"{path!r} is empty: it has no header and no rows.")
    for arg, column in (("source_column", source_column),
                        ("target_column", target_column)):
        if column not in found:
            raise ValueError(
                f"{path!r} has no column {column!r} (`{arg}`). Columns found: "
                f"{found}. Pass {_io.argument(arg)} with one of them."
            )
    if not rows:
        raise ValueError(f"{path!r} has a header but no rows.")
    return TextPairs(
        [row[source_column] or "" for row in rows],
        [row[target_column] or "" for row in rows],
    )


def _from_python(data):
    sources, targets = [], []
    for i, pair in enumerate(data):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ValueError(
                "Python pairs must be (source, target) tuples. Received at "
                f"index {i}: {pair!r}"
            )
        sources.append(pair[0])
        targets.append(pair[1])
    return TextPairs(sources, targets)


def _read_dataset(dataset, source_column, target_column):
    sources, targets = [], []
    for element in dataset.as_numpy_iterator():
        if isinstance(element, dict):
            missing = [c for c in (source_column, target_column) if c not in element]
            if missing:
                raise ValueError(
                    f"The dataset's elements have no key {missing[0]!r}. Keys "
                    f"found: {sorted(element)}. Pass `source_column=` / "
                    "`target_column=` with the right keys."
                )
            element = (element[source_column], element[target_column])
        if not isinstance(element, tuple) or len(element) != 2:
            raise ValueError(
                "A pairs dataset must yield (source, target) strings or "
                f"dicts. Received an element: {element!r}"
            )
        sources.append(_decode(element[0]))
        targets.append(_decode(element[1]))
    return TextPairs(sources, targets)


def _decode(value):
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _check(pairs, where, header):
    if not len(pairs):
        raise ValueError(f"{where} holds no pairs.")
    for name, texts in (("source", pairs.sources), ("target", pairs.targets)):
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(
                    f"Every {name} must be a string. Received in row {i + 1} "
                    f"of {where}: {text!r} ({type(text).__name__})"
                )
            if not text.strip():
                line = f" (line {i + 2} of the file)" if header else ""
                raise ValueError(
                    f"Row {i + 1}{line} of {where} has an empty {name}. "
                    f"Every pair needs a non-empty source and target: fix or "
                    "drop the row."
                )


def token_lengths(tokenizer, texts):
    """The number of tokens `tokenizer` makes of each text (int array).

    Args:
        tokenizer: a KerasHub tokenizer (callable on a list of strings,
            giving ragged token ids).
        texts: a list of strings.
    """
    lengths = []
    for start in range(0, len(texts), _TOKENIZE_CHUNK):
        tokens = tokenizer(list(texts[start:start + _TOKENIZE_CHUNK]))
        lengths.extend(
            np.asarray(tokens.row_lengths()).tolist()
            if hasattr(tokens, "row_lengths")
            else [len(t) for t in tokens]
        )
    return np.asarray(lengths, dtype="int64")


def count_longer(lengths, room):
    """`(count, longest)`: how many `lengths` exceed `room`, and the
    longest one (0 when there are none)."""
    lengths = np.asarray(lengths)
    if not lengths.size:
        return 0, 0
    return int(np.sum(lengths > room)), int(lengths.max())
