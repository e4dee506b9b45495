"""Freezing strategies: pure planning, and the thin Keras glue that applies it.

`plan_freeze` decides which backbone groups train from names alone (no
Keras). `set_trainable_groups` and `freeze` apply a plan to layers.
"""

import dataclasses
import numbers

import keras

from kerasft import _keras_compat

__all__ = [
    "STRATEGIES",
    "FreezePlan",
    "freeze",
    "freeze_batchnorm",
    "plan_freeze",
    "set_trainable_groups",
]

STRATEGIES = ("full_freeze", "head_only", "partial", "progressive", "full")


@dataclasses.dataclass(frozen=True)
class FreezePlan:
    """What `freeze` applied.

    Attributes:
        strategy: the strategy name.
        trainable_groups: backbone groups with at least one trainable layer,
            ordered input -> output.
        trainable_layers: backbone layer names that train (BatchNorm layers
            only with `train_batchnorm=True`), in model order.
        trainable_params: number of trainable parameters of the whole model.
        non_trainable_params: number of non-trainable parameters
            (BatchNorm moving statistics included).
    """

    strategy: str
    trainable_groups: tuple
    trainable_layers: tuple
    trainable_params: int
    non_trainable_params: int


# === Pure planning ===


def _check_count(value, arg, maximum, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"`{arg}` must be an integer. Received: {arg}={value!r}"
        )
    if not 0 < value <= maximum:
        raise ValueError(
            f"`{arg}` must be in [1, {maximum}] (the number of {what}). "
            f"Received: {arg}={value}"
        )


def plan_freeze(group_names, strategy, n=None):
    """The backbone groups that train under `strategy`, input -> output.

    | strategy | trainable backbone groups |
    |---|---|
    | `"full_freeze"` | none (feature extraction; the head trains) |
    | `"head_only"` | none (same plan, named for head-only training) |
    | `"partial"` | the top `n` groups |
    | `"progressive"` | none: the start state; `ProgressiveUnfreeze` opens more |
    | `"full"` | all groups |

    Args:
        group_names: backbone group names ordered input -> output.
        strategy: one of the strategies above.
        n: number of top groups that train; required by `"partial"` and
            rejected by the others. Defaults to `None`.

    Returns:
        A tuple of group names.

    Example:
    ```python
    plan_freeze(["conv1", "conv2", "conv3"], "partial", n=2)
    # ("conv2", "conv3")
    ```
    """
    group_names = tuple(group_names)
    if strategy not in STRATEGIES:
        raise ValueError(
            f"Unknown freezing strategy {strategy!r}. "
            f"Valid strategies: {', '.join(STRATEGIES)}"
        )
    if strategy == "partial":
        if n is None:
            raise ValueError(
                "strategy='partial' needs `n`, the number of top groups that "
                f"train (1..{len(group_names)}). Received: n=None"
            )
        _check_count(n, "n", len(group_names), "backbone groups")
        return group_names[len(group_names) - int(n) :]
    if n is not None:
        raise ValueError(
            f"`n` is only used by strategy='partial'. Received: n={n!r} "
            f"with strategy={strategy!r}"
        )
    if strategy == "full":
        return group_names
    return ()


# === Keras glue ===


def _is_batchnorm(layer):
    return isinstance(layer, keras.layers.BatchNormalization)


def _set_layer(layer, trainable, train_batchnorm):
    """Sets `layer` and every sublayer one by one, BatchNorm kept frozen.

    Parent first: the setter on a parent propagates to its children, and
    on TensorFlow setting `True` on a flag that already reads `True` does
    not reach sublayers frozen earlier, so each sublayer is set after.
    """
    layer.trainable = trainable and (train_batchnorm or not _is_batchnorm(layer))
    for sublayer in _keras_compat.sublayers(layer):
        _set_layer(sublayer, trainable, train_batchnorm)


def freeze_batchnorm(layer):
    """Makes every BatchNormalization layer in `layer` non-trainable.

    Nested sub-models and custom layers are searched too. A non-trainable
    BatchNorm runs in inference mode (moving statistics, which stay fixed)
    even when `fit` passes `training=True` into a backbone called with
    `training=False` (keras#20285). Other layers are left as they are.

    Args:
        layer: a Keras layer or model.

    Returns:
        The names of the BatchNormalization layers, in tracking order.

    Example:
    ```python
    freeze_batchnorm(backbone.model)
    ```
    """
    names = []
    if _is_batchnorm(layer):
        layer.trainable = False
        names.append(layer.name)
    for sublayer in _keras_compat.sublayers(layer):
        names.extend(freeze_batchnorm(sublayer))
    return names


def _weighted_layers(model):
    return [layer for layer in model.layers if layer.weights]


def _apply(backbone, layer_names, train_batchnorm):
    """Trains exactly `layer_names` of `backbone.model`; returns them in order."""
    wanted = set(layer_names)
    model = backbone.model
    model.trainable = True
    trained = []
    for layer in model.layers:
        trained.extend(_apply_layer(layer, layer.name, wanted, train_batchnorm))
    return tuple(trained)


def _apply_layer(layer, name, wanted, train_batchnorm):
    """Sets `layer` (called `name` in the groups); a group may also name a
    sublayer as `<layer>/<sublayer>` (ViT's blocks inside `vit_encoder`)."""
    prefix = name + "/"
    if name in wanted or not any(w.startswith(prefix) for w in wanted):
        train = name in wanted
        _set_layer(layer, train, train_batchnorm)
        if train and layer.trainable and layer.trainable_weights:
            return [name]
        return []
    layer.trainable = True
    trained = []
    for sublayer in _keras_compat.sublayers(layer):
        trained.extend(
            _apply_layer(
                sublayer, prefix + sublayer.name, wanted, train_batchnorm
            )
        )
    return trained


def set_trainable_groups(backbone, group_names, train_batchnorm=False):
    """Makes exactly the layers of `group_names` of `backbone.model` trainable.

    Every layer (and sublayer) of `backbone.model` is set individually;
    BatchNormalization layers, also inside nested sub-models, stay
    non-trainable (so in inference mode, moving statistics fixed) unless
    `train_batchnorm=True`. The model must be (re)compiled afterwards,
    except under `kerasft.callbacks.ProgressiveUnfreeze`, which handles it.

    Args:
        backbone: a `kerasft.backbones.Backbone`.
        group_names: names of the groups that train.
        train_batchnorm: let BatchNorm layers of trainable groups train
            (batch statistics during `fit`). Defaults to `False`.

    Returns:
        The names of the layers that now train, in model order.

    Example:
    ```python
    set_trainable_groups(backbone, backbone.group_names[-2:])
    ```
    """
    layer_names = []
    for name in group_names:
        layer_names.extend(backbone.group(name).layers)
    return _apply(backbone, layer_names, train_batchnorm)


def freeze(
    model, backbone, strategy, n=None, layers=None, train_batchnorm=False
):
    """Applies a freezing strategy to a model made by `kerasft.build_model`.

    The backbone groups of `plan_freeze(backbone.group_names, strategy, n)`
    train; with `strategy="partial"` and `layers=k` instead of `n`, the
    last `k` layers with weights of `backbone.model` train (the tutorial's
    "unfreeze the last k layers"; BatchNorm layers count but stay frozen
    unless `train_batchnorm=True`). Every layer outside the backbone (the
    head) stays trainable. BatchNorm layers stay non-trainable, hence in
    inference mode, in every strategy unless `train_batchnorm=True`.

    Compile (or recompile) the model after `freeze`: Keras reads
    `trainable` when it builds the train function. Only
    `kerasft.callbacks.ProgressiveUnfreeze` changes trainability mid-`fit`
    safely.

    Args:
        model: the model holding `backbone.model` as a layer: one made by
            `kerasft.build_model`, or a KerasHub task (`GPT2CausalLM`, ...)
            with `backbone = kerasft.backbones.from_keras_hub(task)`.
        backbone: the `kerasft.backbones.Backbone` inside `model`.
        strategy: `"full_freeze"`, `"head_only"`, `"partial"`,
            `"progressive"` (start state: head only) or `"full"`.
        n: top groups that train with `"partial"`. Defaults to `None`.
        layers: last weighted layers that train with `"partial"`, instead
            of `n`. Defaults to `None`.
        train_batchnorm: let BatchNorm layers of trainable groups train.
            Defaults to `False`.

    Returns:
        A `FreezePlan`.

    Example:
    ```python
    plan = kerasft.freeze(model, backbone, "partial", n=2)
    model.compile(optimizer="adam", **head.compile_kwargs())
    print(plan.trainable_groups, plan.trainable_params)
    ```
    """
    if layers is not None:
        if strategy != "partial":
            raise ValueError(
                "`layers` is only used by strategy='partial'. Received: "
                f"layers={layers!r} with strategy={strategy!r}"
            )
        if n is not None:
            raise ValueError(
                "Pass either `n` (top groups) or `layers` (last weighted "
                f"layers), not both. Received: n={n!r}, layers={layers!r}"
            )
        weighted = _weighted_layers(backbone.model)
        _check_count(layers, "layers", len(weighted), "weighted backbone layers")
        layer_names = [
            layer.name for layer in weighted[len(weighted) - int(layers) :]
        ]
    else:
        groups = plan_freeze(backbone.group_names, strategy, n)
        layer_names = []
        for name in groups:
            layer_names.extend(backbone.group(name).layers)

    # By name, not identity: a rematerialized backbone (build_model(...,
    # remat=True)) is a different model object sharing the same layers.
    nested = next(
        (l for l in model.layers if l.name == backbone.model.name), None
    )
    if nested is None:
        raise ValueError(
            f"`model` does not hold the backbone model {backbone.model.name!r} as a "
            "layer; build it with kerasft.build_model(backbone, head)."
        )
    model.trainable = True
    trained = _apply(backbone, layer_names, train_batchnorm)
    # A KerasHub task reuses backbone layers (the tied token embedding as
    # its output projection): those follow the plan, not the head.
    in_backbone = {id(layer) for layer in backbone.model.layers}
    for layer in model.layers:
        if layer is not nested and id(layer) not in in_backbone:
            layer.trainable = True

    trained_set = set(trained)
    trainable_groups = tuple(
        g.name for g in backbone.groups if trained_set.intersection(g.layers)
    )
    return FreezePlan(
        strategy=strategy,
        trainable_groups=trainable_groups,
        trainable_layers=trained,
        trainable_params=_count(model.trainable_weights),
        non_trainable_params=_count(model.non_trainable_weights),
    )


def _count(variables):
    total = 0
    for v in variables:
        size = 1
        for dim in v.shape:
            size *= int(dim)
        total += size
    return total
