"""A tiny BatchNorm-free frame backbone for video recipe tests.

Its frozen random features keep where the square is (a Dense layer over
the flattened map), so a temporal head can tell left from right while the
frame average cannot."""

import keras

from kerasft import backbones


def frame_backbone(size=32, seed=0, name="frames_cnn"):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255.0, name="f1_rescale")(inputs)
    x = keras.layers.Conv2D(8, 5, strides=2, padding="same",
                            activation="relu", name="f1_conv")(x)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same",
                            activation="relu", name="f2_conv")(x)
    x = keras.layers.Flatten(name="f3_flatten")(x)
    x = keras.layers.Dense(64, activation="relu", name="f3_dense")(x)
    return backbones.from_model(
        keras.Model(inputs, x, name=name),
        groups={"f1": ["f1_rescale", "f1_conv"], "f2": ["f2_conv"],
                "f3": ["f3_flatten", "f3_dense"]},
    )
