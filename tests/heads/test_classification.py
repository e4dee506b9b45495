import keras
import numpy as np
import pytest

from kerasft import heads
from tests.helpers import assert_config_roundtrip


def _model(head, shape=(4, 4, 8)):
    inputs = keras.Input(shape)
    return keras.Model(inputs, head(inputs))


def test_tutorial_seed_configuration():
    # GlobalAveragePooling2D -> Dense(1024, relu) -> Dense(n, softmax).
    model = _model(heads.classification(5, hidden_units=(1024,)))
    names = [l.name for l in model.layers[1:]]
    assert names == ["head_pool", "head_dense_0", "head_output"]
    assert isinstance(model.get_layer("head_pool"), keras.layers.GlobalAveragePooling2D)
    hidden = model.get_layer("head_dense_0")
    assert hidden.units == 1024 and hidden.activation.__name__ == "relu"
    assert model.output.shape == (None, 5)
    probs = model.predict(np.random.rand(3, 4, 4, 8), verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_softmax_is_computed_from_pooled_features():
    model = _model(heads.classification(3))
    x = np.random.rand(2, 4, 4, 8).astype("float32")
    kernel, bias = model.get_layer("head_output").get_weights()
    logits = x.mean(axis=(1, 2)) @ kernel + bias
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5)


@pytest.mark.parametrize("kwargs", [{"num_classes": 1}, {"num_classes": 2, "binary": True}])
def test_binary_is_one_sigmoid_unit(kwargs):
    head = heads.classification(**kwargs)
    model = _model(head)
    assert model.output.shape == (None, 1)
    assert model.get_layer("head_output").activation.__name__ == "sigmoid"
    assert head.loss == "binary_crossentropy"
    assert [m.name for m in head.metrics] == ["accuracy", "auc"]


def test_two_classes_without_binary_is_softmax():
    head = heads.classification(2)
    assert _model(head).output.shape == (None, 2)
    assert head.loss == "sparse_categorical_crossentropy"
    assert heads.classification(2, label_mode="categorical").loss == (
        "categorical_crossentropy"
    )


def test_dropout_before_every_dense_and_l2_penalty():
    head = heads.classification(3, hidden_units=(6,), dropout=0.5, l2=0.01)
    model = _model(head)
    names = [l.name for l in model.layers[1:]]
    assert names == [
        "head_pool", "head_dropout_0", "head_dense_0", "head_dropout_1", "head_output",
    ]
    k0 = model.get_layer("head_dense_0").kernel.numpy()
    k1 = model.get_layer("head_output").kernel.numpy()
    expected = 0.01 * (np.sum(k0**2) + np.sum(k1**2))
    np.testing.assert_allclose(float(sum(model.losses)), expected, rtol=1e-5)


@pytest.mark.parametrize("pooling", ["max", "flatten"])
def test_pooling_options(pooling):
    model = _model(heads.classification(3, pooling=pooling))
    x = np.random.rand(2, 4, 4, 8).astype("float32")
    kernel, bias = model.get_layer("head_output").get_weights()
    pooled = x.max(axis=(1, 2)) if pooling == "max" else x.reshape(2, -1)
    logits = pooled @ kernel + bias
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5)


def test_text_dict_features_use_pooled_else_first_token():
    pooled = keras.Input((8,), name="pooled_output")
    sequence = keras.Input((5, 8), name="sequence_output")
    x_pooled = np.random.rand(2, 8).astype("float32")
    x_seq = np.random.rand(2, 5, 8).astype("float32")

    head = heads.classification(3, name="text_head")
    model = keras.Model(
        [pooled, sequence], head({"pooled_output": pooled, "sequence_output": sequence})
    )
    kernel, bias = model.get_layer("text_head_output").get_weights()
    got = model.predict([x_pooled, x_seq], verbose=0)
    logits = x_pooled @ kernel + bias
    expected = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(got, expected, rtol=1e-5)

    model = keras.Model(sequence, heads.classification(3)({"sequence_output": sequence}))
    kernel, bias = model.get_layer("head_output").get_weights()
    logits = x_seq[:, 0, :] @ kernel + bias
    np.testing.assert_allclose(
        model.predict(x_seq, verbose=0),
        np.exp(logits) / np.exp(logits).sum(1, keepdims=True),
        rtol=1e-5,
    )


def test_sequence_features_are_pooled():
    model = _model(heads.classification(3), shape=(5, 8))
    assert isinstance(model.get_layer("head_pool"), keras.layers.GlobalAveragePooling1D)


def test_multilabel_sigmoids_and_one_training_step():
    head = heads.multilabel(4, hidden_units=(8,))
    model = _model(head)
    assert model.get_layer("head_output").activation.__name__ == "sigmoid"
    model.compile(optimizer=keras.optimizers.SGD(0.1), **head.compile_kwargs())
    x = np.random.rand(8, 4, 4, 8).astype("float32")
    y = np.random.randint(0, 2, (8, 4)).astype("float32")
    before = model.get_layer("head_output").kernel.numpy()
    history = model.fit(x, y, epochs=1, verbose=0)
    assert set(history.history) == {"loss", "binary_accuracy", "auc"}
    assert not np.allclose(before, model.get_layer("head_output").kernel.numpy())


def test_metrics_are_fresh_objects():
    head = heads.classification(3)
    assert head.metrics[0] is not head.metrics[0]
    assert head.compile_kwargs()["loss"] == "sparse_categorical_crossentropy"


@pytest.mark.parametrize(
    "head",
    [
        heads.classification(3, hidden_units=(16, 8), dropout=0.2, l2=1e-4, name="cls"),
        heads.classification(1, pooling="max"),
        heads.multilabel(5, hidden_units=(4,)),
    ],
)
def test_config_roundtrip(head):
    assert_config_roundtrip(head)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_classes": 0}, "num_classes"),
        ({"num_classes": 3, "binary": True}, "binary"),
        ({"num_classes": 3, "dropout": 1.0}, "dropout"),
        ({"num_classes": 3, "pooling": "min"}, "pooling"),
        ({"num_classes": 3, "hidden_units": 1024}, "hidden_units"),
        ({"num_classes": 3, "l2": -1.0}, "l2"),
        ({"num_classes": 3, "label_mode": "binary"}, "label_mode"),
        ({"num_classes": 3, "name": ""}, "name"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        heads.classification(**kwargs)


def test_rank_5_features_rejected():
    with pytest.raises(ValueError, match="2-D, 3-D or 4-D"):
        heads.classification(3)(keras.Input((2, 2, 2, 2)))
