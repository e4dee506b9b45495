"""`kerasft.heads.token_classification`: per-token logits, ignored labels."""

import keras
import numpy as np
import pytest

from kerasft.backbones.bert import bert
from kerasft.heads.token_classification import TokenAccuracy
from kerasft.heads.token_classification import TokenClassificationHead
from kerasft.heads.token_classification import token_classification
from kerasft.model import build_model
from tests.fixtures.tiny_hf import make_tiny_folder
from tests.helpers import assert_config_roundtrip
from tests.helpers import assert_model_roundtrip


def test_logits_are_one_dense_per_token_in_float32():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    sequence = keras.Input((5, 4))
    head = token_classification(3, dropout=0.0, name="ner")
    features = {"sequence_output": sequence, "pooled_output": sequence[:, 0]}
    model = keras.Model(sequence, head(features))
    x = np.random.default_rng(0).normal(size=(2, 5, 4)).astype("float32")
    got = model.predict(x, verbose=0)
    layer = model.get_layer("ner_output")
    assert got.shape == (2, 5, 3) and got.dtype == np.float32
    expected = x @ layer.kernel.numpy().astype("float32") + layer.bias.numpy()
    np.testing.assert_allclose(got, expected, atol=0.1)  # bf16 inputs to the Dense


def test_loss_and_accuracy_skip_ignored_positions():
    head = token_classification(3)
    y = np.array([[1, -100, 2, -100]])
    logits = np.zeros((1, 4, 3), "float32")
    logits[0, 0, 1] = logits[0, 2, 0] = 5.0
    logits[0, 1, 0] = logits[0, 3, 0] = 50.0  # wrong but ignored
    loss = float(head.loss(y, logits))
    per_token = -np.log(np.exp([5.0, 0.0]) / (np.exp(5.0) + 2))
    assert loss == pytest.approx(per_token.mean(), rel=1e-5)
    metric = head.metrics[0]
    metric.update_state(y, logits)
    assert float(metric.result()) == pytest.approx(0.5)  # 1 of 2 kept tokens
    metric.update_state(np.array([[-100, 0]]), logits[:, :2])
    # Token 0 ignored, token 1 (label 0, argmax 0) right: 2 of 3 in all.
    assert float(metric.result()) == pytest.approx(2 / 3)


def test_config_roundtrip_and_errors():
    assert_config_roundtrip(token_classification(9, dropout=0.2, name="ner"))
    assert_config_roundtrip(TokenAccuracy(ignore_index=-1))
    with pytest.raises(ValueError, match="num_labels"):
        TokenClassificationHead(0)
    with pytest.raises(ValueError, match="dropout"):
        TokenClassificationHead(3, dropout=1.0)
    with pytest.raises(ValueError, match="ignore_index"):
        TokenClassificationHead(3, ignore_index=1)
    with pytest.raises(ValueError, match="sequence_output"):
        token_classification(3)({"pooled_output": keras.Input((4,))})


def test_on_a_bert_backbone_saves_and_reloads(tmp_path):
    folder, _ = make_tiny_folder(str(tmp_path / "tiny"))
    backbone = bert(folder, sequence_length=8)
    head = token_classification(5)
    model = build_model(backbone, head)
    model.compile(optimizer="adam", **head.compile_kwargs())
    x = backbone.tokenizer(np.array(["the tower in paris", "a good film"]))
    x = {k: np.asarray(v) for k, v in x.items()}
    y = np.where(x["padding_mask"] == 1, 1, -100)
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert {"loss", "token_accuracy"} <= set(logs)
    assert model(x).shape == (2, 8, 5)
    assert_model_roundtrip(model, x, atol=1e-5)
