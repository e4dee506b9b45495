"""Delegation shared by kerasft's optimizer wrappers."""

import warnings

import keras
import numpy as np
from keras import ops

from kerasft import _keras_compat


def _forwarded(name):
    def get(self):
        inner = self.__dict__.get("inner_optimizer")
        return None if inner is None else getattr(inner, name)

    def set_(self, value):
        # `Optimizer.__init__` sets its defaults before the wrapped optimizer
        # exists: those are ignored. Later, `LossScaleOptimizer` clears
        # `loss_scale_factor` here so the wrapped one does not unscale twice.
        inner = self.__dict__.get("inner_optimizer")
        if inner is not None:
            setattr(inner, name, value)

    return property(get, set_, doc=f"The wrapped optimizer's `{name}`.")


def variable_path(variable):
    """`keras.Variable.path`, or the name of a plain `tf.Variable`."""
    return getattr(variable, "path", None) or variable.name


class DelegatingOptimizer:
    """Mixin for a `keras.optimizers.Optimizer` wrapping `inner_optimizer`.

    The wrapped optimizer owns the step counter, the learning rate, loss
    scaling, clipping, weight decay (and its exclusions) and EMA, so
    schedules, `ReduceLROnPlateau` and `LossScaleOptimizer` see one
    optimizer, and every public `Optimizer` method called on the wrapper acts
    on the same state as on the bare optimizer. List it before
    `keras.optimizers.Optimizer`. A subclass creates its own state in
    `_build_own` and lists it in `_own_variables`.
    """

    # Settings a user may read or set on the optimizer they compiled with;
    # they live on the wrapped optimizer, which clips, decays and keeps EMA.
    weight_decay = _forwarded("weight_decay")
    clipnorm = _forwarded("clipnorm")
    clipvalue = _forwarded("clipvalue")
    global_clipnorm = _forwarded("global_clipnorm")
    use_ema = _forwarded("use_ema")
    ema_momentum = _forwarded("ema_momentum")
    ema_overwrite_frequency = _forwarded("ema_overwrite_frequency")
    loss_scale_factor = _forwarded("loss_scale_factor")

    # === State ===

    def _own_variables(self):
        """The wrapper's own optimizer variables (none by default)."""
        return []

    @property
    def variables(self):
        return self._own_variables() + list(self.inner_optimizer.variables)

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.inner_optimizer.learning_rate = learning_rate

    def set_weights(self, weights):
        """Sets `self.variables` (the wrapper's and the wrapped optimizer's)
        from a list of arrays."""
        if not self.built:
            raise ValueError(
                "You are calling `set_weights()` on an optimizer that has not "
                "yet been built. Please call "
                "`optimizer.build(trainable_variables)` to create the "
                "optimizer weights before calling `set_weights()`."
            )
        for variable, weight in zip(self.variables, weights):
            if tuple(variable.shape) != tuple(np.shape(weight)):
                raise ValueError(
                    f"Optimizer variable {variable_path(variable)} has shape "
                    f"{tuple(variable.shape)} not compatible with provided "
                    f"weight shape {tuple(np.shape(weight))}."
                )
            variable.assign(weight)

    def save_own_variables(self, store):
        # Every variable, the wrapped optimizer's too, as Keras's
        # `LossScaleOptimizer` does, so a direct save/load round-trips.
        for i, variable in enumerate(self.variables):
            store[str(i)] = ops.convert_to_numpy(variable)

    def load_own_variables(self, store):
        """Loads the state saved by `save_own_variables`, whatever the
        precision policy on either side.

        Under `mixed_float16`, `compile` wraps this optimizer in Keras's
        `LossScaleOptimizer`, whose saved entry holds its loss-scale
        variables followed by this optimizer's; under float32 or
        `mixed_bfloat16` there is no such wrapper. The layouts, tried in
        order, each only when every shape matches:

        - this optimizer's variables (saved under the same policy);
        - loss-scale scalars, then this optimizer's variables (saved under
          `mixed_float16`, loaded without loss scaling): the scalars are
          dropped;
        - the wrapped optimizer's variables (saved without loss scaling,
          loaded under `mixed_float16`, where this optimizer's entry sits
          one level down): this optimizer's full state is read from the
          entry above when it is there, else the wrapped optimizer's is
          loaded and the wrapper's own state (accumulators) starts at zero,
          with a warning;
        - only the wrapper's own variables (kerasft 0.1 files; the wrapped
          optimizer loads its own entry).
        """
        everything, own = self.variables, self._own_variables()
        inner = list(self.inner_optimizer.variables)
        saved = [store[str(i)] for i in range(len(store.keys()))]
        if _fits(saved, everything):
            return _assign(everything, saved)
        extra = len(saved) - len(everything)
        if extra > 0 and _fits(saved[extra:], everything) and all(
            np.ndim(value) == 0 for value in saved[:extra]
        ):
            return _assign(everything, saved[extra:])
        if own and _fits(saved, inner):
            above = _keras_compat.parent_store_values(store)
            if above is not None and _fits(above, everything):
                return _assign(everything, above)
            warnings.warn(
                f"Optimizer {self.name!r}: the file holds the state of the "
                f"wrapped optimizer {self.inner_optimizer.name!r} but not "
                "this wrapper's own (saved under another precision policy); "
                "the wrapper's own state starts at zero."
            )
            return _assign(inner, saved)
        if _fits(saved, own):
            # Saved by kerasft 0.1, which stored only the wrapper's own
            # variables; the wrapped optimizer loads its own entry.
            return _assign(own, saved)
        raise ValueError(
            f"Cannot load the state of optimizer {self.name!r}: it holds "
            f"{len(everything)} variables, the file {len(saved)}, with "
            "other shapes. Build it on the same model variables first."
        )

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Excludes variables from the wrapped optimizer's weight decay.

        Same arguments and rules as
        `keras.optimizers.Optimizer.exclude_from_weight_decay`; call it
        before the optimizer is built.
        """
        self.inner_optimizer.exclude_from_weight_decay(
            var_list=var_list, var_names=var_names
        )

    def scale_loss(self, loss):
        return self.inner_optimizer.scale_loss(loss)

    # === Build and apply helpers ===

    def _variable_key(self, variable):
        return _keras_compat.optimizer_variable_key(
            self.inner_optimizer, variable
        )

    def build(self, var_list):
        var_list = list(var_list)
        inner = self.inner_optimizer
        if not inner.built:
            # Outside the untracked block below: the wrapped optimizer's
            # build tracks its variables as when it builds itself. Same
            # paths however the build is reached (`fit`, a lazy `apply`
            # inside this wrapper's name scope, a reload).
            with keras.name_scope(
                inner.name, caller=inner, override_parent=""
            ):
                inner.build(var_list)
        self._build_wrapper(var_list)
        self.built = True

    def _build_wrapper(self, var_list):
        # Untracked: lists of model variables must not become optimizer
        # variables (as in Keras's own `Optimizer.build`).
        with _keras_compat.untracked_attributes():
            self._built_variables = list(var_list)
            self._built_keys = {self._variable_key(v) for v in var_list}
            self._build_own(self._built_variables)

    def _build_own(self, var_list):
        """Creates the wrapper's own state for `var_list` (none here)."""

    def _known_variables(self, grads, trainable_variables):
        """The variables `grads` apply to, building on first use."""
        if trainable_variables is None:
            if not self.built:
                raise ValueError(
                    "When passing `grads` without `variables`, the optimizer "
                    "must already be built on a list of variables. "
                    "Call `optimizer.build(trainable_variables)` first. "
                )
            if len(grads) != len(self._built_variables):
                raise ValueError(
                    "When passing `grads` as a list of gradient tensors, the "
                    "gradients must match the variables the optimizer was "
                    f"built with one-to-one. Received {len(grads)} gradients "
                    f"for {len(self._built_variables)} variables."
                )
            return list(self._built_variables)
        variables = list(trainable_variables)
        if not self.built:
            with keras.name_scope(self.name, caller=self):
                self.build(variables)
        for v in variables:
            if self._variable_key(v) not in self._built_keys:
                raise ValueError(
                    f"Unknown variable: {v}. This optimizer can only "
                    "be called for the variables it was originally built "
                    "with. When working with a new set of variables, you "
                    "should recreate a new optimizer instance."
                )
        return variables

    def apply_gradients(self, grads_and_vars):
        grads, trainable_variables = zip(*grads_and_vars)
        self.apply(grads, trainable_variables)
        return self.iterations


def _fits(values, variables):
    """Whether saved `values` match `variables` one to one in shape."""
    return len(values) == len(variables) and all(
        tuple(np.shape(value)) == tuple(variable.shape)
        for value, variable in zip(values, variables)
    )


def _assign(variables, values):
    for variable, value in zip(variables, values):
        variable.assign(value)


def present_gradients(grads, variables):
    """`(gradient, variable)` pairs without `None` gradients, with Keras's
    warning for the dropped ones and its error when none is left."""
    pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
    if not pairs:
        raise ValueError("No gradients provided for any variable.")
    if len(pairs) < len(grads):
        dropped = [
            variable_path(v) for g, v in zip(grads, variables) if g is None
        ]
        warnings.warn(
            f"Gradients do not exist for variables {dropped} when minimizing "
            "the loss. If using `model.compile()`, did you forget to provide "
            "a `loss` argument?"
        )
    return pairs
