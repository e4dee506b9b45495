"""Regression head: pooling -> hidden Dense layers -> linear outputs."""

import keras

from kerasft.heads._dense import DenseHead
from kerasft.heads.head import validate_positive_int


@keras.saving.register_keras_serializable(package="kerasft")
class RegressionHead(DenseHead):
    """Regressor with `num_outputs` continuous outputs.

    Args:
        num_outputs: number of regression targets. Defaults to `1`.
        hidden_units: sizes of hidden Dense layers. Defaults to `()`.
        dropout: dropout rate before every Dense layer. Defaults to `0.0`.
        l2: L2 factor on every Dense kernel of the head. Defaults to `0.0`.
        pooling: `"avg"`, `"max"` or `"flatten"`. Defaults to `"avg"`.
        activation: hidden activation. Defaults to `"relu"`.
        output_activation: activation of the output layer, e.g.
            `"sigmoid"` for targets in [0, 1]; `None` is linear.
            Defaults to `None`.
        loss: a Keras loss name, e.g. `"mse"`, `"mae"`, `"huber"`.
            Defaults to `"mse"`.
        name: layer-name prefix. Defaults to `"head"`.

    Example:
    ```python
    head = kerasft.heads.regression(1, hidden_units=(64,))
    inputs = keras.Input((7, 7, 64))
    model = keras.Model(inputs, head(inputs))
    model.compile(optimizer="adam", **head.compile_kwargs())
    ```
    """

    def __init__(
        self,
        num_outputs=1,
        hidden_units=(),
        dropout=0.0,
        l2=0.0,
        pooling="avg",
        activation="relu",
        output_activation=None,
        loss="mse",
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
        validate_positive_int(num_outputs, "num_outputs")
        keras.activations.get(output_activation)
        if not isinstance(loss, str):
            raise TypeError(
                "`loss` must be a Keras loss name such as 'mse' so the head "
                f"config serializes. Received: loss={loss!r}"
            )
        try:
            keras.losses.get(loss)
        except ValueError as e:
            raise ValueError(
                f"`loss` must be a Keras loss name such as 'mse', 'mae' or "
                f"'huber'. Received: loss={loss!r}"
            ) from e
        self.num_outputs = num_outputs
        self.output_activation = output_activation
        self._loss = loss

    def call(self, features):
        return self._output_dense(
            self._trunk(features), self.num_outputs, self.output_activation
        )

    @property
    def loss(self):
        return self._loss

    @property
    def metrics(self):
        return [
            keras.metrics.MeanAbsoluteError(name="mae"),
            keras.metrics.RootMeanSquaredError(name="rmse"),
        ]

    def get_config(self):
        config = {"num_outputs": self.num_outputs}
        config.update(super().get_config())
        config.update(
            {"output_activation": self.output_activation, "loss": self._loss}
        )
        config["name"] = config.pop("name")  # constructor order
        return config


def regression(
    num_outputs=1,
    hidden_units=(),
    dropout=0.0,
    l2=0.0,
    pooling="avg",
    activation="relu",
    output_activation=None,
    loss="mse",
    name="head",
):
    """A regression head (`RegressionHead`) with linear outputs by default.

    Example:
    ```python
    head = kerasft.heads.regression(2, loss="huber")
    ```
    """
    return RegressionHead(
        num_outputs,
        hidden_units=hidden_units,
        dropout=dropout,
        l2=l2,
        pooling=pooling,
        activation=activation,
        output_activation=output_activation,
        loss=loss,
        name=name,
    )
