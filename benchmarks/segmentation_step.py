"""Training step time: kerasft's DeepLabV3+ and U-Net against KerasHub's DeepLabV3.

All sides get the same backbone and image size: `kerasft.backbones.get(
"mobilenetv2", weights=None)` cut into a feature pyramid by
`kerasft.backbones.feature_pyramid` (BatchNorm in inference mode, as
`build_model` leaves it), 3 classes, Adam, sparse cross-entropy.

- `kerasft_unet`: `build_model(pyramid(levels 1-5), heads.segmentation(3,
  kind="unet"))`, 64 filters (the recipe's defaults).
- `kerasft_deeplab`: `heads.segmentation(3, kind="deeplabv3plus")` on
  levels 2 (low-level skip) and 5 (ASPP), 256 filters, rates 6/12/18 (the
  recipe's defaults).
- `kerasft_deeplab_unclipped`: the same with every ASPP rate used as given
  (what kerasft built before `heads.segmentation.atrous_rate` clipped the
  rates to the feature map: identical outputs, see its docstring).
- `keras_hub_deeplab`: `keras_hub.models.DeepLabV3ImageSegmenter` on a
  `DeepLabV3Backbone` whose image encoder is the same pyramid model, ASPP on
  P5 with rates 6/12/18, low-level features P2, 48 projection filters, the
  upsampling that brings P5 to P2 (KerasHub's own DeepLabV3+ layout).

Each model is traced by a warm-up `fit`, then timed in interleaved rounds of
`fit` over `--steps` batches of random images and masks; the median seconds
per step and the ratios to `kerasft_unet` (the baseline in this script) and
to KerasHub are printed, with each model's parameter count.

Usage:
    .venv/bin/python benchmarks/segmentation_step.py [--size 64]
        [--batch 8] [--steps 4] [--rounds 3]
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

CLASSES = 3
RATES = (6, 12, 18)


def _pyramid(size, levels):
    from kerasft import backbones

    backbone = backbones.get("mobilenetv2", weights=None,
                             input_shape=(size, size, 3))
    return backbones.feature_pyramid(backbone, levels=levels)


def _data(size, batch, steps, seed=0):
    rng = np.random.default_rng(seed)
    n = batch * steps
    images = rng.uniform(0, 255, (n, size, size, 3)).astype("float32")
    masks = rng.integers(0, CLASSES, (n, size, size)).astype("int32")
    return (tf.data.Dataset.from_tensor_slices((images, masks)).batch(batch)
            .repeat().prefetch(tf.data.AUTOTUNE))


def kerasft_variant(args, kind, clip_rates=True):
    import kerasft
    from kerasft import heads
    import importlib

    # The module (the package's `segmentation` name is the head function).
    segmentation_head = importlib.import_module("kerasft.heads.segmentation")

    if not clip_rates:  # the model as built before the rates were clipped
        clipped = segmentation_head.atrous_rate
        segmentation_head.atrous_rate = lambda rate, size: rate
        try:
            return kerasft_variant(args, kind)
        finally:
            segmentation_head.atrous_rate = clipped

    levels = (1, 2, 3, 4, 5) if kind == "unet" else (2, 5)
    head = heads.segmentation(CLASSES, kind=kind, atrous_rates=RATES)
    model = kerasft.build_model(_pyramid(args.size, levels), head)
    model.compile(optimizer=keras.optimizers.Adam(1e-4),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def keras_hub_variant(args):
    import keras_hub

    from kerasft.freezing import freeze_batchnorm

    pyramid = _pyramid(args.size, (2, 5))
    freeze_batchnorm(pyramid.model)  # the same BatchNorm state as build_model's
    encoder = pyramid.model
    encoder.pyramid_outputs = dict(encoder.output)
    backbone = keras_hub.models.DeepLabV3Backbone(
        image_encoder=encoder, spatial_pyramid_pooling_key="P5",
        upsampling_size=8, dilation_rates=list(RATES),
        low_level_feature_key="P2", projection_filters=48,
        image_shape=(args.size, args.size, 3),
    )
    model = keras_hub.models.DeepLabV3ImageSegmenter(
        backbone=backbone, num_classes=CLASSES, activation=None,
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-4),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[])
    return model


def _time(model, ds, steps):
    start = time.perf_counter()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    return (time.perf_counter() - start) / steps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    ds = _data(args.size, args.batch, args.steps)
    variants = {
        "kerasft_unet": kerasft_variant(args, "unet"),
        "kerasft_deeplab": kerasft_variant(args, "deeplabv3plus"),
        "kerasft_deeplab_unclipped": kerasft_variant(args, "deeplabv3plus",
                                                     clip_rates=False),
        "keras_hub_deeplab": keras_hub_variant(args),
    }
    for model in variants.values():
        _time(model, ds, 1)  # trace and warm up
    seconds = {name: [] for name in variants}
    for r in range(args.rounds):
        for name, model in variants.items():
            seconds[name].append(_time(model, ds, args.steps))
        print(f"round {r + 1}: " + ", ".join(
            f"{n} {v[-1]:.3f}" for n, v in seconds.items()), flush=True)
    median = {name: statistics.median(v) for name, v in seconds.items()}
    print(f"\nmobilenetv2 {args.size}x{args.size}, batch {args.batch}, "
          f"{args.steps} steps x {args.rounds} rounds (median s/step)")
    for name, value in median.items():
        params = variants[name].count_params()
        print(f"  {name:18s} {value:8.3f} s/step  {params:,} params")
    base = median["kerasft_unet"]
    for name in list(median)[1:]:
        print(f"  {name} / kerasft_unet: {median[name] / base:.2f}")
    for name in ("kerasft_deeplab", "kerasft_deeplab_unclipped"):
        print(f"  {name} / keras_hub_deeplab: "
              f"{median[name] / median['keras_hub_deeplab']:.3f}")


if __name__ == "__main__":
    main()
