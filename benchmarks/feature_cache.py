"""Wall time of head training on a frozen backbone, with and without the
feature cache.

MobileNetV2 (`weights=None`, 96x96, frozen, BatchNorm in inference mode; its
BatchNorm statistics are first set from a sample of the training images so
that the random network gives usable features, standing in for ImageNet
weights that cannot be downloaded here) and a pooling + dense head, on a
generated image folder (5 classes x 250 images, flat class colours plus
noise; decoded images cached in memory for both paths):

- baseline (the tutorial's feature-extraction recipe): `model.fit` on the
  full model, so the frozen backbone runs on every image in every epoch;
- kerasft: `kerasft.data.cache_features` runs the backbone once, then the
  head trains on the stored features. Its time includes the extraction.

Both train the same head from the same initial weights on 80 % of the
images (shuffled every epoch; the orders differ between the two paths) and
report accuracy on the other 20 %, evaluated after the timed part. Runs
alternate. (The exact equality of the two paths for the same batch order
is a test: `tests/data/test_feature_cache.py`.)

Usage:
    .venv/bin/python benchmarks/feature_cache.py [--epochs 10] [--rounds 2]
        [--images 250]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from kerasft.data import cache_features  # noqa: E402
from kerasft.data import image_folder  # noqa: E402

SIZE = 96
BATCH = 32
CLASSES = 5
COLOURS = np.array([[200, 40, 40], [40, 200, 40], [40, 40, 200],
                    [200, 200, 40], [40, 200, 200]], np.float32)


def make_folder(root, per_class, seed=0):
    rng = np.random.default_rng(seed)
    for c in range(CLASSES):
        class_dir = os.path.join(root, f"class_{c}")
        os.makedirs(class_dir)
        for i in range(per_class):
            image = COLOURS[c] + rng.normal(0, 40, (SIZE, SIZE, 3))
            image = np.clip(image, 0, 255).astype(np.uint8)
            tf.io.write_file(os.path.join(class_dir, f"{i}.png"),
                             tf.io.encode_png(image))


def calibrate_batchnorm(backbone, images):
    """Moving statistics := one batch's statistics (random weights give
    vanishing activations with the initial mean 0 / variance 1)."""
    bn = [l for l in backbone.layers
          if isinstance(l, keras.layers.BatchNormalization)]
    for layer in bn:
        layer.momentum = 0.0
    backbone(keras.applications.mobilenet_v2.preprocess_input(images),
             training=True)
    for layer in bn:
        layer.momentum = 0.99


def make_head():
    return keras.Sequential([
        keras.Input((3, 3, 1280)),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(CLASSES),
    ])


def compile_(model):
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


def uncached(backbone, head, init, train, val, epochs):
    head.set_weights(init)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.applications.mobilenet_v2.preprocess_input(inputs)
    model = keras.Model(inputs, head(backbone(x, training=False)))
    compile_(model)
    start = time.perf_counter()
    model.fit(train.dataset, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - start
    return seconds, model.evaluate(val.dataset, verbose=0)[1]


def cached(backbone, head, init, train, val, epochs):
    head.set_weights(init)
    compile_(head)
    preprocess = keras.applications.mobilenet_v2.preprocess_input
    start = time.perf_counter()
    feats = cache_features(backbone, train, seed=0, preprocess=preprocess)
    head.fit(feats.dataset, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - start
    val_feats = cache_features(backbone, val, shuffle=False,
                               preprocess=preprocess)
    return seconds, head.evaluate(val_feats.dataset, verbose=0)[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--images", type=int, default=250,
                        help="images per class (80 %% train, 20 %% val)")
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    backbone = keras.applications.MobileNetV2(
        input_shape=(SIZE, SIZE, 3), include_top=False, weights=None
    )
    head = make_head()
    init = head.get_weights()
    with tempfile.TemporaryDirectory() as root:
        make_folder(root, args.images)
        train, val = image_folder(root, SIZE, BATCH, validation_split=0.2,
                                  subset="both", seed=0)
        # Fill both decoded-image caches; every 8th training image (all
        # classes, shuffled) sets the BatchNorm statistics.
        sample = np.concatenate([x.numpy()[::8] for x, _ in train.dataset])
        for _ in val.dataset:
            pass
        calibrate_batchnorm(backbone, sample)
        backbone.trainable = False
        base, ours = [], []
        for r in range(args.rounds):
            t, acc_base = uncached(backbone, head, init, train, val,
                                   args.epochs)
            base.append(t)
            t, acc_ours = cached(backbone, head, init, train, val,
                                 args.epochs)
            ours.append(t)
            print(f"round {r}: uncached {base[-1]:.1f} s (val acc "
                  f"{acc_base:.3f}), cached {ours[-1]:.1f} s (val acc "
                  f"{acc_ours:.3f})", flush=True)
    b, o = statistics.median(base), statistics.median(ours)
    print(f"\n{args.epochs} epochs, {train.num_samples} training images: "
          f"uncached {b:.1f} s, cached {o:.1f} s (incl. extraction) = "
          f"{b / o:.1f}x (goal >= 5x); validation accuracy {acc_base:.3f} "
          f"vs {acc_ours:.3f}")


if __name__ == "__main__":
    main()
