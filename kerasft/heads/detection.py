"""Single-object detection head: one normalized box and one class per image."""

import keras

from kerasft.heads._dense import DenseHead
from kerasft.heads.head import validate_positive_int

BBOX = "bbox_regression"
CLASSES = "classification"
_LABEL_MODES = ("int", "categorical")
_KINDS = ("single", "retinanet")
_SINGLE_DEFAULTS = dict(
    conv_filters=(256,), hidden_units=(), dropout=0.0, l2=0.0, pooling="avg",
    activation="relu", bbox_loss="mse", bbox_loss_weight=1.0, label_mode="int",
)


@keras.saving.register_keras_serializable(package="kerasft")
class DetectionHead(DenseHead):
    """The tutorial's detection head: conv features -> box + class.

    `features -> Conv2D(f, 3, relu) per entry of conv_filters -> pooling
    -> hidden Dense layers -> {"bbox_regression": Dense(4, sigmoid),
    "classification": Dense(num_classes, softmax)}`. The box is normalized
    to [0, 1] in the box format of the training targets (kerasft.evaluation
    reads `"xyxy"` by default). The model has two named outputs and is
    compiled with a loss per output: `loss={"bbox_regression": bbox_loss,
    "classification": crossentropy}`, so targets are a dict with the same
    keys.

    Args:
        num_classes: number of object classes (>= 1).
        conv_filters: filters of the 3x3 conv layers on the feature map;
            `()` pools the backbone features directly. Defaults to `(256,)`.
        hidden_units: sizes of hidden Dense layers. Defaults to `()`.
        dropout: dropout rate before every Dense layer. Defaults to `0.0`.
        l2: L2 factor on every Conv/Dense kernel of the head.
            Defaults to `0.0`.
        pooling: `"avg"`, `"max"` or `"flatten"`. Defaults to `"avg"`.
        activation: activation of conv and hidden layers.
            Defaults to `"relu"`.
        bbox_loss: Keras loss name for the box, e.g. `"mse"`, `"huber"`.
            Defaults to `"mse"`.
        bbox_loss_weight: weight of the box loss against the class loss.
            Defaults to `1.0`.
        label_mode: class targets as `"int"` indices or `"categorical"`
            one-hot. Defaults to `"int"`.
        name: layer-name prefix. Defaults to `"head"`.

    Example:
    ```python
    head = kerasft.heads.detection(3)
    inputs = keras.Input((4, 4, 64))
    model = keras.Model(inputs, head(inputs))
    model.compile(optimizer="adam", **head.compile_kwargs())
    ```
    """

    def __init__(
        self,
        num_classes,
        conv_filters=(256,),
        hidden_units=(),
        dropout=0.0,
        l2=0.0,
        pooling="avg",
        activation="relu",
        bbox_loss="mse",
        bbox_loss_weight=1.0,
        label_mode="int",
        name="head",
    ):
        super().__init__(
            hidden_units=hidden_units,
            dropout=dropout,
            l2=l2,
            pooling=pooling,
            activation=activation,
            name=name,
        )
        validate_positive_int(num_classes, "num_classes")
        if isinstance(conv_filters, int) or not all(
            isinstance(f, int) and not isinstance(f, bool) and f > 0
            for f in conv_filters
        ):
            raise ValueError(
                "`conv_filters` must be a sequence of positive integers, "
                f"e.g. (256,). Received: conv_filters={conv_filters!r}"
            )
        if not isinstance(bbox_loss, str):
            raise TypeError(
                "`bbox_loss` must be a Keras loss name such as 'mse'. "
                f"Received: bbox_loss={bbox_loss!r}"
            )
        keras.losses.get(bbox_loss)
        if not bbox_loss_weight > 0:
            raise ValueError(
                "`bbox_loss_weight` must be > 0. "
                f"Received: bbox_loss_weight={bbox_loss_weight!r}"
            )
        if label_mode not in _LABEL_MODES:
            raise ValueError(
                f"`label_mode` must be one of {_LABEL_MODES}. "
                f"Received: label_mode={label_mode!r}"
            )
        self.num_classes = num_classes
        self.conv_filters = tuple(conv_filters)
        self.bbox_loss = bbox_loss
        self.bbox_loss_weight = bbox_loss_weight
        self.label_mode = label_mode

    def call(self, features):
        x = features
        if self.conv_filters:
            if isinstance(x, dict) or len(x.shape) != 4:
                shape = "a dict" if isinstance(x, dict) else tuple(x.shape)
                raise ValueError(
                    "`conv_filters` needs a 4-D feature map (batch, h, w, c); "
                    "pass conv_filters=() for vector features. "
                    f"Received: {shape}"
                )
        for i, filters in enumerate(self.conv_filters):
            x = keras.layers.Conv2D(
                filters,
                3,
                padding="same",
                activation=self.activation,
                kernel_regularizer=self._regularizer(),
                name=self._layer_name(f"conv_{i}"),
            )(x)
        x = self._trunk(x)
        return {
            BBOX: self._output_dense(x, 4, "sigmoid", suffix=BBOX),
            CLASSES: self._output_dense(
                x, self.num_classes, "softmax", suffix=CLASSES
            ),
        }

    @property
    def loss(self):
        crossentropy = (
            "categorical_crossentropy"
            if self.label_mode == "categorical"
            else "sparse_categorical_crossentropy"
        )
        return {BBOX: self.bbox_loss, CLASSES: crossentropy}

    @property
    def metrics(self):
        accuracy = (
            keras.metrics.CategoricalAccuracy(name="accuracy")
            if self.label_mode == "categorical"
            else keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        )
        return {
            BBOX: [keras.metrics.MeanAbsoluteError(name="mae")],
            CLASSES: [accuracy],
        }

    def compile_kwargs(self):
        """Loss and metrics per output, plus `loss_weights`."""
        kwargs = super().compile_kwargs()
        kwargs["loss_weights"] = {BBOX: self.bbox_loss_weight, CLASSES: 1.0}
        return kwargs

    def get_config(self):
        config = {
            "num_classes": self.num_classes,
            "conv_filters": self.conv_filters,
        }
        config.update(super().get_config())
        config.update(
            {
                "bbox_loss": self.bbox_loss,
                "bbox_loss_weight": self.bbox_loss_weight,
                "label_mode": self.label_mode,
            }
        )
        config["name"] = config.pop("name")  # constructor order
        return config


def detection(
    num_classes,
    conv_filters=(256,),
    hidden_units=(),
    dropout=0.0,
    l2=0.0,
    pooling="avg",
    activation="relu",
    bbox_loss="mse",
    bbox_loss_weight=1.0,
    label_mode="int",
    name="head",
    kind="single",
    **retinanet_options,
):
    """A detection head: one box per image, or RetinaNet.

    `kind="single"` (the tutorial's head, `DetectionHead`): two outputs,
    `"bbox_regression"` (4 sigmoid units, normalized box) and
    `"classification"` (softmax), each with its own loss.
    `kind="retinanet"`: `kerasft.heads.RetinaNetHead(num_classes,
    **retinanet_options)` for any number of boxes per image, on a
    `kerasft.backbones.feature_pyramid`; the single-box arguments do not
    apply to it and must keep their defaults.

    Example:
    ```python
    head = kerasft.heads.detection(3, conv_filters=(128,))
    many = kerasft.heads.detection(3, kind="retinanet", max_level=5)
    ```
    """
    if kind not in _KINDS:
        raise ValueError(
            f"`kind` must be one of {_KINDS}. Received: kind={kind!r}"
        )
    single_options = dict(
        conv_filters=conv_filters, hidden_units=hidden_units, dropout=dropout,
        l2=l2, pooling=pooling, activation=activation, bbox_loss=bbox_loss,
        bbox_loss_weight=bbox_loss_weight, label_mode=label_mode,
    )
    if kind == "retinanet":
        from kerasft.heads.retinanet import RetinaNetHead

        changed = sorted(
            k for k, v in single_options.items() if v != _SINGLE_DEFAULTS[k]
        )
        if changed:
            raise ValueError(
                f"{changed} only apply to kind='single'. Received them with "
                "kind='retinanet'."
            )
        return RetinaNetHead(num_classes, name=name, **retinanet_options)
    if retinanet_options:
        raise TypeError(
            f"Unknown argument(s) {sorted(retinanet_options)} for "
            "kind='single' (RetinaNet options need kind='retinanet')."
        )
    return DetectionHead(
        num_classes,
        conv_filters=conv_filters,
        hidden_units=hidden_units,
        dropout=dropout,
        l2=l2,
        pooling=pooling,
        activation=activation,
        bbox_loss=bbox_loss,
        bbox_loss_weight=bbox_loss_weight,
        label_mode=label_mode,
        name=name,
    )
