"""Holding out part of the training data for validation (pure numpy)."""

import numpy as np


def holdout_indices(labels, fraction, seed):
    """`(train, validation)` index arrays holding out `fraction` of `labels`.

    Stratified (each class keeps its share in both parts, by scikit-learn's
    `train_test_split`) when every class has at least two examples and the
    held-out part has room for every class; otherwise a plain seeded
    random split. Both parts come back sorted.

    Args:
        labels: 1-D integer class ids (other labels split at random).
        fraction: share held out, in `(0, 1)`.
        seed: the split's random seed.

    Raises:
        ValueError: the split would leave either part empty.
    """
    labels = np.asarray(labels)
    n = len(labels)
    n_val = max(1, int(round(n * fraction)))
    if n_val >= n:
        raise ValueError(
            f"`validation_split`={fraction} of {n} examples leaves no "
            "training data. Pass less, or pass validation data."
        )
    index = np.arange(n)
    stratify = None
    if labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer):
        counts = np.unique(labels, return_counts=True)[1]
        if counts.min() >= 2 and n_val >= len(counts) and n - n_val >= len(counts):
            stratify = labels
    if stratify is None:
        order = np.random.RandomState(seed).permutation(n)
        return np.sort(order[n_val:]), np.sort(order[:n_val])
    from sklearn.model_selection import train_test_split

    train, val = train_test_split(
        index, test_size=n_val, stratify=stratify, random_state=seed
    )
    return np.sort(train), np.sort(val)
