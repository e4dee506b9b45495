"""The `Head` base class: a configured builder of the layers on top of a backbone."""

import keras

_POOLINGS = ("avg", "max", "flatten")


@keras.saving.register_keras_serializable(package="kerasft")
class Head:
    """A configured builder: `head(features) -> outputs`, plus compile defaults.

    A head does not own layers between calls: each call builds fresh Keras
    layers, all named with the head's `name` as prefix (`"head_dense_0"`,
    `"head_output"`), so they never collide with backbone layer names and
    become ordinary layers of the model `kerasft.build_model` returns. The
    output layer computes in float32, so outputs stay float32 under a
    `mixed_float16`/`mixed_bfloat16` policy.

    Features may be a 4-D image feature map `(batch, h, w, c)`, a 3-D
    sequence `(batch, tokens, c)`, a 2-D vector `(batch, c)`, or a KerasHub
    text backbone output dict: its `"pooled_output"` is used, else the first
    token of `"sequence_output"`.

    Subclasses implement `call(features)`, the `loss` and `metrics`
    properties, and `get_config` (exactly the constructor arguments).

    Args:
        name: prefix of every layer the head builds. Defaults to `"head"`.

    Example:
    ```python
    head = kerasft.heads.classification(10, hidden_units=(256,))
    inputs = keras.Input((7, 7, 32))
    model = keras.Model(inputs, head(inputs))
    model.compile(optimizer="adam", **head.compile_kwargs())
    ```
    """

    def __init__(self, name="head"):
        if not isinstance(name, str) or not name:
            raise ValueError(
                f"`name` must be a non-empty string. Received: name={name!r}"
            )
        self.name = name

    def __call__(self, features):
        return self.call(features)

    def call(self, features):
        """Builds the head's layers on `features`; returns the outputs."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement `call(features)`."
        )

    @property
    def loss(self):
        """The loss (or a dict of losses, one per output) to compile with."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement the `loss` property."
        )

    @property
    def metrics(self):
        """Fresh metrics (a list, or a dict of lists per output)."""
        return []

    def compile_kwargs(self):
        """`{"loss": ..., "metrics": ...}` for `model.compile(**...)`."""
        return {"loss": self.loss, "metrics": self.metrics}

    # === Config ===

    def get_config(self):
        return {"name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    # === Helpers for subclasses ===

    def _layer_name(self, suffix):
        return f"{self.name}_{suffix}"


def text_features(features):
    """The vector a head uses from a KerasHub text backbone output dict."""
    if "pooled_output" in features:
        return features["pooled_output"]
    if "sequence_output" in features:
        return features["sequence_output"][:, 0, :]
    raise ValueError(
        "A text feature dict must hold 'pooled_output' or 'sequence_output'. "
        f"Received keys: {sorted(features)}"
    )


def pool_features(features, pooling, name):
    """Reduces `features` to `(batch, channels)` with layers named `name_*`.

    4-D maps and 3-D sequences use `pooling` (`"avg"`, `"max"` or
    `"flatten"`); 2-D vectors pass through; dicts go through
    `text_features`.
    """
    if isinstance(features, dict):
        features = text_features(features)
    rank = len(features.shape)
    if rank == 2:
        return features
    if rank not in (3, 4):
        raise ValueError(
            "Head features must be 2-D, 3-D or 4-D (or a text output dict). "
            f"Received: shape={tuple(features.shape)}"
        )
    if pooling == "flatten":
        return keras.layers.Flatten(name=f"{name}_flatten")(features)
    layer = {
        ("avg", 4): keras.layers.GlobalAveragePooling2D,
        ("max", 4): keras.layers.GlobalMaxPooling2D,
        ("avg", 3): keras.layers.GlobalAveragePooling1D,
        ("max", 3): keras.layers.GlobalMaxPooling1D,
    }[(pooling, rank)]
    return layer(name=f"{name}_pool")(features)


def validate_pooling(pooling):
    if pooling not in _POOLINGS:
        raise ValueError(
            f"`pooling` must be one of {_POOLINGS}. Received: pooling={pooling!r}"
        )


def validate_positive_int(value, arg):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"`{arg}` must be a positive integer. Received: {arg}={value!r}"
        )
