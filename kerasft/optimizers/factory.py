"""`make_optimizer`: the one optimizer every kerasft recipe trains with.

AdamW (`kerasft.optimizers.AdamW`: no weight decay on biases and
normalisation scales/offsets, exclusions kept in its config), a learning
rate schedule with warmup, `LayerwiseLR` when `layer_decay` is set and
`GradientAccumulator` when `accumulation_steps > 1`, composed in that
order. Recipes call it through `Run.optimizer`; it is public so that your
own `fit` can train exactly as a recipe does.
"""

import math

import keras

from kerasft.optimizers.adamw import NO_DECAY_DEFAULT
from kerasft.optimizers.adamw import AdamW

LR_SCHEDULES = ("constant", "linear", "cosine", "one_cycle")

# fastai's `fit_one_cycle(pct_start=0.25)`: the fraction of a one-cycle
# spent rising when `warmup_ratio` is 0.
ONE_CYCLE_WARMUP = 0.25


def warmup_steps(warmup_ratio, total_steps):
    """Hugging Face's `math.ceil(warmup_ratio * total_steps)`."""
    return int(math.ceil(warmup_ratio * total_steps))


def learning_rate_schedule(rate, schedule="constant", warmup_ratio=0.0,
                           total_steps=None):
    """The optimizer's `learning_rate`: `rate`, or a `LearningRateSchedule`.

    Hugging Face `Trainer`'s schedules: warmup over `ceil(warmup_ratio *
    total_steps)` steps from 0, then constant, or linear or half-cosine
    decay to 0 at the last step (Keras's `PolynomialDecay`/`CosineDecay`
    inside kerasft's `WarmupSchedule`); or fastai's one-cycle
    (`kerasft.optimizers.OneCycle`: a cosine rise from `rate / 25` over
    the first `warmup_ratio` of the steps, `ONE_CYCLE_WARMUP` = 0.25 when
    `warmup_ratio` is 0, then a cosine fall to `rate / 25e4`).

    A dict `rate` `{first optimizer step: peak rate}` (with key 0) runs the
    schedule once per stage, over the stage's own steps at the stage's
    rate (`kerasft.optimizers.StagedSchedule`), as fastai's `fine_tune`
    runs one one-cycle per stage.

    Args:
        rate: the peak rate, or `{first step: peak rate}` per stage.
        schedule: `"constant"`, `"linear"`, `"cosine"` or `"one_cycle"`.
            Defaults to `"constant"`.
        warmup_ratio: fraction of the steps (of each stage) spent warming
            up, in [0, 1). Defaults to `0.0`.
        total_steps: optimizer steps of the whole run; needed unless the
            schedule is constant without warmup. Defaults to `None`.

    Example:
    ```python
    # Head for 100 steps at 1e-3, then the backbone for 300 at 1e-4, each
    # warming up over its first 10% and decaying to 0 at its end.
    schedule = learning_rate_schedule({0: 1e-3, 100: 1e-4}, "cosine",
                                      warmup_ratio=0.1, total_steps=400)
    ```
    """
    if schedule not in LR_SCHEDULES:
        raise ValueError(
            f"`lr_schedule` must be one of {LR_SCHEDULES}. "
            f"Received: lr_schedule={schedule!r}"
        )
    if isinstance(warmup_ratio, bool) or not isinstance(
        warmup_ratio, (int, float)
    ) or not 0 <= warmup_ratio < 1:
        raise ValueError(
            "`warmup_ratio` must be in [0, 1). Received: "
            f"warmup_ratio={warmup_ratio!r}"
        )
    if isinstance(rate, dict):
        return _staged_schedule(rate, schedule, warmup_ratio, total_steps)
    if schedule == "constant" and not warmup_ratio:
        return rate
    if total_steps is None:
        raise ValueError(
            f"`lr_schedule={schedule!r}` with `warmup_ratio={warmup_ratio}` "
            "needs `total_steps`, the optimizer steps of the whole run. Pass "
            "`total_steps`, or use `lr_schedule='constant'` with "
            "`warmup_ratio=0`."
        )
    if isinstance(total_steps, bool) or not isinstance(total_steps, int) or (
        total_steps < 1
    ):
        raise ValueError(
            "`total_steps` must be an integer >= 1. Received: "
            f"total_steps={total_steps!r}"
        )
    from kerasft.optimizers.schedules import OneCycle
    from kerasft.optimizers.schedules import WarmupSchedule

    if schedule == "one_cycle":
        return OneCycle(rate, total_steps,
                        pct_start=warmup_ratio or ONE_CYCLE_WARMUP)
    warmup = warmup_steps(warmup_ratio, total_steps)
    decay_steps = max(1, total_steps - warmup)
    if schedule == "linear":
        base = keras.optimizers.schedules.PolynomialDecay(
            rate, decay_steps, end_learning_rate=0.0, power=1.0
        )
    elif schedule == "cosine":
        base = keras.optimizers.schedules.CosineDecay(rate, decay_steps, alpha=0.0)
    else:
        base = rate
    return WarmupSchedule(base, warmup) if warmup else base


def _staged_schedule(rates, schedule, warmup_ratio, total_steps):
    """`StagedSchedule` of `learning_rate_schedule` per stage of `rates`
    (`{first step: peak rate}`)."""
    from kerasft.optimizers.schedules import StagedSchedule

    if 0 not in rates or any(
        isinstance(k, bool) or not isinstance(k, int) or k < 0 for k in rates
    ):
        raise ValueError(
            "Staged rates must map each stage's first optimizer step (an "
            "integer >= 0, starting with 0) to its peak rate. Received: "
            f"learning_rate={rates!r}"
        )
    starts = sorted(rates)
    if total_steps is None and not (schedule == "constant" and not warmup_ratio):
        raise ValueError(
            f"`lr_schedule={schedule!r}` with `warmup_ratio={warmup_ratio}` "
            "over stages needs `total_steps`, the optimizer steps of the "
            "whole run, to know where the last stage ends. Pass "
            "`total_steps`, or use `lr_schedule='constant'` with "
            "`warmup_ratio=0`."
        )
    schedules = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else total_steps
        length = None if end is None else max(1, end - start)
        schedules.append(learning_rate_schedule(
            rates[start], schedule, warmup_ratio, length
        ))
    return StagedSchedule(starts[1:], schedules)


def make_optimizer(learning_rate, *, weight_decay=0.01,
                   no_weight_decay=NO_DECAY_DEFAULT, lr_schedule="constant",
                   warmup_ratio=0.0, total_steps=None, layer_decay=None,
                   groups=None, accumulation_steps=1):
    """AdamW with kerasft's fine-tuning options, composed once.

    Args:
        learning_rate: the peak (head) rate, or `{first optimizer step:
            peak rate}` to run `lr_schedule` once per stage (see
            `learning_rate_schedule`).
        weight_decay: AdamW's decoupled weight decay; `0` gives Adam's
            update. Defaults to `0.01`.
        no_weight_decay: variables never decayed: `"rank<=1"` and/or regexes
            on variable paths (see `kerasft.optimizers.AdamW`). Defaults to
            `("rank<=1",)`.
        lr_schedule: `"constant"`, `"linear"`, `"cosine"` or `"one_cycle"`
            (see `learning_rate_schedule`). Defaults to `"constant"`.
        warmup_ratio: fraction of `total_steps` warming up. Defaults to `0`.
        total_steps: optimizer updates of the run (batches divided by
            `accumulation_steps`). Defaults to `None`.
        layer_decay: group i from the top trains at the rate times
            `layer_decay**i` (`LayerwiseLR`). Defaults to `None`.
        groups: the groups for `layer_decay`: a `Backbone` or group list.
            Defaults to `None`.
        accumulation_steps: batches per update (`GradientAccumulator`).
            Defaults to `1`.

    Returns:
        A Keras optimizer.

    Example:
    ```python
    optimizer = kerasft.optimizers.make_optimizer(
        3e-4, weight_decay=0.05, lr_schedule="cosine", warmup_ratio=0.1,
        total_steps=1000, layer_decay=0.7, groups=backbone,
        accumulation_steps=4)
    ```
    """
    if (isinstance(accumulation_steps, bool)
            or not isinstance(accumulation_steps, int) or accumulation_steps < 1):
        raise ValueError(
            "`accumulation_steps` must be an integer >= 1. Received: "
            f"accumulation_steps={accumulation_steps!r}"
        )
    if not isinstance(weight_decay, (int, float)) or weight_decay < 0:
        raise ValueError(
            f"`weight_decay` must be >= 0. Received: weight_decay={weight_decay!r}"
        )
    rate = learning_rate_schedule(learning_rate, lr_schedule, warmup_ratio,
                                  total_steps)
    optimizer = AdamW(rate, weight_decay=float(weight_decay),
                      no_weight_decay=no_weight_decay)
    if layer_decay is not None:
        from kerasft.optimizers.layerwise_lr import LayerwiseLR

        optimizer = LayerwiseLR(optimizer, layer_decay=layer_decay, groups=groups)
    if accumulation_steps > 1:
        from kerasft.optimizers.gradient_accumulator import GradientAccumulator

        optimizer = GradientAccumulator(optimizer, accumulation_steps)
    return optimizer
