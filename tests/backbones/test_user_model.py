"""`from_model`: a user's Keras model as a backbone."""

import keras
import numpy as np
import pytest

from kerasft import backbones


def _named_model():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, name="stem_conv")(inputs)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    x = keras.layers.Conv2D(4, 3, name="stage1_conv")(x)
    x = keras.layers.ReLU(name="stage1_relu")(x)
    x = keras.layers.Conv2D(8, 3, name="stage2_conv")(x)
    return keras.Model(inputs, x, name="tiny")


def _auto_named_model():
    return keras.Sequential(
        [keras.Input((16, 16, 3))]
        + [
            layer
            for _ in range(4)
            for layer in (
                keras.layers.Conv2D(4, 3, padding="same"),
                keras.layers.BatchNormalization(),
                keras.layers.ReLU(),
            )
        ],
        name="auto",
    )


def test_automatic_groups_by_prefix():
    model = _named_model()
    backbone = backbones.from_model(model)
    assert backbone.name == "tiny"
    assert backbone.group_names == ["stem", "stage1", "stage2"]
    input_name = model.layers[0].name
    assert backbone.group("stem").layers == (
        input_name, "stem_conv", "stem_bn", "stem_relu"
    )
    assert backbone.group("stage1").layers == ("stage1_conv", "stage1_relu")
    assert backbone.preprocess_mode == "none"
    images = np.full((1, 16, 16, 3), 7.0, "float32")
    assert backbone.preprocess(images) is images


def test_automatic_groups_fall_back_to_slices():
    model = _auto_named_model()
    backbone = backbones.from_model(model)
    # 8 weighted layers (4 conv, 4 BN) -> round(sqrt(8)) = 3 slices.
    assert backbone.group_names == ["slice_1", "slice_2", "slice_3"]
    weighted = [l.name for l in model.layers if l.weights]
    sizes = [
        len([n for n in g.layers if n in weighted]) for g in backbone.groups
    ]
    assert sizes == [3, 3, 2]
    listed = [n for g in backbone.groups for n in g.layers]
    assert listed == [l.name for l in model.layers]


def test_explicit_groups_as_lists_and_dict():
    model = _named_model()
    backbone = backbones.from_model(
        model, groups=[["stem_conv", "stem_bn"], ["stage1_conv", "stage2_conv"]]
    )
    assert backbone.group_names == ["group_1", "group_2"]
    # Unlisted layers without weights join the group of the layer before.
    assert backbone.group("group_1").layers[1:] == (
        "stem_conv", "stem_bn", "stem_relu"
    )
    assert backbone.group("group_2").layers == (
        "stage1_conv", "stage1_relu", "stage2_conv"
    )
    backbone = backbones.from_model(
        model,
        groups={"low": ["stem_conv", "stem_bn", "stage1_conv"],
                "high": ["stage2_conv"]},
        name="mine",
        preprocess_mode="tf",
    )
    assert backbone.group_names == ["low", "high"]
    assert backbone.name == model.name == "mine"
    images = np.full((1, 2, 2, 3), 255.0, "float32")
    np.testing.assert_allclose(backbone.preprocess(images), 1.0)
    assert backbone.group_patterns()["high"] == "^(?:stage2_conv)/"


def test_explicit_group_errors_name_the_layers():
    model = _named_model()
    with pytest.raises(ValueError, match=r"does not have: \['stem_cnv'\]"):
        backbones.from_model(model, groups=[["stem_cnv", "stem_bn"]])
    with pytest.raises(ValueError, match=r"in none: \['stage1_conv', 'stage2_conv'\]"):
        backbones.from_model(model, groups=[["stem_conv", "stem_bn"]])
    with pytest.raises(ValueError, match=r"'stem_bn' \(in 'a' and 'b'\)"):
        backbones.from_model(
            model,
            groups={"a": ["stem_conv", "stem_bn"],
                    "b": ["stem_bn", "stage1_conv", "stage2_conv"]},
        )


def test_bad_arguments():
    model = _named_model()
    with pytest.raises(TypeError, match="`model` must be a keras.Model"):
        backbones.from_model(keras.layers.Dense(2))
    with pytest.raises(ValueError, match="`preprocess_mode` must be one of"):
        backbones.from_model(model, preprocess_mode="inception")
    with pytest.raises(TypeError, match="`groups` must be a list"):
        backbones.from_model(model, groups="stem")


def test_application_model_gets_its_stages():
    model = keras.applications.VGG16(
        include_top=False, weights=None, input_shape=(32, 32, 3)
    )
    backbone = backbones.from_model(model)
    expected = backbones.get("vgg16", input_shape=(32, 32, 3))
    assert backbone.group_names == expected.group_names
    for got, want in zip(backbone.groups, expected.groups):
        assert got.layers[-3:] == want.layers[-3:]  # input names differ


def _mobilenet_v2():
    return keras.applications.MobileNetV2(
        weights=None, include_top=False, input_shape=(32, 32, 3)
    )


def test_application_model_gets_its_family_groups():
    model = _mobilenet_v2()
    backbone = backbones.from_model(model)
    assert backbone.group_names == (
        ["stem"] + [f"block_{i}" for i in range(1, 17)] + ["top"]
    )
    assert backbone.group("stem").layers[1:4] == ("Conv1", "bn_Conv1", "Conv1_relu")
    assert backbone.group("block_3").layers[0] == "block_3_expand"
    assert backbone.group("top").layers == ("Conv_1", "Conv_1_bn", "out_relu")
    expected = backbones.get("mobilenetv2", input_shape=(32, 32, 3))
    for got, want in zip(backbone.groups, expected.groups):
        assert got.layers[1:] == want.layers[1:]  # input names differ


def test_user_cnn_still_gets_the_prefix_rule():
    # `block1`..`block3` look like VGG's names, but VGG needs `block4` and
    # `block5` and no pattern matches `head_dense`: the prefix rule applies.
    inputs = keras.Input((16, 16, 3))
    x = inputs
    for i in (1, 2, 3):
        x = keras.layers.Conv2D(4, 3, padding="same", name=f"block{i}_conv")(x)
        x = keras.layers.ReLU(name=f"block{i}_relu")(x)
    x = keras.layers.Dense(2, name="head_dense")(x)
    backbone = backbones.from_model(keras.Model(inputs, x))
    assert backbone.group_names == ["block1", "block2", "block3", "head"]
    assert backbone.group("block2").layers == ("block2_conv", "block2_relu")


def test_family_forces_a_family_and_unknown_family_lists_them():
    base = _mobilenet_v2()
    # A user layer no MobileNetV2 pattern matches: no family fits on its own.
    x = keras.layers.Conv2D(8, 1, name="extra_conv")(base.output)
    model = keras.Model(base.input, x)
    assert "top" not in backbones.from_model(model).group_names
    backbone = backbones.from_model(model, family="mobilenet_v2")
    assert backbone.group_names[0] == "stem"
    assert backbone.group("top").layers == (
        "Conv_1", "Conv_1_bn", "out_relu", "extra_conv"
    )
    with pytest.raises(ValueError, match=r"Unknown backbone family 'nope'. "
                       r"Known families: \['convnext', 'densenet', "):
        backbones.from_model(model, family="nope")
    with pytest.raises(ValueError, match="match no layer"):
        backbones.from_model(_named_model(), family="resnet")
    with pytest.raises(ValueError, match="either `groups` or `family`"):
        backbones.from_model(
            _named_model(), groups=[["stem_conv", "stage1_conv", "stage2_conv"]],
            family="vgg",
        )
