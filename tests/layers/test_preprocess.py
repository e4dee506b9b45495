"""`Preprocess` reproduces each family's `preprocess_input` inside a model."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasft.layers import Preprocess
from tests.helpers import assert_config_roundtrip
from tests.helpers import assert_model_roundtrip

FAMILIES = [
    ("resnet", "caffe"),
    ("vgg16", "caffe"),
    ("vgg19", "caffe"),
    ("mobilenet_v2", "tf"),
    ("resnet_v2", "tf"),
    ("xception", "tf"),
    ("densenet", "torch"),
    ("efficientnet", "none"),
    ("efficientnet_v2", "none"),
    ("mobilenet_v3", "none"),
    ("convnext", "none"),
]


def _images(shape=(2, 5, 4, 3), seed=0):
    return np.random.default_rng(seed).uniform(0, 255, shape).astype("float32")


@pytest.mark.parametrize("module, mode", FAMILIES)
def test_matches_family_preprocess_input(module, mode):
    images = _images()
    reference = getattr(keras.applications, module).preprocess_input
    expected_tensor = np.asarray(reference(tf.constant(images)))
    expected_numpy = reference(images.copy())  # numpy path works in place
    got = np.asarray(Preprocess(mode)(images))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected_tensor, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(got, expected_numpy, rtol=1e-6, atol=1e-4)


def test_hand_computed_values():
    pixel = np.array([[[[10.0, 20.0, 30.0]]]], "float32")
    np.testing.assert_allclose(
        Preprocess("caffe")(pixel)[0, 0, 0],
        [30 - 103.939, 20 - 116.779, 10 - 123.68],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        Preprocess("tf")(pixel)[0, 0, 0],
        [10 / 127.5 - 1, 20 / 127.5 - 1, 30 / 127.5 - 1],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        Preprocess("torch")(pixel)[0, 0, 0],
        [
            (10 / 255 - 0.485) / 0.229,
            (20 / 255 - 0.456) / 0.224,
            (30 / 255 - 0.406) / 0.225,
        ],
        rtol=1e-5,
    )
    np.testing.assert_array_equal(Preprocess("none")(pixel), pixel)


def test_channels_first():
    images = _images((2, 3, 4, 5))
    expected = keras.applications.imagenet_utils.preprocess_input(
        tf.constant(images), data_format="channels_first", mode="caffe"
    )
    got = Preprocess("caffe", data_format="channels_first")(images)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-5)


def test_uint8_input():
    images = np.random.default_rng(1).integers(0, 256, (2, 4, 4, 3), "uint8")
    expected = keras.applications.resnet.preprocess_input(
        tf.constant(images.astype("float32"))
    )
    np.testing.assert_allclose(Preprocess("caffe")(images), expected, atol=1e-5)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_float32_math_under_mixed_precision(policy):
    keras.mixed_precision.set_global_policy(policy)
    compute = "float16" if policy == "mixed_float16" else "bfloat16"
    # Non-integer pixels (after resizing/augmentation) are not representable
    # in bfloat16/float16: they must not be cast before the mean is removed.
    images = _images((4, 8, 8, 3), seed=3)
    got = tf.cast(Preprocess("caffe")(images), "float32")
    assert Preprocess("caffe")(images).dtype == compute
    in_float32 = keras.applications.resnet.preprocess_input(tf.constant(images))
    np.testing.assert_array_equal(
        got, tf.cast(tf.cast(in_float32, compute), "float32")
    )
    cast_first = keras.applications.resnet.preprocess_input(
        tf.cast(tf.constant(images), compute)
    )
    if policy == "mixed_bfloat16":
        assert np.any(got != tf.cast(cast_first, "float32"))


def test_in_model_with_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, Preprocess("caffe")(inputs))
    out = model(_images((1, 4, 4, 3)))
    assert keras.backend.standardize_dtype(out.dtype) == "float16"


def test_bad_arguments():
    with pytest.raises(ValueError, match="`mode` must be one of"):
        Preprocess("inception")
    with pytest.raises(ValueError, match="`data_format`"):
        Preprocess("tf", data_format="NHWC")


def test_warns_eagerly_on_unit_scaled_images():
    layer = Preprocess("caffe")
    with pytest.warns(UserWarning, match=r"largest value is 0\.9.*\(0, 255\)"):
        layer(_images() / 255.0 * 0.99)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Preprocess("caffe")(_images())  # raw pixels: no warning


def test_no_warning_or_cost_in_graph():
    layer = Preprocess("none")
    graph_fn = tf.function(layer.call)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graph_fn(tf.constant(_images() / 255.0))
    ops = graph_fn.get_concrete_function(
        tf.TensorSpec((None, 5, 4, 3))
    ).graph.get_operations()
    assert not [op for op in ops if "PyFunc" in op.type]


def test_config_roundtrip():
    layer = Preprocess("torch", data_format="channels_last", name="prep")
    config = layer.get_config()
    assert config["mode"] == "torch"
    assert config["data_format"] == "channels_last"
    assert_config_roundtrip(layer)


def test_model_roundtrip():
    inputs = keras.Input((8, 8, 3))
    x = Preprocess("caffe")(inputs)
    outputs = keras.layers.Conv2D(2, 3)(x)
    model = keras.Model(inputs, outputs)
    reloaded = assert_model_roundtrip(model, _images((2, 8, 8, 3)))
    assert isinstance(reloaded.layers[1], Preprocess)
    assert reloaded.layers[1].mode == "caffe"


def test_warning_depends_only_on_the_array_checked():
    layer = Preprocess("tf")
    for _ in range(2):  # every scaled array warns, not only the first
        with pytest.warns(UserWarning, match="look already scaled"):
            layer(_images() / 255.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer(_images())  # raw pixels after scaled ones: still no warning
        Preprocess("tf")(_images())
