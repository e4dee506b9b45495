"""`coco_metrics` against pycocotools' COCOeval on synthetic detections."""

import contextlib
import io

import numpy as np
import pytest

from kerasft.evaluation import coco_metrics
from tests._required import import_required

_STATS = (
    "map", "map50", "map75", "map_small", "map_medium", "map_large",
    "mar_1", "mar_10", "mar_100", "mar_small", "mar_medium", "mar_large",
)


def _random_boxes(rng, n, side):
    xy = rng.uniform(0, side * 0.8, (n, 2))
    wh = rng.uniform(4, side * 0.6, (n, 2)) * rng.choice([0.3, 1.0, 2.5], (n, 1))
    return np.concatenate([xy, xy + wh], axis=1)


def _synthetic(seed, images=12, classes=3, side=200.0):
    """Ground truth plus detections: jittered copies (some good, some
    poor), duplicates, false positives and missed objects."""
    rng = np.random.default_rng(seed)
    truths, predictions = [], []
    for _ in range(images):
        n = int(rng.integers(0, 6))
        boxes = _random_boxes(rng, n, side)
        labels = rng.integers(0, classes, n)
        truths.append({"boxes": boxes, "labels": labels})
        keep = rng.random(n) < 0.8
        jitter = rng.normal(0, rng.choice([1.0, 6.0]), (n, 4))
        p_boxes = [boxes[keep] + jitter[keep]]
        p_labels = [np.where(rng.random(n) < 0.9, labels, (labels + 1) % classes)[keep]]
        dup = rng.random(n) < 0.3
        p_boxes.append(boxes[dup] + rng.normal(0, 3, (int(dup.sum()), 4)))
        p_labels.append(labels[dup])
        extra = int(rng.integers(0, 4))
        p_boxes.append(_random_boxes(rng, extra, side))
        p_labels.append(rng.integers(0, classes, extra))
        p_boxes = np.concatenate(p_boxes)
        predictions.append({
            "boxes": p_boxes,
            "labels": np.concatenate(p_labels),
            "scores": rng.random(len(p_boxes)),
        })
    return predictions, truths


def _pycocotools(predictions, truths):
    coco_module = import_required("pycocotools.coco", "pip install pycocotools")
    cocoeval = import_required("pycocotools.cocoeval", "pip install pycocotools")
    classes = sorted({int(c) for t in truths for c in t["labels"]}
                     | {int(c) for p in predictions for c in p["labels"]})
    images, annotations, results = [], [], []
    for i, (p, t) in enumerate(zip(predictions, truths), start=1):
        images.append({"id": i, "width": 400, "height": 400})
        for box, label in zip(t["boxes"], t["labels"]):
            x0, y0, x1, y1 = (float(v) for v in box)
            annotations.append({
                "id": len(annotations) + 1, "image_id": i,
                "category_id": int(label) + 1, "iscrowd": 0,
                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0),
            })
        for box, label, score in zip(p["boxes"], p["labels"], p["scores"]):
            x0, y0, x1, y1 = (float(v) for v in box)
            results.append({
                "image_id": i, "category_id": int(label) + 1,
                "bbox": [x0, y0, x1 - x0, y1 - y0], "score": float(score),
            })
    with contextlib.redirect_stdout(io.StringIO()):
        gt = coco_module.COCO()
        gt.dataset = {
            "images": images, "annotations": annotations,
            "categories": [{"id": c + 1, "name": str(c)} for c in classes],
        }
        gt.createIndex()
        dt = gt.loadRes(results) if results else coco_module.COCO()
        evaluator = cocoeval.COCOeval(gt, dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_matches_pycocotools(seed):
    predictions, truths = _synthetic(seed)
    expected = _pycocotools(predictions, truths)
    ours = coco_metrics(predictions, truths)
    np.testing.assert_allclose([ours[k] for k in _STATS], expected, atol=1e-6)


def test_matches_pycocotools_with_many_detections_per_image():
    # More than 100 detections in an image: the maxDets cut matters.
    rng = np.random.default_rng(7)
    truths = [{"boxes": _random_boxes(rng, 30, 300.0), "labels": np.zeros(30, int)}
              for _ in range(3)]
    predictions = []
    for t in truths:
        boxes = np.concatenate([t["boxes"] + rng.normal(0, 2, (30, 4))] * 5)
        predictions.append({"boxes": boxes, "labels": np.zeros(150, int),
                            "scores": rng.random(150)})
    expected = _pycocotools(predictions, truths)
    ours = coco_metrics(predictions, truths)
    np.testing.assert_allclose([ours[k] for k in _STATS], expected, atol=1e-6)


def test_perfect_detections_and_padding():
    truths = [{"boxes": [[0, 0, 10, 10], [20, 20, 60, 70], [0, 0, 0, 0]],
               "labels": [0, 1, -1]}]
    predictions = [{"boxes": [[0, 0, 10, 10], [20, 20, 60, 70], [1, 1, 2, 2]],
                    "scores": [0.9, 0.8, 0.0], "labels": [0, 1, -1]}]
    metrics = coco_metrics(predictions, truths, class_names=["a", "b"])
    assert metrics["map"] == pytest.approx(1.0)
    assert metrics["map50"] == pytest.approx(1.0)
    assert metrics["ap_a"] == pytest.approx(1.0)
    # No large objects: undefined, as COCO reports it.
    assert metrics["map_large"] == -1.0


def test_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="one entry per image"):
        coco_metrics([], [{"boxes": [], "labels": []}])
