"""`kerasft.recipes.video_classification`: learning, CLI, resume, errors."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from kerasft import cli, recipes
from kerasft.recipes import _resume
from tests.data import videos
from tests.recipes.video_tiny import frame_backbone
from tests.recipes import kill9

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def left_right(tmp_path_factory):
    """Squares moving left or right: 40 training, 20 validation clips per
    class, 8 frames of 32 px, as frame folders."""
    root = tmp_path_factory.mktemp("left_right")
    videos.clip_folder(str(root / "train"), per_class=40, frames=8, seed=0)
    videos.clip_folder(str(root / "val"), per_class=20, frames=8, seed=50000)
    return root


@pytest.mark.slow
def test_order_aware_head_learns_direction_where_the_frame_mean_cannot(
    left_right, tmp_path
):
    """The frame average of a square moving left equals that of one moving
    right, so `temporal="mean"` stays near chance (0.5) while the GRU head,
    on the same cached per-frame features, reaches >= 0.9."""
    accuracy = {}
    for temporal in ("gru", "mean"):
        result = recipes.video_classification(
            train=str(left_right / "train"), validation=str(left_right / "val"),
            backbone=frame_backbone(), frames=8, image_size=32,
            mode="feature_extraction", temporal=temporal, temporal_units=32,
            epochs=20, batch_size=16, learning_rate=3e-3, dropout=0.0,
            strategy="default", precision="float32", verbose=0,
            output_dir=str(tmp_path / temporal),
        )
        accuracy[temporal] = result.metrics["val_accuracy"]
    assert accuracy["gru"] >= 0.9, accuracy
    assert accuracy["mean"] <= 0.7, accuracy
    out = tmp_path / "gru"
    with open(out / "confusion_matrix.json") as f:
        matrix = np.asarray(json.load(f)["val"])
    assert matrix.sum() == 40 and np.trace(matrix) >= 36
    assert "val_top5_accuracy" not in result.metrics  # two classes: always 1
    assert (out / "confusion_matrix.png").exists()


def test_cli_run_writes_the_run_folder(tmp_path, capsys):
    clips = videos.clip_folder(str(tmp_path / "clips"), per_class=4, frames=4,
                               size=16)
    backbone = str(tmp_path / "frames.keras")
    frame_backbone(size=16).model.save(backbone)
    code = cli.main([
        "video-classification", "--train", clips, "--backbone", backbone,
        "--frames", "4", "--image-size", "16", "--epochs", "2",
        "--batch-size", "4", "--mode", "feature_extraction",
        "--temporal", "conv1d", "--temporal-units", "8",
        "--precision", "float32", "--strategy", "default", "--verbose", "0",
        "--output", str(tmp_path / "out"),
    ])
    assert code in (0, None)
    out = tmp_path / "out"
    with open(out / "metrics.json") as f:
        metrics = json.load(f)
    assert {"val_accuracy", "val_f1"} <= set(metrics)
    # Two classes: top-5 accuracy would always be 1.0, so it is not reported.
    assert "val_top5_accuracy" not in metrics
    with open(out / "history.csv") as f:
        assert "top5" not in f.readline()
    model = keras.models.load_model(str(out / "model.keras"))
    assert model.input_shape == (None, 4, 16, 16, 3)
    with open(out / "labels.json") as f:
        assert json.load(f) == ["left", "right"]


def test_bad_input_is_rejected_before_training(tmp_path):
    clips = videos.clip_folder(str(tmp_path / "clips"), per_class=2, frames=4,
                               size=16)
    os.makedirs(os.path.join(clips, "up"))
    common = dict(backbone=frame_backbone(size=16), image_size=16,
                  strategy="default", verbose=0)
    with pytest.raises(ValueError, match=r"\['up'\].*hold no clips"):
        recipes.video_classification(
            train=clips, frames=4, output_dir=str(tmp_path / "a"), **common)
    assert not os.path.exists(tmp_path / "a" / "model.keras")
    with pytest.raises(ValueError, match="`frames` must be a positive"):
        recipes.video_classification(
            train=clips, frames=0, output_dir=str(tmp_path / "b"), **common)


def _child(clips, out, mode, *extra):
    env = {**os.environ, "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.recipes._video_child", clips, out, mode,
         *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def _finish(proc, timeout=300):
    output, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, output.decode()[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["partial", "feature_extraction"])
def test_kill_9_mid_epoch_then_same_command_matches_uninterrupted(tmp_path, mode):
    """Random frame windows and per-clip augmentation are pure functions of
    (seed, epoch, batch), as are the cached features' shuffles: the resumed
    run ends with the uninterrupted run's history and weights."""
    clips = videos.clip_folder(str(tmp_path / "clips"), per_class=8,
                               frames=6, size=16)
    straight, killed = str(tmp_path / "straight"), str(tmp_path / "killed")
    reference = _child(clips, straight, mode)
    victim = _child(clips, killed, mode, "--hold-at-epoch", "2")
    marker = killed + ".marker"
    kill9.kill_when_held(victim, marker)
    assert _resume.latest_checkpoint(os.path.join(killed, "backup"))[0] == 2
    assert "model.keras" not in os.listdir(killed)
    _finish(_child(clips, killed, mode))
    _finish(reference)
    kill9.assert_same_history(straight, killed)
    kill9.assert_same_weights(straight, killed)


def test_cli_too_few_epochs_for_the_mode_names_the_modes_that_fit(tmp_path):
    env = {**os.environ, "PYTHONPATH": ROOT}
    result = subprocess.run(
        [sys.executable, "-m", "kerasft.cli", "video-classification", "--train",
         str(tmp_path), "--epochs", "1", "--output", str(tmp_path / "run")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    message = result.stderr.strip().splitlines()[-1]
    assert "needs epochs >= 4" in message
    assert ("For --epochs 1, use --mode 'feature_extraction', or --mode "
            "'partial' or --mode 'full' with --head-epochs 0.") in message
    # A mode the message names fits: the config accepts it.
    from kerasft.recipes.configs import VideoClassificationConfig

    VideoClassificationConfig(train="x", epochs=1, mode="partial", head_epochs=0)
