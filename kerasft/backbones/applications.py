"""Registry of `keras.applications` image backbones: `get(name, ...)`."""

import dataclasses
import os

import keras

from kerasft.backbones import grouping
from kerasft.backbones.backbone import Backbone
from kerasft.backbones.backbone import Group
from kerasft.backbones.weights_file import load_weights_file


@dataclasses.dataclass(frozen=True)
class _Spec:
    constructor: str  # name in `keras.applications`
    module: str  # `keras.applications.<module>.preprocess_input`
    mode: str  # `kerasft.layers.Preprocess` mode reproducing it
    family: str  # key of `grouping.FAMILY_PATTERNS`
    min_size: int  # smallest input height/width Keras accepts
    pass_name: bool  # False where Keras reads its block layout off `name`


def _specs():
    specs = {}

    def add(names, module, mode, family, min_size=32, pass_name=True):
        for name, constructor in names.items():
            specs[name] = _Spec(
                constructor, module, mode, family, min_size, pass_name
            )

    add(
        {f"resnet{d}": f"ResNet{d}" for d in (50, 101, 152)},
        "resnet",
        "caffe",
        "resnet",
    )
    add(
        {"resnet50v2": "ResNet50V2"},
        "resnet_v2",
        "tf",
        "resnet_v2",
    )
    add({"vgg16": "VGG16"}, "vgg16", "caffe", "vgg")
    add({"vgg19": "VGG19"}, "vgg19", "caffe", "vgg")
    add({"mobilenetv2": "MobileNetV2"}, "mobilenet_v2", "tf", "mobilenet_v2")
    add(
        {
            "mobilenetv3small": "MobileNetV3Small",
            "mobilenetv3large": "MobileNetV3Large",
        },
        "mobilenet_v3",
        "none",
        "mobilenet_v3",
    )
    add(
        {f"efficientnetb{i}": f"EfficientNetB{i}" for i in range(8)},
        "efficientnet",
        "none",
        "efficientnet",
    )
    add(
        {
            "efficientnetv2b0": "EfficientNetV2B0",
            "efficientnetv2b1": "EfficientNetV2B1",
            "efficientnetv2b2": "EfficientNetV2B2",
            "efficientnetv2b3": "EfficientNetV2B3",
        },
        "efficientnet_v2",
        "none",
        "efficientnet",
        pass_name=False,
    )
    add(
        {f"densenet{d}": f"DenseNet{d}" for d in (121, 169)},
        "densenet",
        "torch",
        "densenet",
    )
    add(
        {"convnext_tiny": "ConvNeXtTiny"},
        "convnext",
        "none",
        "convnext",
    )
    add({"xception": "Xception"}, "xception", "tf", "xception", min_size=71)
    return specs


_SPECS = _specs()


def did_you_mean(name, known):
    """`" Did you mean 'x'?"` for the closest of `known`, else `""`."""
    import difflib

    if not isinstance(name, str):
        return ""
    close = difflib.get_close_matches(name.lower(), list(known), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def list_backbones():
    """Sorted names accepted by `kerasft.backbones.get`.

    Example:

    >>> "resnet50" in list_backbones()
    True
    """
    return sorted(_SPECS)


def spec(name):
    """The registry entry of `name`; `ValueError` listing names otherwise."""
    if not isinstance(name, str) or name.lower() not in _SPECS:
        raise ValueError(
            f"Unknown backbone {name!r}.{did_you_mean(name, list_backbones())} "
            "Known backbones: "
            f"{', '.join(list_backbones())}. For another Keras model use "
            "`kerasft.backbones.from_model(model)`."
        )
    return _SPECS[name.lower()]


def get(name, weights=None, input_shape=(224, 224, 3), **kwargs):
    """A `keras.applications` model without its top, as a `Backbone`.

    The model is built with `include_top=False` and named `name`, so in a
    model made by `kerasft.build_model` it is `model.get_layer(name)`.
    `.preprocess` is exactly `keras.applications.<family>.preprocess_input`
    and `.preprocess_mode` the `kerasft.layers.Preprocess` mode that
    reproduces it; every backbone takes raw [0, 255] pixels
    (`.input_range`). `.groups` follow the architecture's stages/blocks
    (see `kerasft.backbones.grouping`).

    Args:
        name: a name from `list_backbones()`, e.g. `"resnet50"`,
            `"efficientnetb0"`, `"vgg16"`, `"mobilenetv2"`.
        weights: `None` (random initialization), `"imagenet"` (downloaded by
            Keras) or the path of a weights file saved from the same
            architecture without its top: a Keras 3 `.weights.h5` file or a
            legacy `.h5` file such as Keras's `..._notop.h5` downloads.
            Defaults to `None`.
        input_shape: `(height, width, channels)`. Defaults to
            `(224, 224, 3)`.
        **kwargs: passed to the `keras.applications` constructor, e.g.
            `pooling="avg"` or `alpha=0.5` for MobileNetV2.

    Returns:
        A `kerasft.backbones.Backbone`.

    Example:

    >>> backbone = get("mobilenetv2", input_shape=(32, 32, 3))
    >>> backbone.model.name, backbone.preprocess_mode
    ('mobilenetv2', 'tf')
    >>> backbone.group_names[:2]
    ['stem', 'block_1']
    """
    entry = spec(name)
    name = name.lower()
    for key in ("include_top", "name", "input_tensor", "classes"):
        if key in kwargs:
            raise ValueError(
                f"`{key}` cannot be set for kerasft backbones: they are built "
                "with `include_top=False` and named after the registry name; "
                "add a head with `kerasft.build_model(backbone, head)`. "
                f"Received: {key}={kwargs[key]!r}"
            )
    input_shape = _check_input_shape(name, entry, input_shape)
    weights_path = _check_weights(weights)
    constructor = getattr(keras.applications, entry.constructor)
    if entry.pass_name:
        kwargs["name"] = name
    try:
        model = constructor(
            include_top=False,
            weights="imagenet" if weights == "imagenet" else None,
            input_shape=input_shape,
            **kwargs,
        )
    except Exception as e:  # noqa: BLE001 (re-raised unless a download)
        _raise_if_offline(name, e)
        raise
    model.name = name
    if weights_path is not None:
        load_weights_file(model, weights_path, backbone_name=name)
    layer_names = [layer.name for layer in model.layers]
    groups = grouping.family_groups(entry.family, layer_names)
    module = getattr(keras.applications, entry.module)
    return Backbone(
        model=model,
        preprocess=module.preprocess_input,
        groups=[Group(group, layers) for group, layers in groups],
        name=name,
        preprocess_mode=entry.mode,
        input_range=(0, 255),
        task="image",
    )


def _raise_if_offline(name, error):
    """A one-line `ValueError` when `error` is a failed ImageNet download."""
    import re

    from kerasft.backbones._download import is_download_failure, offline_error

    if not is_download_failure(error):
        return
    url = re.search(r"URL fetch failure on (\S+?):? ", str(error))
    file = url.group(1).rsplit("/", 1)[-1] if url else f"{name}_notop.h5"
    raise offline_error(
        f"the ImageNet weights of {name!r} ({file})", error,
        "Offline, pass weights=none (random initialization), the path of "
        f"a weights file (e.g. {file} copied from a machine with network) or "
        "a saved .keras model as `backbone`.",
    ) from None


def _check_input_shape(name, entry, input_shape):
    if (
        not isinstance(input_shape, (tuple, list))
        or len(input_shape) != 3
        or not all(d is None or isinstance(d, int) for d in input_shape)
    ):
        raise ValueError(
            "`input_shape` must be a tuple (height, width, channels) of "
            f"ints. Received: input_shape={input_shape!r}"
        )
    input_shape = tuple(input_shape)
    if keras.config.image_data_format() == "channels_first":
        spatial = input_shape[1:]
    else:
        spatial = input_shape[:2]
    small = [d for d in spatial if d is not None and d < entry.min_size]
    if small:
        raise ValueError(
            f"Backbone {name!r} needs images of at least "
            f"{entry.min_size}x{entry.min_size} pixels: its downsampling "
            "stages would shrink smaller ones to nothing. Received: "
            f"input_shape={input_shape}"
        )
    return input_shape


def _check_weights(weights):
    if weights is None or weights == "imagenet":
        return None
    if isinstance(weights, (str, os.PathLike)):
        path = os.fspath(weights)
        if not os.path.isfile(path):
            raise ValueError(
                "`weights` must be None, 'imagenet' or the path of an "
                f"existing weights file. Received: weights={weights!r} "
                "(no such file)"
            )
        return path
    raise TypeError(
        "`weights` must be None, 'imagenet' or the path of a weights file. "
        f"Received: weights={weights!r} of type {type(weights).__name__}"
    )
