"""cache_features: the head trains exactly as on the uncached path."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasft.backbones.backbone import Backbone
from kerasft.data import cache_features
from kerasft.data import image_folder
from tests.data._folders import make_folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("fc"), [5, 4, 3], size=16)


def _backbone():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    x = keras.layers.BatchNormalization()(x)
    model = keras.Model(inputs, x, name="tiny_backbone")
    model.trainable = False
    return model


def _head():
    head = keras.Sequential([
        keras.Input((7, 7, 8)),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3),
    ])
    return head


def _compile(model):
    model.compile(
        keras.optimizers.SGD(0.5),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


def test_same_head_weights_as_the_uncached_path(folder):
    data = image_folder(folder, 16, batch_size=4, shuffle=False)
    backbone, head = _backbone(), _head()
    init = head.get_weights()
    # Uncached: the frozen backbone runs on every image every epoch.
    inputs = keras.Input((16, 16, 3))
    full = keras.Model(inputs, head(backbone(inputs, training=False)))
    _compile(full)
    full_hist = full.fit(data.dataset, epochs=3, verbose=0, shuffle=False)
    uncached = head.get_weights()
    # Cached: the backbone runs once.
    feats = cache_features(backbone, data, shuffle=False)
    assert feats.feature_shape == (7, 7, 8) and feats.num_samples == 12
    head.set_weights(init)
    _compile(head)
    head_hist = head.fit(feats.dataset, epochs=3, verbose=0, shuffle=False)
    for a, b in zip(uncached, head.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(full_hist.history["loss"],
                               head_hist.history["loss"], rtol=1e-5)
    assert not np.allclose(uncached[-1], init[-1])  # it did train


def test_backbone_preprocessing_and_file_cache(folder, tmp_path):
    data = image_folder(folder, 16, batch_size=5, shuffle=False)
    model = _backbone()
    backbone = Backbone(model, preprocess=lambda x: 255.0 - x,
                        groups=[("all", [l.name for l in model.layers])],
                        name="tiny")
    memory = cache_features(backbone, data, shuffle=False)
    on_disk = cache_features(backbone, data, cache=str(tmp_path / "f"),
                             shuffle=False)
    assert on_disk.num_samples == 12
    a = [x.numpy() for x, _ in memory.dataset]
    b = [x.numpy() for x, _ in on_disk.dataset]
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, atol=1e-6)
    images = np.concatenate([x.numpy() for x, _ in data.dataset])
    expected = model(255.0 - images, training=False).numpy()
    np.testing.assert_allclose(np.concatenate(a), expected, atol=1e-5)


def test_shuffled_features_keep_their_labels(folder):
    data = image_folder(folder, 16, batch_size=4, shuffle=False)
    model = _backbone()
    feats = cache_features(model, data, seed=0)
    by_feature = {}
    for x, y in data.dataset:
        for f, label in zip(model(x, training=False).numpy(), y.numpy()):
            by_feature[f.tobytes()[:64]] = label
    for x, y in feats.dataset:
        for f, label in zip(x.numpy(), y.numpy()):
            assert by_feature[f.tobytes()[:64]] == label


def test_augmentation_turns_the_cache_off_with_a_clear_error(folder):
    data = image_folder(folder, 16, batch_size=4,
                        augment=dict(horizontal_flip=True))
    with pytest.raises(ValueError, match="augmented"):
        cache_features(_backbone(), data)
    with pytest.raises(TypeError, match="kerasft.data dataset or a tf.data.Dataset"):
        cache_features(_backbone(), np.zeros((2, 16, 16, 3)))


def test_plain_datasets_and_sample_weights():
    x = np.random.default_rng(0).uniform(0, 255, (6, 16, 16, 3)).astype(
        "float32")
    ds = tf.data.Dataset.from_tensor_slices(
        (x, np.arange(6) % 3, np.linspace(0.5, 1.0, 6))).batch(4)
    feats = cache_features(_backbone(), ds, shuffle=False)
    assert feats.batch_size == 4 and feats.num_samples == 6
    _, labels, weights = next(iter(feats.dataset))
    np.testing.assert_allclose(weights, np.linspace(0.5, 1.0, 6)[:4])
