"""A tiny BatchNorm-free CNN backbone (strides 2..32) and shape data for
RetinaNet recipe tests."""

import keras

from kerasft import backbones
from tests.data import detection_shapes as shapes


def tiny_detection_backbone(size=96, seed=0):
    """Five conv + max-pool blocks, raw [0, 255] pixels in; no BatchNorm
    (random-init BatchNorm in inference mode gives degenerate features)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255.0, name="b0_rescale")(inputs)
    groups = {}
    for i, filters in enumerate((16, 32, 48, 64, 64)):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu",
                                name=f"b{i}_conv")(x)
        x = keras.layers.MaxPooling2D(name=f"b{i}_pool")(x)
        groups[f"b{i}"] = [f"b{i}_conv", f"b{i}_pool"]
    groups["b0"].insert(0, "b0_rescale")
    return backbones.from_model(keras.Model(inputs, x, name="tinydet"), groups=groups)


def shape_splits(root, train=128, validation=32, size=96):
    """`(train.csv, validation.csv)` of synthetic shapes under `root`."""
    paths = []
    for name, count, seed in (("train", train, 0), ("val", validation, 1)):
        folder = f"{root}/{name}"
        items = shapes.make_images(folder, count, seed=seed, size=size)
        paths.append(shapes.write_csv(folder, items))
    return tuple(paths)


# Small RetinaNet options for 96 px images with 18-36 px objects.
SMALL_HEAD = dict(kind="retinanet", anchor_size=2.0, max_level=5, fpn_filters=32,
                  head_filters=32, head_conv_layers=1)
