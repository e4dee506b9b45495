"""Learning-rate range test: `LRFinder` callback and the `lr_find` front door."""

import dataclasses
import math

import keras
import numpy as np
import tensorflow as tf

from kerasft.callbacks import _optimizer_state


@keras.saving.register_keras_serializable(package="kerasft")
class ExponentialSweep(keras.optimizers.schedules.ExponentialDecay):
    """`min_lr * (max_lr / min_lr) ** (step / (steps - 1))`, the sweep's rate.

    Keras's `ExponentialDecay` with a growth rate (`decay_rate = max_lr /
    min_lr > 1` over `decay_steps = steps - 1`), named by the sweep's ends.
    It differs in one way: the rate is held at `max_lr` after step
    `steps - 1`, so a sweep that runs a step longer (the last batch of an
    epoch) does not overshoot `max_lr`.

    Args:
        min_lr: rate at step 0.
        max_lr: rate at step `steps - 1` (held after).
        steps: number of steps of the sweep.

    Example:

    ```python
    sweep = ExponentialSweep(1e-4, 1.0, 5)
    float(sweep(2))  # 1e-2
    ```
    """

    def __init__(self, min_lr, max_lr, steps):
        super().__init__(
            initial_learning_rate=min_lr,
            decay_steps=max(steps - 1, 1),
            decay_rate=max_lr / min_lr,
        )
        self.min_lr = min_lr
        self.max_lr = max_lr
        self.steps = steps

    def __call__(self, step):
        return super().__call__(
            keras.ops.minimum(keras.ops.cast(step, "float32"), self.decay_steps)
        )

    def get_config(self):
        return {"min_lr": self.min_lr, "max_lr": self.max_lr, "steps": self.steps}


@dataclasses.dataclass(frozen=True)
class LRFinderResult:
    """What a learning-rate range test found.

    Attributes:
        learning_rates: the rate of each recorded step.
        losses: the smoothed (bias-corrected moving average) loss per step.
        raw_losses: the batch loss per step.
        suggestion: the rate where the smoothed loss falls fastest per
            decade (steepest descent on a log-rate axis).
        diverged: whether the sweep stopped early because the loss blew up.
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    raw_losses: np.ndarray
    suggestion: float
    diverged: bool

    def plot(self, path):
        """Saves the smoothed loss against the rate (log axis) as a PNG."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6, 4))
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        ax.plot(self.learning_rates, self.losses, label="smoothed loss")
        if np.isfinite(self.suggestion):
            ax.axvline(
                self.suggestion, color="tab:red", linestyle="--",
                label=f"suggestion {self.suggestion:.2e}",
            )
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("loss")
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, format="png")
        return path


def suggest(learning_rates, losses, skip_start=None):
    """The rate at the steepest descent of `losses` over log10(rate).

    Pure function: `skip_start` leading points (default a tenth, at most 10)
    are ignored because the moving average is still settling there.
    """
    lrs = np.asarray(learning_rates, dtype="float64")
    losses = np.asarray(losses, dtype="float64")
    finite = np.isfinite(losses)
    lrs, losses = lrs[finite], losses[finite]
    if len(lrs) < 3:
        return float("nan")
    if skip_start is None:
        skip_start = min(len(lrs) // 10, 10)
    slopes = np.gradient(losses, np.log10(lrs))
    index = skip_start + int(np.argmin(slopes[skip_start:]))
    return float(lrs[index])


@keras.saving.register_keras_serializable(package="kerasft")
class LRFinder(keras.callbacks.Callback):
    """Sweeps the learning rate exponentially and records the loss per step.

    During the `fit` it runs in, the model trains with a copy of its
    optimizer whose rate grows from `min_lr` to `max_lr` over `steps`
    steps; the callback records each batch loss and its moving average and
    stops training once the smoothed loss exceeds `diverge_factor` times
    its minimum (or is not finite). At the end of that `fit` the model's
    weights (BatchNorm statistics included) and its original optimizer
    object, untouched, are put back. Read the outcome from `.result`.
    Assumes `steps_per_execution=1`; `lr_find` is the usual entry point.

    Args:
        min_lr: first rate of the sweep. Defaults to `1e-7`.
        max_lr: last rate of the sweep. Defaults to `1.0`.
        steps: number of steps of the sweep. Defaults to `100`.
        smoothing: moving-average factor of the smoothed loss, in [0, 1).
            Defaults to `0.98`.
        diverge_factor: stop once the smoothed loss exceeds this many times
            its minimum. Defaults to `4.0`.

    Example:

    ```python
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(), "mse")
    x = np.random.normal(size=(64, 4)); y = x.sum(axis=1, keepdims=True)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8).repeat()
    finder = LRFinder(min_lr=1e-5, max_lr=1.0, steps=20)
    model.fit(data, epochs=20, steps_per_epoch=1, callbacks=[finder],
              verbose=0)
    print(finder.result.suggestion)
    ```
    """

    def __init__(
        self,
        min_lr=1e-7,
        max_lr=1.0,
        steps=100,
        smoothing=0.98,
        diverge_factor=4.0,
    ):
        super().__init__()
        for name, value in (("min_lr", min_lr), ("max_lr", max_lr)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(
                    f"`{name}` must be a float > 0. Received: {name}={value!r}"
                )
        if max_lr <= min_lr:
            raise ValueError(
                "`max_lr` must be greater than `min_lr`. Received: "
                f"min_lr={min_lr}, max_lr={max_lr}"
            )
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 3:
            raise ValueError(f"`steps` must be an int >= 3. Received: steps={steps!r}")
        if not 0 <= smoothing < 1:
            raise ValueError(
                f"`smoothing` must be in [0, 1). Received: smoothing={smoothing}"
            )
        if not diverge_factor > 1:
            raise ValueError(
                "`diverge_factor` must be > 1. Received: "
                f"diverge_factor={diverge_factor}"
            )
        self.min_lr = min_lr
        self.max_lr = max_lr
        self.steps = steps
        self.smoothing = smoothing
        self.diverge_factor = diverge_factor
        self.result = None
        self._saved = None

    # === Callback hooks ===

    def on_train_begin(self, logs=None):
        model = self.model
        self._saved = (
            [np.array(v.numpy()) for v in model.weights],
            model.optimizer,
        )
        sweep = _optimizer_state.clone(model.optimizer, model.distribute_strategy)
        sweep.learning_rate = ExponentialSweep(self.min_lr, self.max_lr, self.steps)
        with model.distribute_strategy.scope():
            sweep.build(model.trainable_variables)
        model.optimizer = sweep
        model.make_train_function(force=True)
        self._rates, self._raw, self._smooth = [], [], []
        self._average, self._best, self._diverged = 0.0, math.inf, False
        self._previous_mean = 0.0

    def on_train_batch_begin(self, batch, logs=None):
        # The sweep schedule reads the optimizer's own step counter, so this
        # is the rate the coming update uses (also after skipped steps).
        self._rate = float(
            keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
        )

    def on_train_batch_end(self, batch, logs=None):
        # `logs["loss"]` is the running mean over the epoch: undo it.
        mean = float(logs["loss"])
        loss = mean if batch == 0 else (batch + 1) * mean - batch * self._previous_mean
        self._previous_mean = mean
        self._rates.append(self._rate)
        self._raw.append(loss)
        n = len(self._raw)
        self._average = self.smoothing * self._average + (1 - self.smoothing) * loss
        smooth = self._average / (1 - self.smoothing**n)
        self._smooth.append(smooth)
        if not math.isfinite(smooth) or (
            n > 1 and smooth > self.diverge_factor * self._best
        ):
            self._diverged = True
            self.model.stop_training = True
        self._best = min(self._best, smooth)
        if n >= self.steps:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        self.result = LRFinderResult(
            learning_rates=np.array(self._rates),
            losses=np.array(self._smooth),
            raw_losses=np.array(self._raw),
            suggestion=suggest(self._rates, self._smooth),
            diverged=self._diverged,
        )
        self.restore()

    def restore(self):
        """Puts the weights and the original optimizer back (idempotent)."""
        if self._saved is None:
            return
        weights, optimizer = self._saved
        for v, value in zip(self.model.weights, weights):
            v.assign(value)
        self.model.optimizer = optimizer
        self.model.make_train_function(force=True)
        self._saved = None

    def get_config(self):
        return {
            "min_lr": self.min_lr,
            "max_lr": self.max_lr,
            "steps": self.steps,
            "smoothing": self.smoothing,
            "diverge_factor": self.diverge_factor,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def lr_find(
    model,
    dataset,
    min_lr=1e-7,
    max_lr=1.0,
    steps=100,
    batch_size=32,
    smoothing=0.98,
    diverge_factor=4.0,
    plot=None,
):
    """Runs a learning-rate range test on a compiled model and undoes it.

    One short `fit` of at most `steps` batches with the rate growing
    exponentially from `min_lr` to `max_lr` (one batch per internal epoch,
    so each recorded loss is exactly that batch's). The model's weights and
    optimizer are restored afterwards, also when the sweep fails.

    Args:
        model: a compiled Keras model.
        dataset: a `tf.data.Dataset` of `(x, y)` batches (repeated as
            needed) or a tuple `(x, y)` of arrays.
        min_lr: first rate. Defaults to `1e-7`.
        max_lr: last rate. Defaults to `1.0`.
        steps: number of batches of the sweep. Defaults to `100`.
        batch_size: batch size when `dataset` is arrays. Defaults to `32`.
        smoothing: moving-average factor of the smoothed loss.
            Defaults to `0.98`.
        diverge_factor: stop once the smoothed loss exceeds this many times
            its minimum. Defaults to `4.0`.
        plot: optional path of a PNG to write. Defaults to `None`.

    Returns:
        An `LRFinderResult` with `.learning_rates`, `.losses`,
        `.suggestion` and `.plot(path)`.

    Example:

    ```python
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(), "mse")
    x = np.random.normal(size=(256, 4)); y = x.sum(axis=1, keepdims=True)
    result = kerasft.callbacks.lr_find(model, (x, y), 1e-5, 10.0, steps=60)
    print(result.suggestion)
    ```
    """
    if getattr(model, "optimizer", None) is None:
        raise ValueError(
            "`lr_find` needs a compiled model (it sweeps the rate of "
            "`model.optimizer`). Call `model.compile(...)` first."
        )
    if isinstance(dataset, tuple):
        if len(dataset) != 2:
            raise ValueError(
                "`dataset` must be a tf.data.Dataset or a tuple (x, y). "
                f"Received a tuple of length {len(dataset)}"
            )
        dataset = tf.data.Dataset.from_tensor_slices(dataset).batch(batch_size)
    elif not isinstance(dataset, tf.data.Dataset):
        raise TypeError(
            "`dataset` must be a tf.data.Dataset of (x, y) batches or a "
            f"tuple (x, y). Received: {type(dataset).__name__}"
        )
    finder = LRFinder(min_lr, max_lr, steps, smoothing, diverge_factor)
    try:
        model.fit(
            dataset.repeat(),
            epochs=steps,
            steps_per_epoch=1,
            callbacks=[finder],
            shuffle=False,
            verbose=0,
        )
    finally:
        finder.restore()
    if plot is not None:
        finder.result.plot(plot)
    return finder.result
