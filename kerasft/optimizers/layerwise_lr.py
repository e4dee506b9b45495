"""`LayerwiseLR`: one optimizer, a learning rate per group of variables."""

import keras
from keras import ops

from kerasft import _grouping
from kerasft import _keras_compat
from kerasft.optimizers import _rate_plan
from kerasft.optimizers._wrapper import DelegatingOptimizer
from kerasft.optimizers._wrapper import variable_path


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

    Each step runs the wrapped optimizer's own `apply` once (its clipping,
    per-step state such as Nadam's, EMA, constraints, `tf.distribute`
    updates and step counter), with each variable's update given that
    variable's learning rate: the *step* is scaled, not the gradient (Adam
    is invariant to gradient scale), and decoupled weight decay uses the same
    scaled rate (`w -= w * weight_decay * rate`). A variable whose rate is 0
    is left out of the step: it is bit-identical, its optimizer slots too,
    and its gradient does not count toward `global_clipnorm`. With no rates
    given, `LayerwiseLR(optimizer)` gives the results of `optimizer`.

    The optimizer's settings and methods are reachable on the wrapper:
    `weight_decay`, `exclude_from_weight_decay`, clipping, EMA settings and
    `finalize_variable_values`, `variables`, `set_weights` and saving act on
    the wrapped optimizer.

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
        if not _keras_compat.supports_update_step_hook(optimizer):
            raise TypeError(
                "`optimizer` applies its own kind of weight decay, which "
                "`LayerwiseLR` cannot scale per group (Keras's `Muon`). Use "
                "an optimizer with Keras's decoupled weight decay (AdamW, "
                f"Lion, ...). Received: optimizer={optimizer!r}"
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

        # The wrapper's own step and rate are unused: `iterations`,
        # `learning_rate` and `variables` are the wrapped optimizer's.
        super().__init__(learning_rate=0.0, name=name)
        self.inner_optimizer = optimizer
        self.learning_rates = learning_rates
        self.layer_decay = layer_decay
        self.groups = groups
        self._reference_rate = _current_float_rate(optimizer)
        self._rates = {}

    # === Build: resolve each variable's rate once ===

    def _build_own(self, var_list):
        paths = [variable_path(v) for v in var_list]
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
            self._variable_key(v): rate for v, rate in zip(var_list, plan)
        }

    def rate_plan(self):
        """`{variable path: (group, kind, value)}` resolved at build time.

        `kind` is `"relative"` (value times the base rate), `"constant"` or
        `"schedule"` (value is the `learning_rates` key).
        """
        return {
            variable_path(v): (r.group, r.kind, r.value)
            for v in self._built_variables
            for r in [self._rates[self._variable_key(v)]]
        }

    # === Update ===

    def apply(self, grads, trainable_variables=None):
        grads = list(grads)
        if len(grads) == 0:
            return
        variables = self._known_variables(grads, trainable_variables)
        moving = [
            (g, v)
            for g, v in zip(grads, variables)
            if not _is_zero(self._rates[self._variable_key(v)])
        ]
        inner = self.inner_optimizer
        if not moving:
            # Nothing moves, but the step counts, as for the other groups.
            inner.iterations.assign_add(1)
            return
        cache = {}

        def update_step(original, gradient, variable, learning_rate):
            return self._update_step(
                cache, original, gradient, variable, learning_rate
            )

        # The wrapped optimizer's own `apply`, run once per step: clipping,
        # per-step state (Nadam's), distribution, EMA, constraints and the
        # step counter are its own; only the rate of each variable's update
        # (and decay) is this wrapper's.
        with _keras_compat.update_step_hook(inner, update_step):
            inner.apply([g for g, _ in moving], [v for _, v in moving])

    def _update_step(self, cache, original, gradient, variable, learning_rate):
        """Decoupled weight decay and update of one variable at its rate."""
        inner = self.inner_optimizer
        rate = self._rates[self._variable_key(variable)]
        learning_rate = self._rate_tensor(rate, learning_rate, cache)
        if _keras_compat.optimizer_uses_weight_decay(inner, variable):
            # As Keras's own decay, with the variable's rate.
            lr = ops.cast(learning_rate, variable.dtype)
            wd = ops.cast(inner.weight_decay, variable.dtype)
            variable.assign_sub(variable * wd * lr)
        return original(gradient, variable, learning_rate)

    def _rate_tensor(self, rate, base, cache):
        """The rate of one variable this step, from the base rate the wrapped
        optimizer passes (one tensor per distinct rate and device)."""
        if rate.kind == "relative" and rate.value == 1.0:
            return base
        key = (rate.kind, rate.value, id(base))
        if key not in cache:
            if rate.kind == "relative":
                value = ops.multiply(base, rate.value)
            elif rate.kind == "constant":
                value = ops.convert_to_tensor(rate.value, "float32")
            else:
                schedule = self.learning_rates[rate.value]
                value = schedule(self.inner_optimizer.iterations)
            cache[key] = (base, value)  # `base` kept alive: its id is a key.
        return cache[key][1]

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


def _is_zero(rate):
    """A rate that is 0 at every step: its variables are left out."""
    return rate.kind != "schedule" and rate.value == 0.0


def _current_float_rate(optimizer):
    """The wrapped optimizer's rate as a float, or None for a schedule."""
    # A float rate is held in a variable, which `learning_rate` returns; a
    # schedule or callable gives a tensor.
    rate = optimizer.learning_rate
    if isinstance(rate, keras.Variable):
        # The shortest decimal that round-trips the float32 value: 1e-3, not
        # 0.0010000000474974513, so the multipliers read as given.
        return float(str(ops.convert_to_numpy(rate).astype("float32")))
    return None
