"""A tiny grouped backbone nested in a model, and recorders, for callback tests."""

import keras
import numpy as np

from kerasft.backbones.backbone import Backbone
from kerasft.backbones.backbone import Group

BN_STATS = ("moving_mean", "moving_variance")


def tiny_backbone(size=8):
    """Three groups (conv+BN, conv+BN, dense); input `size` x `size` x 3."""
    inputs = keras.Input((size, size, 3), name="pixels")
    x = keras.layers.Conv2D(4, 3, padding="same", name="c1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(name="r1")(x)
    x = keras.layers.Conv2D(4, 3, padding="same", name="c2")(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    x = keras.layers.ReLU(name="r2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(6, activation="relu", name="d3")(x)
    model = keras.Model(inputs, x, name="tiny")
    groups = [
        Group("g1", ["c1", "bn1", "r1"]),
        Group("g2", ["c2", "bn2", "r2"]),
        Group("g3", ["gap", "d3"]),
    ]
    return Backbone(model, preprocess=None, groups=groups, name="tiny")


def tiny_model(backbone, outputs=1):
    """`backbone.model` called with `training=False`, then a Dense head."""
    size = backbone.model.input_shape[1]
    inputs = keras.Input((size, size, 3), name="image")
    features = backbone.model(inputs, training=False)
    out = keras.layers.Dense(outputs, name="head", dtype="float32")(features)
    return keras.Model(inputs, out, name="outer")


def tiny_data(n=32, size=8, outputs=1, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, size, size, 3)).astype("float32")
    w = rng.normal(size=(size * size * 3, outputs)).astype("float32")
    y = np.tanh(x.reshape(n, -1) @ w / 8.0).astype("float32")
    return x, y


def as_np(x):
    """A numpy copy of a variable or tensor (mirrored ones included)."""
    if hasattr(x, "numpy"):
        return np.array(x.numpy())
    return np.array(keras.ops.convert_to_numpy(x))


def values(model):
    """`{variable path: numpy value}` of every model weight."""
    return {v.path: as_np(v) for v in model.weights}


class ChangeRecorder(keras.callbacks.Callback):
    """Records, per epoch, the paths of the weights that changed."""

    def __init__(self):
        super().__init__()
        self.changed = {}
        self.learning_rates = {}
        self.optimizers = {}

    def on_epoch_begin(self, epoch, logs=None):
        self._before = values(self.model)
        self.learning_rates[epoch] = float(as_np(self.model.optimizer.learning_rate))
        self.optimizers[epoch] = self.model.optimizer

    def on_epoch_end(self, epoch, logs=None):
        after = values(self.model)
        self.changed[epoch] = {
            path
            for path, value in after.items()
            if not np.array_equal(value, self._before[path])
        }


def trainable_paths(group_layers, with_head=True):
    """Paths expected to train: kernels and biases of the given layers."""
    paths = set()
    for layer in group_layers:
        paths.update({f"{layer}/kernel", f"{layer}/bias"})
    if with_head:
        paths.update({"head/kernel", "head/bias"})
    return paths
