"""Segmentation data: mask decoding, pairing checks, resizing, augmentation."""

import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from kerasft import data
from kerasft.augment import ImageAugmentation
from kerasft.data.synthetic import shapes_segmentation, write_segmentation_folder


def _batches(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


def test_palette_masks_decode_to_indices_not_colours(tmp_path):
    images, masks = shapes_segmentation(4, 32, seed=0)
    masks[0, :2] = 255
    image_dir, mask_dir = write_segmentation_folder(str(tmp_path), images, masks)
    with Image.open(os.path.join(mask_dir, "0000.png")) as stored:
        assert stored.mode == "P"
        # Shown in colour: decoding as RGB (tf.io.decode_png) gives colours.
        assert np.asarray(stored.convert("RGB")).max() > 2
    np.testing.assert_array_equal(data.read_mask(os.path.join(mask_dir, "0000.png")), masks[0])
    ds = data.segmentation_folder(image_dir, mask_dir, 32, 4, shuffle=False)
    x, y = _batches(ds)
    np.testing.assert_array_equal(y, masks)
    assert x.dtype == np.float32 and y.dtype == np.int32
    assert ds.num_classes == 3 and ds.ignore_index == 255
    assert ds.class_counts == tuple(np.bincount(masks[masks != 255], minlength=3))


def test_integer_and_16_bit_pngs_and_rgb_refused(tmp_path):
    mask = np.array([[0, 1], [300, 2]], np.uint16)
    Image.fromarray(mask).save(tmp_path / "wide.png")
    np.testing.assert_array_equal(data.read_mask(tmp_path / "wide.png"), mask)
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(ValueError, match="is a RGB image; masks must be palette"):
        data.read_mask(tmp_path / "rgb.png")


def test_resizing_masks_is_nearest_and_keeps_ignore_index():
    images, masks = shapes_segmentation(2, 64, seed=3)
    masks[:, 10:20, 10:20] = 255
    ds = data.segmentation_arrays(images, masks, 2, image_size=(40, 24), shuffle=False)
    x, y = _batches(ds)
    assert x.shape == (2, 40, 24, 3) and y.shape == (2, 40, 24)
    assert set(np.unique(y)) <= {0, 1, 2, 255} and (y == 255).any()
    expected = np.asarray(Image.fromarray(masks[0]).resize((24, 40), Image.NEAREST))
    np.testing.assert_array_equal(y[0], expected)


def test_augmentation_moves_masks_with_their_pixels():
    _, masks = shapes_segmentation(8, 32, seed=1)
    images = np.repeat((masks * 100)[..., None], 3, axis=-1).astype(np.uint8)
    augment = ImageAugmentation(rotation_range=40, zoom_range=0.3, horizontal_flip=True,
                                width_shift_range=0.2, interpolation_order=0,
                                fill_mode="constant", cval=7, mask_fill_value=255)
    ds = data.segmentation_arrays(images, masks, 4, augment=augment, seed=0)
    x, y = _batches(ds)
    assert (y == 255).any()  # some pixels came from outside the image
    np.testing.assert_array_equal(x[..., 0][y == 255], 7)
    # Wherever the image shows a source pixel, the mask holds its label.
    # (Along the fill boundary images follow ImageDataGenerator's rule,
    # source outside [0, w - 1], and masks nearest sampling's, outside
    # [-0.5, w - 0.5): a pixel there can be fill in the image, labelled in
    # the mask.)
    seen = x[..., 0] != 7
    assert seen.mean() > 0.5
    np.testing.assert_array_equal(x[..., 0][seen], 100 * y[seen])


def test_dict_augment_fills_masks_with_ignore_index_and_epochs_repeat():
    images, masks = shapes_segmentation(8, 32, seed=1)
    epoch = tf.Variable(0, dtype=tf.int64)
    ds = data.segmentation_arrays(images, masks, 4, seed=3, epoch=epoch,
                                  augment={"rotation_range": 45})
    assert ds.augment.get_config()["mask_fill_value"] == 255
    first = _batches(ds)
    assert (first[1] == 255).any()
    np.testing.assert_array_equal(_batches(ds)[1], first[1])  # same epoch
    epoch.assign(1)
    assert not np.array_equal(_batches(ds)[1], first[1])


def test_validation_split_is_not_augmented():
    images, masks = shapes_segmentation(10, 16, seed=0)
    train, val = data.segmentation_arrays(
        images, masks, 4, validation_split=0.3, subset="both", seed=0,
        augment={"horizontal_flip": True})
    assert (train.num_samples, val.num_samples) == (7, 3)
    assert val.augment is None and train.augment is not None
    with pytest.raises(ValueError, match="needs `subset`"):
        data.segmentation_arrays(images, masks, 4, validation_split=0.3)


def test_array_errors_name_the_examples():
    images, masks = shapes_segmentation(3, 16, seed=0)
    with pytest.raises(ValueError, match=r"image 1 is \(16, 16\) but mask 1 is \(8, 8\)"):
        data.segmentation_arrays(images, [masks[0], masks[1][:8, :8], masks[2]], 2)
    with pytest.raises(ValueError, match=r"mask 0: \[2\]"):
        data.segmentation_arrays(images, masks, 2, num_classes=2)
    with pytest.raises(ValueError, match="one mask per image"):
        data.segmentation_arrays(images, masks[:2], 2)
    with pytest.raises(ValueError, match="no labels to learn"):
        data.segmentation_arrays(images, np.full_like(masks, 255), 2)


def test_tfds_builder_with_label_offset():
    images, masks = shapes_segmentation(4, 16, seed=0)

    class Builder:  # the part of a tfds DatasetBuilder that is used
        def as_dataset(self, split):
            assert split == "train"
            return tf.data.Dataset.from_tensor_slices(
                {"image": images, "segmentation_mask": (masks + 1)[..., None]}
            )

    ds = data.segmentation_tfds(Builder(), "train", 16, 2, label_offset=-1,
                                shuffle=False)
    np.testing.assert_array_equal(_batches(ds)[1], masks)


def test_unreadable_pairs_are_skipped_before_the_split(tmp_path, caplog):
    images, masks = shapes_segmentation(5, 32, seed=0)
    image_dir, mask_dir = write_segmentation_folder(str(tmp_path), images, masks)
    names = sorted(os.listdir(image_dir))
    with open(os.path.join(image_dir, names[1]), "wb") as f:
        f.write(b"not an image")  # PIL: UnidentifiedImageError
    mask = os.path.join(mask_dir, os.path.splitext(names[2])[0] + ".png")
    with open(mask, "rb") as f:
        whole = f.read()
    with open(mask, "wb") as f:
        f.write(whole[: len(whole) // 2])  # opens, fails to decode
    with caplog.at_level("WARNING", logger="kerasft.data"):
        train, val = data.segmentation_folder(
            image_dir, mask_dir, 32, 4, validation_split=0.4, subset="both",
            seed=1)
    bad = (os.path.join(image_dir, names[1]), mask)
    assert sorted(train.skipped_files) == sorted(bad)
    assert val.skipped_files == ()
    assert "Skipped 2 unreadable image file(s)" in caplog.text
    # The split divides the 3 readable pairs: neither subset is empty.
    assert (train.num_samples, val.num_samples) == (2, 1)
    kept = sorted(train.file_paths + val.file_paths)
    assert kept == [os.path.join(image_dir, names[i]) for i in (0, 3, 4)]


def test_all_unreadable_pairs_are_refused(tmp_path):
    images, masks = shapes_segmentation(2, 32, seed=0)
    image_dir, mask_dir = write_segmentation_folder(str(tmp_path), images, masks)
    for name in os.listdir(image_dir):
        with open(os.path.join(image_dir, name), "wb") as f:
            f.write(b"garbage")
    with pytest.raises(ValueError, match="all 2 were unreadable"):
        data.segmentation_folder(image_dir, mask_dir, 32, 4)
