"""Learning-rate schedules for fine-tuning: warmup, one-cycle, STLR, cyclic,
and `StagedSchedule` (one schedule per stage of a staged run).

Each is a serializable `keras.optimizers.schedules.LearningRateSchedule` that
only computes "the rate at step t" (the optimizer's `iterations`). Keras's
own decay schedules (`CosineDecay`, `ExponentialDecay`, `PolynomialDecay`,
...) serve as the base of `WarmupSchedule`.
"""

import math

import keras
from keras import ops

_Schedule = keras.optimizers.schedules.LearningRateSchedule


def _check_positive(name, value, integer=False):
    bad = isinstance(value, bool) or not isinstance(
        value, int if integer else (int, float)
    )
    if bad or value <= 0:
        kind = "a positive integer" if integer else "a positive number"
        raise ValueError(f"`{name}` must be {kind}. Received: {name}={value!r}")


def _step(step):
    return ops.cast(step, "float32")


@keras.saving.register_keras_serializable(package="kerasft")
class WarmupSchedule(_Schedule):
    """Linear warmup from `initial` to a base schedule's first rate.

    For `step < warmup_steps` the rate rises linearly from `initial` to
    `schedule(0)`; afterwards it is `schedule(step - warmup_steps)`, so the
    base schedule starts when warmup ends (as with `CosineDecay`'s own
    `warmup_steps`).

    Args:
        schedule: a float (constant rate after warmup) or a
            `LearningRateSchedule`, e.g. `keras.optimizers.schedules.
            CosineDecay`, `ExponentialDecay`, `PolynomialDecay`.
        warmup_steps: int >= 1.
        initial: rate at step 0. Defaults to `0.0`.

    Example:

    ```python
    import keras
    from kerasft.optimizers import WarmupSchedule

    cosine = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=900)
    schedule = WarmupSchedule(cosine, warmup_steps=100)
    optimizer = keras.optimizers.AdamW(schedule)
    assert abs(float(schedule(50)) - 5e-4) < 1e-9
    ```
    """

    def __init__(self, schedule, warmup_steps, initial=0.0):
        if isinstance(schedule, dict):
            schedule = keras.saving.deserialize_keras_object(schedule)
        if isinstance(schedule, bool) or not isinstance(
            schedule, (int, float, _Schedule)
        ):
            raise TypeError(
                "`schedule` must be a float or a LearningRateSchedule. "
                f"Received: schedule={schedule!r}"
            )
        _check_positive("warmup_steps", warmup_steps, integer=True)
        if isinstance(initial, bool) or not isinstance(initial, (int, float)):
            raise TypeError(
                f"`initial` must be a float. Received: initial={initial!r}"
            )
        self.schedule = (
            float(schedule) if isinstance(schedule, (int, float)) else schedule
        )
        self.warmup_steps = warmup_steps
        self.initial = float(initial)

    def _base(self, step):
        if isinstance(self.schedule, float):
            return ops.convert_to_tensor(self.schedule, "float32")
        return ops.cast(self.schedule(step), "float32")

    def __call__(self, step):
        step = _step(step)
        warmup = float(self.warmup_steps)
        target = self._base(ops.convert_to_tensor(0, "int32"))
        warm = self.initial + (target - self.initial) * step / warmup
        after = self._base(ops.cast(ops.maximum(step - warmup, 0.0), "int32"))
        return ops.where(step < warmup, warm, after)

    def get_config(self):
        schedule = self.schedule
        if not isinstance(schedule, float):
            schedule = keras.saving.serialize_keras_object(schedule)
        return {
            "schedule": schedule,
            "warmup_steps": self.warmup_steps,
            "initial": self.initial,
        }


@keras.saving.register_keras_serializable(package="kerasft")
class OneCycle(_Schedule):
    """The one-cycle policy (Smith; PyTorch `OneCycleLR`, two phases).

    Rises from `max_rate / div_factor` to `max_rate` over the first
    `pct_start` of `total_steps`, then falls to
    `max_rate / div_factor / final_div_factor` at step `total_steps - 1`
    (and stays there). Each phase anneals by cosine or linearly; phase one
    ends at step `pct_start * total_steps - 1`, as in PyTorch.

    Args:
        max_rate: the peak rate.
        total_steps: int, the number of optimizer updates of the run.
        pct_start: fraction of the run spent rising, in (0, 1).
            Defaults to `0.25`.
        div_factor: start rate is `max_rate / div_factor`. Defaults to `25.0`.
        final_div_factor: end rate is the start rate divided by this.
            Defaults to `1e4`.
        anneal: `"cos"` or `"linear"`. Defaults to `"cos"`.

    Example:

    ```python
    from kerasft.optimizers import OneCycle

    schedule = OneCycle(1.0, total_steps=11, pct_start=0.5, div_factor=10.0,
                        final_div_factor=10.0, anneal="linear")
    assert abs(float(schedule(0)) - 0.1) < 1e-6
    assert abs(float(schedule(4.5)) - 1.0) < 1e-6
    ```
    """

    def __init__(self, max_rate, total_steps, pct_start=0.25, div_factor=25.0,
                 final_div_factor=1e4, anneal="cos"):
        _check_positive("max_rate", max_rate)
        _check_positive("total_steps", total_steps, integer=True)
        if not 0 < pct_start < 1:
            raise ValueError(
                "`pct_start` must be in (0, 1). Received: "
                f"pct_start={pct_start!r}"
            )
        _check_positive("div_factor", div_factor)
        _check_positive("final_div_factor", final_div_factor)
        if anneal not in ("cos", "linear"):
            raise ValueError(
                "`anneal` must be 'cos' or 'linear'. Received: "
                f"anneal={anneal!r}"
            )
        self.max_rate = float(max_rate)
        self.total_steps = total_steps
        self.pct_start = float(pct_start)
        self.div_factor = float(div_factor)
        self.final_div_factor = float(final_div_factor)
        self.anneal = anneal

    def _anneal(self, start, end, pct):
        pct = ops.clip(pct, 0.0, 1.0)
        if self.anneal == "linear":
            return start + (end - start) * pct
        return end + (start - end) / 2.0 * (1.0 + ops.cos(math.pi * pct))

    def __call__(self, step):
        step = _step(step)
        initial = self.max_rate / self.div_factor
        final = initial / self.final_div_factor
        up_end = self.pct_start * self.total_steps - 1.0
        down_end = self.total_steps - 1.0
        up = self._anneal(initial, self.max_rate, step / max(up_end, 1e-12))
        down = self._anneal(
            self.max_rate,
            final,
            (step - up_end) / max(down_end - up_end, 1e-12),
        )
        return ops.where(step <= up_end, up, down)

    def get_config(self):
        return {
            "max_rate": self.max_rate,
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
            "anneal": self.anneal,
        }


@keras.saving.register_keras_serializable(package="kerasft")
class SlantedTriangular(_Schedule):
    """ULMFiT's slanted triangular rate (Howard & Ruder, 2018).

    With `cut = floor(total_steps * cut_frac)`:
    `p = t / cut` for `t < cut`, else
    `p = 1 - (t - cut) / (cut * (1 / cut_frac - 1))` (clipped at 0), and the
    rate is `max_rate * (1 + p * (ratio - 1)) / ratio`: a short linear rise
    to `max_rate`, then a long linear fall to `max_rate / ratio`.

    Args:
        max_rate: the peak rate.
        total_steps: int, the number of optimizer updates of the run.
        cut_frac: fraction of steps spent rising, in (0, 1). Defaults to
            `0.1`.
        ratio: how much smaller the lowest rate is than `max_rate`.
            Defaults to `32.0`.

    Example:

    ```python
    from kerasft.optimizers import SlantedTriangular

    schedule = SlantedTriangular(0.01, total_steps=100)
    assert abs(float(schedule(10)) - 0.01) < 1e-9
    ```
    """

    def __init__(self, max_rate, total_steps, cut_frac=0.1, ratio=32.0):
        _check_positive("max_rate", max_rate)
        _check_positive("total_steps", total_steps, integer=True)
        if not 0 < cut_frac < 1:
            raise ValueError(
                "`cut_frac` must be in (0, 1). Received: "
                f"cut_frac={cut_frac!r}"
            )
        if math.floor(total_steps * cut_frac) < 1:
            raise ValueError(
                "`total_steps * cut_frac` must be >= 1 so the rise has a "
                f"step. Received: total_steps={total_steps}, "
                f"cut_frac={cut_frac}"
            )
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or (
            ratio < 1
        ):
            raise ValueError(f"`ratio` must be >= 1. Received: ratio={ratio!r}")
        self.max_rate = float(max_rate)
        self.total_steps = total_steps
        self.cut_frac = float(cut_frac)
        self.ratio = float(ratio)

    def __call__(self, step):
        step = _step(step)
        cut = float(math.floor(self.total_steps * self.cut_frac))
        rise = step / cut
        fall = 1.0 - (step - cut) / (cut * (1.0 / self.cut_frac - 1.0))
        p = ops.maximum(ops.where(step < cut, rise, fall), 0.0)
        return self.max_rate * (1.0 + p * (self.ratio - 1.0)) / self.ratio

    def get_config(self):
        return {
            "max_rate": self.max_rate,
            "total_steps": self.total_steps,
            "cut_frac": self.cut_frac,
            "ratio": self.ratio,
        }


@keras.saving.register_keras_serializable(package="kerasft")
class Cyclic(_Schedule):
    """Cyclical learning rates (Smith, 2017): triangular, triangular2,
    exp_range.

    With `cycle = floor(1 + t / (2 * step_size))` and
    `x = |t / step_size - 2 * cycle + 1|`, the rate is
    `min_rate + (max_rate - min_rate) * max(0, 1 - x) * scale`, where `scale`
    is 1 (`"triangular"`), `1 / 2**(cycle - 1)` (`"triangular2"`) or
    `gamma**t` (`"exp_range"`).

    Args:
        min_rate: the lowest rate, at the start of each cycle.
        max_rate: the highest rate, `step_size` steps into each cycle.
        step_size: int, half a cycle in steps.
        mode: `"triangular"`, `"triangular2"` or `"exp_range"`. Defaults to
            `"triangular"`.
        gamma: decay per step for `"exp_range"`, in (0, 1]. Defaults to
            `1.0`.

    Example:

    ```python
    from kerasft.optimizers import Cyclic

    schedule = Cyclic(0.1, 1.0, step_size=4)
    assert abs(float(schedule(2)) - 0.55) < 1e-6
    ```
    """

    _MODES = ("triangular", "triangular2", "exp_range")

    def __init__(self, min_rate, max_rate, step_size, mode="triangular",
                 gamma=1.0):
        if isinstance(min_rate, bool) or not isinstance(
            min_rate, (int, float)
        ) or min_rate < 0:
            raise ValueError(
                f"`min_rate` must be >= 0. Received: min_rate={min_rate!r}"
            )
        _check_positive("max_rate", max_rate)
        if max_rate < min_rate:
            raise ValueError(
                "`max_rate` must be >= `min_rate`. Received: "
                f"min_rate={min_rate}, max_rate={max_rate}"
            )
        _check_positive("step_size", step_size, integer=True)
        if mode not in self._MODES:
            raise ValueError(
                f"`mode` must be one of {self._MODES}. Received: mode={mode!r}"
            )
        if not 0 < gamma <= 1:
            raise ValueError(
                f"`gamma` must be in (0, 1]. Received: gamma={gamma!r}"
            )
        self.min_rate = float(min_rate)
        self.max_rate = float(max_rate)
        self.step_size = step_size
        self.mode = mode
        self.gamma = float(gamma)

    def __call__(self, step):
        step = _step(step)
        size = float(self.step_size)
        cycle = ops.floor(1.0 + step / (2.0 * size))
        x = ops.abs(step / size - 2.0 * cycle + 1.0)
        if self.mode == "triangular":
            scale = 1.0
        elif self.mode == "triangular2":
            scale = ops.power(2.0, -(cycle - 1.0))
        else:
            scale = ops.power(self.gamma, step)
        span = self.max_rate - self.min_rate
        return self.min_rate + span * ops.maximum(0.0, 1.0 - x) * scale

    def get_config(self):
        return {
            "min_rate": self.min_rate,
            "max_rate": self.max_rate,
            "step_size": self.step_size,
            "mode": self.mode,
            "gamma": self.gamma,
        }


@keras.saving.register_keras_serializable(package="kerasft")
class StagedSchedule(_Schedule):
    """One schedule per stage of a run, each restarted at its stage's start.

    Stage 0 covers steps `[0, boundaries[0])`, stage i steps
    `[boundaries[i-1], boundaries[i])`, the last stage every step from
    `boundaries[-1]` on. At step t inside stage i the rate is
    `schedules[i](t - start_i)`: each stage warms up and decays over its own
    steps at its own peak rate, as fastai's `fine_tune` runs one one-cycle
    per stage. Staged fine-tuning (`ProgressiveUnfreeze`, the recipes'
    `mode="partial"/"progressive"`) takes its stage rates from here, since
    the optimizer's rate cannot be reassigned once it is a schedule.

    Args:
        boundaries: the first step of every stage but the first: increasing
            ints >= 0 (a stage may be empty when two are equal).
        schedules: `len(boundaries) + 1` floats (constant rates) or
            `LearningRateSchedule`s.

    Example:

    ```python
    import keras
    from kerasft.optimizers import StagedSchedule

    schedule = StagedSchedule(
        [10], [keras.optimizers.schedules.CosineDecay(1e-3, 10),
               keras.optimizers.schedules.CosineDecay(1e-4, 20)])
    assert abs(float(schedule(10)) - 1e-4) < 1e-9
    ```
    """

    def __init__(self, boundaries, schedules):
        if not isinstance(boundaries, (list, tuple)) or any(
            isinstance(b, bool) or not isinstance(b, int) or b < 0
            for b in boundaries
        ) or list(boundaries) != sorted(boundaries):
            raise ValueError(
                "`boundaries` must be a list of increasing integers >= 0. "
                f"Received: boundaries={boundaries!r}"
            )
        if not isinstance(schedules, (list, tuple)) or (
            len(schedules) != len(boundaries) + 1
        ):
            raise ValueError(
                "`schedules` must be a list of len(boundaries) + 1 = "
                f"{len(boundaries) + 1} rates or schedules, one per stage. "
                f"Received: schedules={schedules!r}"
            )
        resolved = []
        for i, schedule in enumerate(schedules):
            if isinstance(schedule, dict):
                schedule = keras.saving.deserialize_keras_object(schedule)
            if isinstance(schedule, bool) or not isinstance(
                schedule, (int, float, _Schedule)
            ):
                raise TypeError(
                    f"`schedules[{i}]` must be a float or a "
                    f"LearningRateSchedule. Received: {schedule!r}"
                )
            resolved.append(
                float(schedule) if isinstance(schedule, (int, float))
                else schedule
            )
        self.boundaries = [int(b) for b in boundaries]
        self.schedules = resolved

    def _stage_rate(self, index, step):
        schedule = self.schedules[index]
        if isinstance(schedule, float):
            return ops.convert_to_tensor(schedule, "float32")
        return ops.cast(schedule(step), "float32")

    def __call__(self, step):
        step = _step(step)
        rate = self._stage_rate(0, step)
        for i, start in enumerate(self.boundaries, start=1):
            local = ops.maximum(step - float(start), 0.0)
            rate = ops.where(step >= float(start), self._stage_rate(i, local),
                             rate)
        return rate

    def get_config(self):
        return {
            "boundaries": list(self.boundaries),
            "schedules": [
                s if isinstance(s, float)
                else keras.saving.serialize_keras_object(s)
                for s in self.schedules
            ],
        }
