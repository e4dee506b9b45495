"""`kerasft.heads.segmentation` and `SegmentationLoss`."""

import keras
import numpy as np
import pytest

import kerasft
from kerasft import backbones
from kerasft import heads
from tests.helpers import assert_config_roundtrip
from tests.helpers import assert_model_roundtrip


def _pyramid(levels=(1, 2, 3), size=32):
    inputs = keras.Input((size, size, 3))
    x = inputs
    for i, filters in enumerate((4, 8, 8)):
        x = keras.layers.Conv2D(
            filters, 3, padding="same", activation="relu", name=f"s{i}_conv"
        )(x)
        x = keras.layers.MaxPooling2D(name=f"s{i}_pool")(x)
    backbone = backbones.from_model(keras.Model(inputs, x, name="tiny"))
    return backbones.feature_pyramid(backbone, levels=levels)


@pytest.mark.parametrize("kind", ["unet", "deeplabv3plus"])
def test_logits_at_input_resolution_in_float32_under_bf16(kind):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    head = heads.segmentation(3, kind=kind, filters=8, atrous_rates=(2,))
    model = kerasft.build_model(_pyramid(), head)
    assert model.output.shape == (None, 32, 32, 3)
    assert model.output.dtype == "float32"
    model.compile(optimizer=keras.optimizers.Adam(1e-2), **head.compile_kwargs())
    x = np.random.RandomState(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    y = (x[..., 0] > 127).astype("int32")
    y[:, :4] = 255
    history = model.fit(x, y, epochs=3, batch_size=4, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    assert "mean_iou" in history


def test_unet_uses_every_level_as_a_skip_and_deeplab_the_finest():
    pyramid = _pyramid()
    unet = kerasft.build_model(pyramid, heads.segmentation(2, filters=8))
    names = {l.name for l in unet.layers}
    assert {"head_concat1", "head_concat2"} <= names
    deeplab = kerasft.build_model(
        _pyramid(levels=(1, 3)), heads.segmentation(2, kind="deeplabv3plus", filters=8)
    )
    assert deeplab.get_layer("head_low_level_conv").output.shape[1:3] == (16, 16)
    # The deepest map is 4x4: rate 6 clipped to 4, the same output for less.
    assert deeplab.get_layer("head_aspp_rate6_conv").dilation_rate == (4, 4)


@pytest.mark.parametrize("size", [(2, 2), (3, 5), (1, 4)])
def test_clipped_atrous_rate_gives_the_same_output(size):
    from kerasft.heads.segmentation import atrous_rate

    x = np.random.RandomState(0).normal(size=(2, *size, 5)).astype("float32")
    outputs = []
    for rate in (18, atrous_rate(18, size)):
        conv = keras.layers.Conv2D(4, 3, padding="same", dilation_rate=rate,
                                   kernel_initializer="glorot_uniform")
        conv.build(x.shape)
        conv.set_weights([np.arange(3 * 3 * 5 * 4, dtype="float32").reshape(
            3, 3, 5, 4) / 100.0, np.zeros(4, "float32")])
        outputs.append(keras.ops.convert_to_numpy(conv(x)))
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-5, atol=1e-5)
    assert atrous_rate(18, size) == tuple(min(18, s) for s in size)
    assert atrous_rate(6, (32, None)) == 6


def test_output_size_for_inexact_strides():
    head = heads.segmentation(2, filters=4, output_size=(33, 31))
    assert kerasft.build_model(_pyramid(), head).output.shape == (None, 33, 31, 2)


def test_save_and_load_round_trip_compiled():
    head = heads.segmentation(2, kind="deeplabv3plus", filters=8, dice_weight=0.5)
    model = kerasft.build_model(_pyramid(), head)
    model.compile(optimizer="adam", **head.compile_kwargs())
    x = np.random.RandomState(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    reloaded = assert_model_roundtrip(model, x, atol=1e-5)
    assert reloaded.loss.get_config()["dice_weight"] == 0.5
    assert_config_roundtrip(head)
    assert_config_roundtrip(heads.SegmentationLoss(4, dice_weight=1.0, ignore_index=None))


def test_crossentropy_ignores_ignore_index_hand_computed():
    loss = heads.SegmentationLoss(2, reduction=None)
    logits = np.log(np.array([[[[0.8, 0.2], [0.3, 0.7], [0.5, 0.5]]]], "float32"))
    labels = np.array([[[0, 0, 255]]])
    expected = -(np.log(0.8) + np.log(0.3)) / 2
    np.testing.assert_allclose(loss(labels, logits), [expected], rtol=1e-5)
    # Changing the logits of the ignored pixel changes nothing.
    other = logits.copy()
    other[0, 0, 2] = [9.0, -9.0]
    np.testing.assert_allclose(loss(labels, other), [expected], rtol=1e-5)
    # (batch, h, w, 1) labels are accepted too.
    np.testing.assert_allclose(loss(labels[..., None], logits), [expected], rtol=1e-5)


def test_dice_term_hand_computed():
    loss = heads.SegmentationLoss(2, dice_weight=2.0, ignore_index=None, reduction=None)
    probs = np.array([[[[0.8, 0.2], [0.3, 0.7]]]], "float32")
    labels = np.array([[[0, 1]]])
    ce = -(np.log(0.8) + np.log(0.7)) / 2
    dice0 = (2 * 0.8 + 1) / (0.8 + 0.3 + 1 + 1)
    dice1 = (2 * 0.7 + 1) / (0.2 + 0.7 + 1 + 1)
    expected = ce + 2.0 * (1 - (dice0 + dice1) / 2)
    np.testing.assert_allclose(loss(labels, np.log(probs)), [expected], rtol=1e-5)


def test_features_must_be_a_pyramid_dict():
    with pytest.raises(ValueError, match="feature_pyramid"):
        heads.segmentation(2)(keras.Input((4, 4, 8)))
    with pytest.raises(ValueError, match="keyed 'P<level>'"):
        heads.segmentation(2)({"x": keras.Input((4, 4, 8))})


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_classes": 1}, "num_classes"),
        ({"num_classes": 3, "kind": "fcn"}, "kind"),
        ({"num_classes": 3, "ignore_index": 2}, "ignore_index"),
        ({"num_classes": 3, "dice_weight": -1}, "dice_weight"),
        ({"num_classes": 3, "atrous_rates": 6}, "atrous_rates"),
        ({"num_classes": 3, "output_size": (8,)}, "output_size"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        heads.segmentation(**kwargs)
