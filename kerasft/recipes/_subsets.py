"""`max_train_samples` / `max_eval_samples`: every recipe's subsets, one rule.

Pure numpy, the rule `validation_split` follows too (`kerasft.data._split`).
The recipes apply it after `validation_split` has held validation data out,
so the held-out set does not depend on the subset size.
"""

import numpy as np


def subset_indices(labels, k, seed):
    """Sorted indices of a `k`-example subset, stratified by label.

    Args:
        labels: one label per example (integer labels stratify), or the
            number of examples when they have no single label (a seeded
            random subset).
        k: the subset size; `None` or `k >= len(labels)` keeps everything.
        seed: the run's seed.

    Returns:
        A sorted int array of indices.
    """
    if np.ndim(labels) == 0:  # a count: nothing to stratify by
        labels = np.full(int(labels), np.nan)
    labels = np.asarray(labels)
    n = len(labels)
    if k is None or k >= n:
        return np.arange(n)
    from kerasft.data._split import split_off

    return split_off(labels, k, seed)[1]


def take(values, keep):
    """`values` (a list, an array or `None`) at the indices `keep`."""
    if values is None:
        return None
    if isinstance(values, np.ndarray):
        return values[keep]
    return [values[i] for i in keep]


def log_subset(run, what, before, after):
    """One log line when a subset left examples out."""
    if after < before:
        run.log(f"Using {after} of {before} {what} (max_train_samples / "
                "max_eval_samples subset).")


def hold_out_indices(run, config, labels, what):
    """`(rest, held)` indices: `config.validation_split` of the training
    examples (stratified by `labels`, or at random when `labels` is their
    count; `kerasft.data._split.holdout_indices`), with one log line."""
    from kerasft.data._split import holdout_indices

    if np.ndim(labels) == 0:
        labels = np.full(int(labels), np.nan)
    split = config.validation_split
    rest, held = holdout_indices(labels, split, config.seed)
    run.log(f"Holding out {len(held)} of {len(labels)} training {what} for "
            f"validation (validation_split={split}).")
    return rest, held
