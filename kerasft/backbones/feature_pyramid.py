"""`feature_pyramid`: a backbone's outputs at strides 8/16/32 (or any 2**L).

Dense heads (segmentation decoders, FPN detectors) need features at several
resolutions. Level `L` is the feature map at stride `2**L` (level 3 is 1/8 of
the input). Each level is read off the backbone's own stage boundaries:

1. Group ends: the last layer of each of `backbone.groups` (input -> output)
   whose output is at stride `2**L`; the deepest such group wins, so the
   level is the end of the last stage working at that resolution (ResNet50
   level 3 = `conv3_block4_out`, VGG16 = `block3_pool`, MobileNetV2 =
   `block_5_add`, EfficientNet level 5 = `top_activation`).
2. Stride changes, where no group ends at that stride (user models whose
   groups cut stages elsewhere, or level 1/2 of stems that pool straight
   away): the last layer, in model order, before the first layer with a
   larger stride, skipping `ZeroPadding2D` (its output is the padded map
   the downsampling layer reads, not a stage output).

Strides come from output shapes: `input size / output size` rounded to the
nearest power of two (valid-padded convs, as in Xception's stem, shrink
maps by a few pixels). Models with a dynamic input size are measured on a
256x256 probe.
"""

import math

import keras

from kerasft.backbones.backbone import Backbone
from kerasft.backbones.backbone import Group

_PROBE_SIZE = 256


def feature_pyramid(backbone, levels=(3, 4, 5)):
    """Multi-scale features of an image backbone, as a `Backbone`.

    The returned backbone's model maps the same input to a dict
    `{"P3": stride-8 map, "P4": stride-16 map, ...}` (KerasHub's
    `pyramid_outputs` keys), one entry per level. It shares every layer
    (so every variable, pretrained or not) with `backbone.model`, keeps its
    name, preprocessing and input range, and keeps `backbone.groups`
    restricted to the layers it still uses (groups past the deepest level
    are dropped). So `kerasft.build_model(pyramid, head)` nests it under
    the same name, and `kerasft.freeze`, `ProgressiveUnfreeze` and
    `LayerwiseLR` act on the same group names as for the plain backbone.
    `pyramid.levels` maps each key to the layer it was taken from.

    Args:
        backbone: an image `kerasft.backbones.Backbone` (from
            `kerasft.backbones.get` or `from_model`) with a functional
            model.
        levels: strictly increasing non-negative ints; level `L` is the
            output at stride `2**L`. Defaults to `(3, 4, 5)`.

    Returns:
        A `kerasft.backbones.Backbone` whose model outputs a dict keyed
        `f"P{level}"`.

    Raises:
        ValueError: bad `levels`, or a level the backbone does not reach
            (the message lists the strides it has).

    Example:

    >>> import kerasft
    >>> backbone = kerasft.backbones.get("vgg16", input_shape=(64, 64, 3))
    >>> pyramid = kerasft.backbones.feature_pyramid(backbone)
    >>> {k: tuple(v.shape[1:3]) for k, v in pyramid.model.output.items()}
    {'P3': (8, 8), 'P4': (4, 4), 'P5': (2, 2)}
    >>> pyramid.levels
    {'P3': 'block3_pool', 'P4': 'block4_pool', 'P5': 'block5_pool'}
    """
    if not isinstance(backbone, Backbone):
        raise TypeError(
            "`backbone` must be a kerasft.backbones.Backbone (from "
            "`kerasft.backbones.get` or `from_model`). Received: "
            f"backbone={backbone!r}"
        )
    if backbone.task != "image":
        raise ValueError(
            "`feature_pyramid` needs an image backbone. Received: "
            f"backbone {backbone.name!r} with task={backbone.task!r}"
        )
    levels = _check_levels(levels)
    model = backbone.model
    order = [layer.name for layer in model.layers]
    strides = layer_strides(model)
    chosen = {}
    for level in levels:
        layer = _group_end(backbone, strides, 2**level)
        if layer is None:
            layer = _before_stride_change(model, order, strides, 2**level)
        if layer is None:
            reached = sorted(set(strides.values()))
            raise ValueError(
                f"Backbone {backbone.name!r} has no output at stride "
                f"{2**level} (level {level}); its layers reach strides "
                f"{reached}, i.e. levels "
                f"{[int(math.log2(s)) for s in reached]}. Pass `levels` "
                f"within those. Received: levels={levels}"
            )
        chosen[f"P{level}"] = layer
    outputs = {key: model.get_layer(name).output for key, name in chosen.items()}
    pyramid = keras.Model(model.inputs, outputs, name=model.name)
    kept = {layer.name for layer in pyramid.layers}
    groups = [
        Group(g.name, [n for n in g.layers if n in kept])
        for g in backbone.groups
    ]
    result = Backbone(
        model=pyramid,
        preprocess=backbone.preprocess,
        groups=[g for g in groups if g.layers],
        name=backbone.name,
        preprocess_mode=backbone.preprocess_mode,
        input_range=backbone.input_range,
        task="image",
    )
    result.levels = chosen
    return result


def _check_levels(levels):
    if isinstance(levels, int) and not isinstance(levels, bool):
        levels = (levels,)
    if (
        not isinstance(levels, (tuple, list))
        or not levels
        or not all(
            isinstance(l, int) and not isinstance(l, bool) and l >= 0
            for l in levels
        )
        or list(levels) != sorted(set(levels))
    ):
        raise ValueError(
            "`levels` must be strictly increasing non-negative ints (level L "
            "is the output at stride 2**L), e.g. (3, 4, 5). "
            f"Received: levels={levels!r}"
        )
    return tuple(levels)


def layer_strides(model):
    """`{layer name: stride}` for the layers of `model` with a 4-D output.

    The stride is `input height / output height` rounded to the nearest
    power of two (channels-last). A model with a dynamic input size is
    measured on a 256x256 probe.
    """
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
        raise ValueError(
            "`feature_pyramid` needs a model with one 4-D image input. "
            f"Received inputs: {[tuple(t.shape) for t in model.inputs]}"
        )
    tensors = {}
    for layer in model.layers[1:]:
        try:
            output = layer.output
        except (AttributeError, ValueError):  # shared layer: several outputs
            continue
        if hasattr(output, "shape") and len(output.shape) == 4:
            tensors[layer.name] = output
    input_shape = tuple(model.inputs[0].shape)
    height = input_shape[1]
    heights = {name: t.shape[1] for name, t in tensors.items()}
    if height is None or any(h is None for h in heights.values()):
        height = _PROBE_SIZE
        probe = keras.Model(model.inputs, tensors)
        spec = probe.compute_output_spec(
            keras.KerasTensor((1, height, height) + input_shape[3:])
        )
        heights = {name: s.shape[1] for name, s in spec.items()}
    return {
        name: 2 ** round(math.log2(height / h))
        for name, h in heights.items()
        if h
    }


def _group_end(backbone, strides, stride):
    found = None
    for group in backbone.groups:
        if group.layers and strides.get(group.layers[-1]) == stride:
            found = group.layers[-1]
    return found


def _before_stride_change(model, order, strides, stride):
    paddings = {
        l.name for l in model.layers if isinstance(l, keras.layers.ZeroPadding2D)
    }
    found = None
    for name in order:
        if name not in strides:
            continue
        if strides[name] > stride:
            break
        if strides[name] == stride and name not in paddings:
            found = name
    return found
