"""Boxes CSV and overlays of both detection kinds, in original pixels."""

import csv
import os

import numpy as np
import pytest
from PIL import Image

from kerasft import recipes
from kerasft.predictors import detection
from tests.predictors._load import assert_export_matches_predict, header, load, read_csv

FAST = dict(precision="float32", strategy="default", verbose=0)


def _resized(path, side):
    """The image as the run's decoder gives it: bilinear resize, rounded."""
    import tensorflow as tf

    image = np.asarray(Image.open(path).convert("RGB"), "float32")
    image = tf.image.resize(image, (side, side), method="bilinear")
    return np.clip(np.round(image.numpy()), 0, 255)[None]


@pytest.fixture(scope="module")
def single_run(tmp_path_factory):
    """The one-box head on 12 images of two sizes (20x30 and 24x24)."""
    from tests.recipes.tiny import tiny_backbone

    root = tmp_path_factory.mktemp("boxes")
    rng = np.random.RandomState(0)
    lines = [["filename", "xmin", "ymin", "xmax", "ymax", "label"]]
    for i in range(12):
        h, w = (20, 30) if i % 2 else (24, 24)
        image = rng.uniform(0, 40, (h, w, 3))
        x0, y0 = rng.randint(0, w // 2), rng.randint(0, h // 2)
        image[y0:y0 + h // 3, x0:x0 + w // 3, i % 2] = 250
        Image.fromarray(image.astype("uint8")).save(root / f"{i}.png")
        lines.append([f"{i}.png", x0, y0, x0 + w // 3, y0 + h // 3,
                      ["cat", "dog"][i % 2]])
    with open(root / "boxes.csv", "w", newline="") as f:
        csv.writer(f).writerows(lines)
    out = tmp_path_factory.mktemp("single") / "run"
    recipes.object_detection(
        train=str(root / "boxes.csv"), backbone=tiny_backbone(), epochs=1,
        conv_filters=(8,), batch_size=8, mode="feature_extraction",
        output_dir=str(out), **FAST)
    return load(out, "object_detection"), root


def test_single_box_rows_are_model_outputs_in_original_pixels(single_run, tmp_path):
    run, root = single_run
    listing = tmp_path / "list.txt"
    listing.write_text(f"{root}/0.png\n{root}/1.png\n{root}/missing.png\n")
    out = tmp_path / "boxes.csv"
    result = detection.predict(run, str(listing), str(out), verbose=0)
    assert header(out) == ["input", "xmin", "ymin", "xmax", "ymax", "label",
                           "score", "error"]
    rows = read_csv(out)
    assert len(rows) == 3  # one box per readable image, one row per bad one
    assert rows[2]["error"] == "missing file" and rows[2]["xmin"] == ""
    for i, row in enumerate(rows[:2]):
        path = str(root / f"{i}.png")
        width, height = Image.open(path).size
        outputs = run.model.predict(_resized(path, 16), verbose=0)
        x0, y0, x1, y1 = np.clip(outputs["bbox_regression"][0], 0, 1)
        box = np.asarray([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)])
        box = box * [width, height, width, height]
        got = [float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax")]
        np.testing.assert_allclose(got, box, atol=0.01)
        probs = outputs["classification"][0]
        assert row["label"] == run.class_names[int(probs.argmax())]
        assert float(row["score"]) == pytest.approx(probs.max(), abs=1e-4)
        assert row["error"] == ""
    overlays = sorted(os.listdir(tmp_path / "boxes"))
    assert overlays == ["0000_0.png", "0001_1.png"]
    assert Image.open(tmp_path / "boxes" / "0001_1.png").size == (30, 20)
    assert result.files == [str(out), *(str(tmp_path / "boxes" / n) for n in overlays)]


@pytest.fixture(scope="module")
def retinanet_run(tmp_path_factory):
    from tests.data import detection_shapes as shapes
    from tests.recipes.detection_tiny import tiny_detection_backbone

    data = tmp_path_factory.mktemp("shapes")
    items = shapes.make_images(str(data), 16, seed=5, size=64, min_side=12,
                               max_side=24)
    train = shapes.write_csv(str(data), items)
    out = tmp_path_factory.mktemp("retinanet") / "run"
    recipes.object_detection(
        train=train, kind="retinanet", backbone=tiny_detection_backbone(64),
        image_size=64, epochs=1, batch_size=8, anchor_size=2.0, max_level=5,
        fpn_filters=8, head_filters=8, head_conv_layers=1, mode="full",
        head_epochs=0, learning_rate=3e-3, fine_tune_learning_rate=3e-3,
        output_dir=str(out), **FAST)
    run = load(out, "object_detection")
    # One epoch leaves every class probability near the 0.01 prior, under
    # the decoder's 0.05 threshold: lift them to 0.5 so boxes come out.
    from kerasft.heads.retinanet import RetinaNetPredictor

    predictor = next(l for l in run.model.layers if isinstance(l, RetinaNetPredictor))
    bias = [w for w in predictor.class_tower.weights
            if w.path.endswith("bias") and w.shape == (9 * 3,)]
    assert len(bias) == 1
    bias[0].assign(np.zeros(9 * 3, "float32"))
    return run, data, items


def test_retinanet_boxes_equal_head_decode_scaled_to_original(retinanet_run, tmp_path):
    from kerasft import heads

    run, data, items = retinanet_run
    images = tmp_path / "new"
    images.mkdir()
    for name, _ in items[:3]:  # at twice the size the model reads
        Image.open(data / "images" / name).resize((128, 128)).save(images / name)
    out = tmp_path / "boxes.csv"
    result = detection.predict(run, str(images), str(out), verbose=0)
    rows = read_csv(out)
    head = heads.detection(3, kind="retinanet", anchor_size=2.0, max_level=5)
    expected_rows = 0
    for name, _ in items[:3]:
        path = str(images / name)
        outputs = run.model.predict(_resized(path, 64), verbose=0)
        decoded = {k: np.asarray(v)[0] for k, v in head.decode(outputs, (64, 64)).items()}
        keep = decoded["labels"] >= 0
        mine = [r for r in rows if r["input"] == path]
        if not keep.any():
            assert len(mine) == 1 and mine[0]["xmin"] == ""
            expected_rows += 1
            continue
        expected_rows += int(keep.sum())
        got = np.asarray([[float(r[k]) for k in ("xmin", "ymin", "xmax", "ymax")]
                          for r in mine])
        np.testing.assert_allclose(got, decoded["boxes"][keep] * 2, atol=0.01)
        assert [r["label"] for r in mine] == [
            run.class_names[int(l)] for l in decoded["labels"][keep]]
        np.testing.assert_allclose([float(r["score"]) for r in mine],
                                   decoded["confidence"][keep], atol=1e-4)
    assert len(rows) == expected_rows
    assert sum(r["xmin"] != "" for r in rows) > 0  # boxes were found
    assert len(result.files) == 4  # the CSV and one overlay per image
    assert Image.open(result.files[1]).size == (128, 128)
    with pytest.raises(ValueError, match="`top_k` ranks classes"):
        detection.predict(run, str(images), str(out), top_k=2)


def test_both_kinds_export_saved_models_equal_to_model_predict(
    single_run, retinanet_run, tmp_path
):
    run, root = single_run
    batch = np.concatenate([_resized(str(root / f"{i}.png"), 16) for i in range(3)])
    served = assert_export_matches_predict(run.directory, batch, tmp_path / "single")
    assert [n.decode() for n in served.class_names().numpy()] == ["cat", "dog"]
    run, data, items = retinanet_run
    batch = np.concatenate([_resized(str(data / "images" / n), 64) for n, _ in items[:2]])
    assert_export_matches_predict(run.directory, batch, tmp_path / "retinanet",
                                  atol=1e-4)
