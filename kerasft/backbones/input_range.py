"""`check_input_range`: warn when images look scaled for the wrong range."""

import warnings

import numpy as np

from kerasft.layers.preprocess import looks_unit_scaled
from kerasft.layers.preprocess import unit_scale_message


def check_input_range(images, backbone):
    """Warns when `images` look already scaled to [0, 1] for `backbone`.

    Every kerasft image backbone takes raw [0, 255] pixels and preprocesses
    inside the model; dividing by 255 first silently ruins accuracy
    (tensorflow#48412). Call this on a first batch (cheap: one max).

    Args:
        images: an array or tensor of images.
        backbone: a `kerasft.backbones.Backbone`, or its `input_range`
            tuple such as `(0, 255)`.

    Returns:
        `False` when it warned, else `True`.

    Example:

    >>> import numpy as np
    >>> check_input_range(np.full((1, 8, 8, 3), 200.0), (0, 255))
    True
    """
    expected = getattr(backbone, "input_range", backbone)
    if expected is None:
        return True
    if not isinstance(expected, (tuple, list)) or len(expected) != 2:
        raise TypeError(
            "`backbone` must be a kerasft Backbone or an input range "
            f"(low, high). Received: backbone={backbone!r}"
        )
    values = np.asarray(images)
    if values.size == 0 or not np.issubdtype(values.dtype, np.number):
        return True
    max_abs = float(np.max(np.abs(values)))
    if looks_unit_scaled(max_abs, expected_max=float(expected[1])):
        who = getattr(backbone, "name", None)
        who = f"Backbone {who!r}" if who else "The model"
        warnings.warn(
            unit_scale_message(float(np.max(values)), expected, who),
            stacklevel=2,
        )
        return False
    return True
