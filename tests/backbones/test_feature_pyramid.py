"""`kerasft.backbones.feature_pyramid`: strides from stage boundaries."""

import keras
import numpy as np
import pytest

import kerasft
from kerasft import backbones
from kerasft.backbones import applications

# The layer each level comes from, for one member of the main families.
EXPECTED_LAYERS = {
    "resnet50": ("conv3_block4_out", "conv4_block6_out", "conv5_block3_out"),
    "vgg16": ("block3_pool", "block4_pool", "block5_pool"),
    "mobilenetv2": ("block_5_add", "block_12_add", "out_relu"),
    "efficientnetb0": ("block3b_add", "block5c_add", "top_activation"),
    "densenet121": ("pool2_pool", "pool3_pool", "relu"),
}


def _size(name):
    return 96 if name == "xception" else 64


@pytest.mark.parametrize("name", applications.list_backbones())
def test_every_registry_backbone_gives_strides_8_16_32(name):
    size = _size(name)
    backbone = backbones.get(name, input_shape=(size, size, 3))
    pyramid = backbones.feature_pyramid(backbone)
    outputs = pyramid.model.output
    assert sorted(outputs) == ["P3", "P4", "P5"]
    for level in (3, 4, 5):
        assert tuple(outputs[f"P{level}"].shape[1:3]) == (
            size // 2**level,
            size // 2**level,
        )
    # Taken from the backbone's own group ends.
    ends = {g.layers[-1] for g in backbone.groups}
    assert set(pyramid.levels.values()) <= ends
    if name in EXPECTED_LAYERS:
        assert tuple(pyramid.levels.values()) == EXPECTED_LAYERS[name]
    # Same name and groups (restricted to the layers still used).
    assert pyramid.model.name == backbone.model.name == pyramid.name
    assert pyramid.group_names == backbone.group_names
    assert pyramid.preprocess_mode == backbone.preprocess_mode


def _user_cnn(input_shape=(None, None, 3)):
    inputs = keras.Input(input_shape)
    x = inputs
    for i, filters in enumerate((4, 8, 8, 16)):
        x = keras.layers.Conv2D(
            filters, 3, padding="same", activation="relu", name=f"stage{i}_conv"
        )(x)
        x = keras.layers.MaxPooling2D(name=f"stage{i}_down")(x)
    return keras.Model(inputs, x, name="cnn")


def test_from_model_levels_found_by_output_shapes_with_dynamic_size():
    backbone = backbones.from_model(_user_cnn())
    pyramid = backbones.feature_pyramid(backbone, levels=(1, 2, 3, 4))
    assert backbone.group_names == ["stage0", "stage1", "stage2", "stage3"]
    assert pyramid.levels == {
        "P1": "stage0_down",
        "P2": "stage1_down",
        "P3": "stage2_down",
        "P4": "stage3_down",
    }
    outputs = pyramid.model(np.zeros((2, 48, 48, 3), "float32"))
    assert {k: tuple(v.shape) for k, v in outputs.items()} == {
        "P1": (2, 24, 24, 4),
        "P2": (2, 12, 12, 8),
        "P3": (2, 6, 6, 8),
        "P4": (2, 3, 3, 16),
    }


def test_stride_change_rule_where_no_group_ends():
    # One group for the whole model: level 0 (stride 1) is the conv right
    # before the first pooling; level 2 the conv before the stride-8 pool.
    model = _user_cnn((32, 32, 3))
    names = [l.name for l in model.layers if l.weights]
    backbone = backbones.from_model(model, groups={"all": names})
    pyramid = backbones.feature_pyramid(backbone, levels=(0, 2))
    assert pyramid.levels == {"P0": "stage0_conv", "P2": "stage2_conv"}


def test_groups_shared_for_freezing_and_build_model():
    backbone = backbones.get("vgg16", input_shape=(64, 64, 3))
    pyramid = backbones.feature_pyramid(backbone, levels=(3, 4))
    # Layers past the deepest level are dropped from the groups.
    assert pyramid.group_names == ["block1", "block2", "block3", "block4"]
    assert pyramid.group("block4").layers[-1] == "block4_pool"
    # Shared layers: the pyramid's variables are the backbone's.
    assert pyramid.model.get_layer("block1_conv1") is backbone.model.get_layer(
        "block1_conv1"
    )

    def head(features):
        pooled = keras.layers.GlobalAveragePooling2D()(features["P4"])
        return keras.layers.Dense(2, name="head_out")(pooled)

    model = kerasft.build_model(pyramid, head)
    assert model.get_layer("vgg16") is pyramid.model
    plan = kerasft.freeze(model, pyramid, "partial", n=1)
    assert plan.trainable_groups == ("block4",)
    assert not backbone.model.get_layer("block3_conv1").trainable
    assert backbone.model.get_layer("block4_conv1").trainable


def test_unreached_level_is_a_clear_error():
    backbone = backbones.from_model(_user_cnn((32, 32, 3)))
    with pytest.raises(ValueError, match=r"no output at stride 32 \(level 5\)"):
        backbones.feature_pyramid(backbone)


@pytest.mark.parametrize("levels", [(), (5, 4), (3, 3), (-1, 3), "345", (3.0,)])
def test_bad_levels(levels):
    backbone = backbones.from_model(_user_cnn((32, 32, 3)))
    with pytest.raises(ValueError, match="`levels` must be strictly increasing"):
        backbones.feature_pyramid(backbone, levels=levels)


def test_not_a_backbone():
    with pytest.raises(TypeError, match="`backbone` must be a kerasft"):
        backbones.feature_pyramid(_user_cnn())
