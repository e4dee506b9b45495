"""`kerasft.backbones.from_keras_hub`: groups of KerasHub models, and freezing,
layer-wise rates and progressive unfreezing on KerasHub tasks in `fit`."""

import re

import keras
import numpy as np
import pytest

import kerasft
from kerasft import _keras_compat
from kerasft.backbones.keras_hub import check_groups
from kerasft.backbones.keras_hub import from_keras_hub
from kerasft.backbones.keras_hub import plan_groups
from tests.backbones import tiny_keras_hub as tiny

# === Pure grouping (no Keras) ===


def _names(groups):
    return [g for g, _ in groups]


def test_plan_groups_decoder_only_merges_final_norm_into_top_layer():
    layers = [
        ("token_embedding", True),
        ("position_embedding", True),
        ("embeddings_add", False),
        ("transformer_layer_0", True),
        ("transformer_layer_1", True),
        ("layer_norm", True),
    ]
    assert plan_groups(layers) == [
        ("embeddings", ["token_embedding", "position_embedding", "embeddings_add"]),
        ("layer_0", ["transformer_layer_0"]),
        ("layer_1", ["transformer_layer_1", "layer_norm"]),
    ]


def test_plan_groups_orders_encoder_before_decoder_when_interleaved():
    # BART's model order interleaves decoder embeddings with encoder layers.
    layers = [
        ("token_embedding", True),
        ("encoder_position_embedding", True),
        ("decoder_position_embedding", True),
        ("transformer_encoder_layer_0", True),
        ("decoder_embeddings_layer_norm", True),
        ("transformer_encoder_layer_1", True),
        ("encoder_output_layer_norm", True),
        ("transformer_decoder_layer_1", True),
        ("transformer_decoder_layer_0", True),
        ("decoder_output_layer_norm", True),
    ]
    groups = dict(plan_groups(layers))
    assert list(groups) == [
        "embeddings",
        "encoder_layer_0",
        "encoder_layer_1",
        "decoder_layer_0",
        "decoder_layer_1",
    ]
    assert "decoder_embeddings_layer_norm" in groups["embeddings"]
    assert groups["encoder_layer_1"] == [
        "transformer_encoder_layer_1",
        "encoder_output_layer_norm",
    ]
    assert groups["decoder_layer_0"] == [
        "transformer_decoder_layer_0",
        "decoder_output_layer_norm",
    ]


def test_plan_groups_counts_from_zero_and_keeps_pooler_apart():
    layers = [
        ("vit_patching_and_embedding", True),
        ("vit_encoder/transformer_block_1", True),
        ("vit_encoder/transformer_block_2", True),
        ("vit_encoder/ln", True),
        ("pooled_dense", True),
    ]
    assert _names(plan_groups(layers)) == ["embeddings", "layer_0", "layer_1", "pooler"]


@pytest.mark.parametrize(
    "names, expected",
    [
        # Gemma: decoder-only blocks are plain layers.
        (["token_embedding", "decoder_block_0", "decoder_block_1", "final_normalization"],
         ["embeddings", "layer_0", "layer_1"]),
        # T5Gemma / Moonshine style encoder-decoder names.
        (["token_embedding", "encoder_layer_0", "decoder_layer_0"],
         ["embeddings", "encoder_layer_0", "decoder_layer_0"]),
        (["token_embedding", "f_net_layer_0", "f_net_layer_1", "pooled_dense"],
         ["embeddings", "layer_0", "layer_1", "pooler"]),
    ],
)
def test_plan_groups_other_keras_hub_families(names, expected):
    assert _names(plan_groups([(n, True) for n in names])) == expected


def test_plan_groups_falls_back_to_auto_groups_without_transformer_layers():
    # As `kerasft.backbones.from_model` groups a model it knows nothing of.
    layers = [("stem_conv", True), ("stage_0_conv", True), ("stage_1_conv", True)]
    assert plan_groups(layers) == [
        ("stem", ["stem_conv"]),
        ("stage_0", ["stage_0_conv"]),
        ("stage_1", ["stage_1_conv"]),
    ]


def test_check_groups_rejects_missing_and_duplicate_layers():
    with pytest.raises(ValueError, match=r"\['b'\] are in no group"):
        check_groups([("g", ["a"])], ["a", "b"])
    with pytest.raises(ValueError, match="exactly one group"):
        check_groups([("g", ["a"]), ("h", ["a"])], ["a"])


# === Groups of real (tiny) KerasHub models ===

MODELS = {
    "gpt2_causal_lm": (
        tiny.gpt2_lm,
        "causal_lm",
        ["embeddings", "layer_0", "layer_1"],
    ),
    "t5_seq2seq_lm": (
        tiny.t5_lm,
        "seq2seq",
        ["embeddings", "encoder_layer_0", "encoder_layer_1",
         "decoder_layer_0", "decoder_layer_1"],
    ),
    "t5_untied": (
        lambda: tiny.t5_backbone(tie_embedding_weights=False),
        "text",
        ["embeddings", "encoder_layer_0", "encoder_layer_1",
         "decoder_layer_0", "decoder_layer_1"],
    ),
    "bart": (
        tiny.bart_backbone,
        "text",
        ["embeddings", "encoder_layer_0", "encoder_layer_1",
         "decoder_layer_0", "decoder_layer_1"],
    ),
    "bert_classifier": (
        tiny.bert_classifier,
        "text",
        ["embeddings", "layer_0", "layer_1", "pooler"],
    ),
    "vit": (tiny.vit_backbone, "image", ["embeddings", "layer_0", "layer_1"]),
}


def _weighted_layer_names(model):
    """Weighted layers as `from_keras_hub` names them (containers opened)."""
    out = []
    for layer in model.layers:
        if layer.name == "vit_encoder":
            out += [
                f"vit_encoder/{s.name}"
                for s in _keras_compat.sublayers(layer)
                if s.weights
            ]
        elif layer.weights:
            out.append(layer.name)
    return out


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_every_weighted_layer_and_variable_is_in_exactly_one_group(kind):
    make, task, names = MODELS[kind]
    model = make()
    backbone = from_keras_hub(model)
    hub = getattr(model, "backbone", model)
    assert backbone.model is hub and backbone.name == hub.name
    assert backbone.task == task and backbone.group_names == names
    grouped = [n for g in backbone.groups for n in g.layers]
    assert len(grouped) == len(set(grouped))
    for name in _weighted_layer_names(hub):
        assert backbone.group_of(name) is not None, name
    # Every variable's path is unique and matched by exactly one group regex
    # (T5's two `self_attention/embeddings` relative biases included).
    paths = [v.path for v in hub.weights]
    assert len(paths) == len(set(paths)), paths
    patterns = backbone.group_patterns()
    for path in paths:
        hits = [g for g, p in patterns.items() if re.search(p, path)]
        assert len(hits) == 1, (path, hits)
    # The layers of a group hold exactly the variables its regex matches.
    for group in backbone.groups:
        held = {v.path for l in backbone.layers_of([group.name]) for v in l.weights}
        matched = {p for p in paths if re.search(patterns[group.name], p)}
        assert held == matched, group.name


def test_tied_and_untied_embeddings_are_in_the_embeddings_group():
    tied = from_keras_hub(tiny.t5_lm())
    assert [v.path for l in tied.layers_of(["embeddings"]) for v in l.weights] == [
        "token_embedding/embeddings"
    ]
    untied = from_keras_hub(tiny.t5_backbone(tie_embedding_weights=False))
    embedding = untied.layers_of(["embeddings"])[0]
    assert sorted(v.path for v in embedding.weights) == [
        "token_embedding/embeddings",
        "token_embedding/reverse_embeddings",
    ]


def test_tokenizer_is_the_tasks_preprocessor():
    import keras_hub

    tokenizer = keras_hub.models.GPT2Tokenizer(
        vocabulary={"<|endoftext|>": 0, "a": 1, "b": 2, "ab": 3}, merges=["a b"]
    )
    preprocessor = keras_hub.models.GPT2CausalLMPreprocessor(
        tokenizer=tokenizer, sequence_length=8
    )
    lm = keras_hub.models.GPT2CausalLM(
        backbone=tiny.gpt2_backbone(), preprocessor=preprocessor
    )
    backbone = from_keras_hub(lm)
    assert backbone.tokenizer is preprocessor and backbone.preprocess is preprocessor
    assert from_keras_hub(tiny.gpt2_backbone()).tokenizer is None


def test_backbone_task_values():
    model = tiny.gpt2_backbone()
    groups = [("all", ["token_embedding"])]
    for task in ("image", "text", "causal_lm", "seq2seq"):
        assert kerasft.backbones.Backbone(model, None, groups, "g", task=task).task == task
    with pytest.raises(ValueError, match="causal_lm.*Received: task='lm'"):
        kerasft.backbones.Backbone(model, None, groups, "g", task="lm")


def test_bad_arguments():
    with pytest.raises(TypeError, match="from_model"):
        from_keras_hub(keras.Sequential([keras.layers.Dense(1)]))
    with pytest.raises(ValueError, match="name"):
        from_keras_hub(tiny.gpt2_backbone(), name="")
    assert from_keras_hub(tiny.gpt2_backbone(), name="tiny").name == "tiny"


# === Training a KerasHub task in plain `fit` ===

TASKS = {
    "gpt2": (tiny.gpt2_lm, tiny.lm_batch),
    "t5": (tiny.t5_lm, tiny.seq2seq_batch),
}


def _snapshot(backbone):
    return {
        g.name: [np.array(v.numpy()) for l in backbone.layers_of([g.name]) for v in l.weights]
        for g in backbone.groups
    }


def _changed(before, after):
    return {
        g for g in before
        if any(not np.array_equal(a, b) for a, b in zip(before[g], after[g]))
    }


def _fit(task, make_batch, optimizer, epochs=1, callbacks=()):
    x, y, w = make_batch()
    task.compile(optimizer=optimizer, jit_compile=False)
    task.fit(x, y, sample_weight=w, batch_size=4, epochs=epochs,
             callbacks=list(callbacks), verbose=0)


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(TASKS))
def test_freeze_trains_exactly_the_open_groups_of_a_task(kind):
    make, make_batch = TASKS[kind]
    task = make()
    backbone = from_keras_hub(task)
    plan = kerasft.freeze(task, backbone, "partial", n=2)
    assert plan.trainable_groups == tuple(backbone.group_names[-2:])
    before = _snapshot(backbone)
    _fit(task, make_batch, keras.optimizers.Adam(1e-2))
    # The tied token embedding (also the task's output projection) stays
    # frozen with the embeddings group, bit for bit.
    assert _changed(before, _snapshot(backbone)) == set(backbone.group_names[-2:])

    plan = kerasft.freeze(task, backbone, "full")
    assert plan.trainable_groups == tuple(backbone.group_names)
    assert plan.non_trainable_params == 0
    before = _snapshot(backbone)
    _fit(task, make_batch, keras.optimizers.Adam(1e-2))
    assert _changed(before, _snapshot(backbone)) == set(backbone.group_names)


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(TASKS))
def test_layer_decay_scales_each_groups_step(kind):
    make, make_batch = TASKS[kind]
    task = make()
    backbone = from_keras_hub(task)
    initial = task.get_weights()
    deltas = {}
    for decay in (None, 0.5):
        task.set_weights(initial)
        sgd = keras.optimizers.SGD(0.5)
        # GPT-2 through the group tags `from_keras_hub` records (as
        # `build_model` does), T5 through the backbone's path regexes.
        groups = backbone if kind == "t5" else None
        optimizer = (
            sgd if decay is None
            else kerasft.optimizers.LayerwiseLR(sgd, layer_decay=decay, groups=groups)
        )
        _fit(task, make_batch, optimizer)
        deltas[decay] = [w - w0 for w, w0 in zip(task.get_weights(), initial)]
    depth = {g: len(backbone.groups) - i for i, g in enumerate(backbone.group_names)}
    group_of = {}
    for g in backbone.groups:
        for layer in backbone.layers_of([g.name]):
            for v in layer.weights:
                group_of[id(v)] = g.name
    assert set(group_of.values()) == set(backbone.group_names)
    for v, w0, plain, decayed in zip(
        task.weights, initial, deltas[None], deltas[0.5]
    ):
        expected = 0.5 ** depth[group_of[id(v)]]
        assert np.abs(plain).max() > 0, v.path
        # Up to float32 rounding of `w - step` (a few ulps of the weights).
        ulps = 4 * np.spacing(np.abs(w0).max().astype("float32"))
        np.testing.assert_allclose(decayed, expected * plain, rtol=1e-3,
                                   atol=ulps, err_msg=v.path)


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(TASKS))
def test_progressive_unfreeze_opens_groups_at_scheduled_epochs(kind):
    make, make_batch = TASKS[kind]
    task = make()
    backbone = from_keras_hub(task)
    names = backbone.group_names
    snapshots = [_snapshot(backbone)]
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: snapshots.append(_snapshot(backbone))
    )
    unfreeze = kerasft.callbacks.ProgressiveUnfreeze(
        backbone, {0: 1, 1: 2, 2: "all"}, verbose=0
    )
    kerasft.freeze(task, backbone, "progressive")
    _fit(task, make_batch, keras.optimizers.Adam(1e-2), epochs=3,
         callbacks=[unfreeze, record])
    opened = [_changed(a, b) for a, b in zip(snapshots, snapshots[1:])]
    assert opened == [set(names[-1:]), set(names[-2:]), set(names)]


def test_freeze_reaches_vit_blocks_inside_the_encoder():
    backbone = from_keras_hub(tiny.vit_backbone())
    model = kerasft.build_model(
        backbone, lambda features: keras.layers.Dense(2, name="head")(features[:, 0])
    )
    plan = kerasft.freeze(model, backbone, "partial", n=1)
    assert plan.trainable_groups == ("layer_1",)
    assert plan.trainable_layers == (
        "vit_encoder/transformer_block_2",
        "vit_encoder/ln",
    )
    paths = {v.path for v in model.trainable_weights}
    assert paths and all(
        re.match(r"(vit_encoder/(transformer_block_2|ln)|head)/", p) for p in paths
    ), paths
    assert any(p.startswith("head/") for p in paths)
    plan = kerasft.freeze(model, backbone, "full")
    assert plan.non_trainable_params == 0


def test_build_model_tags_vit_blocks_with_their_own_groups():
    """`build_model`'s group tags reach groups of sublayers (ViT's blocks
    inside `vit_encoder`), so `LayerwiseLR(groups=None)` gives them their
    layer-decayed rate, not the head's."""
    from kerasft import _grouping

    backbone = from_keras_hub(tiny.vit_backbone())
    model = kerasft.build_model(
        backbone, lambda features: keras.layers.Dense(2, name="head")(features[:, 0])
    )
    tags = {v.path: _grouping.variable_group(v) for v in model.weights}
    blocks = {p: g for p, g in tags.items() if "transformer_block_2/" in p}
    assert blocks and set(blocks.values()) == {"layer_1"}, blocks
    assert {g for p, g in tags.items() if "transformer_block_1/" in p} == {"layer_0"}
    assert {g for p, g in tags.items() if p.startswith("head/")} == {"head"}


def test_build_model_refuses_a_generative_backbone():
    backbone = from_keras_hub(tiny.gpt2_lm())
    with pytest.raises(ValueError, match="causal_lm model.*recipes.seq2seq"):
        kerasft.build_model(backbone, kerasft.heads.classification(2))
