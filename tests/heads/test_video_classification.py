"""`kerasft.heads.video_classification` with `kerasft.build_model`."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import kerasft
from kerasft import heads
from kerasft.heads.video_classification import FramePooling, FramesFromBatch, FramesToBatch
from tests.recipes.video_tiny import frame_backbone

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _clips(n=2, frames=4, size=16, seed=0):
    return np.random.RandomState(seed).uniform(
        0, 255, (n, frames, size, size, 3)).astype("float32")


@pytest.mark.parametrize("temporal", ["gru", "transformer", "conv1d", "mean"])
def test_backbone_runs_per_frame_then_the_temporal_model(temporal):
    backbone = frame_backbone(size=16)
    head = heads.video_classification(3, frames=4, temporal=temporal,
                                      units=8, num_heads=2)
    model = kerasft.build_model(backbone, head)
    assert model.input_shape == (None, 4, 16, 16, 3)
    assert model.get_layer(backbone.name) is backbone.model  # nested once
    clips = _clips()
    out = keras.ops.convert_to_numpy(model(clips))
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out.sum(-1), 1.0, rtol=1e-5)
    # The per-frame vectors are the backbone's features of every frame.
    frames_model = keras.Model(
        model.inputs, model.get_layer(head.frame_features_name).output)
    per_frame = keras.ops.convert_to_numpy(frames_model(clips))
    direct = keras.ops.convert_to_numpy(
        backbone.model(clips.reshape(-1, 16, 16, 3)))
    np.testing.assert_allclose(per_frame.reshape(8, -1), direct, rtol=1e-5,
                               atol=1e-5)
    # Order: only the mean cannot tell a clip from its frames reversed.
    reverse = keras.ops.convert_to_numpy(model(clips[:, ::-1]))
    if temporal == "mean":
        np.testing.assert_allclose(reverse, out, rtol=1e-5, atol=1e-6)
    else:
        assert np.abs(reverse - out).max() > 1e-4


def test_config_and_keras_file_round_trip_in_a_fresh_process(tmp_path):
    head = heads.video_classification(
        4, frames=3, temporal="transformer", units=8, num_heads=2,
        hidden_units=(6,), dropout=0.1, label_mode="categorical")
    config = head.get_config()
    assert config["temporal"] == "transformer" and config["frames"] == 3
    assert heads.VideoClassificationHead.from_config(config).get_config() == config
    model = kerasft.build_model(frame_backbone(size=16), head)
    model.compile(optimizer="adam", **head.compile_kwargs())
    clips = _clips(frames=3)
    path = str(tmp_path / "video.keras")
    model.save(path)
    np.save(tmp_path / "clips.npy", clips)
    np.save(tmp_path / "out.npy", keras.ops.convert_to_numpy(model(clips)))
    code = (
        "import sys, numpy as np, keras, kerasft\n"
        "d = sys.argv[1]\n"
        "m = keras.models.load_model(d + '/video.keras')\n"
        "out = keras.ops.convert_to_numpy(m(np.load(d + '/clips.npy')))\n"
        "np.testing.assert_allclose(out, np.load(d + '/out.npy'), atol=1e-5)\n"
        "print('ok', [type(l).__name__ for l in m.layers][1])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True,
        text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ok FramesToBatch" in result.stdout


def test_layers_fold_and_unfold_frames():
    x = np.arange(2 * 3 * 4 * 4 * 1, dtype="float32").reshape(2, 3, 4, 4, 1)
    folded = FramesToBatch()(x)
    assert tuple(folded.shape) == (6, 4, 4, 1)
    back = keras.ops.convert_to_numpy(FramesFromBatch(3)(folded))
    np.testing.assert_array_equal(back, x)
    assert FramesFromBatch.from_config(FramesFromBatch(3).get_config()).frames == 3
    pooled = keras.ops.convert_to_numpy(FramePooling("max")(x))
    np.testing.assert_array_equal(pooled, x.max(axis=(2, 3)))
    flat = FramePooling("flatten")(x)
    assert tuple(flat.shape) == (2, 3, 16)


def test_metrics_include_top5_and_arguments_are_checked():
    head = heads.video_classification(10, frames=2)
    assert [m.name for m in head.metrics] == ["accuracy", "top5_accuracy"]
    # With 5 classes or fewer top-5 accuracy is always 1.0: left out.
    assert [m.name for m in heads.video_classification(5, frames=2).metrics] == [
        "accuracy"]
    assert head.loss == "sparse_categorical_crossentropy"
    with pytest.raises(ValueError, match="`temporal` must be one of"):
        heads.video_classification(3, temporal="lstm3d")
    with pytest.raises(ValueError, match="`frames` must be a positive"):
        heads.video_classification(3, frames=0)
    with pytest.raises(ValueError, match="`num_classes` must be >= 2"):
        heads.video_classification(1)
    with pytest.raises(ValueError, match="per-frame"):
        heads.video_classification(3)(keras.Input((8,)))
