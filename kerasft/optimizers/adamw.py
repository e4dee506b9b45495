"""`AdamW` whose weight-decay exclusions are part of its config."""

import re

import keras

# Variables never decayed by default: biases and normalisation scales and
# offsets, i.e. every variable of rank <= 1 (timm's `param.ndim <= 1`, the
# rule BERT's optimizer and Hugging Face `Trainer` apply by name).
NO_DECAY_DEFAULT = ("rank<=1",)


@keras.saving.register_keras_serializable(package="kerasft")
class AdamW(keras.optimizers.AdamW):
    """Keras's `AdamW` with the variables it must not decay in its config.

    Keras's `exclude_from_weight_decay` is a method call that `get_config`
    does not keep, so a rebuilt or reloaded optimizer (a resumed run, the
    clone `ProgressiveUnfreeze` builds under a strategy) decays everything
    again. Here the exclusions are a constructor argument, applied whenever
    the optimizer is built.

    Args:
        learning_rate: a float or a `LearningRateSchedule`. Defaults to
            `0.001`.
        weight_decay: decoupled weight decay. Defaults to `0.01`.
        no_weight_decay: which variables are not decayed: `"rank<=1"`
            (biases, BatchNorm/LayerNorm scales and offsets) and/or regexes
            searched in variable paths (`"embeddings"`, `"layer_norm"`).
            Defaults to `("rank<=1",)`; `()` decays every variable.
        **kwargs: the other `keras.optimizers.AdamW` arguments.

    Example:
    ```python
    optimizer = kerasft.optimizers.AdamW(
        1e-3, weight_decay=0.05, no_weight_decay=("rank<=1", "embeddings"))
    ```
    """

    def __init__(self, learning_rate=0.001, weight_decay=0.01,
                 no_weight_decay=NO_DECAY_DEFAULT, **kwargs):
        super().__init__(learning_rate=learning_rate,
                         weight_decay=weight_decay, **kwargs)
        if isinstance(no_weight_decay, str):
            no_weight_decay = (no_weight_decay,)
        no_weight_decay = tuple(no_weight_decay or ())
        for rule in no_weight_decay:
            if not isinstance(rule, str):
                raise TypeError(
                    "`no_weight_decay` must hold strings: 'rank<=1' or regexes "
                    f"on variable paths. Received: {rule!r}"
                )
            if rule != "rank<=1":
                try:
                    re.compile(rule)
                except re.error as e:
                    raise ValueError(
                        f"`no_weight_decay` holds an invalid regex {rule!r}: {e}"
                    ) from None
        self.no_weight_decay = no_weight_decay

    def excluded(self, variable):
        """Whether `variable` is kept out of weight decay."""
        for rule in self.no_weight_decay:
            if rule == "rank<=1":
                if len(variable.shape) <= 1:
                    return True
            elif re.search(rule, variable.path):
                return True
        return False

    def build(self, var_list):
        excluded = [v for v in var_list if self.excluded(v)]
        if excluded and not self.built:
            self.exclude_from_weight_decay(var_list=excluded)
        super().build(var_list)

    def get_config(self):
        return {**super().get_config(),
                "no_weight_decay": list(self.no_weight_decay)}
