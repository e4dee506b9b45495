"""Sequences per CPU-second of a T5 train step: kerasft's seq2seq vs KerasHub.

Baseline: a KerasHub `T5Seq2SeqLM` compiled as KerasHub documents it
(`AdamW` at a constant rate, its default loss and weighted accuracy) and
trained with `fit`. kerasft: the same architecture compiled as the `seq2seq`
recipe compiles it (`kerasft.recipes._generative.fine_tuning`: AdamW with
warmup + linear decay inside `LayerwiseLR(layer_decay=...)` over the
`from_keras_hub` groups), under the recipe's `Run` (precision policy),
trained with `fit` on token ids with the preprocessor detached, as the
recipe does. Both see the same batches of token ids (a random T5 of
t5-small's width at half its depth, vocabulary 8192). Each model is traced
first (untimed); timed `fit` runs then alternate between the models, and
the median of the rounds is reported, in float32 and mixed_bfloat16.

    python benchmarks/seq2seq_step.py --batch-size 16 --source-length 64 \
        --target-length 32 --steps 8 --rounds 5
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

VOCABULARY = 8192
SIZE = dict(num_layers=3, num_heads=8, hidden_dim=512, intermediate_dim=1024,
            key_value_dim=64, dropout=0.1)


def make_batches(n, source_length, target_length, seed=0):
    rng = np.random.default_rng(seed)
    source = rng.integers(2, VOCABULARY, (n, source_length)).astype("int32")
    target = rng.integers(2, VOCABULARY, (n, target_length + 1)).astype("int32")
    target[:, 0] = 0  # T5's decoder start (the pad id)
    x = {
        "encoder_token_ids": source,
        "encoder_padding_mask": np.ones_like(source, bool),
        "decoder_token_ids": target[:, :-1],
        "decoder_padding_mask": np.ones_like(target[:, :-1], bool),
    }
    weight = np.ones(target[:, 1:].shape, "float32")
    return x, target[:, 1:], weight


def dataset(arrays, batch_size):
    ds = tf.data.Dataset.from_tensor_slices(arrays).batch(batch_size, drop_remainder=True)
    return ds.cache().repeat().prefetch(tf.data.AUTOTUNE)


def t5(seed=0):
    import keras_hub

    keras.utils.set_random_seed(seed)
    backbone = keras_hub.models.T5Backbone(vocabulary_size=VOCABULARY, **SIZE)
    return keras_hub.models.T5Seq2SeqLM(backbone, preprocessor=None)


def keras_hub_model(policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        task = t5()
        task.compile(optimizer=keras.optimizers.AdamW(1e-4))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return task


def kerasft_model(policy, total_steps, folder):
    from kerasft.recipes import _generative
    from kerasft.recipes._runner import Run
    from kerasft.recipes.configs import Seq2SeqConfig

    config = Seq2SeqConfig(
        train="unused.csv", precision=policy, strategy="default",
        learning_rate=1e-4, layer_decay=0.8, output_dir=folder, verbose=0,
    )
    run = Run(config, overwrite=True)  # sets the policy, as the recipe does
    try:
        with run.strategy.scope():
            task = t5()
            task.compile(
                optimizer=_generative.fine_tuning(run, task, total_steps)[0],
                sampler="greedy",
            )
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return task


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--source-length", type=int, default=64)
    parser.add_argument("--target-length", type=int, default=32)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    arrays = make_batches(args.batch_size * args.steps, args.source_length,
                          args.target_length)
    ds = dataset(arrays, args.batch_size)
    folder = tempfile.mkdtemp(prefix="seq2seq_step.")
    total_steps = 10 * args.steps * args.rounds
    models = {}
    for policy in ("float32", "mixed_bfloat16"):
        for name, build in (
            (f"keras_hub fit ({policy})", lambda: keras_hub_model(policy)),
            (f"kerasft ({policy})", lambda: kerasft_model(policy, total_steps, folder)),
        ):
            start = time.perf_counter()
            model = build()
            model.fit(ds, steps_per_epoch=2, epochs=1, verbose=0)  # trace, warm up
            print(f"built + traced {name}: {time.perf_counter() - start:.1f} s", flush=True)
            models[name] = model

    # Wall-clock rates swing with other processes on a shared machine; the
    # process CPU time (all threads) per sequence measures the work itself.
    cpu = {name: [] for name in models}
    sequences = args.batch_size * args.steps
    for r in range(args.rounds):
        for name, model in models.items():
            start = time.process_time()
            model.fit(ds, steps_per_epoch=args.steps, epochs=1, verbose=0)
            cpu[name].append(sequences / (time.process_time() - start))
        print(f"round {r}: " + ", ".join(
            f"{n}: {cpu[n][-1]:.2f}" for n in models), flush=True)

    rate = {name: statistics.median(values) for name, values in cpu.items()}
    print(
        f"\nT5 ({SIZE['num_layers']}+{SIZE['num_layers']} layers, width "
        f"{SIZE['hidden_dim']}, vocabulary {VOCABULARY}) train step, batch "
        f"{args.batch_size}, source {args.source_length}, target "
        f"{args.target_length}, {args.steps} steps x {args.rounds} rounds "
        "(medians, sequences per CPU-second)"
    )
    for policy in ("float32", "mixed_bfloat16"):
        hub, kft = rate[f"keras_hub fit ({policy})"], rate[f"kerasft ({policy})"]
        print(f"  {policy:15s} keras_hub {hub:7.2f}  kerasft {kft:7.2f}  "
              f"kerasft overhead {100 * (hub / kft - 1):+.1f}%")
    for name in ("keras_hub fit", "kerasft"):
        gain = rate[f"{name} (mixed_bfloat16)"] / rate[f"{name} (float32)"]
        print(f"  bf16 gain, {name}: {gain:.2f}x")


if __name__ == "__main__":
    main()
