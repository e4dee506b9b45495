"""Synthetic segmentation data: coloured shapes with their masks.

For tests, docs and notebooks that need a segmentation task a small network
learns in a minute on a CPU, with no download.
"""

import os

import numpy as np

SHAPE_CLASSES = ("background", "square", "disk")
# Per-class hue ranges (RGB low, high), so colour and shape both carry the class.
_COLOURS = {1: ((150, 20, 20), (255, 90, 90)), 2: ((20, 20, 150), (90, 90, 255))}


def shapes_segmentation(num_images, image_size=64, max_shapes=3, seed=0):
    """Images of squares and disks on a noisy background, with class masks.

    Args:
        num_images: number of images.
        image_size: side of the square images. Defaults to `64`.
        max_shapes: each image holds 1 to `max_shapes` shapes (later ones
            drawn over earlier ones). Defaults to `3`.
        seed: random seed. Defaults to `0`.

    Returns:
        `(images, masks)`: uint8 `(N, s, s, 3)` and int32 `(N, s, s)` with
        labels `0` background, `1` square, `2` disk (`SHAPE_CLASSES`).

    Example:

    >>> images, masks = shapes_segmentation(4, image_size=32)
    >>> images.shape, masks.shape, sorted(set(masks.ravel()) - {0}) != []
    ((4, 32, 32, 3), (4, 32, 32), True)
    """
    rng = np.random.RandomState(seed)
    size = image_size
    rows, cols = np.mgrid[0:size, 0:size]
    images = np.empty((num_images, size, size, 3), np.uint8)
    masks = np.zeros((num_images, size, size), np.int32)
    for i in range(num_images):
        background = rng.randint(60, 120, 3)
        image = background + rng.normal(0, 8, (size, size, 3))
        for _ in range(rng.randint(1, max_shapes + 1)):
            label = rng.randint(1, 3)
            radius = rng.uniform(size * 0.1, size * 0.22)
            cy, cx = rng.uniform(radius, size - radius, 2)
            if label == 1:
                inside = (np.abs(rows - cy) <= radius) & (np.abs(cols - cx) <= radius)
            else:
                inside = (rows - cy) ** 2 + (cols - cx) ** 2 <= radius**2
            low, high = _COLOURS[label]
            image[inside] = rng.randint(low, high)
            masks[i][inside] = label
        images[i] = np.clip(image, 0, 255).astype(np.uint8)
    return images, masks


def write_segmentation_folder(directory, images, masks, palette=True):
    """Writes `images/<i>.jpg` and `masks/<i>.png` under `directory`.

    Args:
        directory: where to write (created).
        images: uint8 `(N, h, w, 3)`.
        masks: integer `(N, h, w)` class ids < 256.
        palette: write palette PNGs (class ids as palette indices, shown
            in colour, as Pascal VOC does) instead of greyscale ones.
            Defaults to `True`.

    Returns:
        `(image_dir, mask_dir)`.
    """
    from PIL import Image

    image_dir = os.path.join(directory, "images")
    mask_dir = os.path.join(directory, "masks")
    os.makedirs(image_dir, exist_ok=True)
    os.makedirs(mask_dir, exist_ok=True)
    colours = np.random.RandomState(0).randint(0, 256, (256, 3)).astype(np.uint8)
    for i, (image, mask) in enumerate(zip(images, masks)):
        name = f"{i:04d}"
        Image.fromarray(image).save(os.path.join(image_dir, name + ".jpg"), quality=95)
        mask_image = Image.fromarray(np.asarray(mask, np.uint8))
        if palette:  # an "L" image with a palette becomes a "P" image
            mask_image.putpalette(colours.ravel().tolist())
        mask_image.save(os.path.join(mask_dir, name + ".png"))
    return image_dir, mask_dir
