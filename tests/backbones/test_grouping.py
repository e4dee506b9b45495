"""Pure grouping: family patterns and the automatic rule, on layer names only."""

import pytest

from kerasft.backbones import grouping


def _groups(result):
    return {name: layers for name, layers in result}


def _order(result):
    return [name for name, _ in result]


def test_assign_groups_fallback_rules():
    names = ["input", "a_conv", "relu", "b_conv", "add", "b_bn"]
    result = grouping.assign_groups(names, [("a", "^a_"), ("b", "^b_")])
    assert result == [
        ("a", ["input", "a_conv", "relu"]),
        ("b", ["b_conv", "add", "b_bn"]),
    ]


def test_assign_groups_first_matching_pattern_wins():
    result = grouping.assign_groups(
        ["x_1", "x_2"], [("first", "^x_1"), ("rest", "^x_")]
    )
    assert result == [("first", ["x_1"]), ("rest", ["x_2"])]


def test_assign_groups_empty_group_is_an_error():
    with pytest.raises(ValueError, match=r"\['c'\] match no layer"):
        grouping.assign_groups(["a_1", "b_1"], [("a", "^a_"), ("c", "^c_")])


def test_resnet():
    names = [
        "input_layer", "conv1_pad", "conv1_conv", "conv1_bn", "conv1_relu",
        "pool1_pad", "pool1_pool", "conv2_block1_1_conv", "conv2_block1_add",
        "conv3_block1_0_conv", "conv4_block1_out", "conv5_block3_3_bn",
        "conv5_block3_out",
    ]
    groups = _groups(grouping.family_groups("resnet", names))
    assert list(groups) == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    assert groups["conv1"] == names[:7]
    assert groups["conv5"] == ["conv5_block3_3_bn", "conv5_block3_out"]


def test_resnet_v2_final_bn_in_conv5():
    names = ["conv1_conv", "conv2_block1_preact_bn", "max_pooling2d",
             "conv3_x", "conv4_x", "conv5_block3_out", "post_bn", "post_relu"]
    groups = _groups(grouping.family_groups("resnet_v2", names))
    assert groups["conv2"] == ["conv2_block1_preact_bn", "max_pooling2d"]
    assert groups["conv5"] == ["conv5_block3_out", "post_bn", "post_relu"]


def test_efficientnet():
    names = ["input_layer_3", "rescaling", "normalization", "stem_conv_pad",
             "stem_conv", "stem_bn", "block1a_dwconv", "block2a_expand_conv",
             "block2b_add", "block3a_x", "block4c_add", "block5a_x",
             "block6d_x", "block7a_project_bn", "top_conv", "top_bn",
             "top_activation"]
    result = grouping.family_groups("efficientnet", names)
    assert _order(result) == ["stem"] + [f"block{i}" for i in range(1, 8)] + [
        "top"
    ]
    groups = _groups(result)
    assert groups["stem"] == names[:6]
    assert groups["block2"] == ["block2a_expand_conv", "block2b_add"]
    assert groups["top"] == ["top_conv", "top_bn", "top_activation"]


def test_efficientnet_v2_has_six_blocks():
    names = ["stem_conv"] + [f"block{i}a_x" for i in range(1, 7)] + ["top_bn"]
    result = grouping.family_groups("efficientnet", names)
    assert _order(result) == ["stem"] + [f"block{i}" for i in range(1, 7)] + [
        "top"
    ]


def test_vgg_and_xception():
    names = ["input", "block1_conv1", "block1_pool", "block2_conv1",
             "block3_conv1", "block4_conv1", "block5_conv3", "block5_pool"]
    groups = _groups(grouping.family_groups("vgg", names))
    assert groups["block1"] == ["input", "block1_conv1", "block1_pool"]
    assert groups["block5"] == ["block5_conv3", "block5_pool"]
    names = [f"block{i}_sepconv1" for i in range(1, 15)]
    names.insert(2, "conv2d")  # auto-named shortcut conv joins block2
    groups = _groups(grouping.family_groups("xception", names))
    assert groups["block2"] == ["block2_sepconv1", "conv2d"]
    assert len(groups) == 14


def test_mobilenet_v2():
    names = ["input_layer", "Conv1", "bn_Conv1", "Conv1_relu",
             "expanded_conv_depthwise", "expanded_conv_project_BN"]
    for i in range(1, 17):
        names += [f"block_{i}_expand", f"block_{i}_project_BN"]
    names += ["Conv_1", "Conv_1_bn", "out_relu"]
    result = grouping.family_groups("mobilenet_v2", names)
    assert _order(result) == (
        ["stem"] + [f"block_{i}" for i in range(1, 17)] + ["top"]
    )
    groups = _groups(result)
    assert groups["stem"] == names[:6]
    assert groups["block_1"] == ["block_1_expand", "block_1_project_BN"]
    assert groups["block_16"] == ["block_16_expand", "block_16_project_BN"]
    assert groups["top"] == ["Conv_1", "Conv_1_bn", "out_relu"]


def test_mobilenet_v3():
    names = ["rescaling", "conv", "conv_bn", "activation",
             "expanded_conv_depthwise", "re_lu", "expanded_conv_project_bn",
             "expanded_conv_1_expand", "re_lu_2", "expanded_conv_10_add",
             "conv_1", "conv_1_bn", "activation_17"]
    groups = _groups(grouping.family_groups("mobilenet_v3", names))
    assert list(groups) == ["stem", "block_1", "block_10", "top"]
    assert groups["stem"] == names[:7]
    assert groups["block_1"] == ["expanded_conv_1_expand", "re_lu_2"]
    assert groups["top"] == ["conv_1", "conv_1_bn", "activation_17"]


def test_densenet_transitions_close_their_stage():
    names = ["zero_padding2d", "conv1_conv", "pool1", "conv2_block1_0_bn",
             "pool2_bn", "pool2_pool", "conv3_block1_concat", "pool3_conv",
             "conv4_block1_0_bn", "pool4_pool", "conv5_block16_concat",
             "bn", "relu"]
    groups = _groups(grouping.family_groups("densenet", names))
    assert groups["conv1"] == ["zero_padding2d", "conv1_conv", "pool1"]
    assert groups["conv2"] == ["conv2_block1_0_bn", "pool2_bn", "pool2_pool"]
    assert groups["conv5"] == ["conv5_block16_concat", "bn", "relu"]


def test_convnext_downsampling_opens_next_stage():
    p = "convnext_tiny_"
    names = [p + "prestem_normalization", p + "stem",
             p + "stage_0_block_0_gelu", p + "downsampling_block_0",
             p + "stage_1_block_0_depthwise_conv", p + "downsampling_block_1",
             p + "stage_2_block_0_x", p + "downsampling_block_2",
             p + "stage_3_block_2_identity", "layer_normalization"]
    groups = _groups(grouping.family_groups("convnext", names))
    assert list(groups) == ["stem", "stage_0", "stage_1", "stage_2", "stage_3"]
    assert groups["stage_1"] == names[3:5]
    assert groups["stage_3"] == names[7:]


def test_unknown_family():
    with pytest.raises(ValueError, match="Unknown backbone family 'lenet'"):
        grouping.family_groups("lenet", ["a"])


# Weighted layer names (in model order) shaped like each family's.
_RESNET = ["conv1_conv", "conv1_bn", "conv2_block1_1_conv", "conv3_block1_0_conv",
           "conv4_block1_1_bn", "conv5_block3_3_bn"]
_DENSENET = ["conv1_conv", "conv1_bn", "conv2_block1_1_conv", "pool2_bn",
             "pool2_conv", "conv3_block1_1_conv", "pool3_conv",
             "conv4_block1_1_conv", "pool4_conv", "conv5_block1_1_conv", "bn"]
_XCEPTION = [f"block{i}_sepconv1" for i in range(1, 15)]


def test_detect_family_first_fitting_family_in_registry_order():
    # DenseNet's patterns also cover ResNet's names: `resnet` is tried first.
    assert grouping.detect_family(_RESNET, _RESNET) == "resnet"
    v2 = _RESNET + ["post_bn"]
    assert grouping.detect_family(v2, v2) == "resnet_v2"
    # `pool2_conv` (weighted) is matched by no ResNet pattern.
    assert grouping.detect_family(_DENSENET, _DENSENET) == "densenet"
    mobilenet = ["Conv1", "bn_Conv1", "expanded_conv_project"] + [
        f"block_{i}_expand" for i in range(1, 17)] + ["Conv_1", "Conv_1_bn"]
    assert grouping.detect_family(mobilenet, mobilenet) == "mobilenet_v2"


def test_detect_family_exempts_only_auto_named_layers():
    names = _XCEPTION[:2] + ["conv2d", "batch_normalization"] + _XCEPTION[2:]
    weighted = set(names)
    # Without knowing they are auto-named, the shortcut layers do not fit.
    assert grouping.detect_family(names, weighted) is None
    auto = ["conv2d", "batch_normalization"]
    assert grouping.detect_family(names, weighted, auto) == "xception"
    # A user layer no pattern matches, with weights: no family fits ...
    extended = names + ["my_dense"]
    assert grouping.detect_family(extended, set(extended), auto) is None
    # ... unless it has no weights (it then joins the group before it).
    assert grouping.detect_family(extended, weighted, auto) == "xception"


def test_family_fits_needs_every_group():
    names = [f"block{i}_conv1" for i in range(1, 5)]  # no block5
    assert not grouping.family_fits("vgg", names, names)
    assert grouping.family_fits("vgg", names + ["block5_conv1"], names)
    assert grouping.detect_family(["conv2d", "dense"], {"conv2d", "dense"},
                                  ["conv2d", "dense"]) is None


def test_layer_prefix():
    table = [
        ("block_3_expand", "block_3"),
        ("Conv_1_bn", "Conv_1"),
        ("conv2_block1_out", "conv2"),
        ("block2b_add", "block2"),
        ("block1_conv1", "block1"),
        ("dense", "dense"),
        ("dense_1", "dense"),
        ("stem_conv", "stem"),
    ]
    assert [(n, grouping.layer_prefix(n)) for n, _ in table] == table


def test_auto_groups_by_prefix():
    names = ["input", "stem_conv", "stem_relu", "stage1_conv", "stage1_add",
             "stage2_conv", "head_pool"]
    weighted = {"stem_conv", "stage1_conv", "stage2_conv"}
    assert grouping.auto_groups(names, weighted) == [
        ("stem", ["input", "stem_conv", "stem_relu"]),
        ("stage1", ["stage1_conv", "stage1_add"]),
        ("stage2", ["stage2_conv", "head_pool"]),
    ]


def test_auto_groups_interleaved_prefixes_fall_back_to_slices():
    # Keras auto names: conv2d, batch_normalization, conv2d_1, ... repeat.
    names = ["input"]
    for i in range(9):
        suffix = f"_{i}" if i else ""
        names += [f"conv2d{suffix}", f"batch_normalization{suffix}", f"re_lu{suffix}"]
    weighted = {n for n in names if not n.startswith(("input", "re_lu"))}
    result = grouping.auto_groups(names, weighted)
    # 18 weighted layers -> round(sqrt(18)) = 4 slices of 5, 4, 5, 4.
    assert _order(result) == ["slice_1", "slice_2", "slice_3", "slice_4"]
    sizes = [len([n for n in layers if n in weighted]) for _, layers in result]
    assert sizes == [5, 4, 5, 4]
    assert sum(len(layers) for _, layers in result) == len(names)
    assert result[0][1][:2] == ["input", "conv2d"]


def test_auto_groups_single_prefix_falls_back_to_slices():
    names = ["dense", "dense_1", "dense_2"]
    result = grouping.auto_groups(names, set(names))
    assert result == [("slice_1", ["dense", "dense_1"]), ("slice_2", ["dense_2"])]


def test_auto_groups_too_many_prefixes_fall_back_to_slices():
    names = [f"layer{i}_conv" for i in range(40)]
    result = grouping.auto_groups(names, set(names))
    assert _order(result) == [f"slice_{i}" for i in range(1, 7)]  # sqrt(40)
    assert sum(len(layers) for _, layers in result) == 40
