"""Every private Keras, TensorFlow and KerasHub access kerasft makes.

kerasft needs a few internals that have no public route. Each one lives
here as one small function that names the versions it was checked on, so
an upgrade breaks in one place, loudly: when an internal is missing, the
function raises `KerasInternalError` naming the kerasft feature and the
installed versions. Nothing falls back silently.

Checked on: Keras 3.15.1, TensorFlow 2.21.0, KerasHub 0.32.
"""

import keras


class KerasInternalError(RuntimeError):
    """A Keras/TensorFlow/KerasHub internal kerasft relies on is missing."""


def installed_versions():
    """`"Keras X, TensorFlow Y, KerasHub Z"` as installed."""
    parts = [f"Keras {keras.__version__}"]
    try:
        import tensorflow as tf

        parts.append(f"TensorFlow {tf.__version__}")
    except ImportError:  # pragma: no cover - TensorFlow is a dependency
        pass
    try:
        import keras_hub

        parts.append(f"KerasHub {keras_hub.__version__}")
    except ImportError:
        pass
    return ", ".join(parts)


def missing(feature, internal, checked_on, error=None):
    """A `KerasInternalError` for `feature`, which needs `internal`."""
    return KerasInternalError(
        f"{feature} needs the internal `{internal}` (checked on "
        f"{checked_on}), which this installation lacks ({installed_versions()}). "
        "Install a tested version (see setup.cfg) or report this at kerasft."
        + (f" Cause: {error!r}" if error is not None else "")
    )


# === Optimizers ===


# === Layers and models ===


# === Distribution and training ===


# === KerasHub ===
