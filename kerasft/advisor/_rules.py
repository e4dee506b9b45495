"""Pure decision rules of `kerasft.advise`: plain numbers in, choices out.

Keras-free on purpose (as `kerasft/optimizers/_rate_plan.py`): every rule
maps measurements to one field of the advice and says why in a sentence,
so the rules are unit-tested without building a model
(`tests/advisor/test_rules.py`) and the measuring code stays apart
(`kerasft/advisor/measurements.py`).

The rules, each one sentence:

- **strategy**: frozen features that already separate the classes
  (probe accuracy >= `PROBE_ENOUGH`) need no fine-tuning; otherwise open
  as many groups as the labelled examples per class afford (none below
  `MIN_PER_CLASS`, all from `FULL_PER_CLASS`): all is `"full"`; fewer is
  `"progressive"` when the shift reaches the bottom group, else
  `"partial"` down to the lowest shifted group. (Panel evidence, seed 1
  of `benchmarks/advisor.py`: at the small fine-tune rate, full
  fine-tuning beat partial and the frozen features from 3 labels per
  class on every target, near ones included: "tiny" is below 3.)
- **head epochs**: enough epochs for `HEAD_STEPS` optimizer steps of the
  head alone, so that the opened layers see a trained head.
- **epochs**: enough for `TRAIN_STEPS` steps after the head stage
  (`FEATURE_STEPS` on cached features), and at least `MIN_EPOCHS`
  passes over the data. The step counts are floors, with no cap in
  epochs: small data gets many short epochs. (Panel evidence: a cap of
  15 epochs (+5 head) left 10-per-class runs ~20 steps, and the head's
  random start then set their accuracy: 0.0% at 8 epochs, 97.3% at 130
  steps on the same text task. Seed 2, 500 per class: full fine-tuning
  was still climbing at 5 epochs, 73% -> 86% at 10 on the word-order
  task, while partial had flattened, so at 4-5 epochs the strategies'
  order was noise.)
- **learning rate**: with the backbone frozen, a tenth of the rate at
  which one full-batch `lr_find` sweep of the head on the cached frozen
  features reaches its lowest loss (fastai's "minimum / 10"; the
  steepest-descent point of a short 32-example sweep was noisy: 8e-5
  where 1e-3 was best), within `HEAD_RATE_RANGE`. Once layers open,
  `OPEN_HEAD_RATE`, or the sweep's lowest-loss rate where that is lower
  (a head whose loss already rises below it would send large gradients
  into the pretrained layers): the sweep measures the head alone on
  frozen features, so its "/ 10" says nothing of the opened model (panel,
  seed 1, agreement at 50 per class: following it to 4.9e-4 / 4.9e-5
  read 56.5% against 78.0% at 1e-3 / 1e-4).
- **fine-tune rate**: a tenth of the head's rate (discriminative rates),
  within `FINE_TUNE_RANGE`.
- **layer decay**: none for runs shorter than `DECAY_MIN_STEPS` steps
  (the panel's ~120-step runs lost 3-10 points with decay 0.8); on longer
  runs opened groups shifted less than the top one train slower:
  `decay = (shift_bottom / shift_top) ** (1 / (k - 1))` over the `k`
  opened groups, clipped to `DECAY_RANGE` (not evaluated on the panel).
"""

import math

STRATEGIES = ("feature_extraction", "partial", "progressive", "full")

# A linear probe this accurate leaves nothing for fine-tuning to gain.
PROBE_ENOUGH = 0.97
# BatchNorm shift (standardized Frechet distance per channel, averaged per
# group) from which a group counts as shifted: its input statistics moved
# by about a third of the checkpoint's own spread.
SHIFT_OPEN = 0.15
# Labelled examples per class below which no backbone group is opened, and
# from which every group may be (log-linear between). Set on seed 1 of the
# panel: full fine-tuning at the small fine-tune rate beat partial and the
# frozen features at 3, 5 and 10 per class, near and far targets alike, so
# the band between them is empty; below 3 is not measured.
MIN_PER_CLASS = 3
FULL_PER_CLASS = 3
HEAD_STEPS = 30
TRAIN_STEPS = 120
FEATURE_STEPS = 150
MIN_EPOCHS = 10
HEAD_RATE_RANGE = (1e-4, 1e-2)
# The head's rate once layers open (lower only where the head sweep's
# loss already rises below it).
OPEN_HEAD_RATE = 1e-3
DEFAULT_HEAD_RATE = 1e-3
# The head rate is lr_find's lowest-loss rate over this.
MIN_LOSS_DIVISOR = 10.0
FINE_TUNE_DIVISOR = 10.0
# Pretrained weights take small steps whatever the sweep says.
FINE_TUNE_RANGE = (1e-5, 1e-4)
DECAY_RANGE = (0.8, 1.0)
# Runs shorter than this (after the head stage) get no layer decay.
DECAY_MIN_STEPS = 1000


def groups_needed(group_shift, shift_kind, probe_accuracy):
    """`(k, because)`: top groups the domain shift asks to open.

    `group_shift` is one figure per group, input -> output: BatchNorm
    shift (`shift_kind="batchnorm"`, higher = further), per-group probe
    accuracy (`shift_kind="probe"`, higher = better features), or NaN
    (`shift_kind="none"`: no BatchNorm and no class labels).
    """
    n = len(group_shift)
    if not n:
        return 0, "the backbone has no groups"
    if shift_kind == "none":
        return n, (
            "no BatchNorm statistics and no class labels to probe: the "
            "shift is unmeasured, every group may be needed"
        )
    if shift_kind == "probe":
        best = max(range(n), key=lambda i: (group_shift[i], i))
        k = max(1, n - 1 - best)
        return k, (
            f"group {best + 1}/{n} probes best ({group_shift[best]:.2f}): "
            f"the {k} group(s) above it are specific to the source"
        )
    shifted = [i for i, s in enumerate(group_shift) if s >= SHIFT_OPEN]
    if not shifted:
        if probe_accuracy < PROBE_ENOUGH:
            return 1, (
                f"no group shifted >= {SHIFT_OPEN}, but the probe "
                f"({probe_accuracy:.2f}) leaves room: the top group"
            )
        return 0, f"no group shifted >= {SHIFT_OPEN}"
    k = n - shifted[0]
    return k, (
        f"lowest shifted group is {shifted[0] + 1}/{n} "
        f"(shift {group_shift[shifted[0]]:.2f} >= {SHIFT_OPEN})"
    )


def groups_affordable(examples_per_class, num_groups):
    """`(k, because)`: top groups the labelled data can train without
    overfitting: none below `MIN_PER_CLASS` examples per class, all from
    `FULL_PER_CLASS`, log-linear between."""
    n = examples_per_class
    if n < MIN_PER_CLASS:
        return 0, f"{n} examples/class < {MIN_PER_CLASS}"
    if n >= FULL_PER_CLASS:
        return num_groups, f"{n} examples/class >= {FULL_PER_CLASS}"
    share = math.log(n / MIN_PER_CLASS) / math.log(FULL_PER_CLASS / MIN_PER_CLASS)
    k = min(num_groups, max(1, math.ceil(num_groups * share)))
    return k, f"{n} examples/class afford {k}/{num_groups} group(s)"


def choose_strategy(examples_per_class, num_groups, probe_accuracy,
                    group_shift, shift_kind="batchnorm"):
    """`(mode, unfreeze_groups, because)` from the measurements."""
    if probe_accuracy >= PROBE_ENOUGH:
        return "feature_extraction", 0, (
            f"frozen features already separate the classes "
            f"(probe {probe_accuracy:.2f} >= {PROBE_ENOUGH})"
        )
    need, why_need = groups_needed(group_shift, shift_kind, probe_accuracy)
    budget, why_budget = groups_affordable(examples_per_class, num_groups)
    because = f"data affords {budget} ({why_budget}); shift asks {need} ({why_need})"
    if budget == 0:
        return "feature_extraction", 0, because
    if budget == num_groups:
        # At the small fine-tune rate, opening unshifted groups costs
        # little (measured on the panel); layer decay slows them instead.
        return "full", budget, because
    if need == num_groups:
        return "progressive", budget, because
    return "partial", min(need, budget), because


def epochs_for(steps, steps_per_epoch):
    """Epochs giving at least `steps` optimizer steps, at least
    `MIN_EPOCHS`."""
    epochs = math.ceil(steps / max(1, steps_per_epoch))
    return int(max(MIN_EPOCHS, epochs))


def choose_epochs(mode, steps_per_epoch):
    """`(head_epochs, epochs, because)`."""
    if mode == "feature_extraction":
        epochs = epochs_for(FEATURE_STEPS, steps_per_epoch)
        return 0, epochs, (
            f"~{FEATURE_STEPS} head steps on cached features at "
            f"{steps_per_epoch} steps/epoch"
        )
    head = int(max(1, math.ceil(HEAD_STEPS / max(1, steps_per_epoch))))
    after = epochs_for(TRAIN_STEPS, steps_per_epoch)
    if mode == "progressive":
        after = max(after, 2)
    return head, head + after, (
        f"~{HEAD_STEPS} head steps, then ~{TRAIN_STEPS} steps at "
        f"{steps_per_epoch} steps/epoch"
    )


def _finite(value):
    return value is not None and math.isfinite(value) and value > 0


def choose_rates(head_rate, mode):
    """`(learning_rate, fine_tune_learning_rate, because)` from `head_rate`,
    the rate of the lowest loss of `lr_find`'s head sweep (may be
    `None`/NaN when the sweep was not run or recorded no finite loss)."""
    low, high = HEAD_RATE_RANGE
    if mode == "feature_extraction":
        if _finite(head_rate):
            lr = min(high, max(low, head_rate / MIN_LOSS_DIVISOR))
            why = (f"lr_find's lowest loss at {head_rate:.1e}, / "
                   f"{MIN_LOSS_DIVISOR:g}, within [{low:g}, {high:g}]")
        else:
            lr = DEFAULT_HEAD_RATE
            why = f"no lr_find sweep (or no finite loss): the default {lr:g}"
        return lr, None, why
    if _finite(head_rate) and head_rate < OPEN_HEAD_RATE:
        lr = max(low, head_rate)
        why = (f"layers open: the head sweep's loss was lowest at "
               f"{head_rate:.1e}, below {OPEN_HEAD_RATE:g}")
    else:
        lr = OPEN_HEAD_RATE
        why = (f"layers open: {OPEN_HEAD_RATE:g} (lr_find's head sweep "
               + (f"lowest at {head_rate:.1e}, not below it)"
                  if _finite(head_rate) else "not run or no finite loss)"))
    ft = min(FINE_TUNE_RANGE[1], max(FINE_TUNE_RANGE[0],
                                     lr / FINE_TUNE_DIVISOR))
    return lr, ft, (
        f"{why}; fine-tune head / {FINE_TUNE_DIVISOR:g}, within "
        f"[{FINE_TUNE_RANGE[0]:g}, {FINE_TUNE_RANGE[1]:g}]"
    )


def choose_layer_decay(group_shift, shift_kind, opened, train_steps):
    """`(layer_decay or None, because)` over the `opened` top groups of a
    run of `train_steps` steps after the head stage."""
    if opened < 2 or shift_kind != "batchnorm":
        return None, "fewer than 2 groups open (or no BatchNorm shift): no decay"
    if train_steps < DECAY_MIN_STEPS:
        return None, (
            f"{train_steps} steps < {DECAY_MIN_STEPS}: short runs lost "
            "accuracy with decay on the panel: one rate"
        )
    top = group_shift[-1]
    bottom = group_shift[-opened]
    if not top > 0:
        return None, "no shift at the top group: no decay"
    ratio = max(bottom, 1e-6) / top
    decay = ratio ** (1.0 / (opened - 1))
    decay = min(DECAY_RANGE[1], max(DECAY_RANGE[0], decay))
    decay = round(decay, 2)
    if decay >= 1.0:
        return None, (
            f"the lowest opened group is shifted as much as the top "
            f"({bottom:.2f} vs {top:.2f}): one rate"
        )
    return decay, (
        f"lowest opened group shifted {bottom:.2f} vs top {top:.2f} "
        f"over {opened} groups"
    )


def decide(m):
    """Every choice from a measurements dict (plain numbers).

    Keys read: `examples_per_class`, `num_groups`, `probe_accuracy`,
    `group_shift`, `shift_kind`, `steps_per_epoch`, `head_rate` (the
    lowest-loss rate of `lr_find`'s head sweep), and `allowed_modes` (the
    recipe's modes, when it has not all of `STRATEGIES`).

    Returns `{field: (value, because)}` for `mode`, `unfreeze_groups`,
    `head_epochs`, `epochs`, `learning_rate`, `fine_tune_learning_rate`,
    `layer_decay`.
    """
    mode, groups, why_mode = choose_strategy(
        m["examples_per_class"], m["num_groups"], m["probe_accuracy"],
        m["group_shift"], m.get("shift_kind", "batchnorm"),
    )
    allowed = m.get("allowed_modes") or STRATEGIES
    if mode not in allowed:
        mode, groups, why_mode = _allowed_instead(mode, groups, allowed,
                                                  why_mode)
    head_epochs, epochs, why_epochs = choose_epochs(mode, m["steps_per_epoch"])
    lr, ft, why_rates = choose_rates(m.get("head_rate"), mode)
    decay, why_decay = choose_layer_decay(
        m["group_shift"], m.get("shift_kind", "batchnorm"),
        groups if mode in ("partial", "full") else 0,
        (epochs - head_epochs) * m["steps_per_epoch"],
    )
    return {
        "mode": (mode, why_mode),
        "unfreeze_groups": (max(groups, 1), why_mode),
        "head_epochs": (head_epochs, why_epochs),
        "epochs": (epochs, why_epochs),
        "learning_rate": (lr, why_rates),
        "fine_tune_learning_rate": (ft, why_rates),
        "layer_decay": (decay, why_decay),
    }


def _allowed_instead(mode, groups, allowed, because):
    """The closest strategy the recipe has when it lacks `mode` (seq2seq and
    causal LMs have no feature extraction: the fewest groups it allows)."""
    if mode == "feature_extraction":
        for instead in ("partial", "progressive", "full"):
            if instead in allowed:
                return instead, 1, (
                    f"{because}; this recipe has no feature_extraction: "
                    f"{instead}, the fewest groups it allows"
                )
    instead = next(s for s in reversed(STRATEGIES) if s in allowed)
    return instead, groups, f"{because}; this recipe has no {mode}: {instead}"
