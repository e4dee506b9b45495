"""Tiny Conv2D + BatchNorm backbones for head, model and freezing tests."""

import keras

from kerasft.backbones.backbone import Backbone
from kerasft.backbones.backbone import Group


def _block(x, index, filters, strides=1):
    x = keras.layers.Conv2D(
        filters, 3, strides=strides, padding="same", name=f"b{index}_conv"
    )(x)
    x = keras.layers.BatchNormalization(name=f"b{index}_bn")(x)
    return keras.layers.ReLU(name=f"b{index}_relu")(x)


def tiny_backbone(
    input_shape=(16, 16, 3), preprocess_mode="none", name="tiny", nested=False
):
    """Three conv/BN/ReLU blocks, one group per block (`block1`..`block3`).

    With `nested=True` the last block is a sub-model `b3_sub` holding its
    own BatchNorm, as user models sometimes are.
    """
    inputs = keras.Input(input_shape, name="tiny_input")
    x = _block(inputs, 1, 4)
    x = _block(x, 2, 8, strides=2)
    if nested:
        sub_in = keras.Input(tuple(x.shape[1:]))
        sub = keras.Model(sub_in, _block(sub_in, 3, 8), name="b3_sub")
        x = sub(x)
        last = ("b3_sub",)
    else:
        x = _block(x, 3, 8)
        last = ("b3_conv", "b3_bn", "b3_relu")
    model = keras.Model(inputs, x, name=name)
    groups = (
        Group("block1", ("b1_conv", "b1_bn", "b1_relu")),
        Group("block2", ("b2_conv", "b2_bn", "b2_relu")),
        Group("block3", last),
    )
    return Backbone(
        model,
        preprocess=None,
        groups=groups,
        name=name,
        preprocess_mode=preprocess_mode,
    )
