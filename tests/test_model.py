import keras
import numpy as np
import pytest

import kerasft
from kerasft import _grouping
from kerasft import heads
from kerasft.backbones.backbone import Backbone
from kerasft.backbones.backbone import Group
from tests.heads.tiny_backbone import tiny_backbone
from tests.helpers import assert_model_roundtrip


def test_backbone_nested_as_one_layer_then_head():
    backbone = tiny_backbone()
    head = heads.classification(3, hidden_units=(4,))
    model = kerasft.build_model(backbone, head)
    assert model.name == "tiny_head"
    assert [l.name for l in model.layers] == [
        "image", "tiny", "head_pool", "head_dense_0", "head_output",
    ]
    assert model.get_layer("tiny") is backbone.model
    assert model.input.name == "image" and model.input.shape == (None, 16, 16, 3)
    assert kerasft.build_model(backbone, head, name="mine").name == "mine"


def test_backbone_called_in_inference_mode():
    # With the backbone's BN frozen, predict and a training-mode call agree:
    # the backbone runs with training=False.
    backbone = tiny_backbone()
    model = kerasft.build_model(backbone, heads.regression(2))
    bn = backbone.model.get_layer("b1_bn")
    bn.moving_mean.assign(np.full(4, 0.3, "float32"))
    kerasft.freeze(model, backbone, "full")
    x = np.random.rand(4, 16, 16, 3).astype("float32")
    np.testing.assert_allclose(
        model(x, training=True).numpy(), model(x, training=False).numpy(), atol=1e-6
    )


def _bn_statistics(backbone):
    return [
        np.array(v) for v in backbone.model.non_trainable_weights
        if "moving" in v.path
    ]


def test_batchnorm_frozen_by_default_when_fit_without_freeze():
    # The docstring's path: build, compile, fit; no `freeze`. keras#20285
    # passes training=True into the nested backbone during fit, so only
    # non-trainable BatchNorm keeps its moving statistics fixed.
    backbone = tiny_backbone()
    head = heads.classification(3)
    model = kerasft.build_model(backbone, head)
    bns = [l for l in backbone.model.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert bns and not any(l.trainable for l in bns)
    before = _bn_statistics(backbone)
    model.compile(optimizer=keras.optimizers.SGD(0.1), **head.compile_kwargs())
    x = np.random.RandomState(0).rand(16, 16, 16, 3).astype("float32") * 255
    conv = backbone.model.get_layer("b1_conv").kernel
    kernel_before = np.array(conv)
    model.fit(x, np.arange(16) % 3, batch_size=8, epochs=2, verbose=0)
    for old, new in zip(before, _bn_statistics(backbone)):
        np.testing.assert_array_equal(old, new)
    assert not np.allclose(kernel_before, np.array(conv))  # the rest trains


def test_train_batchnorm_opt_out_moves_statistics():
    backbone = tiny_backbone()
    head = heads.classification(3)
    model = kerasft.build_model(backbone, head, train_batchnorm=True)
    before = _bn_statistics(backbone)
    model.compile(optimizer="sgd", **head.compile_kwargs())
    x = np.random.RandomState(0).rand(8, 16, 16, 3).astype("float32") * 255
    model.fit(x, np.arange(8) % 3, epochs=1, verbose=0)
    assert any(not np.allclose(a, b) for a, b in zip(before, _bn_statistics(backbone)))
    with pytest.raises(TypeError, match="train_batchnorm"):
        kerasft.build_model(tiny_backbone(), head, train_batchnorm="no")


def test_batchnorm_in_nested_submodel_frozen():
    backbone = tiny_backbone(nested=True)
    kerasft.build_model(backbone, heads.regression(1))
    sub = backbone.model.get_layer("b3_sub")
    assert not sub.get_layer("b3_bn").trainable
    assert sub.get_layer("b3_conv").trainable and sub.trainable


def test_group_map_is_plain_data_and_sets_no_attribute():
    backbone = tiny_backbone()
    model = kerasft.build_model(backbone, heads.regression(1))
    mapping = _grouping.group_map(model, backbone)
    assert mapping["b1_conv/kernel"] == "block1" and mapping["head_output/bias"] == "head"
    assert not any("kerasft" in name for v in model.weights for name in vars(v))
    other = keras.Variable(1.0)  # never tagged
    assert _grouping.variable_group(other) is None


def test_tag_model_tags_head_and_groups():
    backbone = tiny_backbone()
    model = kerasft.build_model(backbone, heads.detection(2, conv_filters=(4,)))
    tags = {v.path: _grouping.variable_group(v) for v in model.weights}
    assert tags["b1_conv/kernel"] == "block1"
    assert tags["b2_bn/moving_mean"] == "block2"
    assert tags["b3_conv/bias"] == "block3"
    head_paths = {p for p in tags if p.startswith("head_")}
    assert head_paths >= {
        "head_conv_0/kernel", "head_bbox_regression/kernel", "head_classification/bias",
    }
    assert {tags[p] for p in head_paths} == {"head"}
    assert None not in tags.values()


def test_trained_model_saves_and_loads_with_identical_predictions():
    backbone = tiny_backbone()
    head = heads.classification(3, hidden_units=(4,), dropout=0.2, l2=1e-3)
    model = kerasft.build_model(backbone, head)
    kerasft.freeze(model, backbone, "partial", n=1)
    model.compile(optimizer="adam", **head.compile_kwargs())
    x = np.random.rand(8, 16, 16, 3).astype("float32") * 255
    model.fit(x, np.arange(8) % 3, epochs=1, verbose=0)
    reloaded = assert_model_roundtrip(model, x)
    assert reloaded.get_layer("tiny").get_layer("b3_conv").trainable


def test_detection_model_saves_and_loads():
    backbone = tiny_backbone()
    head = heads.detection(2, conv_filters=(4,))
    model = kerasft.build_model(backbone, head)
    x = np.random.rand(4, 16, 16, 3).astype("float32")
    reloaded = assert_model_roundtrip(model, x)
    assert set(reloaded.output) == {"bbox_regression", "classification"}


def _tiny_text_backbone():
    token_ids = keras.Input((6,), dtype="int32", name="token_ids")
    padding_mask = keras.Input((6,), dtype="int32", name="padding_mask")
    x = keras.layers.Embedding(20, 8, name="embeddings")(token_ids)
    mask = keras.ops.expand_dims(keras.ops.cast(padding_mask, "float32"), -1)
    x = keras.layers.Dense(8, name="layer_0")(x * mask)
    pooled = keras.layers.Dense(8, activation="tanh", name="pooler")(x[:, 0, :])
    model = keras.Model(
        {"token_ids": token_ids, "padding_mask": padding_mask},
        {"sequence_output": x, "pooled_output": pooled},
        name="tiny_text",
    )
    groups = [Group("embeddings", ["embeddings"]), Group("layer_0", ["layer_0", "pooler"])]
    return Backbone(model, None, groups, "tiny_text", preprocess_mode=None,
                    input_range=None, task="text")


def test_text_backbone_dict_inputs():
    backbone = _tiny_text_backbone()
    head = heads.classification(2, binary=True)
    model = kerasft.build_model(backbone, head)
    assert set(model.input) == {"token_ids", "padding_mask"}
    assert model.get_layer("tiny_text") is backbone.model
    inputs = {
        "token_ids": np.random.randint(0, 20, (3, 6)).astype("int32"),
        "padding_mask": np.ones((3, 6), "int32"),
    }
    pooled = backbone.model.predict(inputs, verbose=0)["pooled_output"]
    kernel, bias = model.get_layer("head_output").get_weights()
    expected = 1 / (1 + np.exp(-(pooled @ kernel + bias)))
    np.testing.assert_allclose(model.predict(inputs, verbose=0), expected, rtol=1e-5)
    tags = {v.path: _grouping.variable_group(v) for v in model.weights}
    assert tags["embeddings/embeddings"] == "embeddings"
    assert tags["pooler/kernel"] == "layer_0" and tags["head_output/kernel"] == "head"


def test_head_must_be_callable():
    with pytest.raises(TypeError, match="head"):
        kerasft.build_model(tiny_backbone(), "softmax")


@pytest.mark.parametrize(
    "mode, preprocess_input",
    [
        ("caffe", keras.applications.resnet50.preprocess_input),
        ("tf", keras.applications.mobilenet_v2.preprocess_input),
    ],
)
def test_preprocessing_inside_the_model_once(mode, preprocess_input):
    from kerasft.layers import Preprocess

    backbone = tiny_backbone(preprocess_mode=mode)
    model = kerasft.build_model(backbone, lambda features: features)
    assert sum(isinstance(l, Preprocess) for l in model.layers) == 1
    raw = np.random.randint(0, 256, (2, 16, 16, 3)).astype("float32")
    expected = backbone.model.predict(preprocess_input(raw.copy()), verbose=0)
    np.testing.assert_allclose(model.predict(raw, verbose=0), expected, rtol=1e-4, atol=1e-4)
    assert_model_roundtrip(model, raw, atol=1e-5)


def test_float32_outputs_under_mixed_precision_with_preprocessing():
    keras.mixed_precision.set_global_policy("mixed_float16")
    backbone = tiny_backbone(preprocess_mode="tf")
    head = heads.classification(3, hidden_units=(4,))
    model = kerasft.build_model(backbone, head)
    assert backbone.model.get_layer("b1_conv").compute_dtype == "float16"
    assert model.output.dtype == "float32"
    kerasft.freeze(model, backbone, "full")
    model.compile(optimizer="sgd", **head.compile_kwargs())
    x = np.random.randint(0, 256, (4, 16, 16, 3)).astype("float32")
    history = model.fit(x, np.arange(4) % 3, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert model.predict(x, verbose=0).dtype == np.float32
