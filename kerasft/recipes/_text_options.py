"""Trainer-style options of the text recipes.

- `max_train_samples` / `max_eval_samples`: a stratified subset of a
  `TextTable` (`subset_table`, by `kerasft.recipes._subsets`, the rule
  every recipe shares), or of any recipe's `{split: part}`
  (`subset_splits`: questions, sentences, pairs, windows).
- `lr_schedule` with `warmup_ratio`: `kerasft.optimizers.make_optimizer`,
  the factory every recipe trains with.
- Text sources besides CSV files (text classification): `"tfds:NAME[:SPLIT]"` (e.g.
  `"tfds:imdb_reviews"`, with `text`/`label` features) and Hugging Face
  `datasets.Dataset` objects, duck-typed (anything with `column_names` whose
  `ds[column]` is a list), so `datasets` is not a dependency.
"""

import numpy as np

from kerasft.recipes._subsets import subset_indices  # noqa: F401 (re-exported)
from kerasft.recipes._subsets import take

# === Subsets ===


def subset_table(table, k, seed):
    """A `TextTable` of at most `k` rows, stratified by label."""
    if table is None or k is None or k >= len(table.texts):
        return table
    labels = table.labels if table.labels is not None else np.zeros(len(table.texts))
    return take_rows(table, subset_indices(labels, k, seed))


def take_rows(table, keep):
    """The rows `keep` (indices) of a `TextTable`."""
    from kerasft.data import text as text_data

    return text_data.TextTable(
        take(table.texts, keep),
        None if table.labels is None else np.asarray(table.labels)[keep],
        take(table.pairs, keep),
        table.label_mapping,
    )


def subset_splits(run, splits, what, take, labels=len):
    """`max_train_samples` (the training split) / `max_eval_samples` (the
    others) on `{split name: part}`, in place: `take(part, indices)` keeps
    a seeded subset, stratified by `labels(part)` (or random when it gives
    a count), and one line logs what was left out."""
    from kerasft.recipes._subsets import log_subset

    config = run.config
    for name, part in splits.items():
        training = name.lower() in ("train", "training")
        strata = labels(part)
        before = strata if np.ndim(strata) == 0 else len(strata)
        keep = subset_indices(strata, config.max_train_samples if training
                              else config.max_eval_samples, config.seed)
        if len(keep) < before:
            splits[name] = take(part, keep)
            log_subset(run, f"{name.lower()} {what}", before, len(keep))
    return splits


# === Sources ===


def is_hf_dataset(value):
    """Whether `value` looks like a Hugging Face `datasets.Dataset`."""
    return hasattr(value, "column_names") and hasattr(value, "__getitem__") and (
        not isinstance(value, (str, dict, tuple, list))
    )


def read_source(value, config, label_mapping=None):
    """A `TextTable` from a `tfds:` name or a `datasets.Dataset`; `None` for
    other values (CSV paths, tables and tuples are read elsewhere)."""
    if isinstance(value, str) and value.startswith("tfds:"):
        return _from_tfds(value, config, label_mapping)
    if is_hf_dataset(value):
        return _from_columns(value, list(value.column_names), config,
                             label_mapping, _hf_label_names(value, config))
    return None


def _from_columns(columns, names, config, label_mapping, label_names=None):
    from kerasft.data import text as text_data

    text_column, label_column = config.text_column, config.label_column
    missing = [c for c in (text_column,) if c not in names]
    if missing:
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
    if label_names and all(isinstance(v, (int, np.integer)) for v in labels):
        labels = [label_names[int(v)] for v in labels]
    if all(isinstance(v, (int, np.integer)) for v in labels) and label_mapping is None:
        return text_data.TextTable(texts, np.asarray(labels, "int32"), pairs, None)
    ids, mapping = text_data.encode_labels([str(v) for v in labels], label_mapping)
    return text_data.TextTable(texts, np.asarray(ids), pairs, mapping)


def _hf_label_names(dataset, config):
    feature = getattr(dataset, "features", {}).get(config.label_column) if hasattr(
        getattr(dataset, "features", None), "get") else None
    return list(getattr(feature, "names", None) or []) or None


def _from_tfds(value, config, label_mapping):
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
    label = features[config.label_column] if config.label_column in features else None
    names = list(getattr(label, "names", None) or []) or None
    return _from_columns(columns, list(columns), config, label_mapping, names)
