"""The data options every text recipe shares: `validation_split`
(`hold_out`), `max_train_samples` / `max_eval_samples` (`subset_splits`)
and the text sources of `read_source`."""

import os

import numpy as np

from kerasft.data import text as text_data
from kerasft.recipes._subsets import (
    hold_out_indices, log_subset, subset_indices, take)


def hold_out(run, config, part, what, take, labels=len):
    """`(rest, held)` parts: `hold_out_indices` of `labels(part)`."""
    rest, held = hold_out_indices(run, config, labels(part), what)
    return take(part, rest), take(part, held)


def take_rows(table, keep):
    """The rows `keep` (indices) of a `TextTable`."""
    return text_data.TextTable(
        take(table.texts, keep),
        None if table.labels is None else np.asarray(table.labels)[keep],
        take(table.pairs, keep),
        table.label_mapping,
    )


def subset_splits(run, splits, what, take, labels=len):
    """`max_train_samples` / `max_eval_samples` on `{split name: part}`, in
    place: `take(part, indices)`, stratified by `labels(part)`."""
    config = run.config
    for name, part in splits.items():
        limit = config.max_eval_samples
        if name.lower() in ("train", "training"):
            limit = config.max_train_samples
        strata = labels(part)
        before = strata if np.ndim(strata) == 0 else len(strata)
        keep = subset_indices(strata, limit, config.seed)
        if len(keep) < before:
            splits[name] = take(part, keep)
            log_subset(run, f"{name.lower()} {what}", before, len(keep))
    return splits


def read_source(value, config, label_mapping=None):
    """A `TextTable` of `value`: a CSV/TSV path, a `TextTable`, `(texts,
    labels)`, `"tfds:NAME[:SPLIT]"` or a Hugging Face `datasets.Dataset`
    (duck-typed: `column_names`, `ds[column]` a list), or `None` for `None`;
    string labels are mapped by `label_mapping` when given."""
    if value is None or isinstance(value, text_data.TextTable):
        return value
    if isinstance(value, tuple) and len(value) == 2:
        texts, labels = value
        labels, mapping = text_data.encode_labels(list(labels), label_mapping)
        return text_data.TextTable(list(texts), np.asarray(labels), None, mapping)
    if isinstance(value, str) and value.startswith("tfds:"):
        return _from_tfds(value, config, label_mapping)
    duck = hasattr(value, "column_names") and hasattr(value, "__getitem__")
    if duck and not isinstance(value, (str, dict, list)):
        features = getattr(value, "features", None) or {}
        names = list(value.column_names)
        return _from_columns(value, names, features, config, label_mapping)
    if not isinstance(value, str):
        raise TypeError(
            "Text data must be a CSV/TSV path, `tfds:NAME[:SPLIT]`, a Hugging "
            "Face `datasets.Dataset`, a TextTable or (texts, "
            f"labels). Received: {type(value).__name__}"
        )
    if not os.path.exists(value):
        raise ValueError(f"CSV file {value!r} does not exist.")
    return text_data.read_text_csv(
        value, text_column=config.text_column,
        label_column=config.label_column, pair_column=config.pair_column,
        label_mapping=label_mapping)


def _from_columns(columns, names, features, config, label_mapping):
    """A `TextTable` of `{column: values}` (label names from `features`)."""
    text_column, label_column = config.text_column, config.label_column
    if text_column not in names:
        raise ValueError(
            f"The text source has no column {text_column!r} (`text_column`). "
            f"Columns: {names}"
        )
    texts = [str(t) for t in columns[text_column]]
    pair_column = config.pair_column
    if pair_column == "auto":
        pair_column = "text_pair" if "text_pair" in names else None
    pairs = [str(t) for t in columns[pair_column]] if pair_column else None
    if label_column not in names:
        return text_data.TextTable(texts, None, pairs, label_mapping)
    labels = list(columns[label_column])
    ints = all(isinstance(v, (int, np.integer)) for v in labels)
    # A class-label feature (tfds or `datasets`) names its ids.
    feature = features[label_column] if label_column in features else None
    if ints and getattr(feature, "names", None):
        labels, ints = [feature.names[int(v)] for v in labels], False
    if ints and label_mapping is None:
        labels = np.asarray(labels, "int32")
        return text_data.TextTable(texts, labels, pairs, None)
    labels = [str(v) for v in labels]
    ids, mapping = text_data.encode_labels(labels, label_mapping)
    return text_data.TextTable(texts, np.asarray(ids), pairs, mapping)


def _from_tfds(value, config, mapping):
    """`tfds:NAME[:SPLIT]` read whole into memory (text datasets are small)."""
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise ValueError(
            f"{value!r} needs tensorflow-datasets: `pip install "
            "tensorflow-datasets` (or kerasft[tfds])."
        ) from None
    parts = value[len("tfds:"):].split(":", 1)
    name, split = parts[0], parts[1] if len(parts) > 1 else "train"
    ds, info = tfds.load(name, split=split, with_info=True)
    features = info.features
    if config.text_column not in features:
        raise ValueError(
            f"{value!r} has no feature {config.text_column!r} (`text_column`). "
            f"Features: {list(features)}"
        )
    columns = {k: [] for k in features}
    for example in tfds.as_numpy(ds):
        for k in columns:
            v = example[k]
            columns[k].append(v.decode("utf-8") if isinstance(v, bytes) else v)
    return _from_columns(columns, list(columns), features, config, mapping)
