"""Step-time overhead of `LayerwiseLR` and `GradientAccumulator` vs bare Adam.

Three copies of one model train side by side: bare `Adam`, `LayerwiseLR(Adam)`
with layer decay over the model's blocks (a distinct rate per group), and
`GradientAccumulator(Adam, 4)` (time per batch, so the figure includes the
accumulation and the one-in-four update). Timing rounds alternate between the
three (order reversed every other round) so machine noise hits them alike.
Two figures per variant: the median over rounds of each round's ratio to bare
Adam, and the ratio of the fastest rounds (the least disturbed by other load).
A second table times `optimizer.apply` alone on fixed gradients (no forward or
backward pass): the worst case for relative overhead. Last, the number of
operations in each traced `apply` graph: a figure machine load cannot blur.

Usage:
    python benchmarks/optimizers.py --model mobilenetv2 --rounds 9 --steps 4
    python benchmarks/optimizers.py --model mlp --rounds 9 --steps 8
    python benchmarks/optimizers.py --model mobilenetv2 --rounds 41 --apply-only
"""

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from kerasft.optimizers import GradientAccumulator  # noqa: E402
from kerasft.optimizers import LayerwiseLR  # noqa: E402

KINDS = ["bare", "layerwise", "accumulate"]


def _mobilenetv2(image_size):
    model = keras.applications.MobileNetV2(
        weights=None, input_shape=(image_size, image_size, 3), classes=10
    )
    groups = {"stem": "^(Conv1|bn_Conv1|expanded_conv_)"}
    for i in range(1, 17):
        groups[f"block_{i}"] = f"^block_{i}_"
    groups["top"] = "^(Conv_1|Conv_1_bn)/"
    return model, groups, (image_size, image_size, 3)


def _mlp(width=1024, depth=8):
    inputs = keras.Input((width,))
    x = inputs
    groups = {}
    for i in range(depth):
        x = keras.layers.Dense(width, activation="relu", name=f"fc{i}")(x)
        groups[f"fc{i}"] = f"^fc{i}/"
    outputs = keras.layers.Dense(10, name="head")(x)
    return keras.Model(inputs, outputs), groups, (width,)


def _build(kind, args):
    keras.utils.set_random_seed(0)
    if args.model == "mobilenetv2":
        model, groups, x_shape = _mobilenetv2(args.image_size)
    else:
        model, groups, x_shape = _mlp()
    optimizer = keras.optimizers.Adam(1e-3)
    if kind == "layerwise":
        optimizer = LayerwiseLR(optimizer, layer_decay=0.8, groups=groups)
    elif kind == "accumulate":
        optimizer = GradientAccumulator(optimizer, 4)
    model.compile(optimizer, "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batch_size,) + x_shape).astype("float32")
    y = rng.integers(0, 10, size=(args.batch_size,))
    return model, lambda: model.train_on_batch(x, y)


def _apply_function(model):
    """The optimizer update alone, compiled, on fixed gradients."""
    variables = model.trainable_variables
    grads = [tf.random.normal(v.shape, stddev=1e-3) for v in variables]

    @tf.function
    def apply():
        model.optimizer.apply(grads, variables)

    return apply


def _alternate(fns, rounds, calls):
    """Seconds per call of each function, one figure per round."""
    for fn in fns.values():  # trace and warm up
        for _ in range(4):
            fn()
    times = {k: [] for k in fns}
    for r in range(rounds):
        for k in KINDS if r % 2 == 0 else KINDS[::-1]:
            start = time.perf_counter()
            for _ in range(calls):
                fns[k]()
            times[k].append((time.perf_counter() - start) / calls)
    return times


def _report(title, times):
    print(title)
    fastest_bare = min(times["bare"])
    for k in KINDS:
        ratio = statistics.median(
            t / b for t, b in zip(times[k], times["bare"])
        )
        med, low = statistics.median(times[k]), min(times[k])
        print(
            f"{k:>12}: median {1000 * med:8.2f} ms  ratio {ratio:.3f}  | "
            f"fastest {1000 * low:8.2f} ms  ratio {low / fastest_bare:.3f}"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=["mobilenetv2", "mlp"],
                        default="mobilenetv2")
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, default=4,
                        help="train steps per round (a multiple of 4)")
    parser.add_argument("--apply-only", action="store_true",
                        help="skip the train-step table (many cheap rounds)")
    args = parser.parse_args()

    runs = {k: _build(k, args) for k in KINDS}
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, "
          f"keras {keras.__version__}, tensorflow {tf.__version__}")
    if not args.apply_only:
        times = _alternate(
            {k: runs[k][1] for k in KINDS}, args.rounds, args.steps
        )
        _report(
            f"train step, {args.model}, batch {args.batch_size}, "
            f"{args.rounds} rounds x {args.steps} steps:",
            times,
        )
    fns = {k: _apply_function(runs[k][0]) for k in KINDS}
    times = _alternate(fns, args.rounds, 4 * args.steps)
    _report(
        f"optimizer.apply alone, {args.rounds} rounds x {4 * args.steps} "
        "calls (accumulate: per batch, 1 update in 4):",
        times,
    )
    print("operations in the traced apply graph:")
    for k in KINDS:
        graph = fns[k].get_concrete_function().graph
        print(f"{k:>12}: {len(graph.get_operations())}")


if __name__ == "__main__":
    main()
