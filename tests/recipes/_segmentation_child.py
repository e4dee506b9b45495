"""A tiny segmentation recipe run in its own process (kill -9 resume).

Usage: python -m tests.recipes._segmentation_child OUTPUT_DIR [--hold-at-epoch E]

With --hold-at-epoch E it writes OUTPUT_DIR.marker after the second batch
of epoch E and waits, to be killed by the test. Augmentation is on, so the
resumed run must replay the same shuffles and warps of images and masks.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402

from kerasft import backbones, recipes  # noqa: E402
from kerasft.data.synthetic import shapes_segmentation  # noqa: E402
from tests.recipes._child import HoldMidEpoch  # noqa: E402


def tiny_cnn(size=32, widths=(8, 16, 16)):
    """A BatchNorm-free CNN backbone with stages at strides 1, 2, 4, 8."""
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1, name="stem_scale")(inputs)
    x = keras.layers.Conv2D(widths[0], 3, padding="same", activation="relu",
                            name="stem_conv")(x)
    for i, filters in enumerate(widths, start=1):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same",
                                activation="relu", name=f"stage{i}_down")(x)
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu",
                                name=f"stage{i}_conv")(x)
    return backbones.from_model(keras.Model(inputs, x, name="cnn"))


def main(argv):
    out = argv[0]
    callbacks = []
    if "--hold-at-epoch" in argv:
        epoch = int(argv[argv.index("--hold-at-epoch") + 1])
        callbacks.append(HoldMidEpoch(epoch, out + ".marker"))
    images, masks = shapes_segmentation(48, 32, seed=0)
    keras.utils.set_random_seed(0)  # the backbone is made before the run seeds
    recipes.segmentation(
        train=(images, masks), validation=(images[:16], masks[:16]),
        backbone=tiny_cnn(), image_size=32, levels=(0, 1, 2), decoder_filters=8,
        mode="partial", head_epochs=1, unfreeze_groups=2, epochs=4,
        batch_size=16, learning_rate=1e-2, fine_tune_learning_rate=1e-3,
        augment=dict(rotation_range=20, width_shift_range=0.1,
                     horizontal_flip=True),
        precision="float32", verbose=0, output_dir=out, callbacks=callbacks,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
