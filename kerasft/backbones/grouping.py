"""Layer groups of image backbones: per-family ordered regexes, pure functions.

Each `keras.applications` family declares its depth groups (stages or blocks,
ordered input -> output) as `(group name, regex)` pairs over layer names, the
way timm models declare a `group_matcher`. `assign_groups` turns such patterns
and a model's layer names (in model order) into groups:

1. A layer joins the first group whose regex matches it (`re.search`).
2. A layer no regex matches (Keras auto-named layers such as `re_lu_3`,
   `add_12`, the EfficientNet input `normalization`) joins the group of the
   layer before it; layers before the first matched layer join the first
   group. So activations, pads and adds stay with their block, and every layer
   is in exactly one group.

`detect_family` finds the family whose patterns fit a user's model (a
`keras.applications` model passed to `from_model`), and `auto_groups` derives
groups for a model no family fits (see their docstrings for the rules).
Nothing here builds or imports a model.
"""

import math
import re

# === Per-family patterns ===


def resnet_patterns(names=()):
    """ResNet v1: `conv1` (stem pad/conv/bn/pool), `conv2`..`conv5`."""
    del names
    return (("conv1", r"^(conv1|pool1)_"),) + tuple(
        (f"conv{i}", rf"^conv{i}_") for i in range(2, 6)
    )


def resnet_v2_patterns(names=()):
    """ResNet v2: as v1, with the final `post_bn`/`post_relu` in `conv5`."""
    del names
    patterns = list(resnet_patterns())
    patterns[-1] = ("conv5", r"^(conv5_|post_)")
    return tuple(patterns)


def vgg_patterns(names=()):
    """VGG16/19: `block1`..`block5`."""
    del names
    return tuple((f"block{i}", rf"^block{i}_") for i in range(1, 6))


def xception_patterns(names=()):
    """Xception: `block1`..`block14` (auto-named shortcut convs join the
    block before them)."""
    del names
    return tuple((f"block{i}", rf"^block{i}_") for i in range(1, 15))


def _numbers(names, regex):
    """Sorted distinct integers captured by `regex` over `names`."""
    found = set()
    for name in names:
        match = re.search(regex, name)
        if match:
            found.add(int(match.group(1)))
    return sorted(found)


def efficientnet_patterns(names=()):
    """EfficientNet (v1 and v2): `stem`, `block1`..`blockN`, `top`.

    The number of blocks is read from `names` (7 for B0..B7, 6 or 7 for v2);
    sub-blocks `block2a`, `block2b`, ... form one group `block2`.
    """
    blocks = _numbers(names, r"^block(\d+)[a-z]_") or range(1, 8)
    return (
        (("stem", r"^stem_"),)
        + tuple((f"block{i}", rf"^block{i}[a-z]_") for i in blocks)
        + (("top", r"^top_"),)
    )


def mobilenet_v2_patterns(names=()):
    """MobileNetV2: `stem` (Conv1, bn_Conv1, expanded_conv*), `block_1`..
    `block_16`, `top` (Conv_1, Conv_1_bn, out_relu)."""
    blocks = _numbers(names, r"^block_(\d+)_") or range(1, 17)
    return (
        (("stem", r"^(Conv1|bn_Conv1|expanded_conv_)"),)
        + tuple((f"block_{i}", rf"^block_{i}_") for i in blocks)
        + (("top", r"^(Conv_1|out_relu)"),)
    )


def mobilenet_v3_patterns(names=()):
    """MobileNetV3: `stem` (conv, conv_bn, the first `expanded_conv_*`
    block), `block_1`..`block_N` (`expanded_conv_<i>_*`), `top` (conv_1)."""
    blocks = _numbers(names, r"^expanded_conv_(\d+)_") or range(1, 11)
    return (
        (("stem", r"^(conv|conv_bn)$|^expanded_conv_(?!\d)"),)
        + tuple((f"block_{i}", rf"^expanded_conv_{i}_") for i in blocks)
        + (("top", r"^conv_1(_bn)?$"),)
    )


def densenet_patterns(names=()):
    """DenseNet: `conv1` (stem), `conv2`..`conv5`; each transition
    (`pool<i>_*`) closes stage `conv<i>`; the final `bn`/`relu` join `conv5`."""
    del names
    return (
        ("conv1", r"^(conv1_|pool1$)"),
        ("conv2", r"^(conv2_|pool2_)"),
        ("conv3", r"^(conv3_|pool3_)"),
        ("conv4", r"^(conv4_|pool4_)"),
        ("conv5", r"^(conv5_|bn$|relu$)"),
    )


def convnext_patterns(names=()):
    """ConvNeXt: `stem`, `stage_0`..`stage_3`; the downsampling layer in
    front of stage i belongs to stage i. Layer names carry the model name as
    prefix (`convnext_tiny_stage_0_...`)."""
    stages = _numbers(names, r"_stage_(\d+)_") or range(4)
    patterns = [("stem", r"_(prestem_normalization|stem)$")]
    for i in stages:
        regex = rf"_stage_{i}_"
        if i > 0:
            regex += rf"|_downsampling_block_{i - 1}$"
        patterns.append((f"stage_{i}", regex))
    return tuple(patterns)


FAMILY_PATTERNS = {
    "resnet": resnet_patterns,
    "resnet_v2": resnet_v2_patterns,
    "vgg": vgg_patterns,
    "xception": xception_patterns,
    "efficientnet": efficientnet_patterns,
    "mobilenet_v2": mobilenet_v2_patterns,
    "mobilenet_v3": mobilenet_v3_patterns,
    "densenet": densenet_patterns,
    "convnext": convnext_patterns,
}


# === Assignment ===


def assign_groups(layer_names, patterns):
    """Groups `layer_names` (model order) by ordered `(group, regex)` pairs.

    Args:
        layer_names: layer names in model order (input -> output).
        patterns: `(group name, regex)` pairs ordered input -> output.

    Returns:
        A list of `(group name, [layer names])` in pattern order.

    Raises:
        ValueError: if a pattern matches no layer (the patterns do not fit
            this model).

    Example:

    >>> assign_groups(["input", "block1_conv", "relu", "block2_conv"],
    ...               [("block1", "^block1_"), ("block2", "^block2_")])
    [('block1', ['input', 'block1_conv', 'relu']), ('block2', ['block2_conv'])]
    """
    compiled = [(group, re.compile(regex)) for group, regex in patterns]
    members = {group: [] for group, _ in compiled}
    if len(members) != len(compiled):
        raise ValueError(
            f"Group names must be unique. Received: {[g for g, _ in compiled]}"
        )
    assigned = []
    for name in layer_names:
        assigned.append(
            next((g for g, regex in compiled if regex.search(name)), None)
        )
    first = next((g for g in assigned if g is not None), None)
    previous = first
    for name, group in zip(layer_names, assigned):
        group = group or previous
        if group is not None:
            members[group].append(name)
        previous = group
    empty = [g for g, layers in members.items() if not layers]
    if empty:
        raise ValueError(
            f"The layer-name patterns of groups {empty} match no layer of "
            "this model. Pass `groups=` explicitly (see "
            "`kerasft.backbones.from_model`)."
        )
    return [(group, members[group]) for group, _ in compiled]


def family_groups(family, layer_names):
    """Groups for a `keras.applications` family, see `assign_groups`.

    Raises:
        ValueError: `family` is not a key of `FAMILY_PATTERNS` (the message
            lists them), or one of its patterns matches no layer.
    """
    if not isinstance(family, str) or family not in FAMILY_PATTERNS:
        raise ValueError(
            f"Unknown backbone family {family!r}. Known families: "
            f"{sorted(FAMILY_PATTERNS)}"
        )
    layer_names = list(layer_names)
    return assign_groups(layer_names, FAMILY_PATTERNS[family](layer_names))


def family_fits(family, layer_names, weighted, auto_named=()):
    """Whether `family`'s patterns describe a model with these layers.

    They fit when every pattern matches at least one layer and every layer
    with weights is matched by a pattern, except Keras auto-named layers
    (`auto_named`, e.g. Xception's shortcut `conv2d_1`, EfficientNet's
    input `normalization`), which join the group before them as in
    `assign_groups`.

    Args:
        family: a key of `FAMILY_PATTERNS`.
        layer_names: layer names in model order.
        weighted: names of the layers with weights.
        auto_named: names Keras generated (the snake-case class name,
            optionally `_<n>`). Defaults to `()`.

    Returns:
        `True` or `False`.

    Example:

    >>> names = ["block1_conv1", "block2_conv1", "block3_conv1",
    ...          "block4_conv1", "block5_conv1"]
    >>> family_fits("vgg", names, names), family_fits("resnet", names, names)
    (True, False)
    """
    layer_names = list(layer_names)
    patterns = FAMILY_PATTERNS[family](layer_names)
    compiled = [re.compile(regex) for _, regex in patterns]
    hit = set()
    for regex in compiled:
        matched = {name for name in layer_names if regex.search(name)}
        if not matched:
            return False
        hit |= matched
    exempt = set(auto_named)
    return all(
        name in hit or name in exempt
        for name in layer_names
        if name in weighted
    )


def detect_family(layer_names, weighted, auto_named=()):
    """The first family of `FAMILY_PATTERNS` whose patterns fit, or `None`.

    Families are tried in the order of `FAMILY_PATTERNS` (see
    `family_fits`); the order matters where one family's patterns also
    cover another's names (DenseNet's cover ResNet's, so `resnet` comes
    first).

    Args:
        layer_names: layer names in model order.
        weighted: names of the layers with weights.
        auto_named: names Keras generated, exempt from matching.
            Defaults to `()`.

    Returns:
        A key of `FAMILY_PATTERNS`, or `None`.

    Example:

    >>> detect_family(["Conv1", "bn_Conv1", "block_1_expand", "Conv_1"],
    ...               {"Conv1", "bn_Conv1", "block_1_expand", "Conv_1"})
    'mobilenet_v2'
    >>> detect_family(["conv2d", "dense"], {"conv2d", "dense"}) is None
    True
    """
    layer_names = list(layer_names)
    weighted = set(weighted)
    for family in FAMILY_PATTERNS:
        if family_fits(family, layer_names, weighted, auto_named):
            return family
    return None


# === Automatic groups for user models ===

MIN_PREFIX_GROUPS = 2
MAX_PREFIX_GROUPS = 30


def layer_prefix(name):
    """The block prefix of a layer name, for automatic grouping.

    `block_3_expand` -> `block_3` (a word, `_`, a number, `_`);
    otherwise the part before the first `_`, dropping one letter that
    follows a digit: `conv2_block1_out` -> `conv2`, `block2b_add` ->
    `block2`, `dense` -> `dense`.

    Example:

    >>> [layer_prefix(n) for n in ["block_3_add", "block2b_add", "fc"]]
    ['block_3', 'block2', 'fc']
    """
    match = re.match(r"^([A-Za-z]+_\d+)_", name)
    if match:
        return match.group(1)
    head = name.split("_", 1)[0]
    match = re.match(r"^(.*\d)[a-z]$", head)
    return match.group(1) if match else head


def auto_groups(layer_names, weighted):
    """Groups for a model that declares none, from its layer names.

    Rule (documented in `kerasft.backbones.from_model`):

    1. By prefix: the weighted layers' `layer_prefix`es, in model order,
       form runs. If every prefix forms a single contiguous run and there
       are 2..30 runs, each run is a group named after its prefix.
    2. Otherwise, equal slices: the weighted layers are cut, in model order,
       into `n = clip(round(sqrt(W)), 2, 12)` (at most `W`) contiguous
       slices of near-equal size, named `slice_1`..`slice_n`.

    Layers without weights join the group of the layer before them (the
    first group for leading ones), as in `assign_groups`.

    Args:
        layer_names: layer names in model order.
        weighted: the set (or any container) of names of layers with
            weights.

    Returns:
        A list of `(group name, [layer names])`.
    """
    layer_names = list(layer_names)
    weighted_names = [n for n in layer_names if n in weighted]
    if not weighted_names:
        return [("all", layer_names)] if layer_names else []
    group_of = _prefix_plan(weighted_names) or _slice_plan(weighted_names)
    order = []
    for name in weighted_names:
        if group_of[name] not in order:
            order.append(group_of[name])
    members = {group: [] for group in order}
    previous = group_of[weighted_names[0]]
    for name in layer_names:
        group = group_of.get(name, previous)
        members[group].append(name)
        previous = group
    return [(group, members[group]) for group in order]


def _prefix_plan(weighted_names):
    runs = []
    for name in weighted_names:
        prefix = layer_prefix(name)
        if not runs or runs[-1] != prefix:
            runs.append(prefix)
    if len(set(runs)) != len(runs):
        return None
    if not MIN_PREFIX_GROUPS <= len(runs) <= MAX_PREFIX_GROUPS:
        return None
    return {name: layer_prefix(name) for name in weighted_names}


def _slice_plan(weighted_names):
    count = len(weighted_names)
    n = min(count, max(2, min(12, round(math.sqrt(count)))))
    return {
        name: f"slice_{i * n // count + 1}"
        for i, name in enumerate(weighted_names)
    }
