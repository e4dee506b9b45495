"""Semantic segmentation heads: U-Net and DeepLabV3+ decoders over a pyramid."""

import re

import keras

from kerasft.heads._segmentation_loss import SegmentationLoss
from kerasft.heads._segmentation_loss import check_ignore_index
from kerasft.heads.head import Head
from kerasft.heads.head import validate_positive_int

KINDS = ("unet", "deeplabv3plus")
_LEVEL_KEY = re.compile(r"^P(\d+)$")


@keras.saving.register_keras_serializable(package="kerasft")
class SegmentationHead(Head):
    """A decoder from multi-scale features to per-pixel class logits.

    Features are the dict `{"P<L>": map at stride 2**L}` that a backbone
    made by `kerasft.backbones.feature_pyramid` outputs (so use
    `build_model(feature_pyramid(backbone, levels), head)`).

    - `"unet"`: from the deepest level up, each step upsamples (bilinear)
      to the next finer level, concatenates it as a skip, and applies two
      3x3 conv + BatchNorm + ReLU. Pass fine levels, e.g.
      `levels=(1, 2, 3, 4, 5)`, for sharp boundaries.
    - `"deeplabv3plus"`: ASPP on the deepest level (a 1x1 conv, 3x3 convs
      at `atrous_rates` and image pooling, concatenated and projected),
      upsampled to the finest level, concatenated with that level reduced
      to 48 channels by a 1x1 conv (the low-level skip), then two 3x3 convs.
      `levels=(2, 4)` or `(2, 5)` is the paper's layout. (Written here:
      KerasHub's `SpatialPyramidPooling` is not public API and its
      `DeepLabV3Backbone` wants a KerasHub backbone with
      `pyramid_outputs`.)

    Both end with a 1x1 conv to `num_classes` logits, upsampled bilinearly
    to the input resolution (`2**L` times the finest level `L`, or
    `output_size`), computed in float32 under any precision policy.

    Args:
        num_classes: number of classes (>= 2, background included).
        kind: `"unet"` or `"deeplabv3plus"`. Defaults to `"unet"`.
        filters: channels of the decoder convs (U-Net blocks, ASPP
            branches). Defaults to `None`: 64 for U-Net, 256 for DeepLabV3+.
        atrous_rates: dilation rates of the ASPP 3x3 branches (DeepLabV3+
            only). Defaults to `(6, 12, 18)`.
        dice_weight: weight of the soft Dice term added to cross-entropy
            (`SegmentationLoss`); `0.0` is plain cross-entropy.
            Defaults to `0.0`.
        ignore_index: label of pixels the loss and metrics skip, or `None`.
            Defaults to `255`.
        dropout: dropout rate before the logits conv, in [0, 1).
            Defaults to `0.0`.
        output_size: `(height, width)` of the logits, for backbones whose
            finest level is not exactly input/2**L (valid-padded stems).
            Defaults to `None`: `2**L` times the finest level.
        name: layer-name prefix. Defaults to `"head"`.

    Example:
    ```python
    backbone = kerasft.backbones.get("mobilenetv2", input_shape=(64, 64, 3))
    pyramid = kerasft.backbones.feature_pyramid(backbone, levels=(2, 3, 4, 5))
    head = kerasft.heads.segmentation(3, kind="unet", filters=16)
    model = kerasft.build_model(pyramid, head)
    model.compile(optimizer="adam", **head.compile_kwargs())
    ```
    """

    def __init__(
        self,
        num_classes,
        kind="unet",
        filters=None,
        atrous_rates=(6, 12, 18),
        dice_weight=0.0,
        ignore_index=255,
        dropout=0.0,
        output_size=None,
        name="head",
    ):
        super().__init__(name=name)
        validate_positive_int(num_classes, "num_classes")
        if num_classes < 2:
            raise ValueError(
                "`num_classes` must be >= 2 (background counts as a class). "
                f"Received: num_classes={num_classes}"
            )
        if kind not in KINDS:
            raise ValueError(
                f"`kind` must be one of {KINDS}. Received: kind={kind!r}"
            )
        if filters is not None:
            validate_positive_int(filters, "filters")
        if isinstance(atrous_rates, int) or not all(
            isinstance(r, int) and not isinstance(r, bool) and r > 0
            for r in atrous_rates
        ):
            raise ValueError(
                "`atrous_rates` must be a sequence of positive integers, "
                f"e.g. (6, 12, 18). Received: atrous_rates={atrous_rates!r}"
            )
        check_ignore_index(ignore_index, num_classes)
        if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(
                f"`dropout` must be in [0, 1). Received: dropout={dropout!r}"
            )
        if output_size is not None and (
            len(tuple(output_size)) != 2
            or not all(isinstance(s, int) and s > 0 for s in output_size)
        ):
            raise ValueError(
                "`output_size` must be None or (height, width) positive "
                f"ints. Received: output_size={output_size!r}"
            )
        # Validates dice_weight too.
        SegmentationLoss(num_classes, dice_weight, ignore_index)
        self.num_classes = num_classes
        self.kind = kind
        self.filters = filters
        self.atrous_rates = tuple(atrous_rates)
        self.dice_weight = dice_weight
        self.ignore_index = ignore_index
        self.dropout = dropout
        self.output_size = None if output_size is None else tuple(output_size)

    # === Functional model ===

    def call(self, features):
        levels = _levels(features)
        filters = self.filters or (64 if self.kind == "unet" else 256)
        if self.kind == "unet":
            x = self._unet(levels, filters)
        else:
            x = self._deeplab(levels, filters)
        if self.dropout:
            x = keras.layers.Dropout(
                self.dropout, name=self._layer_name("dropout")
            )(x)
        logits = keras.layers.Conv2D(
            self.num_classes, 1, dtype="float32", name=self._layer_name("logits")
        )(x)
        finest = min(levels)
        if self.output_size is not None:
            return keras.layers.Resizing(
                *self.output_size,
                interpolation="bilinear",
                dtype="float32",
                name=self._layer_name("upsample_output"),
            )(logits)
        if finest == 0:
            return logits
        return keras.layers.UpSampling2D(
            2**finest,
            interpolation="bilinear",
            dtype="float32",
            name=self._layer_name("upsample_output"),
        )(logits)

    def _conv(self, x, filters, kernel, suffix, dilation=1):
        x = keras.layers.Conv2D(
            filters,
            kernel,
            padding="same",
            dilation_rate=dilation,
            use_bias=False,
            name=self._layer_name(f"{suffix}_conv"),
        )(x)
        x = keras.layers.BatchNormalization(name=self._layer_name(f"{suffix}_bn"))(x)
        return keras.layers.ReLU(name=self._layer_name(f"{suffix}_relu"))(x)

    def _upsample(self, x, reference, from_level, to_level, suffix):
        """`x` resized to `reference`'s spatial size (bilinear)."""
        name = self._layer_name(f"{suffix}_upsample")
        source, target = tuple(x.shape[1:3]), tuple(reference.shape[1:3])
        factor = 2 ** (from_level - to_level)
        if None in source + target or target == (source[0] * factor, source[1] * factor):
            return keras.layers.UpSampling2D(
                factor, interpolation="bilinear", name=name
            )(x)
        return keras.layers.Resizing(*target, interpolation="bilinear", name=name)(x)

    def _unet(self, levels, filters):
        order = sorted(levels, reverse=True)
        x = levels[order[0]]
        for deeper, level in zip(order, order[1:]):
            skip = levels[level]
            x = self._upsample(x, skip, deeper, level, f"up{level}")
            x = keras.layers.Concatenate(name=self._layer_name(f"concat{level}"))(
                [x, skip]
            )
            x = self._conv(x, filters, 3, f"dec{level}_a")
            x = self._conv(x, filters, 3, f"dec{level}_b")
        if len(order) == 1:
            x = self._conv(x, filters, 3, f"dec{order[0]}_a")
        return x

    def _deeplab(self, levels, filters):
        deepest, finest = max(levels), min(levels)
        x = levels[deepest]
        branches = [self._conv(x, filters, 1, "aspp_1x1")]
        for rate in self.atrous_rates:
            branches.append(self._conv(x, filters, 3, f"aspp_rate{rate}",
                                       atrous_rate(rate, x.shape[1:3])))
        branches.append(self._image_pooling(x, filters))
        x = keras.layers.Concatenate(name=self._layer_name("aspp_concat"))(branches)
        x = self._conv(x, filters, 1, "aspp_project")
        if finest == deepest:
            return x
        low = self._conv(levels[finest], 48, 1, "low_level")
        x = self._upsample(x, low, deepest, finest, "aspp")
        x = keras.layers.Concatenate(name=self._layer_name("decoder_concat"))(
            [x, low]
        )
        x = self._conv(x, filters, 3, "decoder_a")
        return self._conv(x, filters, 3, "decoder_b")

    def _image_pooling(self, x, filters):
        height, width = x.shape[1:3]
        if height is None or width is None:
            raise ValueError(
                "kind='deeplabv3plus' needs a fixed input size (its image "
                "pooling branch is broadcast back to the feature map); build "
                "the backbone with input_shape=(height, width, 3). Received "
                f"features of shape {tuple(x.shape)}"
            )
        pooled = keras.layers.GlobalAveragePooling2D(
            keepdims=True, name=self._layer_name("aspp_pool")
        )(x)
        pooled = self._conv(pooled, filters, 1, "aspp_pool")
        return keras.layers.UpSampling2D(
            (height, width), name=self._layer_name("aspp_pool_upsample")
        )(pooled)

    # === Compile defaults ===

    @property
    def loss(self):
        return SegmentationLoss(
            self.num_classes, self.dice_weight, self.ignore_index
        )

    @property
    def metrics(self):
        return [
            keras.metrics.MeanIoU(
                self.num_classes,
                ignore_class=self.ignore_index,
                sparse_y_pred=False,
                name="mean_iou",
            )
        ]

    # === Config ===

    def get_config(self):
        return {
            "num_classes": self.num_classes,
            "kind": self.kind,
            "filters": self.filters,
            "atrous_rates": self.atrous_rates,
            "dice_weight": self.dice_weight,
            "ignore_index": self.ignore_index,
            "dropout": self.dropout,
            "output_size": self.output_size,
            "name": self.name,
        }


def atrous_rate(rate, size):
    """The dilation giving a 3x3 atrous conv of `rate` on a `size` feature
    map the same output at the least cost: `rate` clipped to each side.

    A tap `rate` pixels off the centre lands in the zero padding wherever
    `rate >= side`, so every rate from `side` up gives the same output. The
    cost does not stay the same: TensorFlow runs a dilated conv on the map
    split into `rate x rate` phases after padding to a multiple of `rate`,
    so on the 2x2 deepest level of a 64 px image rates 6/12/18 did hundreds
    of times the work of the 4 pixels (DeepLabV3+ ran ~65x slower than U-Net
    per step, 8x after clipping; `benchmarks/segmentation_step.py`).

    Args:
        rate: the dilation rate asked for.
        size: `(height, width)` of the feature map; `None` sides keep `rate`.

    Returns:
        `rate`, or a `(height_rate, width_rate)` tuple when a side is smaller.

    Example:
    >>> atrous_rate(18, (2, 2)), atrous_rate(6, (32, 32)), atrous_rate(12, (4, 16))
    ((2, 2), 6, (4, 12))
    """
    clipped = tuple(rate if side is None else min(rate, side) for side in size)
    return rate if clipped == (rate, rate) else clipped


def _levels(features):
    """`{level: map}` from a feature-pyramid dict; errors name the fix."""
    if not isinstance(features, dict) or not features:
        shape = tuple(features.shape) if hasattr(features, "shape") else features
        raise ValueError(
            "A segmentation head needs multi-scale features: a dict "
            "{'P3': ..., 'P4': ...} as made by "
            "`kerasft.build_model(kerasft.backbones.feature_pyramid(backbone, "
            f"levels=(2, 3, 4, 5)), head)`. Received: {shape}"
        )
    levels = {}
    for key, value in features.items():
        match = _LEVEL_KEY.match(str(key))
        if not match or len(value.shape) != 4:
            raise ValueError(
                "Segmentation features must be keyed 'P<level>' with 4-D "
                f"maps (batch, h, w, c). Received key {key!r} with shape "
                f"{tuple(value.shape)}"
            )
        levels[int(match.group(1))] = value
    return levels


def segmentation(
    num_classes,
    kind="unet",
    filters=None,
    atrous_rates=(6, 12, 18),
    dice_weight=0.0,
    ignore_index=255,
    dropout=0.0,
    output_size=None,
    name="head",
):
    """A semantic segmentation head (`SegmentationHead`).

    Example:
    ```python
    head = kerasft.heads.segmentation(21, kind="deeplabv3plus", dice_weight=1.0)
    ```
    """
    return SegmentationHead(
        num_classes,
        kind=kind,
        filters=filters,
        atrous_rates=atrous_rates,
        dice_weight=dice_weight,
        ignore_index=ignore_index,
        dropout=dropout,
        output_size=output_size,
        name=name,
    )
