"""`kerasft.recipes._image_backbone`: the glue the image recipes share (one
feature cache for image and video models, the skipped-files log, the
checks every image run makes first)."""

import types

import keras
import numpy as np
import pytest

import kerasft
from kerasft import heads
from kerasft.recipes import _image_backbone
from kerasft.recipes._image_backbone import (
    caches_features,
    log_skipped,
    open_run,
    split_at_features,
)
from tests.recipes.tiny import tiny_backbone
from tests.recipes.video_tiny import frame_backbone


def _logger():
    lines = []
    return types.SimpleNamespace(log=lines.append), lines


def test_image_model_splits_at_the_backbone_output():
    backbone = tiny_backbone()
    model = kerasft.build_model(backbone, heads.classification(3))
    features_model, head_model = split_at_features(model, backbone)
    x = np.random.RandomState(0).uniform(0, 255, (4, 16, 16, 3)).astype("float32")
    features = features_model(x)
    assert tuple(features.shape[1:]) == tuple(backbone.model.output_shape[1:])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(head_model(features)),
                               keras.ops.convert_to_numpy(model(x)), rtol=1e-5)
    # The head model holds the very layers of `model`: training one trains both.
    assert {id(w) for w in head_model.trainable_weights} <= {
        id(w) for w in model.weights}


def test_video_model_splits_at_the_per_frame_vectors():
    backbone = frame_backbone(size=16)
    head = heads.video_classification(3, frames=4, temporal="gru", units=8)
    model = kerasft.build_model(backbone, head)
    features_model, head_model = split_at_features(model, head.frame_features_name)
    clips = np.random.RandomState(1).uniform(
        0, 255, (2, 4, 16, 16, 3)).astype("float32")
    per_frame = features_model(clips)
    assert tuple(per_frame.shape[:2]) == (2, 4)  # [batch, frames, channels]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(head_model(per_frame)),
                               keras.ops.convert_to_numpy(model(clips)), rtol=1e-5)


def test_head_reading_more_than_the_backbone_is_not_split():
    backbone = tiny_backbone()
    inputs = keras.Input((16, 16, 3))
    features = keras.layers.GlobalAveragePooling2D()(backbone.model(inputs))
    pixels = keras.layers.GlobalAveragePooling2D()(inputs)  # skips the backbone
    outputs = keras.layers.Dense(2)(keras.layers.Concatenate()([features, pixels]))
    assert split_at_features(keras.Model(inputs, outputs), backbone) is None


@pytest.mark.parametrize("options, cached, logged", [
    ({}, True, None),
    ({"feature_cache": "off"}, False, None),
    ({"mode": "partial"}, False, None),
    ({"augment": {"horizontal_flip": True}}, False,
     "augmentation changes the images every epoch"),
    ({"curriculum": {"pacing": "linear"}}, False,
     "a curriculum changes the examples every epoch"),
])
def test_image_features_are_cached_only_when_the_inputs_never_change(
    options, cached, logged
):
    config = types.SimpleNamespace(**{
        "mode": "feature_extraction", "feature_cache": "auto", "augment": None,
        "curriculum": None, **options})
    run, lines = _logger()
    assert caches_features(run, config) is cached
    assert lines == ([] if logged is None else [
        f"Features are not cached: {logged}, so the frozen backbone runs on "
        "every batch."])


def test_random_frame_windows_stop_video_feature_caching():
    config = types.SimpleNamespace(mode="feature_extraction", feature_cache="auto",
                                   augment=None, curriculum=None, sampling="random")
    run, lines = _logger()
    assert not caches_features(
        run, config, "clips",
        "augmentation or random frame windows change the clips")
    assert lines == ["Features are not cached: augmentation or random frame "
                     "windows change the clips every epoch, so the frozen "
                     "backbone runs on every batch."]


def test_auto_feature_cache_goes_to_disk_above_the_memory_budget(monkeypatch):
    features_model = types.SimpleNamespace(output_shape=(None, 4, 8))  # 128 B
    train = types.SimpleNamespace(num_samples=10)
    place = _image_backbone._feature_cache_place
    config = types.SimpleNamespace(feature_cache="auto")
    monkeypatch.setattr(_image_backbone, "MEMORY_FEATURES_BYTES", 1280)
    assert place(config, train, features_model) == "memory"
    monkeypatch.setattr(_image_backbone, "MEMORY_FEATURES_BYTES", 1279)
    assert place(config, train, features_model) == "disk"
    config.feature_cache = "memory"
    assert place(config, train, features_model) == "memory"


def test_skipped_files_are_logged_once_with_the_first_five():
    datasets = [types.SimpleNamespace(skipped_files=[f"{i}.jpg" for i in range(4)]),
                None, types.SimpleNamespace(skipped_files=["a.jpg", "b.jpg"])]
    run, lines = _logger()
    skipped = log_skipped(run, *datasets, what="clip(s)")
    assert skipped == ["0.jpg", "1.jpg", "2.jpg", "3.jpg", "a.jpg", "b.jpg"]
    assert lines == ["Skipped 6 unreadable clip(s): 0.jpg, 1.jpg, 2.jpg, 3.jpg, "
                     "a.jpg, ..."]
    run, lines = _logger()
    assert log_skipped(run, None) == [] and lines == []


def test_open_run_checks_the_backbone_before_train(tmp_path):
    from kerasft.recipes.configs import ImageClassificationConfig

    config = ImageClassificationConfig(backbone="no_such_net", weights="none",
                                       output_dir=str(tmp_path / "a"))
    with pytest.raises(ValueError, match="Unknown backbone 'no_such_net'"):
        open_run(config, False, "the training images.")
    config = ImageClassificationConfig(backbone=tiny_backbone(), weights="none",
                                       output_dir=str(tmp_path / "b"))
    with pytest.raises(ValueError, match="`train` is required: the training images."):
        open_run(config, False, "the training images.")
