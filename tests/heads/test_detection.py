import keras
import numpy as np
import pytest

from kerasft import heads
from tests.helpers import assert_config_roundtrip


def test_two_named_outputs_with_a_loss_each_train_one_step():
    head = heads.detection(3, conv_filters=(8,))
    inputs = keras.Input((4, 4, 8))
    model = keras.Model(inputs, head(inputs))
    assert set(model.output) == {"bbox_regression", "classification"}
    assert model.output["bbox_regression"].shape == (None, 4)
    assert model.output["classification"].shape == (None, 3)
    assert model.get_layer("head_bbox_regression").activation.__name__ == "sigmoid"
    assert model.get_layer("head_classification").activation.__name__ == "softmax"
    assert isinstance(model.get_layer("head_conv_0"), keras.layers.Conv2D)

    kwargs = head.compile_kwargs()
    assert kwargs["loss"] == {
        "bbox_regression": "mse",
        "classification": "sparse_categorical_crossentropy",
    }
    model.compile(optimizer=keras.optimizers.SGD(0.1), **kwargs)
    x = np.random.rand(8, 4, 4, 8).astype("float32")
    y = {
        "bbox_regression": np.random.rand(8, 4).astype("float32"),
        "classification": np.random.randint(0, 3, 8),
    }
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    logs = history.history
    assert {"bbox_regression_loss", "classification_loss", "loss"} <= set(logs)
    np.testing.assert_allclose(
        logs["loss"][0],
        logs["bbox_regression_loss"][0] + logs["classification_loss"][0],
        rtol=1e-4,
    )
    after = model.get_weights()
    assert all(not np.allclose(b, a) for b, a in zip(before, after))
    boxes = model.predict(x, verbose=0)["bbox_regression"]
    assert boxes.min() >= 0.0 and boxes.max() <= 1.0


def test_bbox_loss_weight_goes_into_compile_kwargs():
    head = heads.detection(2, bbox_loss="huber", bbox_loss_weight=5.0)
    assert head.compile_kwargs()["loss_weights"] == {
        "bbox_regression": 5.0,
        "classification": 1.0,
    }
    assert head.loss["bbox_regression"] == "huber"


def test_vector_features_need_no_conv():
    with pytest.raises(ValueError, match="conv_filters=()"):
        heads.detection(2)(keras.Input((8,)))
    outputs = heads.detection(2, conv_filters=())(keras.Input((8,)))
    assert outputs["classification"].shape == (None, 2)


def test_config_roundtrip():
    assert_config_roundtrip(
        heads.detection(4, conv_filters=(16, 8), hidden_units=(8,), label_mode="categorical")
    )


@pytest.mark.parametrize(
    "kwargs",
    [{"num_classes": 0}, {"num_classes": 2, "conv_filters": 8},
     {"num_classes": 2, "bbox_loss_weight": 0}, {"num_classes": 2, "label_mode": "x"}],
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        heads.detection(**kwargs)
