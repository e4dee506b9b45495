"""The segmentation recipe: learning, CLI, kill -9 resume, bad input."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from kerasft import recipes
from kerasft.cli import main as cli_main
from kerasft.data.synthetic import shapes_segmentation, write_segmentation_folder
from kerasft.recipes import _resume
from tests.recipes._segmentation_child import tiny_cnn
from tests.recipes import kill9

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Stated threshold: a BatchNorm-free CNN + U-Net learns the shapes task to
# this validation mean IoU in 10 epochs (measured ~0.97).
MEAN_IOU_THRESHOLD = 0.8


@pytest.mark.slow
def test_learns_synthetic_shapes_to_the_stated_mean_iou(tmp_path):
    images, masks = shapes_segmentation(160, 64, seed=0)
    val_images, val_masks = shapes_segmentation(48, 64, seed=1)
    result = recipes.segmentation(
        train=(images, masks), validation=(val_images, val_masks),
        backbone=tiny_cnn(64, widths=(16, 24, 32)), image_size=64,
        levels=(0, 1, 2, 3), decoder_filters=16, mode="full", head_epochs=0,
        epochs=10, batch_size=16, learning_rate=3e-3,
        fine_tune_learning_rate=3e-3, dropout=0.0, verbose=0,
        class_names="background,square,disk", output_dir=str(tmp_path / "run"),
    )
    metrics = result.metrics
    assert metrics["val_mean_iou"] >= MEAN_IOU_THRESHOLD, metrics
    assert set(metrics["val_iou_per_class"]) == {"background", "square", "disk"}
    assert metrics["val_pixel_accuracy"] > metrics["val_mean_iou"] - 0.05
    # The Keras metric during fit and the confusion matrix agree.
    assert result.history["val_mean_iou"][-1] == pytest.approx(
        metrics["val_mean_iou"], abs=1e-4
    )
    files = set(os.listdir(tmp_path / "run"))
    assert {"model.keras", "metrics.json", "labels.json",
            "validation_masks.png", "training_curves.png"} <= files
    reloaded = keras.models.load_model(tmp_path / "run" / "model.keras")
    logits = reloaded.predict(val_images[:4], verbose=0)
    assert logits.shape == (4, 64, 64, 3) and logits.dtype == np.float32


@pytest.mark.slow
def test_cli_on_image_and_mask_folders(tmp_path, capsys):
    images, masks = shapes_segmentation(24, 32, seed=0)
    write_segmentation_folder(str(tmp_path / "data"), images, masks)
    backbone = str(tmp_path / "cnn.keras")
    tiny_cnn().model.save(backbone)
    out = tmp_path / "run"
    code = cli_main([
        "segmentation", "--train", str(tmp_path / "data"), "--output", str(out),
        "--backbone", backbone, "--image-size", "32",
        "--kind", "deeplabv3plus", "--levels", "1,3", "--decoder-filters", "8",
        "--loss", "crossentropy_dice", "--dice-weight", "0.5",
        "--mode", "partial", "--head-epochs", "1", "--unfreeze-groups", "1",
        "--layer-decay", "0.8", "--epochs", "2", "--batch-size", "4",
        "--strategy", "mirrored", "--precision", "mixed_bfloat16",
        "--validation-split", "0.25", "--augment", '{"horizontal_flip": true}',
        "--verbose", "0",
    ])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"val_loss", "val_pixel_accuracy", "val_mean_iou", "val_mean_dice",
            "val_iou_per_class", "val_dice_per_class"} <= set(metrics)
    assert json.loads((out / "labels.json").read_text()) == ["0", "1", "2"]
    config = json.loads((out / "config.json").read_text())
    assert config["kind"] == "deeplabv3plus" and config["dice_weight"] == 0.5
    assert (out / "validation_masks.png").stat().st_size > 1000
    model = keras.models.load_model(out / "model.keras")
    assert model.output.dtype == "float32"
    assert model.get_layer("head_decoder_a_conv").compute_dtype == "bfloat16"


def _child(out, *extra):
    env = {**os.environ, "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.recipes._segmentation_child", out, *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def _finish(proc, timeout=300):
    output, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, output.decode()[-3000:]


@pytest.mark.slow
def test_kill_9_mid_epoch_then_same_command_matches_uninterrupted(tmp_path):
    straight, killed = str(tmp_path / "straight"), str(tmp_path / "killed")
    reference = _child(straight)
    victim = _child(killed, "--hold-at-epoch", "2")
    marker = killed + ".marker"
    kill9.kill_when_held(victim, marker)
    assert _resume.latest_checkpoint(os.path.join(killed, "backup"))[0] == 2
    assert not set(os.listdir(killed)) & {"model.keras", "metrics.json"}
    _finish(_child(killed))
    _finish(reference)
    kill9.assert_same_history(straight, killed, err_msg=True)
    metrics = [json.loads(open(os.path.join(d, "metrics.json")).read())
               for d in (straight, killed)]
    assert metrics[1]["val_mean_iou"] == pytest.approx(metrics[0]["val_mean_iou"], abs=1e-5)


# === Bad input: rejected before anything trains ===


def _folder(tmp_path, n=6, size=32):
    images, masks = shapes_segmentation(n, size, seed=0)
    return write_segmentation_folder(str(tmp_path / "data"), images, masks)


def _run(tmp_path, **kwargs):
    defaults = dict(train=str(tmp_path / "data"), backbone=tiny_cnn(), image_size=32,
                    epochs=1, mode="feature_extraction", verbose=0,
                    output_dir=str(tmp_path / "run"))
    return recipes.segmentation(**{**defaults, **kwargs})


def _nothing_trained(tmp_path):
    run = tmp_path / "run"
    return not run.exists() or not {"model.keras", "history.csv"} & set(os.listdir(run))


def test_mask_of_another_size_is_named_with_both_files(tmp_path):
    from PIL import Image

    image_dir, mask_dir = _folder(tmp_path)
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(os.path.join(mask_dir, "0003.png"))
    with pytest.raises(ValueError, match=r"0003\.jpg is 32x32 but .*0003\.png is 30x20"):
        _run(tmp_path)
    assert _nothing_trained(tmp_path)


def test_missing_masks_are_listed(tmp_path):
    image_dir, mask_dir = _folder(tmp_path)
    for name in ("0001.png", "0004.png"):
        os.remove(os.path.join(mask_dir, name))
    with pytest.raises(ValueError, match=r"lacks the masks of 2 of 6 images.*'0001\.png'.*'0004\.png'"):
        _run(tmp_path)
    assert _nothing_trained(tmp_path)


def test_labels_out_of_range(tmp_path):
    images, masks = shapes_segmentation(6, 32, seed=0)
    with pytest.raises(ValueError, match=r"in \[0, 2\) or ignore_index=255.*mask 0: \[2\]"):
        _run(tmp_path, train=(images, masks), num_classes=2)
    assert _nothing_trained(tmp_path)


def test_folder_without_images_and_masks(tmp_path):
    (tmp_path / "data").mkdir()
    with pytest.raises(ValueError, match="must hold an images/ and a masks/"):
        _run(tmp_path)


def test_default_levels_are_those_the_backbone_reaches():
    from kerasft.recipes.segmentation import default_levels

    backbone = tiny_cnn()  # strides 1, 2, 4, 8
    assert default_levels(backbone, "unet") == (1, 2, 3)
    assert default_levels(backbone, "deeplabv3plus") == (2, 3)


def test_cli_skips_an_unreadable_image_and_reports_it(tmp_path):
    images, masks = shapes_segmentation(6, 32, seed=0)
    image_dir, _ = write_segmentation_folder(str(tmp_path / "data"), images, masks)
    garbage = os.path.join(image_dir, sorted(os.listdir(image_dir))[2])
    with open(garbage, "wb") as f:
        f.write(b"not an image")
    backbone = str(tmp_path / "cnn.keras")
    tiny_cnn().model.save(backbone)
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": ROOT}
    result = subprocess.run(
        [sys.executable, "-m", "kerasft.cli", "segmentation", "--train",
         str(tmp_path / "data"), "--backbone", backbone, "--image-size", "32",
         "--mode", "feature_extraction", "--epochs", "1", "--batch-size", "4",
         "--validation-split", "0.2", "--verbose", "0", "--output", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "Skipped 1 unreadable image file(s)" in result.stdout + result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["skipped_files"] == [garbage]
    assert "val_mean_iou" in metrics


def test_mask_grid_colours_every_class_and_has_a_key(tmp_path):
    """The predicted column shows the mask, not the image: an all-background
    prediction is a solid colour, ignored pixels white; the key names the
    classes."""
    from PIL import Image

    from kerasft.recipes.segmentation import _colours, _key, mask_image, plot_overlays

    colours = _colours(3)
    mask = np.array([[0, 1], [2, 255]])
    shown = mask_image(mask, colours, 255)
    np.testing.assert_array_equal(shown[0, 0], colours[0])
    np.testing.assert_array_equal(shown[1, 0], colours[2])
    np.testing.assert_array_equal(shown[1, 1], [255, 255, 255])
    assert len({tuple(c) for c in colours}) == 3
    labels = [h.get_label() for h in _key(["bg", "square", "disk"], colours, 255, mask)]
    assert labels == ["0: bg", "1: square", "2: disk", "255: ignored"]

    images, masks = shapes_segmentation(2, 32, seed=0)
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(
        (images.astype("float32"), masks)).batch(2)
    inputs = keras.Input((32, 32, 3))
    background = keras.layers.Conv2D(  # always predicts class 0
        3, 1, kernel_initializer="zeros",
        bias_initializer=keras.initializers.Constant([5.0, 0.0, 0.0]))(inputs)
    path = str(tmp_path / "grid.png")
    plot_overlays(path, keras.Model(inputs, background), ds,
                  class_names=["bg", "square", "disk"])
    assert Image.open(path).size[0] > 300
