import keras
import numpy as np
import pytest

from kerasft import heads
from tests.helpers import assert_config_roundtrip


def test_linear_outputs_and_training_step():
    head = heads.regression(2, hidden_units=(8,))
    inputs = keras.Input((4, 4, 8))
    model = keras.Model(inputs, head(inputs))
    assert model.output.shape == (None, 2)
    x = np.random.rand(4, 4, 4, 8).astype("float32")
    hidden = keras.Model(inputs, model.get_layer("head_dense_0").output)
    kernel, bias = model.get_layer("head_output").get_weights()
    expected = hidden.predict(x, verbose=0) @ kernel + bias
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-6)

    model.compile(optimizer=keras.optimizers.SGD(0.01), **head.compile_kwargs())
    history = model.fit(x, np.ones((4, 2)), epochs=2, verbose=0)
    assert set(history.history) == {"loss", "mae", "rmse"}
    assert history.history["loss"][1] < history.history["loss"][0]


def test_config_roundtrip_and_loss_choice():
    head = heads.regression(3, output_activation="sigmoid", loss="huber", name="reg")
    assert head.loss == "huber"
    assert_config_roundtrip(head)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"num_outputs": 0}, ValueError),
        ({"loss": "no_such_loss"}, ValueError),
        ({"loss": keras.losses.MeanSquaredError()}, TypeError),
    ],
)
def test_bad_arguments(kwargs, error):
    with pytest.raises(error):
        heads.regression(**kwargs)
