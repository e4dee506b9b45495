"""Peak memory and step time of training with and without gradient checkpointing.

Each measurement runs in a fresh subprocess (plain and rematerialized
alternate, `--rounds` times) that builds MobileNetV2 (weights=None) nested
in a model with every group trainable (BatchNorm frozen, as kerasft trains
it), trains `--warmup` + `--steps` steps, and reports:
- peak RSS of the process (`resource.getrusage(RUSAGE_SELF).ru_maxrss`);
  on CPU TensorFlow allocates activations from the process heap, so the
  peak minus the RSS measured after building the model (before tracing) is
  the training working set. (`tf.config.experimental.get_memory_info` only
  serves GPUs, and tracemalloc does not see TensorFlow's allocator.)
- median step time of the `--steps` steps after warm-up.

Usage:
    .venv/bin/python benchmarks/remat.py [--size 128] [--batch 32]
        [--steps 5] [--rounds 2]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def worker(args):
    import resource

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, ROOT)
    import keras
    import numpy as np

    import kerasft
    from kerasft.freezing import set_trainable_groups
    from kerasft.remat import rematerialize

    keras.utils.set_random_seed(0)
    backbone = kerasft.backbones.get(
        "mobilenetv2", input_shape=(args.size, args.size, 3)
    )
    set_trainable_groups(backbone, backbone.group_names)
    features = rematerialize(backbone) if args.worker == "remat" else backbone.model
    inputs = keras.Input((args.size, args.size, 3))
    x = features(inputs, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(10)(x))
    model.compile(
        keras.optimizers.Adam(1e-4),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    rng = np.random.default_rng(0)
    data = rng.uniform(-1, 1, (args.batch, args.size, args.size, 3)).astype(
        "float32"
    )
    labels = rng.integers(0, 10, (args.batch,))
    baseline = _rss_mb()
    times = []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        model.train_on_batch(data, labels)
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        "RESULT "
        + json.dumps(
            {
                "mode": args.worker,
                "baseline_rss_mb": round(baseline),
                "peak_rss_mb": round(peak),
                "train_working_set_mb": round(peak - baseline),
                "step_s": round(statistics.median(times), 4),
            }
        )
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--worker", choices=["plain", "remat"], default=None)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    runs = {"plain": [], "remat": []}
    for _ in range(args.rounds):
        for mode in ("plain", "remat"):
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", mode]
            for key in ("size", "batch", "steps", "warmup"):
                cmd += [f"--{key}", str(getattr(args, key))]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            line = next(
                l for l in out.stdout.splitlines() if l.startswith("RESULT ")
            )
            runs[mode].append(json.loads(line[len("RESULT "):]))
            print(runs[mode][-1], flush=True)

    def med(mode, key):
        return statistics.median(r[key] for r in runs[mode])

    summary = {
        "model": f"mobilenetv2 {args.size}x{args.size}, batch {args.batch}, "
        "all groups trainable, BN frozen, Adam",
        "plain_peak_rss_mb": med("plain", "peak_rss_mb"),
        "remat_peak_rss_mb": med("remat", "peak_rss_mb"),
        "plain_working_set_mb": med("plain", "train_working_set_mb"),
        "remat_working_set_mb": med("remat", "train_working_set_mb"),
        "working_set_ratio": round(
            med("remat", "train_working_set_mb")
            / med("plain", "train_working_set_mb"),
            3,
        ),
        "plain_step_s": med("plain", "step_s"),
        "remat_step_s": med("remat", "step_s"),
        "step_time_ratio": round(med("remat", "step_s") / med("plain", "step_s"), 3),
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
