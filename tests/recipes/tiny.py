"""Tiny backbones and data for recipe tests (16x16 images, two groups)."""

import keras
import numpy as np

from kerasft import backbones


def tiny_model(size=16, name="tiny", seed=0):
    """Two Conv2D+BatchNorm blocks; raw [0, 255] pixels in."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255.0, name="b1_rescale")(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", name="b1_conv")(x)
    x = keras.layers.BatchNormalization(name="b1_bn")(x)
    x = keras.layers.ReLU(name="b1_relu")(x)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="b2_conv")(x)
    x = keras.layers.BatchNormalization(name="b2_bn")(x)
    x = keras.layers.ReLU(name="b2_relu")(x)
    return keras.Model(inputs, x, name=name)


def tiny_backbone(size=16, name="tiny", seed=0):
    return backbones.from_model(
        tiny_model(size, name, seed),
        groups={
            "b1": ["b1_rescale", "b1_conv", "b1_bn", "b1_relu"],
            "b2": ["b2_conv", "b2_bn", "b2_relu"],
        },
    )


def tiny_images(n=48, size=16, classes=3, seed=0):
    """Images whose class sets which colour channel is bright (learnable)."""
    rng = np.random.RandomState(seed)
    y = np.arange(n) % classes
    x = rng.uniform(0, 80, (n, size, size, 3)).astype("float32")
    for i, label in enumerate(y):
        x[i, :, :, label % 3] += 150
    return x, y.astype("int64")
