"""image_folder: decode, cache, split, skip bad files, clear errors."""

import logging
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasft.augment import ImageAugmentation
from kerasft.augment import MixUp
from kerasft.data import _pipeline
from kerasft.data import image_csv
from kerasft.data import image_folder
from tests.data._folders import label_from_pixels
from tests.data._folders import make_bad_folder
from tests.data._folders import make_folder


def _epoch(data):
    xs, ys = [], []
    for x, y in data.dataset:
        xs.append(x.numpy())
        ys.append(y.numpy())
    return np.concatenate(xs), np.concatenate(ys)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("imgs"), [6, 4, 5])


def test_images_labels_and_metadata(folder):
    data = image_folder(folder, (12, 10), batch_size=4, seed=0)
    assert isinstance(data, tf.data.Dataset) and data.dataset is data
    assert data.class_names == ("class_0", "class_1", "class_2")
    assert data.class_counts == (6, 4, 5)
    assert data.num_samples == 15 and data.steps_per_epoch == 4
    assert data.dataset.cardinality().numpy() == 4  # known to `fit`
    x, y = _epoch(data)
    assert x.shape == (15, 12, 10, 3) and x.dtype == np.float32
    assert y.dtype == np.int32
    np.testing.assert_array_equal(label_from_pixels(x), y)
    assert sorted(y.tolist()) == [0] * 6 + [1] * 4 + [2] * 5
    spec = data.dataset.element_spec
    assert spec[0].shape.as_list() == [None, 12, 10, 3]


def test_shuffles_every_epoch_deterministically_with_seed(folder):
    a = image_folder(folder, 8, batch_size=15, seed=3)
    b = image_folder(folder, 8, batch_size=15, seed=3)
    ya1, ya2 = _epoch(a)[1], _epoch(a)[1]
    np.testing.assert_array_equal(ya1, _epoch(b)[1])
    assert not np.array_equal(ya1, ya2)
    fixed = image_folder(folder, 8, batch_size=15, shuffle=False)
    np.testing.assert_array_equal(_epoch(fixed)[1], _epoch(fixed)[1])


def test_categorical_labels_and_mix(folder):
    data = image_folder(folder, 8, batch_size=5, label_mode="categorical",
                        mix=MixUp(alpha=0.5), seed=1)
    x, y = _epoch(data)
    assert y.shape == (15, 3)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="label_mode='categorical'"):
        image_folder(folder, 8, batch_size=5, mix=MixUp())


def test_augmentation_after_cache_changes_each_epoch(folder):
    aug = dict(rotation_range=30, width_shift_range=0.3, fill_mode="constant",
               cval=0.0)
    data = image_folder(folder, 8, batch_size=15, augment=aug, seed=2,
                        shuffle=False)
    assert isinstance(data.augment, ImageAugmentation)
    x1, y1 = _epoch(data)
    x2, _ = _epoch(data)
    assert not np.allclose(x1, x2)
    again = image_folder(folder, 8, batch_size=15, augment=aug, seed=2,
                         shuffle=False)
    np.testing.assert_array_equal(x1, _epoch(again)[0])
    # Constant fill with black pulls the flat colours down, never above.
    plain, y_plain = _epoch(image_folder(folder, 8, batch_size=15,
                                         shuffle=False))
    np.testing.assert_array_equal(y1, y_plain)  # sorted order, no shuffle
    assert y_plain.tolist() == sorted(y_plain.tolist())
    assert (x1 <= plain + 1e-3).all() and (x1 < plain - 1).any()


def test_validation_split_subsets_are_disjoint(folder):
    train, val = image_folder(folder, 8, batch_size=4, validation_split=0.4,
                              subset="both", seed=7)
    assert train.num_samples == 9 and val.num_samples == 6
    assert not set(train.file_paths) & set(val.file_paths)
    assert len(set(train.file_paths) | set(val.file_paths)) == 15
    again = image_folder(folder, 8, batch_size=4, validation_split=0.4,
                         subset="validation", seed=7)
    assert again.file_paths == val.file_paths
    assert sum(val.class_counts) == 6
    with pytest.raises(ValueError, match="`seed` is required"):
        image_folder(folder, 8, 4, validation_split=0.4, subset="training")
    with pytest.raises(ValueError, match="subset"):
        image_folder(folder, 8, 4, validation_split=0.4, seed=1)


def test_validation_split_is_stratified_and_never_empty(tmp_path):
    # 12 and 8 images: a 0.25 split holds out 3 and 2, each class its share.
    root = make_folder(tmp_path / "strat", [12, 8], size=8)
    train, val = image_folder(root, 8, batch_size=4, validation_split=0.25,
                              subset="both", seed=3)
    assert list(val.class_counts) == [3, 2]
    assert list(train.class_counts) == [9, 6]
    # A tiny folder still holds one image out instead of failing.
    tiny = make_folder(tmp_path / "tiny", [3, 2], size=8)
    train, val = image_folder(tiny, 8, batch_size=4, validation_split=0.1,
                              subset="both", seed=0)
    assert val.num_samples == 1 and train.num_samples == 4


def _bad_folder(root):
    return make_bad_folder(root)


def test_corrupt_files_are_skipped_named_and_counted(tmp_path, caplog):
    root = _bad_folder(tmp_path / "d")
    with caplog.at_level(logging.WARNING, logger="kerasft.data"):
        data = image_folder(root, 8, batch_size=2, seed=0)
    warnings = [r for r in caplog.records if "Skipped 3" in r.getMessage()]
    assert len(warnings) == 1
    names = sorted(os.path.basename(p) for p in data.skipped_files)
    assert names == ["empty.jpg", "notes.jpg", "truncated.jpg"]
    assert data.num_samples == 7 and data.class_counts == (3, 4)
    assert any(p.endswith("green.webp") for p in data.file_paths)
    assert data.cardinality().numpy() == 4
    for _ in range(2):
        x, y = _epoch(data)
        assert len(y) == 7
        np.testing.assert_array_equal(label_from_pixels(x), y)


def test_bad_files_train_through_fit(tmp_path):
    root = _bad_folder(tmp_path / "d")
    data = image_folder(root, 8, batch_size=4, seed=0)
    model = keras.Sequential([
        keras.Input((8, 8, 3)),
        keras.layers.Rescaling(1 / 255.0),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(2, activation="softmax"),
    ])
    model.compile(keras.optimizers.Adam(0.1), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(data, epochs=15, verbose=0,
                        class_weight=data.class_weights())
    assert history.history["accuracy"][-1] > 0.8  # chance is 4/7


def test_without_cache_the_header_check_skips(tmp_path):
    root = _bad_folder(tmp_path / "d")
    data = image_folder(root, 8, batch_size=2, seed=0, cache=False)
    assert len(data.skipped_files) == 2  # the truncated file passes
    assert data.num_samples == 8 and data.cardinality().numpy() == 4
    for _ in range(2):  # it fails to decode; its slot is refilled
        x, y = _epoch(data)
        assert len(y) == 8
        np.testing.assert_array_equal(label_from_pixels(x), y)
    exact = image_folder(root, 8, batch_size=2, cache=False,
                         check_files="decode")
    assert len(exact.skipped_files) == 3 and exact.num_samples == 7


def test_epoch_variable_makes_epochs_pure_functions_of_seed_and_epoch(folder):
    epoch = tf.Variable(0, dtype=tf.int64)
    aug = dict(rotation_range=30, horizontal_flip=True)
    a = image_folder(folder, 8, batch_size=4, augment=aug, seed=5, epoch=epoch)
    first = _epoch(a)
    again = _epoch(a)  # same epoch number: same batches
    np.testing.assert_array_equal(first[0], again[0])
    epoch.assign(1)
    second = _epoch(a)
    assert not np.array_equal(first[1], second[1])
    # A fresh pipeline (a restarted process) at epoch 1 gives epoch 1.
    b = image_folder(folder, 8, batch_size=4, augment=aug, seed=5, epoch=epoch)
    np.testing.assert_array_equal(_epoch(b)[0], second[0])


def test_image_csv(tmp_path, folder):
    import csv

    path = tmp_path / "data.csv"
    rows = [["filename", "label"]]
    for c in range(3):
        for f in sorted(os.listdir(os.path.join(folder, f"class_{c}"))):
            rows.append([os.path.join(folder, f"class_{c}", f), f"c{c}"])
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    data = image_csv(str(path), 8, batch_size=4, seed=0)
    assert data.class_names == ("c0", "c1", "c2")
    assert data.class_counts == (6, 4, 5)
    x, y = _epoch(data)
    np.testing.assert_array_equal(label_from_pixels(x), y)


def test_empty_and_one_class_folders_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="existing folder"):
        image_folder(str(tmp_path / "missing"), 8, 4)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="Found no images"):
        image_folder(str(tmp_path / "empty"), 8, 4)
    (tmp_path / "empty" / "a").mkdir()
    with pytest.raises(ValueError, match="Found no images"):
        image_folder(str(tmp_path / "empty"), 8, 4)
    one = make_folder(tmp_path / "one", [3])
    with pytest.raises(ValueError, match="at least 2 classes"):
        image_folder(one, 8, 4)


def test_bad_arguments(folder):
    with pytest.raises(ValueError, match="batch_size"):
        image_folder(folder, 8, 0)
    with pytest.raises(ValueError, match="label_mode"):
        image_folder(folder, 8, 4, label_mode="binary")
    with pytest.raises(ValueError, match="image_size"):
        image_folder(folder, (8,), 4)
    with pytest.raises(ValueError, match="augment"):
        image_folder(folder, 8, 4, augment="autoaugment")


def test_augment_forms():
    assert _pipeline.resolve_augment(None) is None
    layer = _pipeline.resolve_augment(dict(rotation_range=5))
    assert isinstance(layer, ImageAugmentation) and layer.rotation_range == 5
    assert isinstance(_pipeline.resolve_augment("randaugment"),
                      keras.layers.RandAugment)
    with pytest.raises(TypeError, match="augment"):
        _pipeline.resolve_augment(3)


def test_file_cache(folder, tmp_path):
    path = str(tmp_path / "cache")
    data = image_folder(folder, 8, batch_size=4, cache=path, shuffle=False)
    first = _epoch(data)
    assert any(p.startswith("cache") for p in os.listdir(tmp_path))
    np.testing.assert_array_equal(first[0], _epoch(data)[0])


def test_drop_remainder_and_static_shapes_on_tpu(folder, monkeypatch):
    data = image_folder(folder, 8, batch_size=4)
    assert data.dataset.element_spec[0].shape[0] is None
    fake_tpu = object.__new__(tf.distribute.TPUStrategy)
    monkeypatch.setattr(tf.distribute, "get_strategy", lambda: fake_tpu)
    data = image_folder(folder, 8, batch_size=4)
    assert data.drop_remainder and data.steps_per_epoch == 3
    assert data.dataset.element_spec[0].shape.as_list() == [4, 8, 8, 3]
    assert len(_epoch(data)[1]) == 12
