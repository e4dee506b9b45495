"""Pure curriculum planning: how much data an epoch sees, and which examples.

Keras-free numpy functions, so `Curriculum`'s glue stays thin and the plan
is unit-tested without models. An epoch's examples depend only on
`(scores, seed, epoch)`, which makes runs deterministic and resumable.
"""

import math

import numpy as np

PACINGS = ("linear", "root", "step")


def check_pacing(pacing, start_fraction, ramp_epochs):
    if pacing not in PACINGS:
        raise ValueError(
            f"`pacing` must be one of {PACINGS}. Received: pacing={pacing!r}"
        )
    if not isinstance(start_fraction, (int, float)) or not 0 < start_fraction <= 1:
        raise ValueError(
            "`start_fraction` must be in (0, 1]. "
            f"Received: start_fraction={start_fraction!r}"
        )
    if isinstance(ramp_epochs, bool) or not isinstance(ramp_epochs, int) or ramp_epochs < 1:
        raise ValueError(
            "`ramp_epochs` must be a positive int (the epoch from which "
            f"every example trains). Received: ramp_epochs={ramp_epochs!r}"
        )


def pacing_fraction(epoch, pacing="linear", start_fraction=0.2, ramp_epochs=5):
    """The fraction of the data, easiest first, that epoch `epoch` trains on.

    - `"linear"`: from `start_fraction` at epoch 0 up to 1 at `ramp_epochs`.
    - `"root"`: `sqrt(s^2 + (1 - s^2) e / ramp_epochs)`, fast at first
      (the competence function of Platanios et al., 2019).
    - `"step"`: `start_fraction` doubling at equal intervals, reaching 1 at
      `ramp_epochs` (the exponential pacing of Hacohen & Weinshall, 2019).

    Args:
        epoch: 0-based epoch.
        pacing: `"linear"`, `"root"` or `"step"`. Defaults to `"linear"`.
        start_fraction: the fraction at epoch 0. Defaults to `0.2`.
        ramp_epochs: the first epoch that trains on everything.
            Defaults to `5`.

    Returns:
        A float in `[start_fraction, 1]`.
    """
    check_pacing(pacing, start_fraction, ramp_epochs)
    if epoch >= ramp_epochs:
        return 1.0
    s, t = float(start_fraction), epoch / ramp_epochs
    if pacing == "linear":
        return s + (1 - s) * t
    if pacing == "root":
        return math.sqrt(s * s + (1 - s * s) * t)
    doublings = max(1, math.ceil(math.log2(1 / s) - 1e-12))
    return min(1.0, s * 2 ** math.floor(t * doublings))


def easiest_first(scores):
    """Example indices sorted by difficulty (ties keep index order)."""
    scores = np.asarray(scores, np.float64).reshape(-1)
    if not np.all(np.isfinite(scores)):
        raise ValueError("Difficulty `scores` must be finite numbers.")
    return np.argsort(scores, kind="stable")


def epoch_indices(order, fraction, seed, epoch, size=None):
    """The example indices of one epoch, in training order.

    The easiest `ceil(fraction * len(order))` examples, shuffled by
    `(seed, epoch)` and repeated (each pass reshuffled) to `size` indices,
    so every epoch has the same number of steps.

    Args:
        order: indices easiest first (`easiest_first(scores)`).
        fraction: the pacing fraction of this epoch.
        seed: the run's seed.
        epoch: the 0-based epoch.
        size: indices per epoch. Defaults to `None`: `len(order)`.

    Returns:
        An int64 array of `size` indices.
    """
    order = np.asarray(order, np.int64)
    size = len(order) if size is None else size
    allowed = order[: max(1, math.ceil(fraction * len(order) - 1e-9))]
    rng = np.random.default_rng([seed, epoch])
    passes = [rng.permutation(allowed) for _ in range(-(-size // len(allowed)))]
    return np.concatenate(passes)[:size]
