"""`LayerwiseLR`: one optimizer, a learning rate per group of variables."""

import keras
from keras import ops
from keras.src.utils import tracking

from kerasft import _grouping
from kerasft.optimizers import _rate_plan
from kerasft.optimizers._wrapper import DelegatingOptimizer


def _is_plain_optimizer(optimizer):
    """True for optimizers that implement `update_step` (not wrappers)."""
    base = keras.optimizers.Optimizer.update_step
    return (
        isinstance(optimizer, keras.optimizers.Optimizer)
        and type(optimizer).update_step is not base
        and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    )


@keras.saving.register_keras_serializable(package="kerasft")
class LayerwiseLR(DelegatingOptimizer, keras.optimizers.Optimizer):
    """Wraps an optimizer to give each group of variables its own rate.

    The wrapped optimizer's update rule runs for every variable with that
    variable's learning rate: the *step* is scaled, not the gradient (Adam
    is invariant to gradient scale), and decoupled weight decay uses the same
    scaled rate (`w -= w * weight_decay * rate`). A variable whose rate is 0
    is left bit-identical, its optimizer slots too.

    Rates. `learning_rate` is the wrapped optimizer's rate (the *base*
    rate): reading, setting it, `ReduceLROnPlateau` and
    `LearningRateScheduler` act on it and every group follows.
    - A float group rate `r` is the multiplier `r / base`, where `base` is the
      wrapped optimizer's learning rate when `LayerwiseLR` is created: the
      group starts at `r` and moves with the base rate. If the base rate is a
      schedule, a float group rate is a constant.
    - A `LearningRateSchedule` group rate is used as-is, at the optimizer's
      step.
    - `layer_decay=d`: backbone group `i`, counted from the top starting at
      1, gets the base rate times `d**i`; the head gets the base rate. Explicit
      `learning_rates` entries override it.
    - Variables matched by nothing get the base rate.

    Keys of `learning_rates`: a group name (`"head"`, `"backbone"` for every
    backbone group, or a backbone group such as `"conv5"`), or a regex
    searched in variable paths (`"<layer>/<variable>"`). A backbone group
    name or regex beats `"backbone"`/`"head"`; otherwise the later key wins.
    A key that matches nothing raises a `ValueError` listing known groups.

    Groups. With `groups=None`, group names come from the tags
    `kerasft.build_model` leaves on variables; the groups found are stored
    (as exact-path regexes) when the optimizer is built, so `get_config` and
    a saved model keep them, and a rebuild over more variables adds the
    newly seen tagged ones. `groups` may also be a `kerasft` `Backbone`, or a
    dict `{group: regex or [regexes]}` ordered input -> output; variables in
    no group are the head.

    One step counter: `iterations` is the wrapped optimizer's, advanced once
    per update (Adam's bias correction uses it). The optimizer may be built
    with more variables than currently train (progressive unfreezing) and
    applied to any subset of them.

    Args:
        optimizer: a Keras optimizer with an update rule (Adam, AdamW, SGD,
            ...). To use loss scaling or gradient accumulation, wrap
            `LayerwiseLR` in them, not the other way round.
        learning_rates: dict `{group name or regex: float or schedule}`.
            Defaults to `None` (every variable at the base rate).
        layer_decay: float in (0, 1]. Defaults to `None`.
        groups: `None`, a `Backbone`, or a dict of regexes. Defaults to
            `None`.
        name: optimizer name. Defaults to `None`.

    Example:

    ```python
    import keras
    import kerasft

    inputs = keras.Input((4,))
    x = keras.layers.Dense(8, name="body")(inputs)
    outputs = keras.layers.Dense(1, name="top")(x)
    model = keras.Model(inputs, outputs)
    optimizer = kerasft.optimizers.LayerwiseLR(
        keras.optimizers.Adam(1e-3), learning_rates={"^body/": 1e-5}
    )
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(keras.random.normal((8, 4)), keras.random.normal((8, 1)),
              verbose=0)
    ```
    """

    def __init__(
        self,
        optimizer,
        learning_rates=None,
        layer_decay=None,
        groups=None,
        name=None,
        **kwargs,
    ):
        if isinstance(optimizer, dict):
            optimizer = keras.saving.deserialize_keras_object(optimizer)
        if not _is_plain_optimizer(optimizer):
            raise TypeError(
                "`optimizer` must be a Keras optimizer with its own update "
                "rule (Adam, AdamW, SGD, ...), not a wrapper. Wrap "
                "`LayerwiseLR` in `LossScaleOptimizer` or "
                "`kerasft.optimizers.GradientAccumulator` instead. "
                f"Received: optimizer={optimizer!r}"
            )
        if optimizer.gradient_accumulation_steps:
            raise ValueError(
                "`LayerwiseLR` does not support the wrapped optimizer's "
                "`gradient_accumulation_steps`; use "
                "`kerasft.optimizers.GradientAccumulator(LayerwiseLR(...), "
                "steps)` instead. Received: gradient_accumulation_steps="
                f"{optimizer.gradient_accumulation_steps}"
            )
        if kwargs:
            raise ValueError(
                "`LayerwiseLR` takes no base optimizer arguments (set "
                "clipping, weight decay, EMA on the wrapped optimizer). "
                f"Received: {sorted(kwargs)}"
            )
        if learning_rates is not None and not isinstance(learning_rates, dict):
            raise TypeError(
                "`learning_rates` must be a dict {group name or regex: float "
                f"or schedule}}. Received: learning_rates={learning_rates!r}"
            )
        if learning_rates is not None:
            learning_rates = {
                k: _deserialize_rate(k, v) for k, v in learning_rates.items()
            }
        if layer_decay is not None and (
            isinstance(layer_decay, bool)
            or not isinstance(layer_decay, (int, float))
            or not 0 < layer_decay <= 1
        ):
            raise ValueError(
                "`layer_decay` must be in (0, 1]. Received: "
                f"layer_decay={layer_decay}"
            )
        if groups is not None and hasattr(groups, "group_patterns"):
            groups = groups.group_patterns()
        if groups is not None:
            groups = _rate_plan.normalize_groups(groups)

        super().__init__(learning_rate=0.0, name=name)
        # The wrapper keeps no step or rate of its own: `iterations` and
        # `learning_rate` are the wrapped optimizer's.
        self._untrack_variable(self._iterations)
        self._untrack_variable(self._learning_rate)
        self.inner_optimizer = optimizer
        self.learning_rates = learning_rates
        self.layer_decay = layer_decay
        self.groups = groups
        self._reference_rate = _current_float_rate(optimizer)
        self._rates = {}

    # === Build: resolve each variable's rate once ===

    @tracking.no_automatic_dependency_tracking
    def build(self, var_list):
        var_list = list(var_list)
        inner = self.inner_optimizer
        if not inner.built:
            # Same variable paths however the build is reached (`fit`, a
            # lazy `apply` inside this wrapper's name scope, a reload).
            with keras.name_scope(inner.name, caller=inner, override_parent=""):
                inner.build(var_list)
        paths = [v.path for v in var_list]
        tags = [_grouping.variable_group(v) for v in var_list]
        groups = _rate_plan.merge_tag_groups(paths, tags, self.groups)
        if groups or self.groups is not None:
            # Stored as plain data: `get_config`, a reload (no tags) and a
            # rebuild over more variables keep every group found so far.
            self.groups = groups
        plan = _rate_plan.plan_rates(
            paths,
            groups,
            self.learning_rates,
            self.layer_decay,
            self._reference_rate,
            tagged=any(t is not None for t in tags),
        )
        self._rates = {
            self._var_key(v): rate for v, rate in zip(var_list, plan)
        }
        super().build(var_list)

    def rate_plan(self):
        """`{variable path: (group, kind, value)}` resolved at build time.

        `kind` is `"relative"` (value times the base rate), `"constant"` or
        `"schedule"` (value is the `learning_rates` key).
        """
        return {
            v.path: (r.group, r.kind, r.value)
            for v in self._trainable_variables
            for r in [self._rates[self._var_key(v)]]
        }

    # === State (the rest is delegated: see DelegatingOptimizer) ===

    def save_own_variables(self, store):
        # The wrapped optimizer saves its own state as a child object.
        pass

    def load_own_variables(self, store):
        pass

    # === Update ===

    def apply(self, grads, trainable_variables=None):
        if len(grads) == 0:
            return
        inner = self.inner_optimizer
        if trainable_variables is None:
            if not self.built:
                raise ValueError(
                    "When passing `grads` without `variables`, the optimizer "
                    "must already be built. Call "
                    "`optimizer.build(trainable_variables)` first."
                )
            trainable_variables = self._trainable_variables
        else:
            trainable_variables = list(trainable_variables)
            if not self.built:
                with keras.name_scope(self.name, caller=self):
                    self.build(trainable_variables)
                self.built = True
            self._check_variables_are_known(trainable_variables)

        with keras.name_scope(inner.name, caller=inner):
            grads, trainable_variables = self._filter_empty_gradients(
                grads, trainable_variables
            )
            grads, trainable_variables = (
                inner._overwrite_variables_directly_with_gradients(
                    grads, trainable_variables
                )
            )
            if len(grads) > 0:
                scale = inner.loss_scale_factor
                if scale is not None:
                    grads = [g / scale for g in grads]
                grads = inner._clip_gradients(grads)
                self._update(grads, trainable_variables)
                for variable in trainable_variables:
                    if variable.constraint is not None:
                        variable.assign(variable.constraint(variable))
            if inner.use_ema:
                self._update_ema()
        inner._iterations.assign_add(1)

    def _update(self, grads, variables):
        """Weight decay and update step of each variable at its own rate."""
        kept = []
        cache = {}
        for g, v in zip(grads, variables):
            rate = self._rates[self._var_key(v)]
            if rate.kind != "schedule" and rate.value == 0.0:
                continue  # Rate 0: no decay, no step, slots untouched.
            kept.append((g, v, self._rate_tensor(rate, cache)))
        if not kept:
            return
        if keras.backend.backend() == "tensorflow":
            self._tf_update(kept)
        else:
            for g, v, lr in kept:
                self._update_one(v, g, lr)

    def _rate_tensor(self, rate, cache):
        """The rate of one variable this step (shared per distinct rate)."""
        key = (rate.kind, rate.value)
        if key not in cache:
            if rate.kind == "relative":
                base = self.inner_optimizer.learning_rate
                value = base if rate.value == 1.0 else ops.multiply(
                    base, rate.value
                )
            elif rate.kind == "constant":
                value = ops.convert_to_tensor(rate.value, "float32")
            else:
                schedule = self.learning_rates[rate.value]
                value = schedule(self.inner_optimizer.iterations)
            cache[key] = value
        return cache[key]

    def _tf_update(self, kept):
        import tensorflow as tf

        grads_and_vars = [
            (g, v.value if isinstance(v, keras.Variable) else v)
            for g, v, _ in kept
        ]
        lrs = [lr for _, _, lr in kept]
        grads_and_vars = self.inner_optimizer._all_reduce_sum_gradients(
            grads_and_vars
        )

        def distributed_update(distribution, grads_and_vars, lrs):
            for (g, v), lr in zip(grads_and_vars, lrs):
                distribution.extended.update(
                    v, self._update_one, args=(g, lr), group=False
                )

        tf.__internal__.distribute.interim.maybe_merge_call(
            distributed_update,
            self.inner_optimizer._distribution_strategy,
            grads_and_vars,
            lrs,
        )

    def _update_one(self, variable, gradient, learning_rate):
        inner = self.inner_optimizer
        if inner.weight_decay is not None and inner._use_weight_decay(
            variable
        ):
            lr = ops.cast(learning_rate, variable.dtype)
            wd = ops.cast(inner.weight_decay, variable.dtype)
            variable.assign(variable - variable * wd * lr)
        return inner.update_step(gradient, variable, learning_rate)

    def _update_ema(self):
        inner = self.inner_optimizer
        inner._update_model_variables_moving_average(
            inner._trainable_variables
        )
        if inner.ema_overwrite_frequency:
            overwrite = (
                inner.iterations + 1
            ) % inner.ema_overwrite_frequency == 0
            ops.cond(
                overwrite,
                lambda: inner._overwrite_model_variables_with_average_value(
                    inner._trainable_variables
                ),
                lambda: None,
            )

    # === Config ===

    def get_config(self):
        inner = keras.saving.serialize_keras_object(self.inner_optimizer)
        if self._reference_rate is not None:
            # The base rate the group rates were given against; the current
            # (possibly reduced) rate is optimizer state, saved with it.
            inner["config"]["learning_rate"] = self._reference_rate
        return {
            "optimizer": inner,
            "learning_rates": None
            if self.learning_rates is None
            else {
                k: v
                if isinstance(v, float)
                else keras.saving.serialize_keras_object(v)
                for k, v in self.learning_rates.items()
            },
            "layer_decay": self.layer_decay,
            "groups": None
            if self.groups is None
            else {k: list(v) for k, v in self.groups.items()},
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["optimizer"] = keras.saving.deserialize_keras_object(
            config["optimizer"], custom_objects=custom_objects
        )
        return cls(**config)


def _deserialize_rate(key, value):
    if isinstance(value, dict):
        value = keras.saving.deserialize_keras_object(value)
    if isinstance(value, bool):
        raise TypeError(
            f"`learning_rates[{key!r}]` must be a float or a "
            f"LearningRateSchedule. Received: {value!r}"
        )
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(
                f"`learning_rates[{key!r}]` must be >= 0. Received: {value}"
            )
        return float(value)
    if isinstance(value, keras.optimizers.schedules.LearningRateSchedule):
        return value
    raise TypeError(
        f"`learning_rates[{key!r}]` must be a float or a "
        f"`keras.optimizers.schedules.LearningRateSchedule`. "
        f"Received: {value!r}"
    )


def _current_float_rate(optimizer):
    """The wrapped optimizer's rate as a float, or None for a schedule."""
    rate = optimizer._learning_rate
    if isinstance(rate, keras.Variable):
        # The shortest decimal that round-trips the float32 value: 1e-3, not
        # 0.0010000000474974513, so the multipliers read as given.
        return float(str(ops.convert_to_numpy(rate).astype("float32")))
    return None
