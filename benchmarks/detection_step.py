"""Training images/s: kerasft's RetinaNet against KerasHub's own.

Both sides get the same backbone and image size: `kerasft.backbones.get(
BACKBONE, weights=None)` cut at strides 8/16/32 by
`kerasft.backbones.feature_pyramid`.

- kerasft: `build_model(pyramid, heads.detection(C, kind="retinanet"))`
  (preprocessing inside, backbone BatchNorm in inference mode, as
  `build_model` leaves it), compiled with `head.compile_kwargs()`; targets
  come from `head.training_targets` (KerasHub's label encoder) in a
  parallel `tf.data` map.
- keras_hub: `keras_hub.models.RetinaNetObjectDetector` on a
  `RetinaNetBackbone` whose image encoder is the same pyramid model (same
  layers, same BatchNorm state), compiled with its defaults (Huber +
  BinaryFocalCrossentropy); it encodes targets inside its train step.

Both: FPN levels 3-7, 9 anchors, 256-channel FPN and 4-conv towers, Adam.
Each variant is built once under its policy (`float32`, `mixed_bfloat16`),
traced by a warm-up `fit`, then timed in interleaved rounds of `fit` over
`--steps` batches of random images with random boxes; the median images/s
per variant and the ratios are printed.

Usage:
    .venv/bin/python benchmarks/detection_step.py [--backbone resnet50]
        [--size 128] [--batch 8] [--steps 4] [--rounds 3]
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

CLASSES = 20
MAX_BOXES = 8


def _pyramid(name, size):
    from kerasft import backbones

    backbone = backbones.get(name, weights=None, input_shape=(size, size, 3))
    return backbones.feature_pyramid(backbone)


def _data(size, batch, steps, seed=0):
    rng = np.random.default_rng(seed)
    n = batch * steps
    images = rng.uniform(0, 255, (n, size, size, 3)).astype("float32")
    xy = rng.uniform(0, size * 0.6, (n, MAX_BOXES, 2))
    wh = rng.uniform(size * 0.1, size * 0.4, (n, MAX_BOXES, 2))
    boxes = np.concatenate([xy, np.minimum(xy + wh, size)], -1).astype("float32")
    labels = rng.integers(0, CLASSES, (n, MAX_BOXES)).astype("int32")
    labels[:, MAX_BOXES // 2:] = -1  # half the rows are padding
    boxes[labels < 0] = -1
    return images, {"boxes": boxes, "labels": labels}


def kerasft_variant(args, policy):
    import kerasft
    from kerasft import heads

    keras.mixed_precision.set_global_policy(policy)
    head = heads.detection(CLASSES, kind="retinanet")
    model = kerasft.build_model(_pyramid(args.backbone, args.size), head)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), **head.compile_kwargs())
    images, targets = _data(args.size, args.batch, args.steps)
    ds = (tf.data.Dataset.from_tensor_slices((images, targets)).batch(args.batch)
          .map(head.training_targets, num_parallel_calls=tf.data.AUTOTUNE)
          .repeat().prefetch(tf.data.AUTOTUNE))
    return model, ds


def keras_hub_variant(args, policy):
    import keras_hub

    keras.mixed_precision.set_global_policy(policy)
    pyramid = _pyramid(args.backbone, args.size)
    from kerasft.freezing import freeze_batchnorm

    freeze_batchnorm(pyramid.model)  # the same BatchNorm state as build_model's
    encoder = pyramid.model
    encoder.pyramid_outputs = dict(encoder.output)
    backbone = keras_hub.models.RetinaNetBackbone(
        image_encoder=encoder, min_level=3, max_level=7, use_p5=False,
        image_shape=(args.size, args.size, 3),
    )
    model = keras_hub.models.RetinaNetObjectDetector(
        backbone=backbone, num_classes=CLASSES, bounding_box_format="xyxy",
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-4))
    images, targets = _data(args.size, args.batch, args.steps)
    ds = (tf.data.Dataset.from_tensor_slices((images, targets)).batch(args.batch)
          .repeat().prefetch(tf.data.AUTOTUNE))
    return model, ds


def _time(model, ds, steps, batch):
    start = time.perf_counter()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--policies", nargs="+",
                        default=["float32", "mixed_bfloat16"])
    args = parser.parse_args(argv)
    makers = {"kerasft": kerasft_variant, "keras_hub": keras_hub_variant}
    variants = {}
    for policy in args.policies:
        for side, make in makers.items():
            model, ds = make(args, policy)
            _time(model, ds, 1, args.batch)  # trace and warm up
            variants[(side, policy)] = (model, ds)
    keras.mixed_precision.set_global_policy("float32")
    rates = {key: [] for key in variants}
    for r in range(args.rounds):
        for key, (model, ds) in variants.items():
            rates[key].append(_time(model, ds, args.steps, args.batch))
        print(f"round {r + 1}: " + ", ".join(
            f"{s}/{p} {v[-1]:.2f}" for (s, p), v in rates.items()), flush=True)
    median = {key: statistics.median(v) for key, v in rates.items()}
    print(f"\n{args.backbone} {args.size}x{args.size}, batch {args.batch}, "
          f"{args.steps} steps x {args.rounds} rounds (median images/s)")
    for (side, policy), value in median.items():
        print(f"  {side:10s} {policy:15s} {value:8.2f} img/s")
    for policy in args.policies:
        ratio = median[("kerasft", policy)] / median[("keras_hub", policy)]
        print(f"  kerasft / keras_hub, {policy}: {ratio:.3f}")
    if len(args.policies) > 1:
        for side in makers:
            ratio = median[(side, args.policies[1])] / median[(side, args.policies[0])]
            print(f"  {side} {args.policies[1]} / {args.policies[0]}: {ratio:.3f}")


if __name__ == "__main__":
    main()
