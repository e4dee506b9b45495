"""Synthetic class-per-folder image directories for the data tests."""

import os

import numpy as np
import tensorflow as tf

# Class c's images are a flat colour: the label is readable from the pixels.
COLOURS = [(230, 20, 20), (20, 230, 20), (20, 20, 230), (230, 230, 20)]


def make_folder(root, counts, size=16, fmt="png", seed=0):
    """`root/class_i/img_j.<fmt>` with `counts[i]` flat-colour images each."""
    rng = np.random.default_rng(seed)
    os.makedirs(root, exist_ok=True)
    for c, n in enumerate(counts):
        class_dir = os.path.join(root, f"class_{c}")
        os.makedirs(class_dir, exist_ok=True)
        for j in range(n):
            h = size + int(rng.integers(0, 8))  # sizes vary: resize is real
            image = np.zeros((h, size, 3), np.uint8) + np.uint8(COLOURS[c])
            encode = tf.io.encode_png if fmt == "png" else tf.io.encode_jpeg
            path = os.path.join(class_dir, f"img_{j}.{fmt}")
            tf.io.write_file(path, encode(tf.constant(image)))
    return str(root)


def make_bad_folder(root, counts=(3, 3), size=16):
    """`make_folder` JPEGs plus what real folders hold: in class_0 an empty
    `empty.jpg` and a text file `notes.jpg`; in class_1 a `truncated.jpg`
    (valid header, body cut off) and a webp image in a nested sub-folder
    `more/deeper/`. The three bad files are to be skipped and reported."""
    import keras

    root = make_folder(root, counts, size=size, fmt="jpg")
    class0 = os.path.join(root, "class_0")
    open(os.path.join(class0, "empty.jpg"), "wb").close()
    with open(os.path.join(class0, "notes.jpg"), "w") as f:
        f.write("not an image")
    with open(os.path.join(class0, "img_0.jpg"), "rb") as f:
        good = f.read()
    with open(os.path.join(root, "class_1", "truncated.jpg"), "wb") as f:
        f.write(good[:40])
    nested = os.path.join(root, "class_1", "more", "deeper")
    os.makedirs(nested)
    keras.utils.save_img(
        os.path.join(nested, "green.webp"),
        np.zeros((size, size, 3), np.uint8) + np.uint8(COLOURS[1]),
    )
    return root


BAD_FILES = ["empty.jpg", "notes.jpg", "truncated.jpg"]


def label_from_pixels(images):
    """Class index whose colour is nearest each image's mean colour."""
    means = np.asarray(images, np.float32).mean(axis=(1, 2))
    colours = np.asarray(COLOURS, np.float32)
    dist = ((means[:, None, :] - colours[None]) ** 2).sum(-1)
    return dist.argmin(axis=1)
