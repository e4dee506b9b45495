"""RetinaNet head: kind dispatch, config round trip, .keras round trip,
targets and decoding that invert each other, mixed precision outputs."""

import keras
import numpy as np
import pytest

import kerasft
from kerasft import backbones, heads


def _pyramid(size=64):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 3))
    x = inputs
    for i, filters in enumerate((8, 8, 16, 16, 16)):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu",
                                name=f"b{i}_conv")(x)
        x = keras.layers.MaxPooling2D(name=f"b{i}_pool")(x)
    backbone = backbones.from_model(keras.Model(inputs, x, name="tiny"))
    return backbones.feature_pyramid(backbone)


def _head(**kwargs):
    options = dict(max_level=5, anchor_size=2, fpn_filters=8, head_filters=8,
                   head_conv_layers=1)
    return heads.detection(3, kind="retinanet", **{**options, **kwargs})


def test_kind_dispatch_and_errors():
    assert isinstance(heads.detection(3), heads.DetectionHead)
    assert isinstance(_head(), heads.RetinaNetHead)
    with pytest.raises(ValueError, match="`kind` must be one of"):
        heads.detection(3, kind="yolo")
    with pytest.raises(ValueError, match=r"\['conv_filters'\] only apply to kind='single'"):
        heads.detection(3, kind="retinanet", conv_filters=(8,))
    with pytest.raises(TypeError, match="need kind='retinanet'"):
        heads.detection(3, anchor_size=2)
    with pytest.raises(ValueError, match="`max_level` must be >= `min_level`"):
        heads.RetinaNetHead(3, min_level=4, max_level=3)
    with pytest.raises(ValueError, match="feature_pyramid"):
        _head()(keras.Input((4, 4, 8)))


def test_config_round_trip():
    head = _head(aspect_ratios=(1.0, 2.0), box_loss_weight=2.0)
    config = head.get_config()
    again = heads.RetinaNetHead.from_config(config)
    assert again.get_config() == config
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(head)
    )
    assert isinstance(restored, heads.RetinaNetHead)
    assert restored.get_config() == config
    assert head.num_anchors == 6


def test_model_outputs_and_keras_file_round_trip(tmp_path):
    head = _head()
    model = kerasft.build_model(_pyramid(), head)
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    outputs = model.predict(images, verbose=0)
    anchors = (8 * 8 + 4 * 4 + 2 * 2) * 9
    assert outputs["bbox_regression"].shape == (2, anchors, 4)
    assert outputs["cls_logits"].shape == (2, anchors, 3)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    again = loaded.predict(images, verbose=0)
    for key in outputs:
        np.testing.assert_allclose(again[key], outputs[key], rtol=1e-5, atol=1e-5)


def test_targets_then_decode_recover_the_boxes():
    head = _head()
    images = np.zeros((1, 64, 64, 3), "float32")
    truth = {"boxes": np.array([[[8.0, 8.0, 24.0, 30.0], [30.0, 20.0, 60.0, 44.0],
                                 [-1, -1, -1, -1]]], "float32"),
             "labels": np.array([[2, 0, -1]], "int32")}
    _, y, weights = head.training_targets(images, truth)
    classes = np.asarray(y["cls_logits"])
    positive = classes.max(-1) > 0
    assert positive.any()
    assert np.asarray(weights["bbox_regression"]).sum() == pytest.approx(1.0)
    # Perfect outputs: the encoded deltas and confident logits at positives.
    logits = np.where(classes > 0, 10.0, -10.0).astype("float32")
    decoded = head.decode(
        {"bbox_regression": np.asarray(y["bbox_regression"]), "cls_logits": logits},
        (64, 64), confidence_threshold=0.5,
    )
    count = int(np.asarray(decoded["num_detections"])[0])
    assert count == 2
    boxes = np.asarray(decoded["boxes"])[0, :count]
    labels = np.asarray(decoded["labels"])[0, :count]
    order = np.argsort(boxes[:, 0])
    np.testing.assert_allclose(boxes[order], truth["boxes"][0, :2], atol=1e-3)
    np.testing.assert_array_equal(labels[order], [2, 0])


def test_outputs_stay_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = kerasft.build_model(_pyramid(), _head())
        outputs = model(np.zeros((1, 64, 64, 3), "float32"))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert {keras.backend.standardize_dtype(v.dtype) for v in outputs.values()} == {"float32"}
    layer = model.get_layer("head_retinanet")
    assert layer.fpn.compute_dtype == "bfloat16"
