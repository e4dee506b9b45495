"""The `mode="auto"` evaluation panel (issue 25): auto vs every fixed strategy.

Two halves, each a backbone pretrained in-process on a source domain and
fine-tuned through a recipe on 12 transfer tasks (4 targets x 3 sizes):
the image half below, and the text half (a tiny KerasHub BERT pretrained
on word-level sentiment, `text_classification`; `benchmarks/_advisor_text.py`
describes its tasks). `--half image|text|both` picks them.

Image half: a small BatchNorm CNN (`kerasft.recipes.demo.small_cnn`:
three Conv+BN blocks, 32x32x1) is pretrained in-process on the scikit-learn digits 0-4
(`demo.pretrain`). Each transfer task fine-tunes it with the
`image_classification` recipe on a target at one of four distances, crossed
with three training sizes (labelled images per class):

| target | distance | sizes |
|---|---|---|
| digits 5-9 | near | 10, 50, 120 |
| digits 5-9 rotated 90 degrees | middle | 10, 50, 120 |
| digits 5-9 inverted (white on black) + pixel noise | far | 10, 50, 120 |
| synthetic shapes (circle, square, triangle, cross, ring) | far | 10, 50, 500 |

(the digits 5-9 hold ~180 images per class: 120 is the most that leaves a
held-out evaluation set; 60 per class are evaluated). Per task every fixed
strategy runs at the image recipe's default rates (learning_rate 1e-3,
fine_tune_learning_rate 1e-4; the text half too, where auto's rules land
on the same clip, not at the text recipe's 2e-5) for the epochs of the
advisor's steps rule (the same budget auto gives that strategy, so none
is starved):
feature_extraction, partial (top group), progressive (top group, then
all), full; the best is the oracle.
The tutorials' table rule picks among them from size (small: <= 50 per
class) and similarity as a user judges it from the description (digits and
rotated digits "similar", inverted digits and shapes "different"): small +
similar -> feature extraction, large + similar -> partial (top group),
small + different -> partial (top group), large + different -> full. Then
`mode="auto"`. Reported: held-out accuracy, wall time, auto's regret
against the oracle and against the table rule (accuracy points), and the
measurements' cost as a share of the chosen run's wall time.

The text half runs the same way: the fixed strategies at the same rates
and steps rule, the table rule with similarity as judged from the task's
description, then `mode="auto"` (`kerasft.recipes.text_classification`).

Rules were developed on seeds 1 and 2 only; seed 0 and 3 are the reported
panels. While developing, `--tasks`/`--sizes`/`--per-class` run a subset
and `--fixed-cache` reuses the fixed strategies' results, so that only
auto reruns (final panels should run everything fresh, without a cache;
the text checkpoint is kept beside the cache, so that auto fine-tunes
the checkpoint the cached fixed runs did).

Usage:
    .venv/bin/python benchmarks/advisor.py [--seed 0] [--out FILE.md]
    .venv/bin/python benchmarks/advisor.py --seed 1 --tasks 0,2 \
        --per-class 3,5 --fixed-cache /tmp/fixed.json
    .venv/bin/python benchmarks/advisor.py --half text --seed 1
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _advisor_text  # noqa: E402

from kerasft.advisor import _rules  # noqa: E402

FIXED = {
    "feature_extraction": dict(mode="feature_extraction"),
    "partial-1": dict(mode="partial", unfreeze_groups=1),
    "progressive": dict(mode="progressive", unfreeze_groups=1),
    "full": dict(mode="full"),
}
# The image recipe's default rates (both halves); epochs from the
# advisor's steps rule, so that no fixed strategy is starved of steps
# (only strategy and rates differ).
FIXED_RATES = dict(learning_rate=1e-3, fine_tune_learning_rate=1e-4)
HELD_OUT_PER_CLASS = 60
TABLE_RULE = {
    (True, True): "feature_extraction",
    (False, True): "partial-1",
    (True, False): "partial-1",
    (False, False): "full",
}
TARGETS = (
    ("digits 5-9", "near", True, (10, 50, 120)),
    ("rotated digits 5-9", "middle", True, (10, 50, 120)),
    ("inverted noisy digits 5-9", "far", False, (10, 50, 120)),
    ("shapes", "far", False, (10, 50, 500)),
)
HALVES = ("image", "text")


# === Targets ===


def _digits59():
    from kerasft.recipes import demo

    data = demo.digits_data(1, 0)  # 5-9: one per class in few, rest held out
    x = np.concatenate([data["few"][0], data["held_out"][0]])
    y = np.concatenate([data["few"][1], data["held_out"][1]])
    return data["pretrain"], (x, y)


def _shapes(per_class, seed, side=32):
    """Filled circle, square, triangle, cross, ring; random size/place."""
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[:side, :side].astype("float32")
    images, labels = [], []
    for label in range(5):
        for _ in range(per_class):
            r = rng.uniform(5, 11)
            cy, cx = rng.uniform(r + 1, side - r - 1, 2)
            dy, dx = yy - cy, xx - cx
            if label == 0:
                mask = dy ** 2 + dx ** 2 <= r ** 2
            elif label == 1:
                mask = (abs(dy) <= r * 0.8) & (abs(dx) <= r * 0.8)
            elif label == 2:
                mask = (dy <= r * 0.7) & (dy >= -r) & (abs(dx) <= (dy + r) * 0.6)
            elif label == 3:
                mask = ((abs(dy) <= r / 4) | (abs(dx) <= r / 4)) & (
                    abs(dy) <= r) & (abs(dx) <= r)
            else:
                d = dy ** 2 + dx ** 2
                mask = (d <= r ** 2) & (d >= (r * 0.6) ** 2)
            img = mask * rng.uniform(120, 255) + rng.normal(0, 20, mask.shape)
            images.append(np.clip(img, 0, 255))
            labels.append(label)
    order = rng.permutation(len(labels))
    return (np.asarray(images, "float32")[order][..., None],
            np.asarray(labels, "int64")[order])


def _transform(name, x, seed):
    if name == "rotated digits 5-9":
        return np.rot90(x, 1, axes=(1, 2)).copy()
    if name == "inverted noisy digits 5-9":
        rng = np.random.RandomState(seed)
        return np.clip(255 - x + rng.normal(0, 40, x.shape), 0, 255).astype("float32")
    return x


def _split(x, y, per_class, seed):
    rng = np.random.RandomState(seed)
    train, held = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        train.extend(idx[:per_class])
        held.extend(idx[per_class:])
    train, held = np.sort(train), np.sort(held)
    return (x[train], y[train]), (x[held], y[held])


def tasks(seed, sizes_kept=None, targets_kept=None, per_class=None):
    """`[(name, distance, similar, per_class, train, held_out)]`;
    `sizes_kept` (indices into each target's sizes) limits the sizes,
    `targets_kept` (indices into `TARGETS`) the targets, and `per_class`
    (a list of sizes) replaces every target's sizes."""
    _, (x59, y59) = _digits59()
    out = []
    for _, name, distance, similar, n in _advisor_text.selected(
            TARGETS, sizes_kept, targets_kept, per_class):
        if name == "shapes":
            train = _shapes(n, seed * 1000 + n)
            held = _shapes(HELD_OUT_PER_CLASS, seed * 1000 + 7)
        else:
            x = _transform(name, x59, seed)
            train, held = _split(x, y59, n, seed)
            held, _ = _split(*held, HELD_OUT_PER_CLASS, seed)
        out.append((name, distance, similar, n, train, held))
    return out


# === Runs ===


def _run(backbone, train, held, seed, root, half="image", **options):
    """One recipe run: `image_classification` on a `Backbone`, or
    `text_classification` on a KerasHub preset folder (loaded as users
    do, `kerasft.backbones.bert(folder, sequence_length=max_length)`)."""
    if half == "text":
        from kerasft.recipes.text_classification import (
            text_classification as recipe)

        options = dict(options, max_length=_advisor_text.MAX_LENGTH)
    else:
        from kerasft.recipes.image_classification import (
            image_classification as recipe)

    out = tempfile.mkdtemp(dir=root)
    start = time.perf_counter()
    result = recipe(
        backbone=backbone, train=train, validation=held, batch_size=32,
        seed=seed, verbose=0, dropout=0.0, precision="float32",
        output_dir=out, overwrite=True, **options,
    )
    seconds = time.perf_counter() - start
    advice = None
    path = os.path.join(out, "advice.json")
    if os.path.exists(path):
        with open(path) as f:
            advice = json.load(f)
    shutil.rmtree(out, ignore_errors=True)
    return float(result.metrics["val_accuracy"]), seconds, advice


def _pretrained(seed):
    import keras

    from kerasft import backbones
    from kerasft.recipes import demo

    (x04, y04), _ = _digits59()
    cnn = demo.small_cnn(seed=1 + 10 * seed)
    demo.pretrain(cnn, x04, y04, epochs=6, verbose=0)
    keras.mixed_precision.set_global_policy("float32")
    weights = cnn.get_weights()

    def fresh():
        cnn.set_weights(weights)  # every run starts from the checkpoint
        return backbones.from_model(cnn, name="digits_cnn")

    return fresh


def _pretrained_text(seed, root, keep_dir=None):
    """`fresh()` giving the tiny BERT's preset folder; with `keep_dir` the
    folder is kept there and reused (with `--fixed-cache`, so that auto
    fine-tunes the very checkpoint the cached fixed runs did)."""
    folder = None
    if keep_dir:
        folder = os.path.join(keep_dir, f"tiny_sentiment_bert_{seed}")
    if not (folder and os.path.exists(os.path.join(folder, "config.json"))):
        made, accuracy = _advisor_text.pretrained_folder(seed, keep_dir or root)
        print(f"text backbone pretrained: {made} (source accuracy "
              f"{accuracy:.3f})", flush=True)
        folder = made
    return lambda: folder


def _cache_key(seed, name, n):
    return f"{seed}|{name}|{n}"


def run_panel(seed, root, sizes_kept=None, targets_kept=None, per_class=None,
              fixed_cache=None, skip_auto=False, half="image"):
    """Runs the tasks of one half; `fixed_cache` (a JSON file) stores the
    fixed strategies' results per seed and task and reuses them (for
    developing the rules: only auto reruns); `skip_auto` runs only the
    fixed ones."""
    if half == "text":
        keep = os.path.splitext(fixed_cache)[0] + "_models" if fixed_cache else None
        fresh = _pretrained_text(seed, root, keep)
        make_tasks = _advisor_text.tasks
    else:
        fresh = _pretrained(seed)
        make_tasks = tasks
    cache = {}
    if fixed_cache and os.path.exists(fixed_cache):
        with open(fixed_cache) as f:
            cache = json.load(f)
    rows = []
    for name, distance, similar, n, train, held in make_tasks(
            seed, sizes_kept, targets_kept, per_class):
        key = _cache_key(seed, name, n)
        if key in cache:
            accs, times = cache[key]["accs"], cache[key]["times"]
        else:
            accs, times = _fixed_runs(fresh, train, held, seed, root, half)
            if fixed_cache:
                cache[key] = dict(accs=accs, times=times)
                with open(fixed_cache, "w") as f:
                    json.dump(cache, f, indent=1)
        if skip_auto:
            table = TABLE_RULE[(n <= 50, similar)]
            print(f"{name} n={n}: table {table} | " + " ".join(
                f"{k} {v:.3f} ({times[k]:.0f}s)" for k, v in accs.items()),
                flush=True)
            continue
        acc, seconds, advice = _run(fresh(), train, held, seed, root, half,
                                    mode="auto")
        table = TABLE_RULE[(n <= 50, similar)]
        oracle = max(accs, key=accs.get)
        measure = advice["measurements"]["measure_seconds"]
        row = dict(
            half=half, task=name, distance=distance, per_class=n, accs=accs, times=times,
            oracle=oracle, table=table, auto=acc, auto_seconds=seconds,
            measure_seconds=measure,
            measure_parts=advice["measurements"].get("measure_parts"),
            head_rate=advice["measurements"].get("head_rate"),
            choices=advice["choices"],
            auto_choice=_describe(advice["choices"]),
            shift=advice["measurements"]["group_shift"],
            probe=advice["measurements"]["probe_accuracy"],
        )
        rows.append(row)
        print(_line(row), flush=True)
    return rows


def _fixed_runs(fresh, train, held, seed, root, half="image"):
    accs, times = {}, {}
    steps_per_epoch = -(-len(train[1]) // 32)
    for strategy, options in FIXED.items():
        head_epochs, epochs, _ = _rules.choose_epochs(
            options["mode"], steps_per_epoch)
        if options["mode"] != "feature_extraction":
            options = dict(options, head_epochs=head_epochs)
        accs[strategy], times[strategy], _ = _run(
            fresh(), train, held, seed, root, half, epochs=epochs,
            **options, **FIXED_RATES)
    return accs, times


def _describe(choices):
    mode = choices["mode"]
    text = mode if mode in ("feature_extraction", "full") else (
        f"{mode}-{choices['unfreeze_groups']}")
    extra = f" e{choices['epochs']}"
    if choices.get("layer_decay"):
        extra += f" d{choices['layer_decay']}"
    return text + extra


def _fixed_twin(choices):
    """The fixed column that is auto's choice (same mode and groups; the
    rates then differ only where lr_find moved them off the clip), or
    `None`."""
    mode, groups = choices["mode"], choices.get("unfreeze_groups")
    if mode in ("feature_extraction", "full"):
        return mode
    if mode == "partial" and groups == 1:
        return "partial-1"
    if mode == "progressive" and groups == 1:
        return "progressive"
    return None


def _points(row):
    best = row["accs"][row["oracle"]]
    twin = _fixed_twin(row["choices"])
    return {
        "choice_regret": (100 * (best - row["accs"][twin])
                          if twin else float("nan")),
        "auto_regret": 100 * (best - row["auto"]),
        "table_regret": 100 * (best - row["accs"][row["table"]]),
        "vs_table": 100 * (row["accs"][row["table"]] - row["auto"]),
        "cost": 100 * row["measure_seconds"] / max(
            1e-9, row["auto_seconds"] - row["measure_seconds"]),
    }


def _line(row):
    p = _points(row)
    return (f"{row['task']} n={row['per_class']}: oracle {row['oracle']} "
            f"{row['accs'][row['oracle']]:.3f}, table {row['table']} "
            f"{row['accs'][row['table']]:.3f}, auto {row['auto_choice']} "
            f"{row['auto']:.3f} (regret {p['auto_regret']:.1f}, cost "
            f"{p['cost']:.0f}%) shift {[round(s, 2) for s in row['shift']]} "
            f"probe {row['probe']:.2f} | " + " ".join(
                f"{k} {v:.3f}" for k, v in row["accs"].items()))


def _table(rows):
    names = list(FIXED)
    head = ("| task | distance | n/class | " + " | ".join(names)
            + " | table rule | auto (choice) | auto regret | table regret "
            "| auto vs table | auto s | measure % |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        p = _points(r)
        cells = []
        for s in names:
            cell = f"{100 * r['accs'][s]:.1f}"
            cells.append(f"**{cell}**" if s == r["oracle"] else cell)
        lines.append(
            f"| {r['task']} | {r['distance']} | {r['per_class']} | "
            + " | ".join(cells)
            + f" | {r['table']} {100 * r['accs'][r['table']]:.1f} | "
            f"{r['auto_choice']} {100 * r['auto']:.1f} | "
            f"{p['auto_regret']:.1f} | {p['table_regret']:.1f} | "
            f"{p['vs_table']:+.1f} | {r['auto_seconds']:.1f} | {p['cost']:.0f} |"
        )
    return lines


def _summary(rows, label):
    points = [_points(r) for r in rows]
    mean = lambda k: statistics.mean(p[k] for p in points)  # noqa: E731
    worst = max(p["auto_regret"] for p in points)
    cost = max(p["cost"] for p in points)
    fixed_times = {s: statistics.mean(r["times"][s] for r in rows)
                   for s in FIXED}
    twins = [p["choice_regret"] for p in points
             if p["choice_regret"] == p["choice_regret"]]
    twin_line = (
        f"  Decision alone: the fixed run of auto's chosen strategy (same "
        f"mode and groups, {len(twins)} of {len(points)} tasks) has mean "
        f"regret {statistics.mean(twins):.2f} (worst {max(twins):.1f}): "
        "auto's own run differs from it only by rates lr_find moved and "
        "by run-to-run variation." if twins else "  Decision alone: no task's "
        "choice has a fixed twin.")
    return [
        f"- {label}: auto mean regret vs oracle **{mean('auto_regret'):.2f}**"
        f" points (worst {worst:.1f}); table rule mean regret "
        f"**{mean('table_regret'):.2f}** (worst "
        f"{max(p['table_regret'] for p in points):.1f}); measurements "
        f"mean {mean('cost'):.0f}%, max {cost:.0f}% of the chosen run's "
        "wall time (auto's run less the measurements); mean wall time per "
        "fixed strategy (s): " + ", ".join(
            f"{s} {t:.1f}" for s, t in fixed_times.items()) + ".",
        f"  Done-when: mean regret <= 1: "
        f"{'met' if mean('auto_regret') <= 1 else 'NOT met'}; worst <= 3: "
        f"{'met' if worst <= 3 else 'NOT met'}; lower than the table rule: "
        f"{'met' if mean('auto_regret') < mean('table_regret') else 'NOT met'}"
        f"; measurements <= 20%: {'met' if cost <= 20 else 'NOT met'} (max "
        "over tasks).",
        twin_line,
    ]


def markdown(rows, seed, seconds, command):
    """One table per half (held-out accuracy, %; bold: the oracle), a
    summary per half and over the whole panel."""
    lines = []
    summary = [""]
    for half in HALVES:
        part = [r for r in rows if r.get("half", "image") == half]
        if not part:
            continue
        what = "images" if half == "image" else "texts"
        lines += [f"{half.capitalize()} half (accuracy, % of held-out "
                  f"{what}; bold: the oracle):", ""] + _table(part) + [""]
        summary += _summary(part, f"{half} half ({len(part)} tasks)")
    if len({r.get("half", "image") for r in rows}) > 1:
        summary += _summary(rows, f"whole panel ({len(rows)} tasks)")
    runs = sum(sum(r["times"].values()) + r["auto_seconds"] for r in rows)
    summary += [
        "",
        f"Seed {seed}; this command's wall time {seconds / 60:.1f} min; the "
        f"recipe runs' wall time summed {runs / 60:.1f} min (the fixed "
        "strategies' recorded times count when read from --fixed-cache). "
        "Machine: "
        f"{platform.machine()}, {os.cpu_count()} CPU cores (shared), Python "
        f"{platform.python_version()}. Command: `{command}`.",
    ]
    return "\n".join(lines + summary) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None,
                        help="write the markdown table to this file")
    parser.add_argument("--json", default=None, help="write the rows as JSON")
    parser.add_argument(
        "--sizes", default=None,
        help="comma-separated indices of the sizes to run (e.g. 0,2: the "
             "smallest and largest); all by default")
    parser.add_argument(
        "--tasks", default=None,
        help="comma-separated indices of the targets to run (image: 0 "
             "digits, 1 rotated, 2 inverted noisy, 3 shapes; text: 0 "
             "sentiment, 1 agreement, 2 position, 3 order); all by default")
    parser.add_argument(
        "--per-class", default=None,
        help="comma-separated training sizes replacing every target's "
             "(e.g. 3,5 to probe what 'tiny' means)")
    parser.add_argument(
        "--fixed-cache", default=None,
        help="JSON file caching the fixed strategies' results per seed and "
             "task: for developing the rules (only auto reruns), and to run "
             "a panel's fixed strategies in parallel processes (--skip-auto "
             "per half into a cache, then auto reading it)")
    parser.add_argument("--skip-auto", action="store_true",
                        help="run only the fixed strategies")
    parser.add_argument(
        "--half", default="both", choices=("image", "text", "both"),
        help="which half of the panel to run (--tasks and --sizes index "
             "each half's targets and sizes)")
    args = parser.parse_args(argv)
    import keras

    keras.utils.set_random_seed(args.seed)
    root = tempfile.mkdtemp(prefix="kerasft_advisor_")
    start = time.perf_counter()
    try:
        kept = None if args.sizes is None else [
            int(i) for i in args.sizes.split(",")]
        targets = None if args.tasks is None else [
            int(i) for i in args.tasks.split(",")]
        per_class = None if args.per_class is None else [
            int(i) for i in args.per_class.split(",")]
        halves = HALVES if args.half == "both" else (args.half,)
        rows = []
        for half in halves:
            rows += run_panel(args.seed, root, kept, targets, per_class,
                              args.fixed_cache, args.skip_auto, half)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.skip_auto:
        return
    seconds = time.perf_counter() - start
    command = ".venv/bin/python benchmarks/advisor.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    text = markdown(rows, args.seed, seconds, command.strip())
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
