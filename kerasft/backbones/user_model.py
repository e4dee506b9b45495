"""`from_model`: any Keras model as a kerasft `Backbone`."""

import functools
import re

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
    family=None,
):
    """Wraps a user's (pretrained) Keras model as a `Backbone`.

    Groups are ordered input -> output and hold names of `model.layers`.
    Every layer with weights must be in exactly one group; layers without
    weights that `groups` leaves out join the group of the layer before
    them (the first group for leading ones), so every layer ends up in one
    group.

    When `groups` is omitted they are derived from the layer names:

    1. By family: the families of `keras.applications` models that
       `kerasft.backbones.get` knows (`kerasft.backbones.grouping.
       FAMILY_PATTERNS`: `resnet`, `resnet_v2`, `vgg`, `xception`,
       `efficientnet`, `mobilenet_v2`, `mobilenet_v3`, `densenet`,
       `convnext`) are tried in that order; the first whose layer-name
       patterns fit is used, giving the same groups as `get` (a
       `keras.applications.MobileNetV2` gets `stem`, `block_1`..`block_16`,
       `top`). Patterns fit when each matches at least one layer and every
       layer with weights is matched by one, except layers Keras auto-named
       (the snake-case class name, optionally `_<n>`: `conv2d_1`,
       `normalization`), which join the group before them.
    2. By prefix: each weighted layer's prefix is `word_N` when its name
       starts `word_N_` (`block_3_expand` -> `block_3`), else the part before
       the first `_`, less one letter right after a digit (`conv2_block1_out`
       -> `conv2`, `block2b_add` -> `block2`). If, in model order, each
       prefix forms one contiguous run and there are 2 to 30 runs, each run
       is a group named after its prefix.
    3. Otherwise (auto-named layers such as `conv2d`, `dense_1` interleave,
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
        family: a key of `FAMILY_PATTERNS` (e.g. `"mobilenet_v2"`) to group
            by that family's patterns without trying the others, e.g. for
            a model whose extra layers keep it from fitting. Layers no
            pattern matches join the group before them. Only with
            `groups=None`. Defaults to `None` (the automatic rule).

    Returns:
        A `kerasft.backbones.Backbone`.

    Raises:
        ValueError: unknown layer names in `groups`, a weighted layer in no
            group or in two groups, a bad `preprocess_mode`, an unknown
            `family` (the message lists the known ones), a `family` whose
            patterns match no layer of a group, or both `groups` and
            `family`.

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
    >>> mobilenet = keras.applications.MobileNetV2(
    ...     weights=None, include_top=False, input_shape=(32, 32, 3))
    >>> names = from_model(mobilenet).group_names
    >>> names[:3], names[-2:], len(names)
    (['stem', 'block_1', 'block_2'], ['block_16', 'top'], 18)
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
    if family is not None:
        if groups is not None:
            raise ValueError(
                "Pass either `groups` or `family`, not both. Received: "
                f"groups={groups!r}, family={family!r}"
            )
        if (
            not isinstance(family, str)
            or family not in grouping.FAMILY_PATTERNS
        ):
            raise ValueError(
                f"Unknown backbone family {family!r}. Known families: "
                f"{sorted(grouping.FAMILY_PATTERNS)}"
            )
    if name is not None and name != model.name:
        model.name = name
    layer_names = [layer.name for layer in model.layers]
    weighted = {layer.name for layer in model.layers if layer.weights}
    if groups is not None:
        resolved = _explicit_groups(groups, layer_names, weighted)
    else:
        if family is None:
            auto_named = [l.name for l in model.layers if _is_auto_named(l)]
            family = grouping.detect_family(layer_names, weighted, auto_named)
        if family is None:
            resolved = grouping.auto_groups(layer_names, weighted)
        else:
            resolved = grouping.family_groups(family, layer_names)
    return Backbone(
        model=model,
        preprocess=preprocess or _default_preprocess(preprocess_mode),
        groups=[Group(g, layers) for g, layers in resolved],
        name=model.name,
        preprocess_mode=preprocess_mode,
        input_range=(0, 255),
        task="image",
    )


def _snake_case(class_name):
    """`BatchNormalization` -> `batch_normalization`, as Keras names layers."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _is_auto_named(layer):
    """Whether Keras named `layer` (snake-case class name, maybe `_<n>`)."""
    base = _snake_case(type(layer).__name__)
    return re.fullmatch(re.escape(base) + r"(_\d+)?", layer.name) is not None


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
