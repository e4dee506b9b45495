"""Checks a recipe makes before training, each warning in one line."""

import numpy as np

from kerasft import _io

# Largest per-feature spread across a batch that counts as "no spread".
DEGENERATE_STD = 1e-6


def check_frozen_features(backbone, dataset, warn=_io.notify):
    """Warns when a frozen backbone gives (nearly) the same features for
    every example of the first batch of `dataset`: a head trained on them
    cannot learn (the loss stays at log(classes)).

    The usual cause is random weights (`weights=None`) with BatchNorm in
    inference mode: its moving statistics (mean 0, variance 1) do not match
    the activations, which shrink layer after layer (MobileNetV2 at 32 px:
    a spread of ~5e-13).

    Returns:
        The spread (the largest standard deviation of any feature across the
        batch, the backbone run in inference mode after its own
        preprocessing), or `None` when the batch has fewer than two examples.
    """
    from kerasft.layers import Preprocess

    for batch in dataset.take(1):
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        if not hasattr(x, "shape") or x.shape[0] is None or x.shape[0] < 2:
            return None  # dict inputs or a single example: nothing to compare
        x = np.asarray(x, dtype="float32")
        if backbone.preprocess_mode not in (None, "none"):
            x = Preprocess(backbone.preprocess_mode)(x)
        features = np.asarray(backbone.model(x, training=False),
                              dtype="float64")
        spread = float(
            np.max(np.std(features.reshape(len(features), -1), axis=0)))
        if spread < DEGENERATE_STD:
            warn(
                "Warning: the frozen backbone's features barely differ "
                f"between images (largest spread across a batch {spread:.2g}), "
                "so the head cannot learn. Likely cause: random weights "
                f"({_io.argument('weights', 'none')}) with BatchNorm in "
                "inference mode. Fix: use pretrained weights "
                f"({_io.argument('weights', 'imagenet')} or a weights file), "
                "or a backbone without BatchNorm, or one whose BatchNorm "
                "statistics were set from data.")
        return spread
    return None
