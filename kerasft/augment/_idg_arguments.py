"""`ImageAugmentation`'s argument checks: IDG's names, clear errors."""

import difflib
import numbers

# ImageDataGenerator arguments this layer does not take, and what to do.
_REDIRECTS = {
    "featurewise_center": (
        "dataset statistics belong in the model: use the backbone's "
        "preprocessing, or a `keras.layers.Normalization` layer adapted "
        "on the training images"
    ),
    "featurewise_std_normalization": (
        "use the backbone's preprocessing, or a `keras.layers.Normalization` "
        "layer adapted on the training images"
    ),
    "zca_whitening": (
        "ZCA whitening is not supported; use the backbone's preprocessing"
    ),
    "zca_epsilon": "ZCA whitening is not supported",
    "samplewise_center": (
        "per-image statistics belong in the model: add a layer computing "
        "`x - mean(x)` before the backbone"
    ),
    "samplewise_std_normalization": (
        "per-image statistics belong in the model: add a layer computing "
        "`x / std(x)` before the backbone"
    ),
    "preprocessing_function": (
        "apply it with `dataset.map(...)` after this layer, or use the "
        "backbone's preprocessing inside the model"
    ),
    "validation_split": (
        "pass `validation_split` to `kerasft.data.image_folder`"
    ),
    "data_format": "images are channels-last (`[batch, height, width, channels]`)",
}
_LAYER_KWARGS = ("name", "dtype", "trainable")

_SUPPORTED = (
    "rotation_range",
    "width_shift_range",
    "height_shift_range",
    "shear_range",
    "zoom_range",
    "horizontal_flip",
    "vertical_flip",
    "brightness_range",
    "channel_shift_range",
    "fill_mode",
    "cval",
    "rescale",
    "interpolation_order",
    "seed",
    "bounding_box_format",
    "max_boxes",
    "min_box_area_fraction",
    "mask_fill_value",
)


def check_unknown(kwargs):
    for key in kwargs:
        if key in _LAYER_KWARGS:
            continue
        if key in _REDIRECTS:
            raise ValueError(
                f"ImageAugmentation does not take `{key}`: {_REDIRECTS[key]}."
                f" Supported arguments: {', '.join(_SUPPORTED)}."
            )
        close = difflib.get_close_matches(key, _SUPPORTED, n=1)
        hint = f" Did you mean `{close[0]}`?" if close else ""
        raise TypeError(
            f"ImageAugmentation got an unexpected keyword argument `{key}`."
            f"{hint} Supported arguments: {', '.join(_SUPPORTED)} (and the "
            f"layer's {', '.join(_LAYER_KWARGS)})."
        )


def number(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"`{name}` must be a number. Received: {name}={value!r}"
        )
    return value


def non_negative(name, value):
    value = number(name, value)
    if value < 0:
        raise ValueError(
            f"`{name}` must be >= 0. Received: {name}={value!r}"
        )
    return float(value)


def boolean(name, value):
    if not isinstance(value, bool):
        raise TypeError(
            f"`{name}` must be True or False. Received: {name}={value!r}"
        )
    return value


def shift(name, value):
    """Float, int or list, kept in the form IDG distinguishes them by."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"`{name}` must not be an empty list.")
        return [non_negative(name, v) for v in value]
    if isinstance(value, bool):
        raise TypeError(
            f"`{name}` must be a float, an int or a list of numbers. "
            f"Received: {name}={value!r}"
        )
    if isinstance(value, numbers.Integral):
        if value < 0:
            raise ValueError(f"`{name}` must be >= 0. Received: {name}={value}")
        return int(value)
    return non_negative(name, value)


def zoom(value):
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(
                "`zoom_range` must be a float or a pair [lower, upper]. "
                f"Received: zoom_range={value!r}"
            )
        lo, hi = (float(number("zoom_range", v)) for v in value)
    else:
        z = non_negative("zoom_range", value)
        lo, hi = 1.0 - z, 1.0 + z
    if not 0 < lo <= hi:
        raise ValueError(
            "`zoom_range` must give 0 < lower <= upper. "
            f"Received: zoom_range={value!r}"
        )
    return (lo, hi)


def brightness(value):
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(
            "`brightness_range` must be None or a pair [lower, upper]. "
            f"Received: brightness_range={value!r}"
        )
    lo, hi = (float(number("brightness_range", v)) for v in value)
    if not 0 <= lo <= hi:
        raise ValueError(
            "`brightness_range` must give 0 <= lower <= upper. "
            f"Received: brightness_range={value!r}"
        )
    return (lo, hi)
