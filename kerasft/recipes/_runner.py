"""The run machinery every recipe shares: folder, strategy, fit, outputs."""

import contextlib
import dataclasses
import os
import shutil
import sys
import typing

import keras
import tensorflow as tf

from kerasft import _io
from kerasft import _keras_compat
from kerasft import distribute
from kerasft._version import __version__
from kerasft.recipes import _resume
from kerasft.recipes import registry


@dataclasses.dataclass
class RecipeResult:
    """What a recipe returns.

    Attributes:
        model: the trained `keras.Model` (also saved as `model.keras`).
        history: `{metric: [value per epoch]}` over every epoch of the run.
        metrics: final validation/test metrics (also in `metrics.json`).
        output_dir: the run folder.
        config: the recipe config the run used.
        skipped_files: unreadable input files the run left out (also
            `metrics["skipped_files"]` for image recipes).
    """

    model: typing.Any
    history: dict
    metrics: dict
    output_dir: str
    config: typing.Any
    skipped_files: list = dataclasses.field(default_factory=list)

    def __repr__(self):
        return (f"RecipeResult(output_dir={self.output_dir!r}, "
                f"metrics={self.metrics})")


class Run:
    """One recipe run: checks the folder, sets strategy and precision.

    Creating a `Run` validates the output folder before anything trains
    (another run's folder is refused unless `overwrite`), resolves the
    strategy (before any other TensorFlow work, as `TF_CONFIG` requires),
    sets the precision policy and the seed.

    Args:
        config: a `RecipeConfig`.
        overwrite: replace another run's outputs in `config.output_dir`.
    """

    def __init__(self, config, overwrite=False):
        self.config = config
        # Keras workarounds scoped to this run (see `_fit_scope`).
        self._keras_scopes = contextlib.ExitStack()
        self._scoped_models = set()
        self.strategy = distribute.strategy(config.strategy)
        self.chief = distribute.is_chief()
        task_type, task_id = distribute.task_info()
        self.dir = _io.worker_dir(config.output_dir, self.chief, task_type,
                                  task_id)
        # The recipe, the options and a fingerprint of the data (see
        # kerasft._io); `kerasft.load` reads the recipe back.
        self.recipe = registry.task_of_config(config)
        self.identity = {
            "recipe": self.recipe,
            "kerasft_version": __version__,
            **config.identity()
        }
        self.state = _io.prepare_run_folder(self.dir, self.identity, overwrite,
                                            log=self.notice)
        from kerasft.recipes.configs import ignored_values

        for name, reason in ignored_values(config).items():
            argument = _io.argument(name, getattr(config, name))
            self.notice(f"note: {argument} is ignored: {reason}.")
        self.replicas = self.strategy.num_replicas_in_sync
        self.global_batch = distribute.global_batch_size(
            config.batch_size, self.strategy)
        self.on_tpu = distribute.is_tpu(self.strategy)
        keras.utils.set_random_seed(config.seed)
        if self.state == "complete":
            self.policy = None
            return
        self.policy = distribute.precision(config.precision, self.strategy)
        # Outside the strategy scope: read by input pipelines on the host.
        self.epoch_variable = tf.Variable(0, dtype="int64", trainable=False)

    def reseed(self):
        keras.utils.set_random_seed(self.config.seed)

    @property
    def backup_dir(self):
        return os.path.join(self.dir, _io.BACKUP_DIR)

    def scaled_rate(self, learning_rate):
        return distribute.scale_learning_rate(learning_rate, self.strategy,
                                              self.config.lr_scaling)

    def notice(self, message):
        """A one-line notice about the run folder, shown even when quiet."""
        if self.chief:
            _io.notify(message)

    def log(self, message):
        if self.config.verbose and self.chief:
            print(message, flush=True)

    def optimizer(self, groups=None, total_steps=None, learning_rate=None,
                  stage_rates=None):
        """The config's optimizer (`kerasft.optimizers.make_optimizer`).

        Args:
            groups: the groups `layer_decay` counts. Defaults to `None`.
            total_steps: batches in the whole run, for schedules and
                warmup. Defaults to `None`.
            learning_rate: the base rate before replica scaling. Defaults
                to `None` (the config's `learning_rate`).
            stage_rates: `{epoch: base rate}` of a staged run: the
                schedule and warmup then run once per stage, over its own
                steps at its rate. Defaults to `None`.
        """
        from kerasft.optimizers import make_optimizer

        config = self.config
        if total_steps is None and (config.lr_schedule != "constant" or
                                    config.warmup_ratio or
                                    stage_rates is not None):
            raise ValueError(
                f"`lr_schedule={config.lr_schedule!r}` with "
                f"`warmup_ratio={config.warmup_ratio}` needs the number of "
                "training steps, which this run cannot tell from its training "
                "data (its size is unknown). Use `lr_schedule='constant'` and "
                "`warmup_ratio=0`, or training data of known size.")
        accumulation = config.accumulation_steps
        updates = None
        if total_steps is not None:
            updates = max(1, total_steps // accumulation)
        if stage_rates is None:
            if learning_rate is None:
                learning_rate = config.learning_rate
            rate = self.scaled_rate(learning_rate)
        else:
            rate = {}
            for epoch in sorted(stage_rates):
                step = (epoch * total_steps // config.epochs) // accumulation
                # Stages at or past the end of the run never start.
                if epoch == 0 or (epoch < config.epochs and step < updates):
                    rate[step] = self.scaled_rate(stage_rates[epoch])
        return make_optimizer(rate, weight_decay=config.weight_decay,
                              no_weight_decay=config.no_weight_decay_rules(),
                              lr_schedule=config.lr_schedule,
                              warmup_ratio=config.warmup_ratio,
                              total_steps=updates,
                              layer_decay=config.layer_decay, groups=groups,
                              accumulation_steps=accumulation)

    # === Data ===

    def shuffled(self, source):
        """A `_data.Source` in an order fixed by (seed, epoch)."""
        return source.shuffled(self.config.seed, self.epoch_variable)

    def batched(self, dataset):
        """Global batches, sharded by data (`_data.by_data`); static shapes
        (drop_remainder) on TPU."""
        from kerasft.recipes._data import by_data

        return by_data(
            dataset.batch(self.global_batch, drop_remainder=self.on_tpu)
            .prefetch(tf.data.AUTOTUNE))

    # === Training ===

    def fit(self, model, train, validation=None, callbacks=(), epochs=None,
            class_weight=None):
        """`model.fit` with resume, history log, TensorBoard, early stop.

        Returns the history of every epoch of the run (restarts included).
        """
        config = self.config
        _io.write_json(os.path.join(self.dir, _io.CONFIG_FILE), self.identity)
        backup = _resume.AtomicBackup(self.backup_dir, log=self.log)
        # The pipelines seed their shuffle with it: the order of epoch `e`
        # is the same whether or not the run restarted.
        epoch_seed = keras.callbacks.LambdaCallback(
            on_epoch_begin=lambda epoch, _: self.epoch_variable.assign(epoch))
        all_callbacks = [epoch_seed, *callbacks]
        if config.early_stopping and validation is not None:
            all_callbacks.append(
                keras.callbacks.EarlyStopping(monitor="val_loss",
                                              patience=config.early_stopping,
                                              restore_best_weights=True))
        all_callbacks += [
            backup,
            keras.callbacks.TensorBoard(os.path.join(self.dir, _io.LOGS_DIR),
                                        write_graph=False)
        ]
        with self._fit_scope(model, train):
            # shuffle=False: the pipelines shuffle, seeded by the epoch.
            model.fit(train, validation_data=validation,
                      epochs=epochs or config.epochs, callbacks=all_callbacks,
                      verbose=fit_verbosity(config.verbose), shuffle=False,
                      class_weight=class_weight)
        return backup.history

    @contextlib.contextmanager
    def _fit_scope(self, model, train):
        """Enters `_multiworker_scope` for `model` under multi-worker runs;
        it stays open until `close` (in `finish`, or when `fit` fails)."""
        if (isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy)
                and id(model) not in self._scoped_models):
            self._keras_scopes.enter_context(
                _multiworker_scope(model, train, self.strategy))
            self._scoped_models.add(id(model))
        try:
            yield
        except BaseException:
            self.close()
            raise

    def close(self):
        """Undoes the run's Keras workarounds (`finish` calls it)."""
        self._keras_scopes.close()
        self._scoped_models.clear()

    # === Outputs ===

    def finish(self, model, history, metrics, plot=None, extra_json=None,
               skipped_files=None, save=None):
        """Writes the final files atomically, `metrics.json` last.

        Args:
            model: the trained model (`model.keras`).
            history: per-epoch logs (`history.csv`, training curves).
            metrics: final metrics (`metrics.json`).
            plot: optional `plot(directory)` writing PNG files atomically.
            extra_json: optional `{file name: data}` written as JSON.
            skipped_files: unreadable input files left out; when there are
                any, `metrics.json` lists them as `"skipped_files"` (absent
                otherwise, so the metrics of a clean run are all numbers).
            save: optional `save(directory)` writing the model's files
                atomically instead of `model.keras` (a generative run's
                unmerged LoRA adapters alone).
        """
        self.close()
        if skipped_files:
            metrics = {**metrics, "skipped_files": list(skipped_files)}
        if save is None:
            _io.save_model(model, os.path.join(self.dir, _io.MODEL_FILE))
        else:
            save(self.dir)
        _io.write_history_csv(os.path.join(self.dir, _io.HISTORY_FILE), history)
        for name, data in (extra_json or {}).items():
            _io.write_json(os.path.join(self.dir, name), data)
        if plot is not None:
            plot(self.dir)
        metrics = {**metrics, **self._export(model, extra_json)}
        metrics = with_training_metrics(metrics, history, self.log,
                                        self.config.field_names())
        _io.write_json(os.path.join(self.dir, _io.METRICS_FILE), metrics)
        if os.path.isdir(self.backup_dir):
            shutil.rmtree(self.backup_dir)
        _io.unlock_run_folder(self.dir)  # it holds a finished run now
        if not self.chief:
            shutil.rmtree(self.dir, ignore_errors=True)
        return self._result(model, history, metrics)

    def _result(self, model, history, metrics):
        skipped = list(metrics.get("skipped_files", []))
        config = self.config
        return RecipeResult(model, history, metrics, config.output_dir, config,
                            skipped)

    def _export(self, model, extra_json):
        """The config's `export` formats next to `model.keras` (chief only);
        a failed format goes in `"export_errors"`, not failing the run."""
        from kerasft import exporting
        from kerasft.loading import class_names_of

        formats = exporting.export_formats(self.config.export)
        if not formats or not self.chief:
            return {}
        names = class_names_of((extra_json or {}).get("labels.json"))
        errors = {}
        for format in formats:
            try:
                exporting.export_run(self.dir, model, [format], names)
            except ValueError as e:
                self.notice(f"Export to {format} failed: {e}")
                errors[format] = str(e)
        return {"export_errors": errors} if errors else {}

    def completed_result(self):
        """The result of a run already completed in this folder, read back
        by `kerasft.load` (the one reader of run folders)."""
        from kerasft import loading

        self.notice(
            f"{self.dir!r} holds this run (same options and data), "
            f"completed; loading it. Pass {_io.argument('overwrite', True)} "
            "to train again.")
        loaded = loading.load(self.dir, recipe=self.recipe, compile=True)
        history = _io.read_history_csv(os.path.join(self.dir, _io.HISTORY_FILE))
        _io.unlock_run_folder(self.dir)
        return self._result(loaded.keras_model, history, loaded.metrics)


def fit_verbosity(verbose):
    """`fit`'s `verbose`: one line per epoch (2) instead of progress bars
    when stdout is not a terminal, as Keras's "auto" intends."""
    try:
        tty = sys.stdout.isatty()
    except (AttributeError, ValueError):  # replaced or closed stdout
        tty = False
    return 2 if verbose == 1 and not tty else verbose


def with_training_metrics(metrics, history, log=print, fields=()):
    """`metrics`, plus the last epoch's `train_<name>` metrics and a
    `"warning"` (also logged) when it holds no `val_`/`test_` metric."""
    if any(k.startswith(("val_", "test_")) for k in metrics) or not history:
        return metrics
    out = dict(metrics)
    for key, values in history.items():
        if not key.startswith("val_") and values and values[-1] is not None:
            out[f"train_{key}"] = float(values[-1])
    ways = [_io.argument("validation")]
    if "validation_split" in fields:
        ways.append(_io.argument("validation_split"))
    out["warning"] = (
        "No data was held out: these are the final training metrics, not an "
        f"estimate on unseen data. Pass {' or '.join(ways)} to hold some out.")
    log(f"Warning: {out['warning']}")
    return out


@contextlib.contextmanager
def _multiworker_scope(model, dataset, strategy):
    """Works around two Keras 3.15 multi-worker bugs in `fit`/`evaluate`
    until the scope ends.

    - `fit` builds the model by reducing the first distributed batch, which
      MultiWorkerMirroredStrategy cannot ("Attempt to convert a value
      (PerReplica...)"): it is built from one local batch instead.
    - The TF trainer reduces logs with `axis=0`, which fails on scalars
      ("Invalid reduction dimension 0"): scalars use `axis=None`.
    """
    batch = next(iter(dataset.take(1)))
    with strategy.scope():
        _keras_compat.symbolic_build(model, batch)
    with (_keras_compat.fit_without_symbolic_build(model),
          _keras_compat.replaced_reduce_per_replica(_scalar_logs_reducer)):
        yield


def _scalar_logs_reducer(original):

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and isinstance(
                strategy, tf.distribute.MultiWorkerMirroredStrategy):

            def reduce(v):
                local = strategy.experimental_local_results(v)[0]
                if local.shape.rank == 0:
                    return strategy.reduce("MEAN", v, axis=None)
                return original(v, strategy, reduction)

            return tf.nest.map_structure(reduce, values)
        return original(values, strategy, reduction)

    return reduce_per_replica


def head_scores(head, y_true, y_pred):
    """The head's loss and metrics on one split's predictions.

    Keys are those `model.evaluate(..., return_dict=True)` gives for a
    model compiled with `head.compile_kwargs()`: `loss`, and for dict
    outputs `<output>_loss` and `<output>_<metric>`, else `<metric>`. The
    loss is the mean over the whole split (summed over outputs, unweighted
    as the heads compile), without the weights' regularization terms.

    Args:
        head: the `kerasft.heads.Head` the model was compiled with.
        y_true: labels from `kerasft.evaluation.collect_predictions`.
        y_pred: predictions from the same pass.

    Returns:
        `{name: float}`.
    """
    losses, metrics = head.loss, head.metrics
    if not isinstance(y_pred, dict):
        losses, metrics = {None: losses}, {None: metrics}
        y_true, y_pred = {None: y_true}, {None: y_pred}
    scores = {}
    for output, loss in losses.items():
        value = keras.losses.get(loss)(y_true[output], y_pred[output])
        scores[output] = float(keras.ops.convert_to_numpy(value))
    out = {"loss": sum(scores.values())}
    if None not in scores:
        out.update({
            f"{output}_loss": value
            for output, value in scores.items()
        })
    for output, group in metrics.items():
        for metric in group:
            metric.update_state(y_true[output], y_pred[output])
            name = metric.name if output is None else f"{output}_{metric.name}"
            out[name] = float(keras.ops.convert_to_numpy(metric.result()))
    return out


def prefixed(metrics, prefix):
    """`{prefix + key: float value}` from a Keras/evaluation metrics dict."""
    out = {}
    for key, value in metrics.items():
        try:
            out[prefix + key] = float(value)
        except (TypeError, ValueError):
            out[prefix + key] = _io.to_jsonable(value)
    return out
