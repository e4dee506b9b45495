"""Video classification: an image backbone per frame, then a temporal model.

`kerasft.build_model(backbone, video_classification(...))` takes clips
`[batch, frames, height, width, 3]`: it folds the frames into the batch
(`FramesToBatch`), runs the preprocessing and the nested image backbone on
every frame, unfolds (`FramesFromBatch`), and the head pools each frame's
feature map (`FramePooling`) and models time (GRU, Transformer, temporal
convolution, or the order-blind mean).
"""

import keras

from kerasft.heads._dense import DenseHead
from kerasft.heads.head import validate_positive_int

TEMPORAL = ("gru", "transformer", "conv1d", "mean")
_LABEL_MODES = ("int", "categorical")


@keras.saving.register_keras_serializable(package="kerasft")
class FramesToBatch(keras.layers.Layer):
    """`[batch, frames, ...]` -> `[batch * frames, ...]`: frames become
    examples of one batch, for an image model to run on each."""

    def call(self, inputs):
        shape = keras.ops.shape(inputs)
        return keras.ops.reshape(inputs, (-1, *shape[2:]))

    def compute_output_shape(self, input_shape):
        batch, frames = input_shape[0], input_shape[1]
        folded = None if batch is None or frames is None else batch * frames
        return (folded, *input_shape[2:])


@keras.saving.register_keras_serializable(package="kerasft")
class FramesFromBatch(keras.layers.Layer):
    """`[batch * frames, ...]` -> `[batch, frames, ...]`, undoing
    `FramesToBatch`.

    Args:
        frames: frames per clip.
    """

    def __init__(self, frames, **kwargs):
        super().__init__(**kwargs)
        validate_positive_int(frames, "frames")
        self.frames = frames

    def call(self, inputs):
        shape = keras.ops.shape(inputs)
        return keras.ops.reshape(inputs, (-1, self.frames, *shape[1:]))

    def compute_output_shape(self, input_shape):
        batch = input_shape[0]
        return (
            None if batch is None else batch // self.frames,
            self.frames,
            *input_shape[1:],
        )

    def get_config(self):
        return {**super().get_config(), "frames": self.frames}


@keras.saving.register_keras_serializable(package="kerasft")
class FramePooling(keras.layers.Layer):
    """Per-frame features `[batch, frames, ..., channels]` -> `[batch,
    frames, channels]` (or flattened), vectors passing through.

    Args:
        pooling: `"avg"`, `"max"` or `"flatten"`. Defaults to `"avg"`.
    """

    def __init__(self, pooling="avg", **kwargs):
        super().__init__(**kwargs)
        self.pooling = pooling

    def call(self, inputs):
        rank = len(inputs.shape)
        if rank == 3:
            return inputs
        if self.pooling == "flatten":
            shape = keras.ops.shape(inputs)
            return keras.ops.reshape(inputs, (shape[0], shape[1], -1))
        axes = tuple(range(2, rank - 1))
        if self.pooling == "max":
            return keras.ops.max(inputs, axis=axes)
        return keras.ops.mean(inputs, axis=axes)

    def compute_output_shape(self, input_shape):
        if len(input_shape) == 3:
            return tuple(input_shape)
        if self.pooling == "flatten":
            size = 1
            for s in input_shape[2:]:
                size = None if size is None or s is None else size * s
            return (input_shape[0], input_shape[1], size)
        return (input_shape[0], input_shape[1], input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "pooling": self.pooling}


@keras.saving.register_keras_serializable(package="kerasft")
class VideoClassificationHead(DenseHead):
    """Clip classifier: per-frame pooling -> temporal model -> softmax.

    Used with `kerasft.build_model(backbone, head)`, any kerasft image
    backbone runs on every frame (its preprocessing inside the model), so
    the tutorial's "3D InceptionV3" becomes a 2-D InceptionV3 per frame
    plus a model of time. `temporal` chooses that model:

    - `"gru"`: a GRU over the frame vectors (order-aware).
    - `"transformer"`: a Dense projection, learned frame positions and one
      `keras_hub.layers.TransformerEncoder` block, then the mean
      (order-aware through the positions).
    - `"conv1d"`: two temporal convolutions (kernel 3), then the max over
      time (sees local motion).
    - `"mean"`: the average frame vector (order-blind: a square moving left
      and one moving right average alike); a baseline.

    The layer `"{name}_frame_features"` outputs the per-frame vectors
    `[batch, frames, channels]` the temporal model reads: the recipes cache
    them for feature extraction.

    Args:
        num_classes: number of classes (>= 2).
        frames: frames per clip (the model's input length). Defaults to `16`.
        temporal: `"gru"`, `"transformer"`, `"conv1d"` or `"mean"`.
            Defaults to `"gru"`.
        units: width of the temporal model. Defaults to `128`.
        num_heads: attention heads of `"transformer"`. Defaults to `4`.
        hidden_units: sizes of Dense layers after the temporal model.
            Defaults to `()`.
        dropout: dropout before every Dense layer. Defaults to `0.0`.
        l2: L2 factor on the head's Dense kernels. Defaults to `0.0`.
        pooling: per-frame pooling of feature maps: `"avg"`, `"max"` or
            `"flatten"`. Defaults to `"avg"`.
        activation: hidden activation. Defaults to `"relu"`.
        label_mode: `"int"` or `"categorical"`. Defaults to `"int"`.
        name: layer-name prefix. Defaults to `"head"`.

    Example:
    ```python
    backbone = kerasft.backbones.get("mobilenetv2", weights=None,
                                     input_shape=(64, 64, 3))
    head = kerasft.heads.video_classification(4, frames=8)
    model = kerasft.build_model(backbone, head)  # clips (8, 64, 64, 3)
    model.compile(optimizer="adam", **head.compile_kwargs())
    ```
    """

    def __init__(
        self,
        num_classes,
        frames=16,
        temporal="gru",
        units=128,
        num_heads=4,
        hidden_units=(),
        dropout=0.0,
        l2=0.0,
        pooling="avg",
        activation="relu",
        label_mode="int",
        name="head",
    ):
        super().__init__(hidden_units=hidden_units, dropout=dropout, l2=l2,
                         pooling=pooling, activation=activation, name=name)
        validate_positive_int(num_classes, "num_classes")
        validate_positive_int(frames, "frames")
        validate_positive_int(units, "units")
        validate_positive_int(num_heads, "num_heads")
        if num_classes < 2:
            raise ValueError(
                "`num_classes` must be >= 2 for a softmax over clip classes. "
                f"Received: num_classes={num_classes}"
            )
        if temporal not in TEMPORAL:
            raise ValueError(
                f"`temporal` must be one of {TEMPORAL}. "
                f"Received: temporal={temporal!r}"
            )
        if label_mode not in _LABEL_MODES:
            raise ValueError(
                f"`label_mode` must be one of {_LABEL_MODES}. "
                f"Received: label_mode={label_mode!r}"
            )
        self.num_classes = num_classes
        self.frames = frames
        self.temporal = temporal
        self.units = units
        self.num_heads = num_heads
        self.label_mode = label_mode

    def call(self, features):
        if len(features.shape) not in (3, 4, 5):
            raise ValueError(
                "Video head features must be per-frame: [batch, frames, "
                "channels] or [batch, frames, ..., channels]. "
                f"Received: shape={tuple(features.shape)}"
            )
        x = FramePooling(self.pooling, name=self.frame_features_name)(features)
        x = self._temporal_model(x)
        for i, units in enumerate(self.hidden_units):
            x = self._dropout(x, i)
            x = keras.layers.Dense(
                units, activation=self.activation,
                kernel_regularizer=self._regularizer(),
                name=self._layer_name(f"dense_{i}"),
            )(x)
        x = self._dropout(x, len(self.hidden_units))
        return self._output_dense(x, self.num_classes, "softmax")

    def _temporal_model(self, x):
        name = self._layer_name
        if self.temporal == "gru":
            return keras.layers.GRU(self.units, name=name("gru"))(x)
        if self.temporal == "mean":
            return keras.layers.GlobalAveragePooling1D(name=name("mean"))(x)
        if self.temporal == "conv1d":
            for i in range(2):
                x = keras.layers.Conv1D(
                    self.units, 3, padding="same", activation="relu",
                    name=name(f"conv1d_{i}"),
                )(x)
            return keras.layers.GlobalMaxPooling1D(name=name("time_max"))(x)
        import keras_hub

        x = keras.layers.Dense(self.units, name=name("project"))(x)
        positions = keras_hub.layers.PositionEmbedding(
            self.frames, name=name("positions")
        )(x)
        x = keras.layers.Add(name=name("add_positions"))([x, positions])
        x = keras_hub.layers.TransformerEncoder(
            intermediate_dim=2 * self.units, num_heads=self.num_heads,
            name=name("transformer"),
        )(x)
        return keras.layers.GlobalAveragePooling1D(name=name("time_mean"))(x)

    @property
    def frame_features_name(self):
        """Name of the layer outputting per-frame vectors `[b, frames, c]`."""
        return self._layer_name("frame_features")

    @property
    def loss(self):
        if self.label_mode == "categorical":
            return "categorical_crossentropy"
        return "sparse_categorical_crossentropy"

    @property
    def metrics(self):
        """Accuracy, and top-5 accuracy with more than 5 classes (with 5 or
        fewer it is always 1.0)."""
        if self.label_mode == "categorical":
            metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
            top5 = keras.metrics.TopKCategoricalAccuracy
        else:
            metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
            top5 = keras.metrics.SparseTopKCategoricalAccuracy
        if self.num_classes > 5:
            metrics.append(top5(5, name="top5_accuracy"))
        return metrics

    def get_config(self):
        config = {
            "num_classes": self.num_classes,
            "frames": self.frames,
            "temporal": self.temporal,
            "units": self.units,
            "num_heads": self.num_heads,
        }
        config.update(super().get_config())
        config["label_mode"] = self.label_mode
        config["name"] = config.pop("name")  # constructor order
        return config


def video_classification(num_classes, frames=16, temporal="gru", **kwargs):
    """A video classification head (`VideoClassificationHead`).

    The backbone runs per frame; `temporal` (`"gru"` by default,
    `"transformer"`, `"conv1d"` or `"mean"`) models time. See
    `VideoClassificationHead` for the other arguments.

    Example:
    ```python
    head = kerasft.heads.video_classification(101, frames=16,
                                              temporal="transformer")
    ```
    """
    return VideoClassificationHead(
        num_classes, frames=frames, temporal=temporal, **kwargs
    )
