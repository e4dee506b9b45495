"""Cost of a head-only epoch against a full-training epoch under ProgressiveUnfreeze.

One `fit` alternates stages epoch by epoch with `ProgressiveUnfreeze`
(schedule {0: 0, 1: "all", 2: 0, 3: "all", ...}), so both conditions share
the machine's load. Reports the median step time per stage (steps after the
first of each epoch, which pays the retrace of a stage change) and the
retrace cost itself.

Usage:
    python benchmarks/progressive_unfreeze.py [--size 96] [--batch 32]
        [--steps 8] [--pairs 3]
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import kerasft  # noqa: E402
from kerasft.callbacks import ProgressiveUnfreeze  # noqa: E402


class StepTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.steps = {}

    def on_epoch_begin(self, epoch, logs=None):
        self.steps[epoch] = []

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.steps[self._epoch_of(batch)].append(time.perf_counter() - self._start)

    def _epoch_of(self, batch):
        return max(self.steps)


def _head(features):
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(features)
    return keras.layers.Dense(10, name="head_dense")(x)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    backbone = kerasft.backbones.get(
        "mobilenetv2", input_shape=(args.size, args.size, 3)
    )
    model = kerasft.build_model(backbone, _head)
    model.compile(
        keras.optimizers.Adam(1e-4),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    n = args.batch * args.steps
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, size=(n, args.size, args.size, 3)).astype("float32")
    y = rng.integers(0, 10, size=(n,))

    # Warm-up pair first (epochs 0, 1), then `pairs` measured pairs.
    epochs = 2 * (args.pairs + 1)
    schedule = {e: (0 if e % 2 == 0 else "all") for e in range(epochs)}
    timer = StepTimer()
    epoch_times = {}

    class EpochClock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epoch_times[epoch] = time.perf_counter() - self._t

    model.fit(
        x, y, batch_size=args.batch, epochs=epochs, shuffle=False, verbose=0,
        callbacks=[ProgressiveUnfreeze(backbone, schedule, verbose=0), timer, EpochClock()],
    )

    measured = range(2, epochs)
    head = [s for e in measured if e % 2 == 0 for s in timer.steps[e][1:]]
    full = [s for e in measured if e % 2 == 1 for s in timer.steps[e][1:]]
    first_head = [timer.steps[e][0] for e in measured if e % 2 == 0]
    first_full = [timer.steps[e][0] for e in measured if e % 2 == 1]
    head_step, full_step = statistics.median(head), statistics.median(full)
    result = {
        "model": f"mobilenetv2 {args.size}x{args.size}, batch {args.batch}, "
        f"{args.steps} steps/epoch, Adam, weights=None",
        "head_only_step_s": round(head_step, 4),
        "full_step_s": round(full_step, 4),
        "head_over_full_step": round(head_step / full_step, 3),
        "full_over_head_step": round(full_step / head_step, 2),
        "head_only_epoch_s": round(statistics.median(
            epoch_times[e] for e in measured if e % 2 == 0), 2),
        "full_epoch_s": round(statistics.median(
            epoch_times[e] for e in measured if e % 2 == 1), 2),
        "retrace_first_step_head_s": round(statistics.median(first_head), 2),
        "retrace_first_step_full_s": round(statistics.median(first_full), 2),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
