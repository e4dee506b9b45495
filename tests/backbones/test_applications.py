"""`kerasft.backbones.get`: the registry against `keras.applications`."""

import collections
import re

import keras
import numpy as np
import pytest

from kerasft import backbones
from kerasft.backbones import applications
from kerasft.backbones import grouping
from kerasft.layers import Preprocess

# One member per family: outputs compared with keras.applications.
REPRESENTATIVES = [
    "resnet50",
    "resnet50v2",
    "vgg16",
    "mobilenetv2",
    "mobilenetv3small",
    "efficientnetb0",
    "efficientnetv2b0",
    "densenet121",
    "convnext_tiny",
    "xception",
]
OTHERS = [n for n in applications.list_backbones() if n not in REPRESENTATIVES]

EXPECTED_GROUPS = {
    "resnet": ["conv1", "conv2", "conv3", "conv4", "conv5"],
    "resnet_v2": ["conv1", "conv2", "conv3", "conv4", "conv5"],
    "densenet": ["conv1", "conv2", "conv3", "conv4", "conv5"],
    "vgg": [f"block{i}" for i in range(1, 6)],
    "xception": [f"block{i}" for i in range(1, 15)],
    "mobilenet_v2": ["stem"] + [f"block_{i}" for i in range(1, 17)] + ["top"],
    "convnext": ["stem", "stage_0", "stage_1", "stage_2", "stage_3"],
}
# Weighted layers Keras leaves auto-named; they join their neighbours' group.
AUTO_NAMED = re.compile(
    r"^(conv2d|batch_normalization|normalization|layer_normalization)(_\d+)?$"
)


def _shape(name):
    return (71, 71, 3) if name == "xception" else (32, 32, 3)


def _reference(name):
    constructor = getattr(keras.applications, applications.spec(name).constructor)
    return constructor(include_top=False, weights=None, input_shape=_shape(name))


def _check_groups(backbone, family):
    model = backbone.model
    names = [layer.name for layer in model.layers]
    counts = collections.Counter(n for g in backbone.groups for n in g.layers)
    assert sorted(counts) == sorted(names)  # every layer in a group
    assert set(counts.values()) == {1}  # and in one only
    # Ordered input -> output: group indices never decrease along the model.
    index = [backbone.group_names.index(backbone.group_of(n)) for n in names]
    assert index == sorted(index)
    assert index[0] == 0 and index[-1] == len(backbone.groups) - 1
    # Only auto-named weighted layers may rely on the neighbour fallback.
    patterns = grouping.FAMILY_PATTERNS[family](names)
    for layer in model.layers:
        if layer.weights and not AUTO_NAMED.match(layer.name):
            matching = [g for g, r in patterns if re.search(r, layer.name)]
            assert matching[:1] == [backbone.group_of(layer.name)], layer.name
    if family in EXPECTED_GROUPS:
        assert backbone.group_names == EXPECTED_GROUPS[family]
    elif family == "efficientnet":
        assert backbone.group_names[0] == "stem"
        assert backbone.group_names[-1] == "top"
        blocks = backbone.group_names[1:-1]
        assert blocks == [f"block{i}" for i in range(1, len(blocks) + 1)]
        assert len(blocks) in (6, 7)
    else:  # mobilenet_v3
        blocks = backbone.group_names[1:-1]
        assert backbone.group_names[0] == "stem"
        assert blocks == [f"block_{i}" for i in range(1, len(blocks) + 1)]


def _check_same_architecture(backbone, reference):
    assert backbone.model.count_params() == reference.count_params()
    assert [tuple(w.shape) for w in backbone.model.weights] == [
        tuple(w.shape) for w in reference.weights
    ]


@pytest.mark.parametrize("name", REPRESENTATIVES)
def test_matches_keras_applications(name):
    entry = applications.spec(name)
    backbone = backbones.get(name, input_shape=_shape(name))
    assert backbone.name == backbone.model.name == name
    assert backbone.task == "image"
    assert backbone.input_range == (0, 255)
    module = getattr(keras.applications, entry.module)
    assert backbone.preprocess is module.preprocess_input
    assert backbone.preprocess_mode == entry.mode

    reference = _reference(name)
    _check_same_architecture(backbone, reference)
    reference.set_weights(backbone.model.get_weights())
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (2,) + _shape(name)).astype("float32")
    x = backbone.preprocess(images.copy())
    got = np.asarray(backbone.model(x, training=False))
    expected = np.asarray(reference(x, training=False))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    _check_groups(backbone, entry.family)


@pytest.mark.slow
@pytest.mark.parametrize("name", OTHERS)
def test_parameter_counts_and_groups(name):
    backbone = backbones.get(name, input_shape=_shape(name))
    assert backbone.model.name == name
    _check_same_architecture(backbone, _reference(name))
    _check_groups(backbone, applications.spec(name).family)


def test_preprocess_mode_reproduces_preprocess_input():
    images = np.random.default_rng(1).uniform(0, 255, (2, 4, 4, 3))
    images = images.astype("float32")
    for name in applications.list_backbones():
        entry = applications.spec(name)
        preprocess = getattr(keras.applications, entry.module).preprocess_input
        np.testing.assert_allclose(
            Preprocess(entry.mode)(images),
            preprocess(images.copy()),
            atol=1e-4,
            err_msg=name,
        )


def test_list_backbones():
    names = backbones.list_backbones()
    required = ["resnet50", "resnet101", "resnet152", "vgg16", "vgg19",
                "mobilenetv2"] + [f"efficientnetb{i}" for i in range(8)]
    assert set(required) <= set(names)
    assert names == sorted(names)


def test_pooling_kwarg_is_forwarded():
    backbone = backbones.get("vgg16", input_shape=(32, 32, 3), pooling="avg")
    assert backbone.model.output_shape == (None, 512)


def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError, match="Unknown backbone 'resnet51'.*resnet50"):
        backbones.get("resnet51")


def test_too_small_images():
    with pytest.raises(ValueError, match=r"at least 32x32.*\(16, 16, 3\)"):
        backbones.get("resnet50", input_shape=(16, 16, 3))
    with pytest.raises(ValueError, match=r"'xception' needs images of at least 71x71"):
        backbones.get("xception", input_shape=(64, 64, 3))


def test_bad_arguments():
    with pytest.raises(ValueError, match="`include_top` cannot be set"):
        backbones.get("vgg16", input_shape=(32, 32, 3), include_top=True)
    with pytest.raises(ValueError, match="`input_shape` must be a tuple"):
        backbones.get("vgg16", input_shape=(32, 32))
    with pytest.raises(TypeError, match="`weights` must be None, 'imagenet'"):
        backbones.get("vgg16", weights=3)
    with pytest.raises(ValueError, match="no such file"):
        backbones.get("vgg16", weights="/nonexistent/x.weights.h5")
