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
    return split_off(labels, n_val, seed)


def split_off(labels, k, seed):
    """`(rest, part)` sorted index arrays, `part` holding `k` examples.

    Stratified by label (scikit-learn's `train_test_split`) when `labels`
    are 1-D integers, every class has two examples or more and both sides
    have room for every class; otherwise a seeded random split.
    """
    labels = np.asarray(labels)
    n = len(labels)
    stratify = None
    if labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer):
        counts = np.unique(labels, return_counts=True)[1]
        if counts.min() >= 2 and len(counts) <= k <= n - len(counts):
            stratify = labels
    if stratify is None:
        order = np.random.RandomState(seed).permutation(n)
        return np.sort(order[k:]), np.sort(order[:k])
    from sklearn.model_selection import train_test_split

    rest, part = train_test_split(
        np.arange(n), test_size=k, stratify=stratify, random_state=seed
    )
    return np.sort(rest), np.sort(part)
