"""`kerasft.export`: SavedModel and TFLite files against `model.predict`."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasft
from kerasft.exporting import export, labels_path
from tests.finished_run import finished_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    directory, test_data = finished_run(tmp_path_factory.mktemp("run") / "run")
    model = keras.models.load_model(os.path.join(directory, "model.keras"))
    return directory, model, test_data


def _tflite_predict(path, x):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    source = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(source["index"], list(x.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], x.astype(source["dtype"]))
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def test_saved_model_equals_predict_for_float_and_uint8_pixels(run, tmp_path):
    directory, model, (x, _) = run
    path = export(directory, tmp_path / "saved")
    expected = model.predict(x, verbose=0)
    loaded = tf.saved_model.load(path)
    np.testing.assert_allclose(loaded.serve(x).numpy(), expected, atol=1e-5)
    # Raw uint8 pixels: the preprocessing is inside; any batch size.
    pixels = np.round(x[:5]).astype("uint8")
    np.testing.assert_allclose(
        loaded.serve_uint8(pixels).numpy(),
        model.predict(pixels.astype("float32"), verbose=0), atol=1e-5,
    )
    np.testing.assert_allclose(expected.sum(axis=1), 1.0, atol=1e-5)  # probs
    with open(os.path.join(directory, "labels.json")) as f:
        names = json.load(f)
    assert [n.decode() for n in loaded.class_names().numpy()] == names
    with open(os.path.join(path, "assets.extra", "labels.json")) as f:
        assert json.load(f) == names
    assert "serving_default" in loaded.signatures


def test_tflite_float32_within_1e_4_and_float16(run, tmp_path):
    directory, model, (x, _) = run
    expected = model.predict(x, verbose=0)
    path = kerasft.export(directory, str(tmp_path / "m.tflite"), format="tflite")
    np.testing.assert_allclose(_tflite_predict(path, x), expected, atol=1e-4)
    assert os.path.exists(labels_path(path))  # m.labels.json
    half = kerasft.export(model, str(tmp_path / "h.tflite"), format="tflite",
                          quantize="float16")
    np.testing.assert_allclose(_tflite_predict(half, x), expected, atol=1e-2)


def test_int8_accuracy_within_2_points_of_float(run, tmp_path):
    directory, model, (x, y) = run
    calibration = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    path = export(directory, str(tmp_path / "q.tflite"), format="tflite",
                  quantize="int8", representative_data=calibration)
    float_accuracy = np.mean(model.predict(x, verbose=0).argmax(1) == y)
    int8_accuracy = np.mean(_tflite_predict(path, x).argmax(1) == y)
    assert float_accuracy > 0.9  # a model worth quantizing
    assert abs(int8_accuracy - float_accuracy) <= 0.02
    dynamic = export(model, str(tmp_path / "d.tflite"), format="tflite",
                     quantize="dynamic")
    assert np.mean(_tflite_predict(dynamic, x).argmax(1) == y) >= float_accuracy - 0.02


def test_dict_input_model_exports_token_id_signature(tmp_path):
    ids = keras.Input((8,), dtype="int32", name="token_ids")
    mask = keras.Input((8,), dtype="int32", name="padding_mask")
    x = keras.layers.Embedding(20, 4)(ids)
    x = x * keras.ops.expand_dims(keras.ops.cast(mask, "float32"), -1)
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(x))
    model = keras.Model({"token_ids": ids, "padding_mask": mask}, out)
    batch = {"token_ids": np.arange(24).reshape(3, 8).astype("int32") % 20,
             "padding_mask": np.ones((3, 8), "int32")}
    path = export(model, tmp_path / "text")
    loaded = tf.saved_model.load(path)
    np.testing.assert_allclose(
        loaded.serve(batch).numpy(), model.predict(batch, verbose=0), atol=1e-5
    )


def test_clear_errors(run, tmp_path):
    directory, model, _ = run
    with pytest.raises(ValueError, match="does not exist"):
        export(tmp_path / "nowhere", tmp_path / "x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="is not a kerasft run folder"):
        export(tmp_path / "empty", tmp_path / "x")
    with pytest.raises(ValueError, match="`format` must be one of"):
        export(model, tmp_path / "x", format="onnx")
    with pytest.raises(ValueError, match="TFLite files only"):
        export(model, tmp_path / "x", quantize="int8")
    with pytest.raises(ValueError, match="needs `representative_data`"):
        export(model, tmp_path / "x.tflite", format="tflite", quantize="int8")
    strings = keras.Input((), dtype="string")
    with pytest.raises(ValueError, match="string tensor"):
        export(keras.Model(strings, strings), tmp_path / "s")


def test_recipe_export_option_writes_next_to_model_keras(tmp_path):
    from kerasft.recipes.configs import ImageClassificationConfig

    directory, (x, _) = finished_run(
        tmp_path / "run", epochs=2, export="saved_model,tflite")
    files = set(os.listdir(directory))
    assert {"model.keras", "model_saved_model", "model.tflite",
            "model.labels.json"} <= files
    model = keras.models.load_model(os.path.join(directory, "model.keras"))
    served = tf.saved_model.load(os.path.join(directory, "model_saved_model"))
    np.testing.assert_allclose(served.serve(x[:4]).numpy(),
                               model.predict(x[:4], verbose=0), atol=1e-5)
    assert ImageClassificationConfig(export=["tflite"]).export == ["tflite"]
    with pytest.raises(ValueError, match="`export` must list formats"):
        ImageClassificationConfig(export="onnx")
