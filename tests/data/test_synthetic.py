"""`kerasft.data.synthetic`: the shapes segmentation task."""

import os

import numpy as np
from PIL import Image

from kerasft.data.synthetic import SHAPE_CLASSES, shapes_segmentation, write_segmentation_folder


def test_shapes_are_seeded_and_labelled_by_colour_and_shape():
    images, masks = shapes_segmentation(6, 48, seed=5)
    again = shapes_segmentation(6, 48, seed=5)
    np.testing.assert_array_equal(images, again[0])
    np.testing.assert_array_equal(masks, again[1])
    assert images.shape == (6, 48, 48, 3) and images.dtype == np.uint8
    assert set(np.unique(masks)) == {0, 1, 2} and len(SHAPE_CLASSES) == 3
    # Squares are red, disks blue: the labelled pixels carry their class colour.
    red = images[..., 0].astype(int) - images[..., 2]
    assert (red[masks == 1] > 50).all() and (red[masks == 2] < -50).all()
    assert not np.array_equal(masks, shapes_segmentation(6, 48, seed=6)[1])


def test_folder_holds_jpegs_and_palette_masks(tmp_path):
    images, masks = shapes_segmentation(3, 16, seed=0)
    image_dir, mask_dir = write_segmentation_folder(str(tmp_path), images, masks, palette=False)
    assert sorted(os.listdir(image_dir)) == ["0000.jpg", "0001.jpg", "0002.jpg"]
    with Image.open(os.path.join(mask_dir, "0002.png")) as mask:
        assert mask.mode == "L"
        np.testing.assert_array_equal(np.asarray(mask), masks[2])
