"""Boxes: pairwise IoU and VOC-style average precision over a dataset.

Pure numpy; used by `compute_metrics(task="detection")` and usable alone.
"""

import numpy as np

__all__ = [
    "average_precision_per_class",
    "box_iou",
    "mean_average_precision",
]

BOX_FORMATS = ("xyxy", "yxyx", "xywh", "center_xywh")


def _to_xyxy(boxes, box_format):
    if box_format not in BOX_FORMATS:
        raise ValueError(
            f"`box_format` must be one of {BOX_FORMATS}. "
            f"Received: box_format={box_format!r}"
        )
    boxes = np.asarray(boxes, dtype="float64").reshape(-1, 4)
    if box_format in ("xyxy", "yxyx"):
        # IoU is the same with both axes swapped consistently.
        return boxes
    if box_format == "xywh":
        x, y, w, h = boxes.T
        return np.stack([x, y, x + w, y + h], axis=1)
    cx, cy, w, h = boxes.T
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def box_iou(boxes_a, boxes_b, box_format="xyxy"):
    """Pairwise IoU matrix `(len(a), len(b))` of two sets of boxes.

    Boxes are continuous coordinates (normalized or pixels, no "+1"
    pixel convention); a box with no area has IoU 0 with everything.

    Args:
        boxes_a: `(N, 4)` boxes.
        boxes_b: `(M, 4)` boxes.
        box_format: `"xyxy"`/`"yxyx"` corners, `"xywh"` (corner + size)
            or `"center_xywh"`. Defaults to `"xyxy"`.

    Example:
    ```python
    box_iou([[0, 0, 2, 2]], [[1, 1, 3, 3]])  # [[1/7]]
    ```
    """
    a = _to_xyxy(boxes_a, box_format)[:, None, :]
    b = _to_xyxy(boxes_b, box_format)[None, :, :]
    width = np.clip(
        np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None
    )
    height = np.clip(
        np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None
    )
    intersection = width * height

    def area(x):
        return np.clip(x[..., 2] - x[..., 0], 0, None) * np.clip(
            x[..., 3] - x[..., 1], 0, None
        )

    union = area(a) + area(b) - intersection
    return np.where(union > 0, intersection / np.where(union > 0, union, 1), 0.0)


def average_precision_per_class(
    predictions, ground_truths, iou_threshold=0.5, box_format="xyxy"
):
    """VOC-style average precision of each class over a dataset of boxes.

    Per class, predictions from all images are ranked by score (ties keep
    input order). Each is a true positive when its IoU with the best
    matching ground-truth box of the same class and image is
    `>= iou_threshold` and that box is not matched yet; else a false
    positive. AP is the area under the precision/recall curve with
    precision made monotone (all-point interpolation, PASCAL VOC 2010+).
    Classes without ground-truth boxes are left out.

    Args:
        predictions: one dict per image: `"boxes"` `(k, 4)`, `"scores"`
            `(k,)`, `"labels"` `(k,)`.
        ground_truths: one dict per image: `"boxes"` `(m, 4)`, `"labels"`
            `(m,)`.
        iou_threshold: IoU needed for a match. Defaults to `0.5`.
        box_format: one of `BOX_FORMATS`. Defaults to `"xyxy"`.

    Returns:
        `{class label (int): AP (float)}`.

    Example:
    ```python
    average_precision_per_class(
        [{"boxes": [[0, 0, 1, 1]], "scores": [0.9], "labels": [0]}],
        [{"boxes": [[0, 0, 1, 1]], "labels": [0]}],
    )  # {0: 1.0}
    ```
    """
    if len(predictions) != len(ground_truths):
        raise ValueError(
            "`predictions` and `ground_truths` need one entry per image. "
            f"Received: {len(predictions)} and {len(ground_truths)}"
        )
    gt_boxes = [_to_xyxy(g["boxes"], box_format) for g in ground_truths]
    gt_labels = [np.asarray(g["labels"]).reshape(-1) for g in ground_truths]
    detections = []  # (score, image, box, label)
    for image, p in enumerate(predictions):
        boxes = _to_xyxy(p["boxes"], box_format)
        scores = np.asarray(p["scores"], dtype="float64").reshape(-1)
        labels = np.asarray(p["labels"]).reshape(-1)
        for box, score, label in zip(boxes, scores, labels):
            detections.append((score, image, box, int(label)))

    result = {}
    for c in sorted({int(l) for labels in gt_labels for l in labels}):
        num_gt = sum(int(np.sum(labels == c)) for labels in gt_labels)
        matched = [np.zeros(len(labels), dtype=bool) for labels in gt_labels]
        ranked = sorted(
            (d for d in detections if d[3] == c), key=lambda d: -d[0]
        )
        hits = np.zeros(len(ranked))
        for i, (_, image, box, _) in enumerate(ranked):
            candidates = np.flatnonzero(gt_labels[image] == c)
            if candidates.size == 0:
                continue
            ious = box_iou(box[None], gt_boxes[image][candidates])[0]
            best = int(np.argmax(ious))
            gt = candidates[best]
            if ious[best] >= iou_threshold and not matched[image][gt]:
                matched[image][gt] = True
                hits[i] = 1
        true_positives = np.cumsum(hits)
        recall = true_positives / num_gt
        precision = true_positives / np.arange(1, len(ranked) + 1)
        result[c] = _area_under_pr(recall, precision)
    return result


def _area_under_pr(recall, precision):
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def mean_average_precision(
    predictions, ground_truths, iou_threshold=0.5, box_format="xyxy"
):
    """Mean over classes of `average_precision_per_class` (VOC-style mAP).

    Example:
    ```python
    mean_average_precision(predictions, ground_truths)  # mAP@0.5
    ```
    """
    per_class = average_precision_per_class(
        predictions, ground_truths, iou_threshold, box_format
    )
    if not per_class:
        raise ValueError("`ground_truths` holds no boxes; mAP is undefined.")
    return float(np.mean(list(per_class.values())))
