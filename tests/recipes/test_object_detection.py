"""object_detection: a tiny real run on a CSV of boxes, and box checks."""

import csv
import json
import os
import re

import keras
import numpy as np
import pytest

from kerasft import recipes
from tests.recipes.tiny import tiny_backbone


def _boxes_csv(root, n=12, rows=None):
    """Images of varying sizes with one bright rectangle (the box)."""
    os.makedirs(root, exist_ok=True)
    rng = np.random.RandomState(0)
    lines = [["filename", "xmin", "ymin", "xmax", "ymax", "label"]]
    for i in range(n):
        h, w = (20, 30) if i % 2 else (24, 24)
        image = rng.uniform(0, 40, (h, w, 3))
        x0, y0 = rng.randint(0, w // 2), rng.randint(0, h // 2)
        x1, y1 = x0 + w // 3, y0 + h // 3
        label = ["cat", "dog"][i % 2]
        image[y0:y1, x0:x1, i % 2] = 250
        keras.utils.save_img(os.path.join(root, f"{i}.png"), image.astype("uint8"))
        lines.append([f"{i}.png", x0, y0, x1, y1, label])
    path = os.path.join(root, "boxes.csv")
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows or lines)
    return path


def _add_bad_files(root, path):
    """An empty file, a truncated JPEG and a webp named in the CSV."""
    open(os.path.join(root, "empty.jpg"), "wb").close()
    keras.utils.save_img(os.path.join(root, "whole.jpg"),
                         np.full((24, 24, 3), 128, "uint8"))
    with open(os.path.join(root, "whole.jpg"), "rb") as f:
        data = f.read()
    with open(os.path.join(root, "truncated.jpg"), "wb") as f:
        f.write(data[:40])
    image = np.zeros((24, 24, 3), "uint8")
    image[2:10, 2:10, 0] = 250
    os.makedirs(os.path.join(root, "nested"))
    keras.utils.save_img(os.path.join(root, "nested", "a.webp"), image)
    with open(path, "a", newline="") as f:
        csv.writer(f).writerows([
            ["empty.jpg", 1, 1, 5, 5, "cat"],
            ["truncated.jpg", 1, 1, 5, 5, "dog"],
            ["nested/a.webp", 2, 2, 10, 10, "cat"],
        ])


@pytest.mark.parametrize("mode", ["feature_extraction", "partial"])
def test_detection_learns_and_reports_skipped_files(tmp_path, mode):
    root = str(tmp_path / "data")
    path = _boxes_csv(root, n=24)
    _add_bad_files(root, path)
    out = str(tmp_path / "run")
    result = recipes.object_detection(
        train=path, validation=path, backbone=tiny_backbone(), epochs=8,
        conv_filters=(8,), batch_size=8, learning_rate=0.05,
        fine_tune_learning_rate=0.005, mode=mode, head_epochs=4,
        unfreeze_groups=1, precision="float32", strategy="default",
        verbose=0, output_dir=out,
    )
    for key in ("val_mean_iou", "val_map50", "val_loss", "val_accuracy",
                "val_bbox_regression_loss", "val_classification_loss"):
        assert key in result.metrics, sorted(result.metrics)
    assert result.metrics["val_accuracy"] > 0.75  # chance: 0.5
    assert result.metrics["val_mean_iou"] > 0.2
    names = sorted(os.path.basename(p) for p in result.skipped_files)
    assert names == ["empty.jpg", "empty.jpg", "truncated.jpg", "truncated.jpg"]
    with open(os.path.join(out, "metrics.json")) as f:
        assert len(json.load(f)["skipped_files"]) == 4
    with open(os.path.join(out, "labels.json")) as f:
        assert json.load(f) == ["cat", "dog"]
    assert {"model.keras", "metrics.json", "history.csv"} <= set(os.listdir(out))
    outputs = result.model.predict(np.zeros((1, 16, 16, 3), "float32"), verbose=0)
    assert outputs["bbox_regression"].shape == (1, 4)
    assert outputs["classification"].shape == (1, 2)


def test_bad_box_is_named_before_training(tmp_path):
    rows = [["filename", "xmin", "ymin", "xmax", "ymax", "label"],
            ["0.png", 5, 5, 2, 9, "cat"]]
    path = _boxes_csv(str(tmp_path / "data"), n=1, rows=rows)
    with pytest.raises(ValueError, match=r"line 2: a box needs xmin < xmax"):
        recipes.object_detection(
            train=path, backbone=tiny_backbone(), epochs=1, verbose=0,
            output_dir=str(tmp_path / "run"),
        )


def test_cli_refuses_several_boxes_per_image_naming_kind_retinanet(tmp_path):
    """The one-box detector would train on each box row as its own image."""
    import subprocess
    import sys

    root = str(tmp_path / "data")
    path = _boxes_csv(root, n=2)
    with open(path, "a", newline="") as f:
        csv.writer(f).writerow(["0.png", 1, 1, 6, 6, "dog"])  # a second box
    root_dir = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONPATH": root_dir}
    result = subprocess.run(
        [sys.executable, "-m", "kerasft.cli", "object-detection", "--train",
         path, "--epochs", "1", "--output", str(tmp_path / "run")],
        cwd=root_dir, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    # TensorFlow's own start-up lines (absl: "E0000 00:00:...") aside.
    lines = [l for l in result.stderr.splitlines()
             if l.strip() and not re.match(r"[IWEF]\d{4} ", l)]
    assert len(lines) == 1, result.stderr
    assert "--kind retinanet" in lines[0] and "'0.png' with 2" in lines[0]
    assert "Traceback" not in result.stderr
