"""`GradientAccumulator`: one optimizer update per `steps` batches."""

import keras
from keras import ops

from kerasft import _keras_compat
from kerasft.optimizers._wrapper import DelegatingOptimizer
from kerasft.optimizers._wrapper import present_gradients
from kerasft.optimizers._wrapper import variable_path


@keras.saving.register_keras_serializable(package="kerasft")
class GradientAccumulator(DelegatingOptimizer, keras.optimizers.Optimizer):
    """Applies the mean gradient of `steps` batches as one update.

    Each batch's gradients are added to per-replica accumulators (no
    cross-device traffic); every `steps`-th batch the wrapped optimizer is
    applied once with the accumulated sum divided by `steps`, then the
    accumulators are cleared. With a loss averaged over the batch, `steps`
    batches of size `B` give the update of one batch of `steps * B`.

    `iterations` and `learning_rate` are the wrapped optimizer's:
    `iterations` counts real updates, so schedules and Adam's bias correction
    see one step per update, not per batch. Clipping and weight decay apply
    once per update, to the mean gradient.

    Each update is the wrapped optimizer's own `apply`, so it behaves as
    that optimizer: its settings and methods (`weight_decay`,
    `exclude_from_weight_decay`, clipping, EMA settings,
    `finalize_variable_values`) are reachable on the wrapper, and
    `variables`, `set_weights` and saving cover the accumulators and the
    wrapped optimizer's state.

    Unlike Keras's own `gradient_accumulation_steps` (which fails under
    `MirroredStrategy` with "`merge_call` called while defining a new
    graph"), the conditional update runs in cross-replica context, so it
    works under `tf.distribute` strategies. Under a `mixed_float16` policy
    `compile` wraps it in `LossScaleOptimizer`: batches with non-finite
    gradients are skipped (not counted) and the accumulators hold unscaled
    gradients. Compose with `LayerwiseLR` as
    `GradientAccumulator(LayerwiseLR(...), steps)`.

    Args:
        optimizer: the Keras optimizer to apply (Adam, SGD, ...) or a
            `kerasft.optimizers.LayerwiseLR`.
        steps: int >= 1, batches per update.
        name: optimizer name. Defaults to `None`.

    Example:

    ```python
    import keras
    import kerasft

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    optimizer = kerasft.optimizers.GradientAccumulator(
        keras.optimizers.Adam(1e-3), steps=4
    )
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(keras.random.normal((32, 4)), keras.random.normal((32, 1)),
              batch_size=8, verbose=0)
    assert int(optimizer.iterations) == 1
    ```
    """

    def __init__(self, optimizer, steps, name=None, **kwargs):
        if isinstance(optimizer, dict):
            optimizer = keras.saving.deserialize_keras_object(optimizer)
        if isinstance(
            optimizer,
            (keras.optimizers.LossScaleOptimizer, GradientAccumulator),
        ) or not isinstance(optimizer, keras.optimizers.Optimizer):
            raise TypeError(
                "`optimizer` must be a Keras optimizer (Adam, SGD, ...) or a "
                "`LayerwiseLR`. `LossScaleOptimizer` goes outside "
                "(`compile` adds it under mixed_float16). "
                f"Received: optimizer={optimizer!r}"
            )
        if optimizer.gradient_accumulation_steps:
            raise ValueError(
                "Set accumulation on `GradientAccumulator` only, not also "
                "`gradient_accumulation_steps` on the wrapped optimizer. "
                "Received: gradient_accumulation_steps="
                f"{optimizer.gradient_accumulation_steps}"
            )
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(
                f"`steps` must be an integer >= 1. Received: steps={steps!r}"
            )
        if kwargs:
            raise ValueError(
                "`GradientAccumulator` takes no base optimizer arguments "
                "(set them on the wrapped optimizer). "
                f"Received: {sorted(kwargs)}"
            )
        # The wrapper's own step and rate are unused: `iterations` and
        # `learning_rate` are the wrapped optimizer's.
        super().__init__(learning_rate=0.0, name=name)
        self.inner_optimizer = optimizer
        self.steps = steps

    def _build_own(self, var_list):
        self._accumulator_of = {}
        accumulators = []
        with keras.name_scope(self.name, caller=self):
            for v in var_list:
                # On-read: each replica sums its own gradients locally;
                # reading in cross-replica context (saving) sums replicas.
                acc = keras.Variable(
                    initializer="zeros",
                    shape=v.shape,
                    dtype=v.dtype,
                    trainable=False,
                    synchronization="on_read",
                    aggregation="sum",
                    name=variable_path(v).replace("/", "_") + "_accumulator",
                )
                self._accumulator_of[self._variable_key(v)] = acc
                accumulators.append(acc)
            self._batches = keras.Variable(
                0,
                dtype="int",
                trainable=False,
                aggregation="only_first_replica",
                name="batches",
            )
        self._accumulators = accumulators

    def _own_variables(self):
        # The accumulators and the batch counter; `variables` adds the
        # wrapped optimizer's.
        if not self.built:
            return []
        return list(self._accumulators) + [self._batches]

    # === Update ===

    def apply(self, grads, trainable_variables=None):
        grads = list(grads)
        if len(grads) == 0:
            return
        variables = self._known_variables(grads, trainable_variables)
        pairs = present_gradients(grads, variables)
        with keras.name_scope(self.name, caller=self):
            for g, v in pairs:
                acc = self._accumulator_of[self._variable_key(v)]
                acc.assign_add(ops.cast(_dense(g), acc.dtype))
            self._batches.assign_add(1)
            variables = [v for _, v in pairs]
            if keras.backend.backend() == "tensorflow":
                self._tf_maybe_update(variables)
            else:
                self._maybe_update(variables)

    def _is_update_step(self):
        return ops.equal(ops.mod(self._batches, self.steps), 0)

    def _update(self, trainable_variables):
        """Applies the mean gradient and clears the accumulators."""
        accumulators = [
            self._accumulator_of[self._variable_key(v)]
            for v in trainable_variables
        ]
        # The wrapped optimizer's own `apply`: clipping, weight decay, EMA,
        # its per-step state and step counter, once per update.
        mean = [ops.divide(acc.value, self.steps) for acc in accumulators]
        self.inner_optimizer.apply(mean, trainable_variables)
        for acc in accumulators:
            acc.assign(ops.zeros(acc.shape, acc.dtype))

    def _maybe_update(self, trainable_variables):
        ops.cond(
            self._is_update_step(),
            lambda: self._update(trainable_variables),
            lambda: None,
        )

    def _tf_maybe_update(self, trainable_variables):
        import tensorflow as tf

        if _keras_compat.strategy_supports_no_merge_call():
            self._maybe_update(trainable_variables)
            return

        def cross_replica(distribution, trainable_variables):
            # A `merge_call` inside a conditional in replica context fails;
            # here the conditional is in cross-replica context and each
            # replica then applies its own accumulated gradients (the wrapped
            # optimizer all-reduces them).
            def update():
                distribution.extended.call_for_each_replica(
                    self._update, args=(trainable_variables,)
                )

            ops.cond(self._is_update_step(), update, lambda: None)

        tf.distribute.get_replica_context().merge_call(
            cross_replica, args=(trainable_variables,)
        )

    # === Config ===

    def get_config(self):
        return {
            "optimizer": keras.saving.serialize_keras_object(
                self.inner_optimizer
            ),
            "steps": self.steps,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["optimizer"] = keras.saving.deserialize_keras_object(
            config["optimizer"], custom_objects=custom_objects
        )
        return cls(**config)


def _dense(gradient):
    """Sparse gradients (`IndexedSlices`) as dense tensors."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if isinstance(gradient, tf.IndexedSlices):
            return tf.convert_to_tensor(gradient)
    return gradient

