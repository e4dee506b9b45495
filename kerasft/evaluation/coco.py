"""COCO box metrics: mAP@[.5:.95], mAP@0.5, per-area AP and AR, in numpy.

The numbers are those of `pycocotools`' `COCOeval(iouType="bbox")` (the
test suite checks them against it): per image and class, detections
ranked by score (ties keep input order) and cut to `max_detections`, each
greedily matched to the unmatched ground-truth box of highest IoU at each
threshold 0.50:0.05:0.95; boxes outside an area range are ignored, not
counted; precision is made monotone and read at 101 recall points; classes
without ground truth are left out of the means. Areas are `w * h` of the
boxes in their own units (COCO's small/medium/large bounds are in pixels).
A metric no class defines is `-1`, as in COCO.
"""

import numpy as np

from kerasft.evaluation.boxes import _to_xyxy, box_iou

__all__ = ["coco_metrics"]

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
AREA_RANGES = {
    "all": (0.0, 1e10),
    "small": (0.0, 32.0**2),
    "medium": (32.0**2, 96.0**2),
    "large": (96.0**2, 1e10),
}


def coco_metrics(predictions, ground_truths, box_format="xyxy",
                 max_detections=(1, 10, 100), class_names=None):
    """COCO box metrics of detections over a dataset.

    Args:
        predictions: one dict per image: `"boxes"` `(k, 4)`, `"scores"`
            `(k,)`, `"labels"` `(k,)`. Rows with a negative label are
            padding and left out.
        ground_truths: one dict per image: `"boxes"` `(m, 4)`, `"labels"`
            `(m,)`; negative labels are padding.
        box_format: one of `kerasft.evaluation.BOX_FORMATS`, in pixels for
            the area ranges to mean what COCO means. Defaults to `"xyxy"`.
        max_detections: COCO's `maxDets`, three increasing counts.
            Defaults to `(1, 10, 100)`.
        class_names: names of the class ids; with them the result also
            holds `"ap_<name>"` (AP@[.5:.95] per class). Defaults to `None`.

    Returns:
        `{"map", "map50", "map75", "map_small", "map_medium", "map_large",
        "mar_1", "mar_10", "mar_100", "mar_small", "mar_medium",
        "mar_large"}` (floats; the AR keys follow `max_detections`), in the
        order of COCOeval's `stats`.

    Example:
    ```python
    coco_metrics(
        [{"boxes": [[0, 0, 10, 10]], "scores": [0.9], "labels": [0]}],
        [{"boxes": [[0, 0, 10, 10]], "labels": [0]}],
    )["map"]  # 1.0
    ```
    """
    if len(predictions) != len(ground_truths):
        raise ValueError(
            "`predictions` and `ground_truths` need one entry per image. "
            f"Received: {len(predictions)} and {len(ground_truths)}"
        )
    max_detections = tuple(int(m) for m in max_detections)
    if len(max_detections) != 3 or list(max_detections) != sorted(max_detections):
        raise ValueError(
            "`max_detections` must be three increasing counts, e.g. "
            f"(1, 10, 100). Received: max_detections={max_detections!r}"
        )
    truth = [_parse(g, box_format, scored=False) for g in ground_truths]
    detected = [_parse(p, box_format, scored=True) for p in predictions]
    classes = sorted({int(c) for t in truth for c in t[1]}
                     | {int(c) for d in detected for c in d[1]})
    precision, recall = _accumulate(truth, detected, classes, max_detections)
    stats = _summarize(precision, recall, max_detections)
    if class_names is not None:
        for k, c in enumerate(classes):
            name = class_names[c] if 0 <= c < len(class_names) else str(c)
            stats[f"ap_{name}"] = _mean(precision[:, :, k, 0, -1])
    return stats


def _parse(entry, box_format, scored):
    labels = np.asarray(entry["labels"]).reshape(-1).astype("int64")
    boxes = _to_xyxy(entry["boxes"], box_format) if len(labels) else np.zeros((0, 4))
    keep = labels >= 0
    if scored:
        scores = np.asarray(entry["scores"], "float64").reshape(-1)
        return boxes[keep], labels[keep], scores[keep]
    return boxes[keep], labels[keep]


def _areas(boxes):
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _evaluate_image(gt_boxes, dt_boxes, dt_scores, max_det):
    """Matches of one image and class, per area range: a list of
    `(scores, matched [T, D], ignored [T, D], gt_ignored [G])`."""
    order = np.argsort(-dt_scores, kind="mergesort")[:max_det]
    dt_boxes, dt_scores = dt_boxes[order], dt_scores[order]
    ious = box_iou(dt_boxes, gt_boxes) if len(dt_boxes) and len(gt_boxes) else (
        np.zeros((len(dt_boxes), len(gt_boxes)))
    )
    gt_area, dt_area = _areas(gt_boxes), _areas(dt_boxes)
    out = []
    for low, high in AREA_RANGES.values():
        gt_out = (gt_area < low) | (gt_area > high)
        gt_order = np.argsort(gt_out, kind="mergesort")  # kept boxes first
        gt_ignore = gt_out[gt_order]
        iou = ious[:, gt_order]
        matched = np.zeros((len(IOU_THRESHOLDS), len(dt_boxes)), bool)
        ignored = np.zeros_like(matched)
        for t, threshold in enumerate(IOU_THRESHOLDS):
            taken = np.zeros(len(gt_order), bool)
            for d in range(len(dt_boxes)):
                m = _best_match(iou[d], taken, gt_ignore, min(threshold, 1 - 1e-10))
                if m < 0:
                    continue
                taken[m] = True
                matched[t, d] = True
                ignored[t, d] = gt_ignore[m]
        dt_out = (dt_area < low) | (dt_area > high)
        ignored |= ~matched & dt_out[None, :]
        out.append((dt_scores, matched, ignored, gt_ignore))
    return out


def _best_match(iou, taken, gt_ignore, threshold):
    """COCOeval's greedy choice: the free kept box of highest IoU (ties:
    the later one), else the free ignored box of highest IoU, or -1."""
    for wanted in (False, True):
        candidates = np.flatnonzero(~taken & (gt_ignore == wanted)
                                    & (iou >= threshold))
        if candidates.size:
            best = iou[candidates]
            return int(candidates[np.flatnonzero(best == best.max())[-1]])
    return -1


def _accumulate(truth, detected, classes, max_detections):
    """COCOeval.accumulate: precision `[T, R, K, A, M]`, recall `[T, K, A, M]`."""
    num_t, num_a, num_m = len(IOU_THRESHOLDS), len(AREA_RANGES), len(max_detections)
    precision = -np.ones((num_t, len(RECALL_POINTS), len(classes), num_a, num_m))
    recall = -np.ones((num_t, len(classes), num_a, num_m))
    for k, c in enumerate(classes):
        per_image = []
        for (g_boxes, g_labels), (d_boxes, d_labels, d_scores) in zip(truth, detected):
            g, d = g_labels == c, d_labels == c
            if g.any() or d.any():
                per_image.append(_evaluate_image(
                    g_boxes[g], d_boxes[d], d_scores[d], max_detections[-1]
                ))
        for a in range(num_a):
            for m, max_det in enumerate(max_detections):
                _fill(precision, recall, k, a, m,
                      [image[a] for image in per_image], max_det)
    return precision, recall


def _fill(precision, recall, k, a, m, evaluations, max_det):
    if not evaluations:
        return
    scores = np.concatenate([e[0][:max_det] for e in evaluations])
    order = np.argsort(-scores, kind="mergesort")
    matched = np.concatenate([e[1][:, :max_det] for e in evaluations], 1)[:, order]
    ignored = np.concatenate([e[2][:, :max_det] for e in evaluations], 1)[:, order]
    num_gt = int(sum(np.count_nonzero(~e[3]) for e in evaluations))
    if num_gt == 0:
        return
    tps = np.cumsum(matched & ~ignored, axis=1).astype("float64")
    fps = np.cumsum(~matched & ~ignored, axis=1).astype("float64")
    for t in range(len(IOU_THRESHOLDS)):
        tp, fp = tps[t], fps[t]
        rc = tp / num_gt
        pr = tp / (fp + tp + np.spacing(1))
        recall[t, k, a, m] = rc[-1] if len(tp) else 0
        pr = np.maximum.accumulate(pr[::-1])[::-1] if len(pr) else pr
        q = np.zeros(len(RECALL_POINTS))
        index = np.searchsorted(rc, RECALL_POINTS, side="left")
        valid = index < len(pr)
        q[valid] = pr[index[valid]]
        precision[t, :, k, a, m] = q


def _mean(values):
    values = values[values > -1]
    return float(np.mean(values)) if values.size else -1.0


def _summarize(precision, recall, max_detections):
    """COCOeval.summarize's twelve numbers, by name."""
    areas = list(AREA_RANGES)
    last = len(max_detections) - 1

    def ap(threshold=None, area="all", m=last):
        p = precision[:, :, :, areas.index(area), m]
        if threshold is not None:
            p = p[np.flatnonzero(np.isclose(IOU_THRESHOLDS, threshold))]
        return _mean(p)

    def ar(area="all", m=last):
        return _mean(recall[:, :, areas.index(area), m])

    stats = {
        "map": ap(),
        "map50": ap(0.5),
        "map75": ap(0.75),
        "map_small": ap(area="small"),
        "map_medium": ap(area="medium"),
        "map_large": ap(area="large"),
    }
    for m, count in enumerate(max_detections):
        stats[f"mar_{count}"] = ar(m=m)
    stats.update(
        mar_small=ar("small"), mar_medium=ar("medium"), mar_large=ar("large")
    )
    return stats
