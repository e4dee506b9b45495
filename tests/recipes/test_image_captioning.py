"""`kerasft.recipes.image_captioning`: learning, CLI, resume, errors."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from kerasft import cli, recipes
from kerasft.recipes import _resume
from tests.data import caption_shapes
from tests.recipes._caption_child import SETTINGS
from tests.recipes.caption_tiny import caption_backbone
from tests.recipes import kill9

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """Two coloured shapes per 32 px image, two captions each; training on
    the seen object pairs (2 images per pair and layout), validation on the
    18 held-out pairs (COCO JSON, so both formats run)."""
    root = str(tmp_path_factory.mktemp("caption_shapes"))
    train = caption_shapes.write_split(root, "train", per_pair=2)
    val = caption_shapes.write_split(root, "val", fmt="json")
    return train, val


@pytest.mark.slow
def test_learns_captions_of_held_out_object_pairs(shapes, tmp_path):
    """BLEU-4 >= 50 (0.5 on a 0-1 scale) on object pairs never seen in
    training: the model composes colours, shapes and their layout. (Measured
    here: greedy BLEU-4 80 after 15 epochs, 84 after 25.)"""
    train, val = shapes
    result = recipes.image_captioning(
        train=train, validation=val, backbone=caption_backbone(),
        output_dir=str(tmp_path / "run"),
        **{**SETTINGS, "epochs": 20, "mode": "full", "unfreeze_groups": 2,
           "embed_dim": 64, "fine_tune_learning_rate": 2e-3, "num_beams": 3},
    )
    metrics = result.metrics
    assert metrics["val_bleu4"] >= 50.0, metrics
    assert metrics["val_beam_bleu4"] >= 50.0, metrics
    assert metrics["val_bleu1"] >= metrics["val_bleu4"]
    assert 0.5 < metrics["val_rougeL"] <= 1.0 and metrics["val_cider"] > 1.0
    with open(os.path.join(result.output_dir, "predictions.csv")) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 36 and set(rows[0]) == {
        "image", "references", "prediction", "beam_prediction"
    }
    from kerasft.recipes.image_captioning import load_captioner

    # The reloaded model and vocabulary caption as the run did.
    from PIL import Image

    captioner = load_captioner(result.output_dir)
    images = np.stack([np.asarray(Image.open(r["image"])) for r in rows[:6]])
    assert captioner.caption(images) == [r["prediction"] for r in rows[:6]]


def test_cli_run_writes_the_run_folder(shapes, tmp_path, capsys):
    train, val = shapes
    out = str(tmp_path / "cli")
    code = cli.main([
        "image-captioning", "--train", val, "--validation-split", "0.25",
        "--backbone", "vgg16", "--weights", "none", "--image-size", "32",
        "--epochs", "1", "--mode", "feature_extraction", "--batch-size", "16",
        "--max-length", "10", "--embed-dim", "16", "--decoder-layers", "1",
        "--num-heads", "2", "--num-beams", "1", "--samples", "4",
        "--strategy", "default", "--precision", "float32", "--verbose", "0",
        "--output", out,
    ])
    assert code == 0, capsys.readouterr().err
    files = set(os.listdir(out))
    assert {"model.keras", "metrics.json", "history.csv", "predictions.csv",
            "vocabulary.txt", "captions.png", "config.json"} <= files
    with open(os.path.join(out, "metrics.json")) as f:
        metrics = json.load(f)
    for key in ("val_loss", "val_bleu1", "val_bleu4", "val_rougeL", "val_cider"):
        assert key in metrics
    assert "val_beam_bleu4" not in metrics  # --num-beams 1: greedy only
    with open(os.path.join(out, "vocabulary.txt")) as f:
        assert f.read().split("\n")[:4] == ["[PAD]", "[UNK]", "[START]", "[END]"]


def test_bad_input_is_rejected_before_training(tmp_path):
    common = dict(backbone=caption_backbone(), image_size=32, epochs=4,
                  strategy="default", precision="float32", verbose=0)
    bad = tmp_path / "bad.csv"
    bad.write_text("image,caption\nmissing/a.png,a cat\nmissing/b.png,a dog\n")
    with pytest.raises(ValueError, match=r"2 of 2 image file\(s\).*missing/a.png"):
        recipes.image_captioning(train=str(bad), output_dir=str(tmp_path / "a"),
                                 **common)
    bad.write_text("file,text\na.png,a cat\n")
    with pytest.raises(ValueError, match=r"Its columns: \['file', 'text'\]"):
        recipes.image_captioning(train=str(bad), output_dir=str(tmp_path / "b"),
                                 **common)
    with pytest.raises(ValueError, match="embed_dim"):
        recipes.image_captioning(train=str(bad), embed_dim=10, num_heads=4,
                                 output_dir=str(tmp_path / "c"), **common)
    for name in ("a", "b", "c"):
        assert not os.path.exists(tmp_path / name / "model.keras")


def _child(train, val, out, *extra):
    env = {**os.environ, "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.recipes._caption_child", train, val, out,
         *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def _finish(proc, timeout=300):
    output, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, output.decode()[-3000:]


@pytest.mark.slow
def test_kill_9_mid_epoch_then_same_command_matches_uninterrupted(tmp_path):
    """The image order and each image's caption are pure functions of
    (seed, epoch), the vocabulary is read back from the run folder and the
    encoder opens by epoch: the resumed run ends with the uninterrupted
    run's history and weights."""
    root = str(tmp_path / "data")
    train = caption_shapes.write_split(root, "train")
    val = caption_shapes.write_split(root, "val")
    straight, killed = str(tmp_path / "straight"), str(tmp_path / "killed")
    reference = _child(train, val, straight)
    victim = _child(train, val, killed, "--hold-at-epoch", "2")
    marker = killed + ".marker"
    kill9.kill_when_held(victim, marker)
    assert _resume.latest_checkpoint(os.path.join(killed, "backup"))[0] == 2
    assert "model.keras" not in os.listdir(killed)
    _finish(_child(train, val, killed))
    _finish(reference)
    kill9.assert_same_history(straight, killed)
    kill9.assert_same_weights(straight, killed)
    with open(os.path.join(killed, "predictions.csv")) as f:
        resumed = f.read()
    with open(os.path.join(straight, "predictions.csv")) as f:
        assert f.read() == resumed


@pytest.mark.slow
def test_cli_corrupt_image_is_skipped_before_the_validation_split(tmp_path):
    """Three images, one corrupt, a third held out: the split divides the
    two readable ones, so validation is never the corrupt image alone."""
    from PIL import Image

    from tests.data.caption_shapes import image_and_captions

    rows = []
    for i in range(3):
        image, captions = image_and_captions(i, i + 1, "vertical")
        Image.fromarray(image).save(tmp_path / f"{i}.png")
        rows += [(f"{i}.png", c) for c in captions]
    (tmp_path / "1.png").write_bytes(b"not a png")
    table = tmp_path / "captions.csv"
    with open(table, "w", newline="") as f:
        csv.writer(f).writerows([("image", "caption"), *rows])
    backbone = str(tmp_path / "cnn.keras")
    caption_backbone().model.save(backbone)
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": ROOT}
    result = subprocess.run(
        [sys.executable, "-m", "kerasft.cli", "image-captioning", "--train",
         str(table), "--validation-split", "0.34", "--backbone", backbone,
         "--image-size", "32", "--epochs", "1", "--mode", "feature_extraction",
         "--batch-size", "2", "--max-length", "10", "--embed-dim", "16",
         "--decoder-layers", "1", "--num-heads", "2", "--num-beams", "1",
         "--samples", "1", "--verbose", "0", "--output", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Skipped 1 unreadable image file(s)" in result.stdout + result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["skipped_files"] == [str(tmp_path / "1.png")]
    assert "val_bleu4" in metrics
    with open(out / "predictions.csv") as f:
        assert len(list(csv.DictReader(f))) == 1  # the held-out readable image
