"""Delegation shared by kerasft's optimizer wrappers."""


class DelegatingOptimizer:
    """Mixin for a `keras.optimizers.Optimizer` wrapping `inner_optimizer`.

    The wrapped optimizer owns the step counter, the learning rate and the
    loss scaling, so schedules, `ReduceLROnPlateau` and `LossScaleOptimizer`
    see one optimizer. List it before `keras.optimizers.Optimizer`.
    """

    @property
    def variables(self):
        return self._variables[:] + self.inner_optimizer.variables

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.inner_optimizer.learning_rate = learning_rate

    @property
    def loss_scale_factor(self):
        inner = self.__dict__.get("inner_optimizer")
        return None if inner is None else inner.loss_scale_factor

    @loss_scale_factor.setter
    def loss_scale_factor(self, value):
        # `LossScaleOptimizer` clears this on the optimizer it wraps; pass it
        # on so the wrapped optimizer does not unscale a second time.
        inner = self.__dict__.get("inner_optimizer")
        if inner is not None:
            inner.loss_scale_factor = value

    def scale_loss(self, loss):
        return self.inner_optimizer.scale_loss(loss)

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    def apply_gradients(self, grads_and_vars):
        grads, trainable_variables = zip(*grads_and_vars)
        self.apply(grads, trainable_variables)
        return self.iterations
