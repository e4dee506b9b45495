"""Boxes of an object detection run: a CSV row per box and overlay images.

Both kinds of `object_detection` run: `kind="single"` gives one box and
class per image (its class probability as the score); `kind="retinanet"`
gives every box kept by non-max suppression (KerasHub's, through the
head's `decode`, score >= 0.05). The CSV has `input, xmin, ymin, xmax,
ymax, label, score` in the original image's pixels, and `error`; an image
with no box gets one row with empty box columns, so every input is listed.
Each readable image is also drawn with its boxes (score >= `SCORE_SHOWN`)
into `<csv stem>/<index>_<name>.png`.

Example:
```python
run = kerasft.load("runs/shapes")
detection.predict(run, "new_photos/", "boxes.csv")
```
"""

import os

import numpy as np

from kerasft.predictors import _inputs, _output

COLUMNS = ("input", "xmin", "ymin", "xmax", "ymax", "label", "score", "error")
# Boxes drawn on the overlays; the CSV keeps every decoded box.
SCORE_SHOWN = 0.3
_COLOURS = ("red", "blue", "lime", "orange", "magenta", "cyan", "yellow")


def predict(run, inputs, output, *, batch_size=32, top_k=None, verbose=1):
    """Detects boxes in images with a finished object detection run.

    Args:
        run: the run, as `kerasft.load` returns it.
        inputs: a folder of images, a CSV with a `filename` column, or a
            file with one image path per line.
        output: the CSV file to write.
        batch_size: images per model call. Defaults to `32`.
        top_k: not used by detection; must be `None`.
        verbose: `1` shows a progress bar and lists unreadable inputs.
            Defaults to `1`.

    Returns:
        A `Predictions`: `rows` holds one dict per box.
    """
    _output.check_options(top_k, batch_size)
    _output.refuse_top_k(top_k, "object detection")
    paths = _inputs.image_paths(inputs)
    model = run.model
    height, width, channels = _inputs.image_input_size(model)
    decode = _decoder(run, (height, width))
    batches, errors = _inputs.image_batches(paths, (height, width), channels,
                                            batch_size)
    found = {}
    bar = _output.progress(len(paths), verbose)
    done = len(errors)
    for images, index, sizes in batches:
        outputs = model(images.astype("float32"), training=False)
        outputs = {k: np.asarray(v) for k, v in outputs.items()}
        for i, size, boxes, labels, scores in zip(index.tolist(), sizes,
                                                  *decode(outputs)):
            scale = np.asarray([size[1], size[0], size[1], size[0]], "float64")
            found[i] = (np.asarray(boxes, "float64") * scale, labels, scores)
        done += len(index)
        bar.update(done)
    names = run.class_names or []
    rows, files = [], []
    folder = _output.files_folder(output)
    for i, path in enumerate(paths):
        if i in errors:
            rows.append({"input": path, "error": errors[i]})
            continue
        boxes, labels, scores = found[i]
        shown = [_row(path, b, l, s, names) for b, l, s in zip(boxes, labels, scores)]
        rows.extend(shown or [{"input": path, "error": ""}])
        target = os.path.join(folder, f"{i:04d}_{_stem(path)}.png")
        files.append(_draw(path, [r for r in shown if r["score"] >= SCORE_SHOWN],
                           target))
    unreadable = [(p, errors[i]) for i, p in enumerate(paths) if i in errors]
    return _output.finish(output, rows, unreadable, files, verbose, COLUMNS)


def _row(path, box, label, score, names):
    label = int(label)
    return {
        "input": path,
        **{k: round(float(v), 2) for k, v in zip(COLUMNS[1:5], box)},
        "label": names[label] if label < len(names) else str(label),
        "score": round(float(score), 4),
        "error": "",
    }


def _stem(path):
    return os.path.splitext(os.path.basename(path.rstrip("/\\")))[0]


def _decoder(run, image_size):
    """`decode(outputs) -> (boxes, labels, scores)` per image, boxes as
    fractions of the image side (so any original size scales them)."""
    kind = run.config.get("kind") or "single"
    if kind == "single":
        def decode(outputs):
            probs = outputs["classification"]
            labels = probs.argmax(axis=-1)
            scores = probs.max(axis=-1)
            boxes = np.clip(outputs["bbox_regression"], 0.0, 1.0)
            # The head's corners are independent sigmoids: order them.
            boxes = np.concatenate([np.minimum(boxes[:, :2], boxes[:, 2:]),
                                    np.maximum(boxes[:, :2], boxes[:, 2:])], -1)
            return ([b[None] for b in boxes], [l[None] for l in labels],
                    [s[None] for s in scores])

        return decode
    if kind != "retinanet":
        raise ValueError(
            f"{run.directory!r}: config.json's `kind` must be 'single' or "
            f"'retinanet'. Received: kind={kind!r}"
        )
    head = _retinanet_head(run)
    side = np.asarray([image_size[1], image_size[0]] * 2, "float64")

    def decode(outputs):
        decoded = head.decode(outputs, image_size)
        decoded = {k: np.asarray(v) for k, v in decoded.items()}
        out = ([], [], [])
        for boxes, labels, scores in zip(decoded["boxes"], decoded["labels"],
                                         decoded["confidence"]):
            keep = labels >= 0
            out[0].append(boxes[keep] / side)
            out[1].append(labels[keep])
            out[2].append(scores[keep])
        return out

    return decode


def _retinanet_head(run):
    """The run's `RetinaNetHead` (anchors and decoding), from config.json
    and the model's `RetinaNetPredictor` (its class and anchor counts)."""
    from kerasft import heads
    from kerasft.heads.retinanet import RetinaNetPredictor

    predictor = next((layer for layer in _layers(run.model)
                      if isinstance(layer, RetinaNetPredictor)), None)
    if predictor is None:
        raise ValueError(
            f"{run.directory!r} is a kind='retinanet' run but its model has "
            "no RetinaNetPredictor layer."
        )
    config = run.config
    options = {k: config[k] for k in ("anchor_size", "max_level")
               if config.get(k) is not None}
    head = heads.detection(predictor.num_classes, kind="retinanet", **options)
    if head.num_anchors != predictor.num_anchors:
        raise ValueError(
            f"{run.directory!r}: the model has {predictor.num_anchors} anchors "
            f"per location, kerasft's decoding {head.num_anchors}."
        )
    return head


def _layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _layers(layer)


def _draw(path, rows, target):
    """The original image with `rows`' boxes and labels, as a PNG."""
    from PIL import Image, ImageDraw

    with Image.open(path) as opened:
        image = opened.convert("RGB")
    draw = ImageDraw.Draw(image)
    labels = sorted({r["label"] for r in rows})
    for row in rows:
        colour = _COLOURS[labels.index(row["label"]) % len(_COLOURS)]
        box = [row["xmin"], row["ymin"], row["xmax"], row["ymax"]]
        draw.rectangle(box, outline=colour, width=2)
        draw.text((box[0] + 2, box[1] + 1), f"{row['label']} {row['score']:.2f}",
                  fill=colour)
    return _output.save_png(target, np.asarray(image))
