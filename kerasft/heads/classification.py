"""Classification heads: single-label (softmax or one sigmoid) and multi-label."""

import keras

from kerasft.heads._dense import DenseHead
from kerasft.heads.head import validate_positive_int

_LABEL_MODES = ("int", "categorical")


@keras.saving.register_keras_serializable(package="kerasft")
class ClassificationHead(DenseHead):
    """Single-label classifier: pooling -> hidden Dense layers -> softmax.

    With `binary=True` or `num_classes=1` the output is one sigmoid unit
    (probability of the positive class, labels 0/1, binary crossentropy).
    `num_classes=2` without `binary` is a 2-way softmax.

    Args:
        num_classes: number of classes (>= 1).
        hidden_units: sizes of hidden Dense layers. Defaults to `()`.
        dropout: dropout rate before every Dense layer. Defaults to `0.0`.
        l2: L2 factor on every Dense kernel of the head. Defaults to `0.0`.
        pooling: `"avg"`, `"max"` or `"flatten"`. Defaults to `"avg"`.
        activation: hidden activation. Defaults to `"relu"`.
        binary: one sigmoid unit instead of a softmax; needs
            `num_classes` 1 or 2. Defaults to `False`.
        label_mode: `"int"` (class indices, sparse crossentropy) or
            `"categorical"` (one-hot labels), as in
            `keras.utils.image_dataset_from_directory`. Ignored by binary
            heads. Defaults to `"int"`.
        name: layer-name prefix. Defaults to `"head"`.

    Example:
    ```python
    # The tutorial's GlobalAveragePooling2D -> Dense(1024, relu) -> softmax.
    head = kerasft.heads.classification(5, hidden_units=(1024,))
    inputs = keras.Input((7, 7, 64))
    model = keras.Model(inputs, head(inputs))
    model.compile(optimizer="adam", **head.compile_kwargs())
    ```
    """

    def __init__(
        self,
        num_classes,
        hidden_units=(),
        dropout=0.0,
        l2=0.0,
        pooling="avg",
        activation="relu",
        binary=False,
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
        if binary and num_classes > 2:
            raise ValueError(
                "`binary=True` needs `num_classes` 1 or 2; use a softmax "
                "(binary=False) or `kerasft.heads.multilabel` for more. "
                f"Received: num_classes={num_classes}"
            )
        if label_mode not in _LABEL_MODES:
            raise ValueError(
                f"`label_mode` must be one of {_LABEL_MODES}. "
                f"Received: label_mode={label_mode!r}"
            )
        self.num_classes = num_classes
        self.binary = binary
        self.label_mode = label_mode

    @property
    def is_binary(self):
        """True when the output is one sigmoid unit."""
        return self.binary or self.num_classes == 1

    def call(self, features):
        x = self._trunk(features)
        if self.is_binary:
            return self._output_dense(x, 1, "sigmoid")
        return self._output_dense(x, self.num_classes, "softmax")

    @property
    def loss(self):
        if self.is_binary:
            return "binary_crossentropy"
        if self.label_mode == "categorical":
            return "categorical_crossentropy"
        return "sparse_categorical_crossentropy"

    @property
    def metrics(self):
        if self.is_binary:
            return [
                keras.metrics.BinaryAccuracy(name="accuracy"),
                keras.metrics.AUC(name="auc"),
            ]
        if self.label_mode == "categorical":
            return [keras.metrics.CategoricalAccuracy(name="accuracy")]
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def get_config(self):
        config = {"num_classes": self.num_classes}
        config.update(super().get_config())
        config.update({"binary": self.binary, "label_mode": self.label_mode})
        config["name"] = config.pop("name")  # constructor order
        return config


@keras.saving.register_keras_serializable(package="kerasft")
class MultilabelHead(DenseHead):
    """Multi-label classifier: one independent sigmoid per label.

    Labels are multi-hot vectors of length `num_labels`; the loss is binary
    crossentropy averaged over labels.

    Args:
        num_labels: number of labels (>= 1).
        hidden_units: sizes of hidden Dense layers. Defaults to `()`.
        dropout: dropout rate before every Dense layer. Defaults to `0.0`.
        l2: L2 factor on every Dense kernel of the head. Defaults to `0.0`.
        pooling: `"avg"`, `"max"` or `"flatten"`. Defaults to `"avg"`.
        activation: hidden activation. Defaults to `"relu"`.
        name: layer-name prefix. Defaults to `"head"`.

    Example:
    ```python
    head = kerasft.heads.multilabel(4)
    inputs = keras.Input((7, 7, 64))
    model = keras.Model(inputs, head(inputs))
    model.compile(optimizer="adam", **head.compile_kwargs())
    ```
    """

    def __init__(
        self,
        num_labels,
        hidden_units=(),
        dropout=0.0,
        l2=0.0,
        pooling="avg",
        activation="relu",
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
        validate_positive_int(num_labels, "num_labels")
        self.num_labels = num_labels

    def call(self, features):
        return self._output_dense(self._trunk(features), self.num_labels, "sigmoid")

    @property
    def loss(self):
        return "binary_crossentropy"

    @property
    def metrics(self):
        return [
            keras.metrics.BinaryAccuracy(name="binary_accuracy"),
            keras.metrics.AUC(
                multi_label=True, num_labels=self.num_labels, name="auc"
            ),
        ]

    def get_config(self):
        config = {"num_labels": self.num_labels}
        config.update(super().get_config())
        return config


def classification(
    num_classes,
    hidden_units=(),
    dropout=0.0,
    l2=0.0,
    pooling="avg",
    activation="relu",
    binary=False,
    label_mode="int",
    name="head",
):
    """A single-label classification head (`ClassificationHead`).

    Softmax over `num_classes`; one sigmoid unit when `binary=True` or
    `num_classes=1`. See `ClassificationHead` for the arguments.

    Example:
    ```python
    head = kerasft.heads.classification(10, hidden_units=(1024,), dropout=0.2)
    ```
    """
    return ClassificationHead(
        num_classes,
        hidden_units=hidden_units,
        dropout=dropout,
        l2=l2,
        pooling=pooling,
        activation=activation,
        binary=binary,
        label_mode=label_mode,
        name=name,
    )


def multilabel(
    num_labels,
    hidden_units=(),
    dropout=0.0,
    l2=0.0,
    pooling="avg",
    activation="relu",
    name="head",
):
    """A multi-label head (`MultilabelHead`): sigmoids, binary crossentropy.

    Example:
    ```python
    head = kerasft.heads.multilabel(4, hidden_units=(128,))
    ```
    """
    return MultilabelHead(
        num_labels,
        hidden_units=hidden_units,
        dropout=dropout,
        l2=l2,
        pooling=pooling,
        activation=activation,
        name=name,
    )
