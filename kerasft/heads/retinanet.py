"""RetinaNet head: KerasHub's FPN, prediction towers, anchors, label encoder
and non-max suppression on any kerasft backbone's feature pyramid."""

import keras

from kerasft import _keras_compat
from kerasft.heads.head import Head, validate_positive_int

BOXES = "bbox_regression"
CLASSES = "cls_logits"


@keras.saving.register_keras_serializable(package="kerasft")
class RetinaNetPredictor(keras.layers.Layer):
    """FPN + box and class towers over `{"P3": ..., "P5": ...}` features.

    The layers are KerasHub 0.32's RetinaNet `FeaturePyramid` and
    `PredictionHead` (shared over levels); the prior-probability bias is on
    the class logits, as in the RetinaNet paper. Outputs, float32 under any
    policy: `{"bbox_regression": (batch, anchors, 4)` center-xywh deltas,
    `"cls_logits": (batch, anchors, num_classes)}`.

    Args:
        num_classes: object classes.
        max_level: highest pyramid level; levels above the backbone's are
            strided convs (P6, P7).
        num_anchors: anchors per location.
        fpn_filters: FPN channels.
        head_filters: channels of the tower convs.
        head_conv_layers: 3x3 convs per tower before the logits.
        prior_probability: initial class probability (focal-loss prior).
        **kwargs: `keras.layers.Layer` arguments.
    """

    def __init__(self, num_classes, max_level=7, num_anchors=9,
                 fpn_filters=256, head_filters=256, head_conv_layers=4,
                 prior_probability=0.01, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.max_level = max_level
        self.num_anchors = num_anchors
        self.fpn_filters = fpn_filters
        self.head_filters = head_filters
        self.head_conv_layers = head_conv_layers
        self.prior_probability = prior_probability
        tower = _keras_compat.retinanet_prediction_head_class()
        common = dict(num_filters=head_filters, num_conv_layers=head_conv_layers,
                      dtype=self.dtype_policy)
        self.box_tower = tower(output_filters=num_anchors * 4, name="box_head",
                               **common)
        self.class_tower = tower(
            output_filters=num_anchors * num_classes, use_prior_probability=True,
            prior_probability=prior_probability, name="classification_head",
            **common,
        )
        self.fpn = None

    def build(self, input_shape):
        levels = sorted(int(k[1:]) for k in input_shape)
        fpn = _keras_compat.retinanet_feature_pyramid_class()
        self.fpn = fpn(min_level=levels[0], max_level=self.max_level,
                       use_p5=False, num_filters=self.fpn_filters,
                       dtype=self.dtype_policy, name="fpn")
        self.fpn.build(dict(input_shape))
        level_shape = (None, None, None, self.fpn_filters)
        self.box_tower.build(level_shape)
        self.class_tower.build(level_shape)

    def call(self, features):
        pyramid = self.fpn(features)
        boxes, classes = [], []
        for level in sorted(pyramid, key=lambda k: int(k[1:])):
            x = pyramid[level]
            boxes.append(keras.ops.reshape(self.box_tower(x), (keras.ops.shape(x)[0], -1, 4)))
            classes.append(keras.ops.reshape(
                self.class_tower(x), (keras.ops.shape(x)[0], -1, self.num_classes)
            ))
        return {
            BOXES: keras.ops.cast(keras.ops.concatenate(boxes, 1), "float32"),
            CLASSES: keras.ops.cast(keras.ops.concatenate(classes, 1), "float32"),
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            num_classes=self.num_classes, max_level=self.max_level,
            num_anchors=self.num_anchors, fpn_filters=self.fpn_filters,
            head_filters=self.head_filters, head_conv_layers=self.head_conv_layers,
            prior_probability=self.prior_probability,
        )
        return config


@keras.saving.register_keras_serializable(package="kerasft")
class RetinaNetHead(Head):
    """RetinaNet on a feature pyramid: FPN, anchors, focal + Huber losses.

    Build it on `kerasft.backbones.feature_pyramid(backbone)` (features
    `{"P3", "P4", "P5"}`): `kerasft.build_model(pyramid, head)`. The model
    outputs raw `"bbox_regression"` deltas and `"cls_logits"` per anchor
    (`RetinaNetPredictor`). Training targets come from
    `head.training_targets(images, {"boxes", "labels"})` (KerasHub's
    `RetinaNetLabelEncoder`; run it in `tf.data`, as
    `kerasft.recipes.object_detection` does), which also gives per-anchor
    sample weights normalised by the number of positive anchors, as
    KerasHub's `RetinaNetObjectDetector.compute_loss` does. Losses: Keras's
    `BinaryFocalCrossentropy` (alpha 0.25, gamma 2) and `Huber`, summed.
    `head.decode(outputs, image_shape)` turns outputs into boxes with
    KerasHub's `NonMaxSuppression`.

    Args:
        num_classes: object classes (>= 1).
        min_level: the pyramid's finest level (its features' lowest `P`
            key). Defaults to `3`.
        max_level: highest pyramid level (coarser ones added by strided
            convs). Defaults to `7`.
        anchor_size: anchor side at level L is `anchor_size * 2**L` (times
            three scales). Defaults to `4` (KerasHub's; 32 px at P3).
        aspect_ratios: anchor aspect ratios. Defaults to `(0.5, 1.0, 2.0)`.
        num_scales: anchor scales per octave. Defaults to `3`.
        fpn_filters: FPN channels. Defaults to `256`.
        head_filters: tower channels. Defaults to `256`.
        head_conv_layers: convs per tower. Defaults to `4`.
        box_loss_weight: weight of the box loss. Defaults to `1.0`.
        name: layer-name prefix. Defaults to `"head"`.

    Example:
    ```python
    backbone = kerasft.backbones.get("vgg16", weights=None,
                                     input_shape=(64, 64, 3))
    pyramid = kerasft.backbones.feature_pyramid(backbone)
    head = kerasft.heads.detection(3, kind="retinanet", max_level=5,
                                   head_filters=32, head_conv_layers=1)
    model = kerasft.build_model(pyramid, head)
    model.compile(optimizer="adam", **head.compile_kwargs())
    ```
    """

    def __init__(self, num_classes, min_level=3, max_level=7, anchor_size=4,
                 aspect_ratios=(0.5, 1.0, 2.0), num_scales=3, fpn_filters=256,
                 head_filters=256, head_conv_layers=4, box_loss_weight=1.0,
                 name="head"):
        super().__init__(name=name)
        validate_positive_int(num_classes, "num_classes")
        for arg, value in (("min_level", min_level), ("max_level", max_level),
                           ("num_scales", num_scales),
                           ("fpn_filters", fpn_filters),
                           ("head_filters", head_filters)):
            validate_positive_int(value, arg)
        if isinstance(head_conv_layers, bool) or not isinstance(head_conv_layers, int) or (
            head_conv_layers < 0
        ):
            raise ValueError("`head_conv_layers` must be an int >= 0. "
                             f"Received: head_conv_layers={head_conv_layers!r}")
        if max_level < min_level:
            raise ValueError(
                f"`max_level` must be >= `min_level`={min_level}. "
                f"Received: max_level={max_level!r}"
            )
        if not anchor_size > 0:
            raise ValueError(f"`anchor_size` must be > 0. Received: anchor_size={anchor_size!r}")
        if not aspect_ratios or any(not r > 0 for r in aspect_ratios):
            raise ValueError("`aspect_ratios` must be positive numbers, e.g. "
                             f"(0.5, 1.0, 2.0). Received: aspect_ratios={aspect_ratios!r}")
        if not box_loss_weight > 0:
            raise ValueError("`box_loss_weight` must be > 0. "
                             f"Received: box_loss_weight={box_loss_weight!r}")
        self.num_classes = num_classes
        self.min_level = min_level
        self.max_level = max_level
        self.anchor_size = anchor_size
        self.aspect_ratios = tuple(float(r) for r in aspect_ratios)
        self.num_scales = num_scales
        self.fpn_filters = fpn_filters
        self.head_filters = head_filters
        self.head_conv_layers = head_conv_layers
        self.box_loss_weight = box_loss_weight
        self._encoder = None

    @property
    def num_anchors(self):
        return self.num_scales * len(self.aspect_ratios)

    def call(self, features):
        if not isinstance(features, dict) or not all(
            k.startswith("P") and k[1:].isdigit() for k in features
        ):
            raise ValueError(
                "The RetinaNet head needs pyramid features {'P3': ..., 'P5': "
                "...}: build the model on kerasft.backbones.feature_pyramid("
                f"backbone). Received: {type(features).__name__}"
            )
        lowest = min(int(k[1:]) for k in features)
        if lowest != self.min_level:
            raise ValueError(
                f"The pyramid's finest level is P{lowest} but the head's "
                f"`min_level` is {self.min_level}: pass min_level={lowest} "
                "or build the pyramid with levels starting at "
                f"{self.min_level}. Received features: {sorted(features)}"
            )
        return RetinaNetPredictor(
            self.num_classes, max_level=self.max_level,
            num_anchors=self.num_anchors, fpn_filters=self.fpn_filters,
            head_filters=self.head_filters, head_conv_layers=self.head_conv_layers,
            name=self._layer_name("retinanet"),
        )(features)

    # === Anchors, targets, decoding ===

    def anchor_generator(self):
        """KerasHub's `AnchorGenerator` for this head (xyxy pixels)."""
        import keras_hub

        return keras_hub.layers.AnchorGenerator(
            "xyxy", min_level=self.min_level, max_level=self.max_level,
            num_scales=self.num_scales, aspect_ratios=list(self.aspect_ratios),
            anchor_size=self.anchor_size,
        )

    def training_targets(self, images, targets):
        """`(images, y, sample_weight)` for `fit` from a batch of images and
        `{"boxes": (b, m, 4) xyxy pixels, "labels": (b, m)}` (label -1:
        padding); usable in `tf.data.Dataset.map`."""
        if self._encoder is None:
            encoder = _keras_compat.retinanet_label_encoder_class()
            self._encoder = encoder(
                self.anchor_generator(), bounding_box_format="xyxy",
                encoding_format="center_xywh",
            )
        ops = keras.ops
        labels = ops.cast(targets["labels"], "float32")
        boxes, classes = self._encoder(
            images=images, gt_boxes=ops.cast(targets["boxes"], "float32"),
            gt_classes=labels,
        )
        positive = ops.cast(classes >= 0, "float32")
        normalizer = ops.maximum(ops.sum(positive), 1.0)
        weights = {
            BOXES: positive / normalizer,
            CLASSES: ops.cast(ops.not_equal(classes, -2.0), "float32") / normalizer,
        }
        y = {BOXES: boxes,
             CLASSES: ops.one_hot(ops.cast(classes, "int32"), self.num_classes)}
        return images, y, weights

    def decode(self, outputs, image_shape, confidence_threshold=0.05,
               iou_threshold=0.5, max_detections=100):
        """Boxes from model outputs: `{"boxes": (b, k, 4)` xyxy pixels,
        `"confidence"`, `"labels"` (-1: none), `"num_detections"}` after
        KerasHub's (class-agnostic) `NonMaxSuppression`."""
        import keras_hub

        height, width = int(image_shape[0]), int(image_shape[1])
        anchors = self.anchor_generator()(keras.ops.zeros((height, width, 3)))
        anchors = keras.ops.concatenate(list(anchors.values()), axis=0)
        boxes = keras.utils.bounding_boxes.decode_deltas_to_boxes(
            anchors=anchors, boxes_delta=outputs[BOXES],
            encoded_format="center_xywh", anchor_format="xyxy",
            box_format="xyxy", image_shape=(height, width, 3),
        )
        nms = keras_hub.layers.NonMaxSuppression(
            bounding_box_format="xyxy", from_logits=True,
            iou_threshold=iou_threshold,
            confidence_threshold=confidence_threshold,
            max_detections=max_detections,
        )
        return nms(boxes, outputs[CLASSES])

    # === Compile ===

    @property
    def loss(self):
        return {
            BOXES: keras.losses.Huber(reduction="sum"),
            CLASSES: keras.losses.BinaryFocalCrossentropy(
                apply_class_balancing=True, alpha=0.25, gamma=2.0,
                from_logits=True, reduction="sum",
            ),
        }

    @property
    def metrics(self):
        return {}

    def compile_kwargs(self):
        return {"loss": self.loss,
                "loss_weights": {BOXES: self.box_loss_weight, CLASSES: 1.0}}

    def get_config(self):
        return {
            "num_classes": self.num_classes,
            "min_level": self.min_level,
            "max_level": self.max_level,
            "anchor_size": self.anchor_size,
            "aspect_ratios": self.aspect_ratios,
            "num_scales": self.num_scales,
            "fpn_filters": self.fpn_filters,
            "head_filters": self.head_filters,
            "head_conv_layers": self.head_conv_layers,
            "box_loss_weight": self.box_loss_weight,
            "name": self.name,
        }
