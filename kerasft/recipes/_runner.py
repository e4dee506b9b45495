"""The run machinery every recipe shares: folder, strategy, fit, outputs."""

import dataclasses
import json
import os
import shutil
import typing

import keras
import tensorflow as tf

from kerasft import _io
from kerasft import distribute
from kerasft.recipes import _resume


@dataclasses.dataclass
class RecipeResult:
    """What a recipe returns.

    Attributes:
        model: the trained `keras.Model` (also saved as `model.keras`).
        history: `{metric: [value per epoch]}` over every epoch of the run.
        metrics: final validation/test metrics (also in `metrics.json`).
        output_dir: the run folder.
        config: the recipe config the run used.
    """

    model: typing.Any
    history: dict
    metrics: dict
    output_dir: str
    config: typing.Any

    def __repr__(self):
        return (
            f"RecipeResult(output_dir={self.output_dir!r}, "
            f"metrics={self.metrics})"
        )


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
        self.strategy = distribute.strategy(config.strategy)
        self.chief = distribute.is_chief()
        task_type, task_id = distribute.task_info()
        self.dir = _io.worker_dir(config.output_dir, self.chief, task_type, task_id)
        self.state = _io.prepare_run_folder(self.dir, config.to_dict(), overwrite)
        self.replicas = self.strategy.num_replicas_in_sync
        self.global_batch = distribute.global_batch_size(
            config.batch_size, self.strategy
        )
        self.on_tpu = distribute._is_tpu(self.strategy)
        keras.utils.set_random_seed(config.seed)
        if self.state == "complete":
            self.policy = None
            return
        self.policy = distribute.precision(config.precision, self.strategy)
        # Outside the strategy scope: read by input pipelines on the host.
        self.epoch_variable = tf.Variable(0, dtype="int64", trainable=False)

    def reseed(self):
        """Resets Keras/TF/numpy seeds to the config's seed."""
        keras.utils.set_random_seed(self.config.seed)

    @property
    def backup_dir(self):
        return os.path.join(self.dir, _io.BACKUP_DIR)

    def scaled_rate(self, learning_rate):
        """`learning_rate` scaled by the config's rule for the replicas."""
        return distribute.scale_learning_rate(
            learning_rate, self.strategy, self.config.lr_scaling
        )

    def log(self, message):
        if self.config.verbose and self.chief:
            print(message, flush=True)

    # === Data ===

    def shuffled(self, source):
        """A `_data.Source` in an order fixed by (seed, epoch)."""
        return source.shuffled(self.config.seed, self.epoch_variable)

    def batched(self, dataset):
        """Global batches; static shapes (drop_remainder) on TPU.

        In-memory sources have no files to shard, so multi-worker runs
        shard by data (each worker keeps its part of every batch).
        """
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        return (
            dataset.batch(self.global_batch, drop_remainder=self.on_tpu)
            .prefetch(tf.data.AUTOTUNE)
            .with_options(options)
        )

    # === Training ===

    def fit(self, model, train, validation=None, callbacks=(), epochs=None):
        """`model.fit` with resume, history log, TensorBoard, early stop.

        Returns the history of every epoch of the run (restarts included).
        """
        config = self.config
        _io.write_json(os.path.join(self.dir, _io.CONFIG_FILE), config.to_dict())
        history_log = _resume.HistoryLog(self.backup_dir)
        all_callbacks = [_resume.EpochSeed(self.epoch_variable), *callbacks]
        if config.early_stopping and validation is not None:
            all_callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor="val_loss",
                    patience=config.early_stopping,
                    restore_best_weights=True,
                )
            )
        all_callbacks += [
            history_log,  # before the backup: its epoch never lags the ckpt
            _resume.AtomicBackup(self.backup_dir),
            keras.callbacks.TensorBoard(
                os.path.join(self.dir, _io.LOGS_DIR), write_graph=False
            ),
        ]
        if isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy):
            _build_for_multiworker(model, train, self.strategy)
        start, _ = _resume.latest_checkpoint(self.backup_dir)
        if start:
            self.log(f"Resuming from the backup after epoch {start}.")
        model.fit(
            train,
            validation_data=validation,
            epochs=epochs or config.epochs,
            callbacks=all_callbacks,
            verbose=config.verbose,
            shuffle=False,  # the pipelines shuffle, seeded by the epoch
        )
        return history_log.history

    # === Outputs ===

    def finish(self, model, history, metrics, plot=None, extra_json=None):
        """Writes the final files atomically, `metrics.json` last.

        Args:
            model: the trained model (`model.keras`).
            history: per-epoch logs (`history.csv`, training curves).
            metrics: final metrics (`metrics.json`).
            plot: optional `plot(directory)` writing PNG files atomically.
            extra_json: optional `{file name: data}` written as JSON.
        """
        _io.save_model(model, os.path.join(self.dir, _io.MODEL_FILE))
        _io.write_history_csv(os.path.join(self.dir, _io.HISTORY_FILE), history)
        for name, data in (extra_json or {}).items():
            _io.write_json(os.path.join(self.dir, name), data)
        if plot is not None:
            plot(self.dir)
        _io.write_json(os.path.join(self.dir, _io.METRICS_FILE), metrics)
        if os.path.isdir(self.backup_dir):
            shutil.rmtree(self.backup_dir)
        if not self.chief:
            shutil.rmtree(self.dir, ignore_errors=True)
        return RecipeResult(
            model=model,
            history=history,
            metrics=metrics,
            output_dir=self.config.output_dir,
            config=self.config,
        )

    def completed_result(self):
        """The result of a run already completed in this folder."""
        self.log(
            f"{self.dir!r} holds this run, completed; loading it (pass "
            "overwrite=True / --overwrite to train again)."
        )
        with open(os.path.join(self.dir, _io.METRICS_FILE)) as f:
            metrics = json.load(f)
        history = _io.read_history_csv(os.path.join(self.dir, _io.HISTORY_FILE))
        model = keras.models.load_model(os.path.join(self.dir, _io.MODEL_FILE))
        return RecipeResult(
            model=model,
            history=history,
            metrics=metrics,
            output_dir=self.config.output_dir,
            config=self.config,
        )


def _build_for_multiworker(model, dataset, strategy):
    """Builds the compiled model from one local batch, then skips Keras's own
    build in `fit`/`evaluate`.

    Keras 3.15's `fit` builds by `strategy.reduce`-ing the first distributed
    batch, a nested structure that MultiWorkerMirroredStrategy cannot reduce
    ("Attempt to convert a value (PerReplica...) to a Tensor"). Building
    from a local batch creates the same variables, in the strategy's scope.
    """
    batch = next(iter(dataset.take(1)))
    with strategy.scope():
        model._symbolic_build(data_batch=batch)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    _patch_multiworker_logs()


def _patch_multiworker_logs():
    """Lets Keras 3.15 `fit` reduce scalar logs across workers.

    Its TF trainer reduces every log with `strategy.reduce("MEAN", v,
    axis=0)` under MultiWorkerMirroredStrategy, which fails on the scalar
    loss/metric values ("Invalid reduction dimension 0 for input with 0
    dimensions"). Scalars are reduced with `axis=None` instead; everything
    else goes to the original function. Applied only by multi-worker runs.
    """
    from keras.src.backend.tensorflow import trainer

    original = trainer.reduce_per_replica
    if getattr(original, "_kerasft_patched", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and isinstance(
            strategy, tf.distribute.MultiWorkerMirroredStrategy
        ):
            def reduce(v):
                local = strategy.experimental_local_results(v)[0]
                if local.shape.rank == 0:
                    return strategy.reduce("MEAN", v, axis=None)
                return original(v, strategy, reduction)

            return tf.nest.map_structure(reduce, values)
        return original(values, strategy, reduction)

    reduce_per_replica._kerasft_patched = True
    trainer.reduce_per_replica = reduce_per_replica


def predictions(model, dataset):
    """`(y_true, y_pred)` numpy over a batched dataset, computed on the host.

    The model is called directly (its variables read as in cross-replica
    context), not through `predict_on_batch`, whose per-replica outputs
    come back doubled under `MirroredStrategy`; every worker of a
    multi-worker run computes the same full result.
    """
    import numpy as np

    forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    trues, preds = [], []
    for x, y in dataset:
        trues.append(tf.nest.map_structure(np.asarray, y))
        preds.append(tf.nest.map_structure(np.asarray, forward(x)))
    if not preds:
        raise ValueError("The evaluation dataset yielded no batches.")

    def concat(*parts):
        return np.concatenate(parts)

    return (
        tf.nest.map_structure(concat, *trues),
        tf.nest.map_structure(concat, *preds),
    )


def prefixed(metrics, prefix):
    """`{prefix + key: float value}` from a Keras/evaluation metrics dict."""
    out = {}
    for key, value in metrics.items():
        try:
            out[prefix + key] = float(value)
        except (TypeError, ValueError):
            out[prefix + key] = _io.to_jsonable(value)
    return out
