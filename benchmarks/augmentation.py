"""Images/s: `image_folder` + `ImageAugmentation` vs `ImageDataGenerator`.

Both pipelines read the same generated JPEG folder (5 classes x 100 images,
sizes around 256x256) and yield 224x224 float32 batches of 32 augmented with
the tutorial's arguments:

    rotation_range=20, width_shift_range=0.2, height_shift_range=0.2,
    shear_range=0.2, zoom_range=0.2, horizontal_flip=True, fill_mode='nearest'

- baseline: `tf.keras.preprocessing.image.ImageDataGenerator(...)
  .flow_from_directory(...)`, iterated as `model.fit` does (one worker);
- kerasft: `kerasft.data.image_folder(..., augment=ImageAugmentation(...))`:
  parallel decode, uint8 cache, then one fused warp per batch.

Epochs alternate between the two. kerasft's first epoch (decode + cache
fill) is reported on its own; for the steady state each later kerasft epoch
is divided by the IDG epoch just before it (the machine is shared, so
paired ratios are steadier than ratios of medians) and the median reported.

Usage:
    .venv/bin/python benchmarks/augmentation.py [--epochs 6] [--images 100]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from kerasft.augment import ImageAugmentation  # noqa: E402
from kerasft.data import image_folder  # noqa: E402

KWARGS = dict(
    rotation_range=20,
    width_shift_range=0.2,
    height_shift_range=0.2,
    shear_range=0.2,
    zoom_range=0.2,
    horizontal_flip=True,
    fill_mode="nearest",
)
SIZE = 224
BATCH = 32
CLASSES = 5


def make_jpegs(root, per_class, seed=0):
    rng = np.random.default_rng(seed)
    for c in range(CLASSES):
        class_dir = os.path.join(root, f"class_{c}")
        os.makedirs(class_dir)
        for i in range(per_class):
            h, w = rng.integers(224, 288, size=2)
            small = rng.uniform(0, 255, (h // 16 + 1, w // 16 + 1, 3))
            image = tf.image.resize(small[None], (h, w), "bicubic")[0]
            image = tf.cast(tf.clip_by_value(image, 0, 255), tf.uint8)
            tf.io.write_file(
                os.path.join(class_dir, f"{i}.jpg"),
                tf.io.encode_jpeg(image, quality=90),
            )


def idg_epoch(root):
    idg = tf.keras.preprocessing.image.ImageDataGenerator(**KWARGS)
    flow = idg.flow_from_directory(
        root, target_size=(SIZE, SIZE), batch_size=BATCH, seed=0
    )
    start = time.perf_counter()
    n = 0
    for i in range(len(flow)):
        x, _ = flow[i]
        n += len(x)
    return n / (time.perf_counter() - start)


def kerasft_epoch(dataset):
    start = time.perf_counter()
    n = 0
    for x, _ in dataset:
        n += int(x.shape[0])
    return n / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--images", type=int, default=100,
                        help="images per class")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        make_jpegs(root, args.images)
        data = image_folder(
            root, (SIZE, SIZE), BATCH,
            augment=ImageAugmentation(**KWARGS, seed=0), seed=0,
        )
        idg, ours = [], []
        first = None
        for epoch in range(args.epochs):
            idg.append(idg_epoch(root))
            rate = kerasft_epoch(data.dataset)
            if epoch == 0:
                first = rate
            else:
                ours.append(rate)
            print(f"epoch {epoch}: IDG {idg[-1]:.0f} img/s, "
                  f"kerasft {rate:.0f} img/s", flush=True)
    idg_rate = statistics.median(idg)
    steady = statistics.median(ours)
    # The machine is shared: each kerasft epoch is compared with the IDG
    # epoch run just before it, and the median of those ratios reported.
    paired = statistics.median(o / i for o, i in zip(ours, idg[1:]))
    print(f"\nImageDataGenerator.flow_from_directory: {idg_rate:.0f} img/s "
          f"(median of {len(idg)} epochs)")
    print(f"kerasft first epoch (decode + cache): {first:.0f} img/s "
          f"= {first / idg[0]:.2f}x the IDG epoch before it")
    print(f"kerasft steady state: {steady:.0f} img/s (median); median "
          f"paired ratio {paired:.2f}x (goal >= 3x)")


if __name__ == "__main__":
    main()
