"""Training images/s: the tutorial's float32 code vs the recipe's precision "auto".

For ResNet50 and MobileNetV2 (batch 32, 224x224, `weights=None`, random data)
this script alternates three runs of a full-training step:

- baseline: the tutorial's code, float32 (no policy set; BatchNorm trains in
  training mode, as `base.trainable = True` leaves it);
- precision only: the same code under `kerasft.distribute.precision("auto")`
  (mixed_bfloat16 on a CPU with AVX512-BF16/AMX, mixed_float16 on a recent
  GPU) with the output layer in float32;
- kerasft: what the full fine-tuning recipe trains: `backbones.get` +
  `build_model` (preprocessing inside, backbone called with training=False)
  + `freeze(..., "full")` (every group trains, BatchNorm stays in inference
  mode) under precision "auto".

It also measures this machine's matmul peak (large float32 and bfloat16
matmuls) and reports the achieved training FLOP/s as a fraction of it;
training FLOPs are taken as 3x the forward FLOPs, which are computed from the
layers (2 FLOPs per multiply-add of every Conv2D, DepthwiseConv2D and Dense).

Two more variants measure `build_model`'s BatchNorm default on the path its
docstring shows (compile and fit, no `freeze`): `build_model` (BatchNorm
non-trainable, the default) and `build_model_train_bn`
(`train_batchnorm=True`, BatchNorm in training mode), both under "auto".

Usage:
    .venv/bin/python benchmarks/precision.py [--steps 3] [--rounds 2]
    .venv/bin/python benchmarks/precision.py --models resnet50 --size 96 \
        --variants build_model build_model_train_bn   # a quick BatchNorm ratio
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

BATCH = 32
SIZE = 224
CLASSES = 1000


def _auto_policy():
    """The recipe's precision choice; imported lazily so the script runs on
    the baseline alone if the package cannot be imported."""
    try:
        from kerasft.distribute import auto_policy_name
    except Exception:  # pragma: no cover - only when kerasft is broken
        flags = open("/proc/cpuinfo").read()
        return "mixed_bfloat16" if "avx512_bf16" in flags else "float32"
    return auto_policy_name()


def forward_flops(model):
    """Forward FLOPs per image: 2 x multiply-adds of conv and dense layers."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            out = layer.output.shape
            kh, kw = layer.kernel_size
            total += 2 * out[1] * out[2] * kh * kw * out[3]
        elif isinstance(layer, keras.layers.Conv2D):
            out = layer.output.shape
            kh, kw = layer.kernel_size
            cin = layer.input.shape[-1] // layer.groups
            total += 2 * out[1] * out[2] * kh * kw * cin * out[3]
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return total


def build_kerasft(name, policy, freeze=True, train_batchnorm=False):
    """`get` + `build_model` under `policy`; `freeze("full")` unless
    `freeze=False` (the docstring's compile-and-fit path, where
    `build_model`'s own BatchNorm default applies)."""
    import kerasft

    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)
    backbone = kerasft.backbones.get(
        name, weights=None, input_shape=(SIZE, SIZE, 3)
    )
    head = kerasft.heads.classification(CLASSES)
    model = kerasft.build_model(backbone, head, train_batchnorm=train_batchnorm)
    if freeze:
        kerasft.freeze(model, backbone, "full")
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
    )
    keras.mixed_precision.set_global_policy("float32")
    return model


def build(name, policy):
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)
    app = {
        "resnet50": keras.applications.ResNet50,
        "mobilenetv2": keras.applications.MobileNetV2,
    }[name]
    base = app(weights=None, include_top=False, input_shape=(SIZE, SIZE, 3))
    x = keras.layers.GlobalAveragePooling2D()(base.output)
    # The recipes' heads keep the output layer in float32 (tensorflow#34406).
    out = keras.layers.Dense(CLASSES, activation="softmax", dtype="float32")(x)
    model = keras.Model(base.input, out)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
    )
    keras.mixed_precision.set_global_policy("float32")
    return model


class _BatchTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self._start)


def time_training(model, steps, warmup=1):
    """Images/s of the training step: median over `steps` batches of one
    `fit` call, after `warmup` batches (tracing)."""
    x = np.random.RandomState(0).uniform(0, 255, (BATCH, SIZE, SIZE, 3))
    y = np.random.RandomState(1).randint(0, CLASSES, (BATCH,))
    data = tf.data.Dataset.from_tensors(
        (x.astype("float32"), y.astype("int32"))
    ).repeat()
    timer = _BatchTimer()
    model.fit(
        data, steps_per_epoch=warmup + steps, epochs=1, verbose=0,
        callbacks=[timer],
    )
    return BATCH / statistics.median(timer.times[warmup:])


def matmul_peak(dtype, n=2048, repeats=10):
    a = tf.random.uniform((n, n), dtype="float32")
    b = tf.random.uniform((n, n), dtype="float32")
    a, b = tf.cast(a, dtype), tf.cast(b, dtype)
    f = tf.function(lambda a, b: tf.reduce_sum(tf.cast(tf.matmul(a, b), "float32")))
    f(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        f(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def main(argv=None):
    global SIZE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--models", nargs="+", default=["resnet50", "mobilenetv2"]
    )
    parser.add_argument(
        "--size", type=int, default=SIZE,
        help="image side (default 224; e.g. 96 for a quick ratio)",
    )
    parser.add_argument(
        "--variants", nargs="+", default=None,
        help="subset of: float32 auto kerasft build_model "
        "build_model_train_bn (default: float32 auto kerasft)",
    )
    args = parser.parse_args(argv)
    SIZE = args.size

    auto = _auto_policy()
    peak = {
        "float32": matmul_peak("float32"),
        "bfloat16": matmul_peak("bfloat16"),
    }
    print(
        f"matmul peak: float32 {peak['float32'] / 1e9:.0f} GFLOP/s, "
        f"bfloat16 {peak['bfloat16'] / 1e9:.0f} GFLOP/s; auto policy: {auto}"
    )
    every = {
        "float32": lambda name: build(name, "float32"),
        "auto": lambda name: build(name, auto),
        "kerasft": lambda name: build_kerasft(name, auto),
        # `build_model` then compile and fit, no `freeze` (its default keeps
        # BatchNorm non-trainable), against opting out of that default.
        "build_model": lambda name: build_kerasft(name, auto, freeze=False),
        "build_model_train_bn": lambda name: build_kerasft(
            name, auto, freeze=False, train_batchnorm=True
        ),
    }
    chosen = args.variants or ["float32", "auto", "kerasft"]
    unknown = sorted(set(chosen) - set(every))
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {sorted(every)}")
    if "float32" not in chosen:
        chosen = ["float32", *chosen]  # the ratios' baseline
    variants = {v: every[v] for v in chosen}
    for name in args.models:
        results = {v: [] for v in variants}
        flops = None
        for _ in range(args.rounds):
            for variant, make in variants.items():  # alternate in each round
                model = make(name)
                if flops is None:
                    flops = forward_flops(model)
                results[variant].append(time_training(model, args.steps))
                del model
                keras.backend.clear_session()
        train_flops = 3 * flops
        peak_auto = peak["bfloat16" if "bfloat16" in auto else "float32"]
        base = statistics.median(results["float32"])
        line = [f"{name}: forward {flops / 1e9:.2f} GFLOP/image"]
        for variant in variants:
            rate = statistics.median(results[variant])
            p = peak["float32"] if variant == "float32" else peak_auto
            line.append(
                f"{variant} {rate:.1f} img/s ({rate * train_flops / 1e9:.0f} "
                f"GFLOP/s, {rate * train_flops / p:.0%} of peak, "
                f"{rate / base:.2f}x)"
            )
        print("; ".join(line) + f"; runs {results}")

if __name__ == "__main__":
    main()
