"""`kerasft.heads.text_classification` on KerasHub text backbone outputs."""

import keras
import numpy as np
import pytest

from kerasft.backbones.bert import bert
from kerasft.heads.text import TextClassificationHead
from kerasft.heads.text import text_classification
from kerasft.model import build_model
from tests.fixtures.tiny_hf import make_tiny_folder
from tests.helpers import assert_config_roundtrip
from tests.helpers import assert_model_roundtrip


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _dense(model, name):
    layer = model.get_layer(name)
    return layer.kernel.numpy(), layer.bias.numpy()


def test_binary_head_is_one_sigmoid_on_pooled_output():
    pooled = keras.Input((6,), name="pooled")
    sequence = keras.Input((4, 6), name="sequence")
    head = text_classification(1, dropout=0.0)
    out = head({"sequence_output": sequence, "pooled_output": pooled})
    model = keras.Model([sequence, pooled], out)
    seq = np.random.default_rng(0).normal(size=(3, 4, 6)).astype("float32")
    pool = np.random.default_rng(1).normal(size=(3, 6)).astype("float32")
    got = model.predict([seq, pool], verbose=0)
    kernel, bias = _dense(model, "head_output")
    np.testing.assert_allclose(got, _sigmoid(pool @ kernel + bias), atol=1e-6)
    assert head.loss == "binary_crossentropy"


def test_multiclass_head_uses_first_token_without_pooler():
    sequence = keras.Input((4, 6))
    head = text_classification(3, dropout=0.0, name="cls")
    model = keras.Model(sequence, head(sequence))  # DistilBERT-style tensor
    seq = np.random.default_rng(0).normal(size=(2, 4, 6)).astype("float32")
    got = model.predict(seq, verbose=0)
    kernel, bias = _dense(model, "cls_output")
    logits = seq[:, 0, :] @ kernel + bias
    expected = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert head.loss == "sparse_categorical_crossentropy"


def test_output_is_float32_under_mixed_precision(tmp_path):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    folder, _ = make_tiny_folder(str(tmp_path / "tiny"))
    backbone = bert(folder, sequence_length=8)
    model = build_model(backbone, text_classification(2))
    x = backbone.tokenizer(np.array(["a good film"]))
    assert model(x).dtype == "float32"


def test_bad_arguments():
    with pytest.raises(ValueError, match="dropout"):
        text_classification(2, dropout=1.5)
    with pytest.raises(ValueError, match="num_classes"):
        text_classification(0)
    with pytest.raises(TypeError, match="text backbone"):
        text_classification(2)(keras.Input((8, 8, 3)))
    with pytest.raises(ValueError, match="sequence_output"):
        text_classification(2)({"other": keras.Input((4,))})


def test_config_and_model_roundtrip(tmp_path):
    head = text_classification(3, dropout=0.2, hidden_units=(8,), name="clf")
    clone = assert_config_roundtrip(head)
    assert isinstance(clone, TextClassificationHead)
    folder, _ = make_tiny_folder(str(tmp_path / "tiny"))
    backbone = bert(folder, sequence_length=8)
    model = build_model(backbone, text_classification(3))
    x = backbone.tokenizer(np.array(["a good film", "what a bad movie"]))
    x = {k: np.asarray(v).astype("int32") for k, v in x.items()}
    assert_model_roundtrip(model, x, atol=1e-6)
