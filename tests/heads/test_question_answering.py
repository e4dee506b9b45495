"""`kerasft.heads.question_answering`: start/end logits, masking, training."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasft.backbones.bert import bert
from kerasft.heads.question_answering import QuestionAnsweringHead
from kerasft.heads.question_answering import SpanLogits
from kerasft.heads.question_answering import question_answering
from kerasft.model import build_model
from tests.fixtures.tiny_hf import make_tiny_folder
from tests.helpers import assert_config_roundtrip
from tests.helpers import assert_model_roundtrip


def test_logits_are_one_dense_per_token_and_masked():
    sequence = keras.Input((5, 4))
    mask = keras.Input((5,), dtype="int32")
    head = question_answering(name="qa")
    out = head({"sequence_output": sequence, "padding_mask": mask})
    model = keras.Model([sequence, mask], out)
    seq = np.random.default_rng(0).normal(size=(2, 5, 4)).astype("float32")
    pad = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], "int32")
    got = model.predict([seq, pad], verbose=0)
    layer = model.get_layer("qa_span")
    logits = seq @ layer.kernel.numpy() + layer.bias.numpy()
    start = np.where(pad == 1, logits[..., 0], -1e9)
    end = np.where(pad == 1, logits[..., 1], -1e9)
    np.testing.assert_allclose(got["start_logits"], start, atol=1e-5)
    np.testing.assert_allclose(got["end_logits"], end, atol=1e-5)
    assert got["start_logits"].dtype == np.float32


def test_span_logits_layer_roundtrip():
    assert_config_roundtrip(SpanLogits(name="s"))
    assert_config_roundtrip(question_answering(dropout=0.1, name="qa"))
    with pytest.raises(ValueError, match="dropout"):
        QuestionAnsweringHead(dropout=-0.1)
    with pytest.raises(ValueError, match="sequence_output"):
        question_answering()({"pooled_output": keras.Input((4,))})


def test_trains_on_answer_positions_and_reloads(tmp_path):
    folder, _ = make_tiny_folder(str(tmp_path / "tiny"))
    backbone = bert(folder, sequence_length=12)
    head = question_answering()
    model = build_model(backbone, head)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), **head.compile_kwargs())
    x = backbone.tokenizer(
        x=(
            np.array(["who built it", "when was it built", "what", "where"]),
            np.array(["paris tower", "built in 1889", "a good film", "in paris"]),
        )
    )
    x = {k: np.asarray(v).astype("int32") for k, v in x.items()}
    y = {
        "start_logits": np.array([5, 8, 3, 4], "int32"),
        "end_logits": np.array([6, 8, 5, 4], "int32"),
    }
    first = model.evaluate(x, y, verbose=0, return_dict=True)["loss"]
    # Eager steps on the head's own losses (cheaper here than tracing fit).
    optimizer = keras.optimizers.Adam(1e-2)
    for _ in range(12):
        with tf.GradientTape() as tape:
            out = model(x, training=True)
            loss = sum(head.loss[k](y[k], out[k]) for k in y)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
    last = model.evaluate(x, y, verbose=0, return_dict=True)["loss"]
    assert last < 0.5 * first
    out = model(x)
    assert tuple(out["start_logits"].shape) == (4, 12)
    np.testing.assert_array_equal(
        np.argmax(out["start_logits"], 1), y["start_logits"]
    )
    assert_model_roundtrip(model, x, atol=1e-5)
