"""Weights files: matching ones load, mismatching ones get a clear error."""

import shutil

import h5py
import keras
import numpy as np
import pytest
from keras.src.legacy.saving import legacy_h5_format

from kerasft import backbones

SHAPE = (32, 32, 3)


def _save_legacy(model, path):
    """The HDF5 layout of the `keras.applications` weight downloads."""
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("weights")
    notop = keras.applications.VGG16(
        include_top=False, weights=None, input_shape=SHAPE
    )
    top = keras.applications.VGG16(
        include_top=True, weights=None, input_shape=SHAPE, classes=10
    )
    gray = keras.applications.VGG16(
        include_top=False, weights=None, input_shape=(32, 32, 1)
    )
    paths = {
        "notop": tmp / "notop.weights.h5",
        "notop_legacy": tmp / "vgg16_notop.h5",
        "top": tmp / "top.weights.h5",
        "top_legacy": tmp / "vgg16_top.h5",
        "gray": tmp / "gray.weights.h5",
        "gray_legacy": tmp / "gray.h5",
    }
    notop.save_weights(paths["notop"])
    _save_legacy(notop, paths["notop_legacy"])
    top.save_weights(paths["top"])
    _save_legacy(top, paths["top_legacy"])
    gray.save_weights(paths["gray"])
    _save_legacy(gray, paths["gray_legacy"])
    paths["expected"] = [np.asarray(w) for w in notop.weights]
    return paths


@pytest.mark.parametrize("key", ["notop", "notop_legacy"])
def test_matching_file_loads(files, key):
    backbone = backbones.get("vgg16", weights=files[key], input_shape=SHAPE)
    got = [np.asarray(w) for w in backbone.model.weights]
    for g, e in zip(got, files["expected"]):
        np.testing.assert_array_equal(g, e)
    assert backbone.model.name == "vgg16"


def test_path_objects_and_strings(files):
    backbone = backbones.get("vgg16", weights=str(files["notop"]), input_shape=SHAPE)
    np.testing.assert_array_equal(
        np.asarray(backbone.model.weights[-1]), files["expected"][-1]
    )


@pytest.mark.parametrize("key", ["top", "top_legacy"])
def test_file_with_top_is_a_clear_error(files, key):
    with pytest.raises(ValueError) as info:
        backbones.get("vgg16", weights=files[key], input_shape=SHAPE)
    message = str(info.value)
    assert str(files[key]) in message
    assert (
        "holds 16 layers with weights (32 arrays), the model 13 (26 arrays)"
        in message
    )
    assert "'fc1', 'fc2', 'predictions'" in message
    assert "include_top=True" in message


@pytest.mark.parametrize("key", ["gray", "gray_legacy"])
def test_wrong_channels_is_a_clear_error(files, key):
    with pytest.raises(ValueError) as info:
        backbones.get("vgg16", weights=files[key], input_shape=SHAPE)
    message = str(info.value)
    assert str(files[key]) in message
    assert "'block1_conv1': file [(3, 3, 1, 64), (64,)]" in message
    assert "model [(3, 3, 3, 64), (64,)]" in message
    # Only the first layer differs.
    assert "block1_conv2" not in message


def test_other_architecture_is_a_clear_error(files):
    with pytest.raises(ValueError) as info:
        backbones.get("vgg19", weights=files["notop_legacy"], input_shape=SHAPE)
    message = str(info.value)
    assert "does not match backbone 'vgg19'" in message
    assert "holds 13 layers with weights (26 arrays), the model 16" in message
    assert "In the model only: 'block3_conv4', 'block4_conv4'" in message
    assert "another architecture" in message
    assert "include_top" not in message


def test_misnamed_formats(files, tmp_path):
    keras3_as_h5 = tmp_path / "x.h5"
    shutil.copy(files["notop"], keras3_as_h5)
    with pytest.raises(ValueError, match="Keras 3 weights file; rename it"):
        backbones.get("vgg16", weights=keras3_as_h5, input_shape=SHAPE)
    legacy_as_keras3 = tmp_path / "x.weights.h5"
    shutil.copy(files["notop_legacy"], legacy_as_keras3)
    with pytest.raises(ValueError, match="legacy Keras HDF5 weights file"):
        backbones.get("vgg16", weights=legacy_as_keras3, input_shape=SHAPE)
    other = tmp_path / "x.npz"
    other.write_bytes(b"")
    with pytest.raises(ValueError, match=r"must end in `\.weights\.h5`"):
        backbones.get("vgg16", weights=other, input_shape=SHAPE)
