"""Text inputs for BERT-family backbones: CSV/TSV or lists -> tokenized `tf.data`.

`read_text_csv` reads `text,label[,text_pair]` tables and maps string labels
to ids; `text_dataset` tokenizes once with the backbone's KerasHub
preprocessor and yields `({"token_ids", "segment_ids", "padding_mask"},
label)` batches. `from_hf_inputs` renames Hugging Face style inputs
(`input_ids`, `attention_mask`, `token_type_ids`) to KerasHub's names.
"""

import csv
import dataclasses
import json
import os
from typing import Optional

import numpy as np
import tensorflow as tf

_AUTO = "auto"
_TOKENIZE_CHUNK = 1024
_HF_NAMES = {
    "input_ids": "token_ids",
    "attention_mask": "padding_mask",
    "token_type_ids": "segment_ids",
}


@dataclasses.dataclass(frozen=True)
class TextTable:
    """Columns read by `read_text_csv`.

    Args:
        texts: the first segments, a list of strings.
        labels: label ids (int32), float targets (float32), or `None`
            when the table has no label column.
        pairs: the second segments, or `None` for single sentences.
        label_mapping: `{label string: id}` when labels were strings,
            else `None`.
    """

    texts: list
    labels: Optional[np.ndarray] = None
    pairs: Optional[list] = None
    label_mapping: Optional[dict] = None

    def save_label_mapping(self, path):
        """Writes `label_mapping` as JSON to `path` (see `save_label_mapping`)."""
        if self.label_mapping is None:
            raise ValueError(
                "This table has no label mapping (its labels were not "
                "strings), so there is nothing to save."
            )
        save_label_mapping(self.label_mapping, path)

    def __len__(self):
        return len(self.texts)


def read_text_csv(
    path,
    text_column="text",
    label_column="label",
    pair_column=_AUTO,
    delimiter=None,
    label_mapping=None,
):
    """Reads a CSV/TSV of texts, optional sentence pairs, and labels.

    Labels that all parse as integers are kept as ids; numbers with a
    fraction are float targets; anything else is a string label mapped to
    an id by `label_mapping` (pass the training table's mapping when reading
    validation data) or, when `None`, by sorted order.

    Args:
        path: the `.csv` or `.tsv` file (UTF-8; a byte order mark is fine).
        text_column: column of the first segment. Defaults to `"text"`.
        label_column: column of the labels; `None` reads no labels.
            Defaults to `"label"`.
        pair_column: column of the second segment. `"auto"` uses
            `"text_pair"` when the file has it; a name makes it required;
            `None` reads no pairs. Defaults to `"auto"`.
        delimiter: field delimiter; `None` means tab for `.tsv` files and
            comma otherwise. Defaults to `None`.
        label_mapping: `{label string: id}` to use for string labels.
            Defaults to `None`.

    Returns:
        A `TextTable` (`texts`, `labels`, `pairs`, `label_mapping`).

    Example:
    ```python
    table = kerasft.data.read_text_csv("train.csv")
    table.save_label_mapping("out/label_mapping.json")
    val = kerasft.data.read_text_csv("val.csv", label_mapping=table.label_mapping)
    ```
    """
    path = os.fspath(path)
    if delimiter is None:
        delimiter = "\t" if path.lower().endswith(".tsv") else ","
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        found = list(reader.fieldnames or [])
        rows = list(reader)
    if not found:
        raise ValueError(f"{path!r} is empty: it has no header and no rows.")
    if pair_column == _AUTO:
        pair_column = "text_pair" if "text_pair" in found else None
    for arg, column in (
        ("text_column", text_column),
        ("label_column", label_column),
        ("pair_column", pair_column),
    ):
        if column is not None and column not in found:
            raise ValueError(
                f"{path!r} has no column {column!r} (`{arg}`). Columns "
                f"found: {found}. Pass `{arg}=` with one of them"
                + (" or None." if arg != "text_column" else ".")
            )
    if not rows:
        raise ValueError(f"{path!r} has a header but no rows.")
    texts = [row[text_column] or "" for row in rows]
    pairs = None
    if pair_column is not None:
        pairs = [row[pair_column] or "" for row in rows]
    labels, mapping = None, None
    if label_column is not None:
        labels, mapping = encode_labels(
            [row[label_column] for row in rows], label_mapping
        )
    return TextTable(texts, labels, pairs, mapping)


def encode_labels(labels, label_mapping=None):
    """Label values -> `(array, mapping)`.

    Numbers are ids (int32) or float32 targets as they are, whatever
    `label_mapping` says; strings map through `label_mapping`, or, when it
    is `None`, strings of numbers become numbers and other strings map
    through `{label: i}` in sorted order.

    Args:
        labels: a sequence of labels.
        label_mapping: `{label string: id}`. Defaults to `None`.

    Returns:
        `(labels_array, label_mapping_or_None)`.

    Example:
    ```python
    ids, mapping = encode_labels(["pos", "neg", "pos"])
    # ids == [1, 0, 1], mapping == {"neg": 0, "pos": 1}
    ```
    """
    values = [v.strip() if isinstance(v, str) else v for v in labels]
    if any(v is None or v == "" for v in values):
        raise ValueError("Labels must not be empty; found an empty label.")
    if all(isinstance(v, (int, float, np.number, np.bool_)) for v in values):
        # Numbers are ids or targets already; only strings are names.
        numbers = np.asarray(values, dtype="float64")
        if np.all(numbers == np.round(numbers)):
            return numbers.astype("int32"), None
        return numbers.astype("float32"), None
    if label_mapping is None:
        numbers = _as_numbers(values)
        if numbers is not None:
            if np.all(numbers == np.round(numbers)):
                return numbers.astype("int32"), None
            return numbers.astype("float32"), None
        label_mapping = {v: i for i, v in enumerate(sorted(set(map(str, values))))}
    unknown = sorted({str(v) for v in values} - set(label_mapping))
    if unknown:
        raise ValueError(
            f"Labels {unknown[:10]} are not in `label_mapping` "
            f"(known: {sorted(label_mapping)[:20]})."
        )
    ids = np.array([label_mapping[str(v)] for v in values], dtype="int32")
    return ids, dict(label_mapping)


def save_label_mapping(label_mapping, path):
    """Writes `{label: id}` as JSON (sorted by id) to `path`.

    Example:
    ```python
    save_label_mapping({"neg": 0, "pos": 1}, "label_mapping.json")
    ```
    """
    ordered = dict(sorted(label_mapping.items(), key=lambda kv: kv[1]))
    with open(os.fspath(path), "w", encoding="utf-8") as f:
        json.dump(ordered, f, indent=2, ensure_ascii=False)


def load_label_mapping(path):
    """Reads a mapping written by `save_label_mapping`.

    Example:
    ```python
    mapping = load_label_mapping("label_mapping.json")
    ```
    """
    with open(os.fspath(path), encoding="utf-8") as f:
        return {str(k): int(v) for k, v in json.load(f).items()}


def tokenize(texts, tokenizer, text_pairs=None, sequence_length=None):
    """Tokenizes strings (and pairs) into a dict of int32 numpy arrays.

    Args:
        texts: a sequence of strings (first segments).
        tokenizer: a KerasHub `TextClassifierPreprocessor` (e.g.
            `backbone.tokenizer`) or a kerasft text `Backbone`.
        text_pairs: second segments, same length as `texts`.
            Defaults to `None`.
        sequence_length: pad/truncate length; `None` keeps the
            preprocessor's. Defaults to `None`.

    Returns:
        `{"token_ids", "segment_ids", "padding_mask"}` (no `segment_ids`
        for DistilBERT/RoBERTa), each `(len(texts), sequence_length)` int32.

    Example:
    ```python
    inputs = tokenize(["a fine film"], backbone.tokenizer)
    ```
    """
    preprocessor = _preprocessor(tokenizer, sequence_length)
    texts = _strings(texts, "texts")
    if text_pairs is not None:
        text_pairs = _strings(text_pairs, "text_pairs")
        if len(text_pairs) != len(texts):
            raise ValueError(
                "`text_pairs` must have one entry per text. Received: "
                f"{len(text_pairs)} pairs for {len(texts)} texts."
            )
    chunks = []
    for start in range(0, len(texts), _TOKENIZE_CHUNK):
        # Python lists: RoBERTa's byte-pair tokenizer takes no tensors.
        first = texts[start : start + _TOKENIZE_CHUNK]
        if text_pairs is None:
            x = preprocessor(first)
        else:
            second = text_pairs[start : start + _TOKENIZE_CHUNK]
            x = preprocessor(x=(first, second))
        chunks.append({k: np.asarray(v).astype("int32") for k, v in x.items()})
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


def text_dataset(
    texts,
    labels=None,
    text_pairs=None,
    tokenizer=None,
    batch_size=32,
    sequence_length=None,
    shuffle=False,
    seed=None,
    label_mapping=None,
    drop_remainder=False,
):
    """A batched `tf.data.Dataset` of tokenized texts (and labels).

    Tokenizes everything once up front (so epochs do not re-tokenize), then
    shuffles, batches and prefetches. Elements are
    `({"token_ids", "segment_ids", "padding_mask"}, label)` with int32
    inputs, or the input dict alone when `labels` is `None`. The dict keys
    are the backbone's input names, so the dataset feeds
    `kerasft.build_model(backbone, head)` directly.

    Args:
        texts: strings (first segments), or a `TextTable` from
            `read_text_csv` (then `labels`/`text_pairs` come from it).
        labels: ids, floats or strings (mapped with `encode_labels`).
            Defaults to `None`.
        text_pairs: second segments for sentence-pair tasks.
            Defaults to `None`.
        tokenizer: a KerasHub `TextClassifierPreprocessor` or a kerasft text
            `Backbone` (its `.tokenizer` is used).
        batch_size: batch size. Defaults to `32`.
        sequence_length: pad/truncate length; `None` keeps the tokenizer's.
            Defaults to `None`.
        shuffle: shuffle the whole dataset each epoch. Defaults to `False`.
        seed: shuffle seed. Defaults to `None`.
        label_mapping: `{label string: id}` for string labels. Defaults to
            `None` (sorted order, as `encode_labels`).
        drop_remainder: drop the last partial batch (static shapes for
            TPUs). Defaults to `False`.

    Returns:
        A `tf.data.Dataset`.

    Example:
    ```python
    backbone = kerasft.backbones.bert(folder, sequence_length=32)
    ds = kerasft.data.text_dataset(
        ["a fine film", "a dull film"], [1, 0], tokenizer=backbone, batch_size=2
    )
    ```
    """
    if isinstance(texts, TextTable):
        if labels is None:
            labels = texts.labels
        if text_pairs is None:
            text_pairs = texts.pairs
        if label_mapping is None:
            label_mapping = texts.label_mapping
        texts = texts.texts
    if tokenizer is None:
        raise ValueError(
            "`tokenizer` is required: pass the backbone (or "
            "`backbone.tokenizer`) from `kerasft.backbones.bert`."
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(
            f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}"
        )
    x = tokenize(texts, tokenizer, text_pairs, sequence_length)
    if labels is not None:
        y, _ = encode_labels(list(labels), label_mapping)
        if len(y) != len(texts):
            raise ValueError(
                "`labels` must have one entry per text. Received: "
                f"{len(y)} labels for {len(texts)} texts."
            )
        ds = tf.data.Dataset.from_tensor_slices((x, y))
    else:
        ds = tf.data.Dataset.from_tensor_slices(x)
    if shuffle:
        ds = ds.shuffle(len(texts), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds.prefetch(tf.data.AUTOTUNE)


def from_hf_inputs(inputs):
    """Renames Hugging Face style inputs to KerasHub's input names.

    `input_ids` -> `token_ids`, `attention_mask` -> `padding_mask`,
    `token_type_ids` -> `segment_ids` (zeros when absent). Works on numpy
    arrays, tensors and inside `tf.data` `map`.

    Args:
        inputs: a dict with at least `input_ids`, e.g. the output of a
            Hugging Face tokenizer called with `return_tensors="np"`.

    Returns:
        `{"token_ids", "segment_ids", "padding_mask"}`, int32.

    Example:
    ```python
    hf = {"input_ids": np.array([[101, 2204, 102]]), "attention_mask": np.array([[1, 1, 1]])}
    model.predict(from_hf_inputs(hf))
    ```
    """
    if not isinstance(inputs, dict) or "input_ids" not in inputs:
        got = sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__
        raise ValueError(
            "`inputs` must be a dict with 'input_ids' (and optionally "
            f"'attention_mask', 'token_type_ids'). Received: {got}"
        )
    unknown = sorted(set(inputs) - set(_HF_NAMES))
    if unknown:
        raise ValueError(
            f"Unknown input names {unknown}; expected {sorted(_HF_NAMES)}."
        )
    in_numpy = all(isinstance(v, (np.ndarray, list)) for v in inputs.values())
    cast = (lambda v: np.asarray(v, dtype="int32")) if in_numpy else (
        lambda v: tf.cast(v, "int32")
    )
    ids = cast(inputs["input_ids"])
    zeros = np.zeros_like(ids) if in_numpy else tf.zeros_like(ids)
    ones = np.ones_like(ids) if in_numpy else tf.ones_like(ids)
    return {
        "token_ids": ids,
        "segment_ids": cast(inputs["token_type_ids"]) if "token_type_ids" in inputs else zeros,
        "padding_mask": cast(inputs["attention_mask"]) if "attention_mask" in inputs else ones,
    }


# === Helpers ===


def _preprocessor(tokenizer, sequence_length):
    if getattr(tokenizer, "task", None) == "text":  # a kerasft Backbone
        preprocessor = tokenizer.tokenizer
    else:
        preprocessor = tokenizer
    if not hasattr(preprocessor, "packer") or not callable(preprocessor):
        raise TypeError(
            "`tokenizer` must be a KerasHub TextClassifierPreprocessor (e.g. "
            "`backbone.tokenizer`) or a text Backbone from "
            f"`kerasft.backbones.bert`. Received: {type(tokenizer).__name__}"
        )
    if sequence_length is not None and sequence_length != preprocessor.sequence_length:
        # A new preprocessor on the same tokenizer: never mutate the
        # backbone's own.
        preprocessor = type(preprocessor)(
            tokenizer=preprocessor.tokenizer, sequence_length=sequence_length
        )
    return preprocessor


def _strings(values, arg):
    if isinstance(values, str):
        raise TypeError(
            f"`{arg}` must be a sequence of strings, not one string. "
            f"Received: {arg}={values[:40]!r}"
        )
    values = [v.decode("utf-8") if isinstance(v, bytes) else v for v in values]
    bad = [v for v in values if not isinstance(v, str)]
    if bad:
        raise TypeError(
            f"`{arg}` must hold strings. Received e.g. {bad[0]!r}"
        )
    if not values:
        raise ValueError(f"`{arg}` is empty.")
    return values


def _as_numbers(values):
    try:
        return np.array([float(v) for v in values], dtype="float64")
    except (TypeError, ValueError):
        return None
