"""`DenseHead`: pooling -> [dropout -> Dense] * hidden -> dropout -> output."""

import keras

from kerasft.heads.head import Head
from kerasft.heads.head import pool_features
from kerasft.heads.head import validate_pooling


class DenseHead(Head):
    """Base of the heads that pool features and stack Dense layers.

    The trunk is `pooling -> (Dropout -> Dense(units, activation)) per entry
    of hidden_units -> Dropout`; dropout layers exist only when
    `dropout > 0`. Subclasses add the output layer with `_output_dense`.

    Args:
        hidden_units: sizes of the hidden Dense layers, input -> output.
            Defaults to `()`.
        dropout: dropout rate before every Dense layer, in [0, 1).
            Defaults to `0.0`.
        l2: L2 factor of the `kernel_regularizer` of every Dense layer of
            the head; `0.0` adds none. Defaults to `0.0`.
        pooling: `"avg"`, `"max"` or `"flatten"` for 3-D/4-D features.
            Defaults to `"avg"`.
        activation: activation of the hidden layers. Defaults to `"relu"`.
        name: prefix of every layer name. Defaults to `"head"`.
    """

    def __init__(
        self,
        hidden_units=(),
        dropout=0.0,
        l2=0.0,
        pooling="avg",
        activation="relu",
        name="head",
    ):
        super().__init__(name=name)
        if isinstance(hidden_units, int) or not all(
            isinstance(u, int) and not isinstance(u, bool) and u > 0
            for u in hidden_units
        ):
            raise ValueError(
                "`hidden_units` must be a sequence of positive integers, "
                f"e.g. (1024,). Received: hidden_units={hidden_units!r}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(
                f"`dropout` must be in [0, 1). Received: dropout={dropout!r}"
            )
        if l2 < 0:
            raise ValueError(f"`l2` must be >= 0. Received: l2={l2!r}")
        validate_pooling(pooling)
        keras.activations.get(activation)  # fails early on unknown names
        self.hidden_units = tuple(hidden_units)
        self.dropout = dropout
        self.l2 = l2
        self.pooling = pooling
        self.activation = activation

    def _regularizer(self):
        return keras.regularizers.L2(self.l2) if self.l2 else None

    def _dropout(self, x, index):
        if not self.dropout:
            return x
        name = self._layer_name(f"dropout_{index}")
        return keras.layers.Dropout(self.dropout, name=name)(x)

    def _trunk(self, features):
        """Pooled features through the hidden layers, ready for the output."""
        x = pool_features(features, self.pooling, self.name)
        for i, units in enumerate(self.hidden_units):
            x = self._dropout(x, i)
            x = keras.layers.Dense(
                units,
                activation=self.activation,
                kernel_regularizer=self._regularizer(),
                name=self._layer_name(f"dense_{i}"),
            )(x)
        return self._dropout(x, len(self.hidden_units))

    def _output_dense(self, x, units, activation, suffix="output"):
        """The float32 output layer (float32 under mixed precision)."""
        return keras.layers.Dense(
            units,
            activation=activation,
            kernel_regularizer=self._regularizer(),
            dtype="float32",
            name=self._layer_name(suffix),
        )(x)

    def get_config(self):
        return {
            "hidden_units": self.hidden_units,
            "dropout": self.dropout,
            "l2": self.l2,
            "pooling": self.pooling,
            "activation": self.activation,
            "name": self.name,
        }
