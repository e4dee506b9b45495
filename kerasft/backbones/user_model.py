"""`from_model`: any Keras model as a kerasft `Backbone`."""

import functools

import keras

from kerasft.backbones import grouping
from kerasft.backbones.backbone import Backbone
from kerasft.backbones.backbone import Group

_MODES = ("caffe", "tf", "torch", "none")


def from_model(
    model,
    groups=None,
    name=None,
    preprocess=None,
    preprocess_mode="none",
):
    """Wraps a user's (pretrained) Keras model as a `Backbone`.

    Groups are ordered input -> output and hold names of `model.layers`.
    Every layer with weights must be in exactly one group; layers without
    weights that `groups` leaves out join the group of the layer before
    them (the first group for leading ones), so every layer ends up in one
    group.

    When `groups` is omitted they are derived from the layer names:

    1. By prefix: each weighted layer's prefix is `word_N` when its name
       starts `word_N_` (`block_3_expand` -> `block_3`), else the part before
       the first `_`, less one letter right after a digit (`conv2_block1_out`
       -> `conv2`, `block2b_add` -> `block2`). If, in model order, each
       prefix forms one contiguous run and there are 2 to 30 runs, each run
       is a group named after its prefix.
    2. Otherwise (auto-named layers such as `conv2d`, `dense_1` interleave,
       or too few/many prefixes) the weighted layers are cut in model order
       into `clip(round(sqrt(W)), 2, 12)` (at most `W`) near-equal slices
       `slice_1`, `slice_2`, ...

    Args:
        model: a built Keras model (its top removed if it had one).
        groups: a list of lists of layer names (named `group_1`, ...), a
            dict `{group name: [layer names]}` (ordered input -> output), or
            `None` for the automatic rule above. Defaults to `None`.
        name: backbone name. When it differs from `model.name` the model is
            renamed, so that in a model made by `kerasft.build_model` it is
            `model.get_layer(name)`. Defaults to `model.name`.
        preprocess: the callable the model expects on raw inputs. Defaults
            to `None`: `keras.applications.imagenet_utils.preprocess_input`
            in `preprocess_mode` (identity for `"none"`).
        preprocess_mode: `"caffe"`, `"tf"`, `"torch"` or `"none"`, the
            `kerasft.layers.Preprocess` mode `build_model` inserts. Defaults
            to `"none"` (the model takes raw [0, 255] pixels).

    Returns:
        A `kerasft.backbones.Backbone`.

    Raises:
        ValueError: unknown layer names in `groups`, a weighted layer in no
            group or in two groups, or a bad `preprocess_mode`.

    Example:

    >>> import keras
    >>> inputs = keras.Input((16, 16, 3))
    >>> x = keras.layers.Conv2D(4, 3, name="stem_conv")(inputs)
    >>> x = keras.layers.Conv2D(4, 3, name="stage1_conv")(x)
    >>> model = keras.Model(inputs, x, name="tiny")
    >>> from_model(model).group_names
    ['stem', 'stage1']
    >>> from_model(model, groups={"a": ["stem_conv"], "b": ["stage1_conv"]}
    ...            ).group_names
    ['a', 'b']
    """
    if not isinstance(model, keras.Model):
        raise TypeError(
            "`model` must be a keras.Model. Received: "
            f"model={model!r} of type {type(model).__name__}"
        )
    if preprocess_mode not in _MODES:
        raise ValueError(
            f"`preprocess_mode` must be one of {_MODES}. "
            f"Received: preprocess_mode={preprocess_mode!r}"
        )
    if preprocess is not None and not callable(preprocess):
        raise TypeError(
            "`preprocess` must be a callable or None. "
            f"Received: preprocess={preprocess!r}"
        )
    if name is not None and name != model.name:
        model.name = name
    layer_names = [layer.name for layer in model.layers]
    weighted = {layer.name for layer in model.layers if layer.weights}
    if groups is None:
        resolved = grouping.auto_groups(layer_names, weighted)
    else:
        resolved = _explicit_groups(groups, layer_names, weighted)
    return Backbone(
        model=model,
        preprocess=preprocess or _default_preprocess(preprocess_mode),
        groups=[Group(g, layers) for g, layers in resolved],
        name=model.name,
        preprocess_mode=preprocess_mode,
        input_range=(0, 255),
        task="image",
    )


def _identity(x):
    """Returns `x`: the model preprocesses its raw input itself."""
    return x


def _default_preprocess(mode):
    if mode == "none":
        return _identity
    return functools.partial(
        keras.applications.imagenet_utils.preprocess_input, mode=mode
    )


def _explicit_groups(groups, layer_names, weighted):
    if isinstance(groups, dict):
        items = list(groups.items())
    elif isinstance(groups, (list, tuple)):
        items = []
        for i, g in enumerate(groups):
            if isinstance(g, Group):
                items.append((g.name, g.layers))
            else:
                items.append((f"group_{i + 1}", g))
    else:
        raise TypeError(
            "`groups` must be a list of lists of layer names, a dict "
            "{group name: [layer names]} or None. "
            f"Received: groups={groups!r}"
        )
    if not items:
        raise ValueError("`groups` must hold at least one group. Received: []")
    known = set(layer_names)
    owner = {}
    unknown, twice = [], []
    for group, members in items:
        if isinstance(members, str) or not isinstance(members, (list, tuple)):
            raise TypeError(
                f"Group {group!r} must be a list of layer names. "
                f"Received: {members!r}"
            )
        for layer in members:
            if layer not in known:
                unknown.append(layer)
            elif layer in owner:
                twice.append(f"{layer!r} (in {owner[layer]!r} and {group!r})")
            else:
                owner[layer] = group
    if unknown:
        raise ValueError(
            f"`groups` names layers the model does not have: {unknown}. "
            f"Known layers: {layer_names}"
        )
    if twice:
        raise ValueError(
            "Every layer must be in at most one group; these are in two: "
            + ", ".join(twice)
        )
    missing = [n for n in layer_names if n in weighted and n not in owner]
    if missing:
        raise ValueError(
            "Every layer with weights must be in exactly one group; these "
            f"are in none: {missing}. Add them to `groups`."
        )
    order = [group for group, _ in items]
    members = {group: [] for group in order}
    previous = None
    for layer in layer_names:
        group = owner.get(layer, previous)
        if group is None:  # leading layers without weights
            group = order[0]
        members[group].append(layer)
        previous = group
    return [(group, members[group]) for group in order]
