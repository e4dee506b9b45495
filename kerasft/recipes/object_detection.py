"""`object_detection`: one box and one class per image (the tutorial's head).

Data is a CSV with the header `filename,xmin,ymin,xmax,ymax,label`: image
paths relative to the CSV's folder, box corners in pixels of the original
image, and a class label (name or integer id). Boxes are normalized to
[0, 1] by each image's width and height, so resizing does not move them.
The model (MobileNetV2 by default + `kerasft.heads.detection`) has two
outputs, `bbox_regression` (sigmoid, `xyxy`) and `classification`, with a
loss each. Metrics: mean IoU and mAP@0.5 (`kerasft.evaluation`).
"""

import csv
import dataclasses
import os

import numpy as np
import tensorflow as tf

from kerasft.recipes import _data
from kerasft.recipes._runner import Run, predictions, prefixed
from kerasft.recipes.config import field, resolve_config
from kerasft.recipes.image_classification import (
    ImageBackboneConfig,
    build_and_compile,
    check_backbone,
    resolve_backbone,
    with_unfreeze,
)

COLUMNS = ("filename", "xmin", "ymin", "xmax", "ymax", "label")


@dataclasses.dataclass(frozen=True)
class ObjectDetectionConfig(ImageBackboneConfig):
    """Options of the object detection recipe."""

    backbone: object = field(
        "mobilenetv2",
        "Backbone: a registry name, a saved .keras model, or in Python a "
        "kerasft Backbone.",
    )
    mode: str = field(
        "feature_extraction",
        "Fine-tuning strategy: feature_extraction, partial, progressive, full.",
        choices=("feature_extraction", "partial", "progressive", "full"),
    )
    conv_filters: tuple = field(
        (256,), "Filters of the head's 3x3 conv layers, e.g. 256 or 256,128."
    )
    bbox_loss: str = field("mse", "Box loss: mse or huber.", choices=("mse", "huber"))
    bbox_loss_weight: float = field(
        1.0, "Weight of the box loss against the class loss."
    )


def _read_boxes(path, class_names=None):
    if not isinstance(path, str):
        raise TypeError(
            "Detection data must be a CSV path with columns "
            f"{','.join(COLUMNS)}. Received: {type(path).__name__}"
        )
    if not os.path.exists(path):
        raise ValueError(f"CSV file {path!r} does not exist.")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        _data.check_columns(path, reader.fieldnames, COLUMNS)
        rows = list(reader)
    if not rows:
        raise ValueError(f"CSV file {path!r} has no rows.")
    root = os.path.dirname(os.path.abspath(path))
    files, boxes = [], []
    for i, row in enumerate(rows, start=2):
        try:
            box = [float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax")]
        except ValueError:
            raise ValueError(
                f"{path!r} line {i}: box corners must be numbers. Received: "
                f"{[row[k] for k in ('xmin', 'ymin', 'xmax', 'ymax')]}"
            ) from None
        if not (0 <= box[0] < box[2] and 0 <= box[1] < box[3]):
            raise ValueError(
                f"{path!r} line {i}: a box needs 0 <= xmin < xmax and "
                f"0 <= ymin < ymax (pixels). Received: {box}"
            )
        file = os.path.join(root, row["filename"])
        if not os.path.exists(file):
            raise ValueError(f"{path!r} line {i}: image {file!r} does not exist.")
        files.append(file)
        boxes.append(box)
    labels, names = _data.label_ids([r["label"] for r in rows], class_names)
    return np.asarray(files), np.asarray(boxes, "float32"), labels, names


def _transform(image_size):
    def fn(path, box, label):
        image = tf.io.decode_image(
            tf.io.read_file(path), channels=3, expand_animations=False
        )
        shape = tf.cast(tf.shape(image), "float32")
        scale = tf.stack([shape[1], shape[0], shape[1], shape[0]])
        box = tf.clip_by_value(box / scale, 0.0, 1.0)
        image = tf.image.resize(tf.cast(image, "float32"), list(image_size))
        image.set_shape(tuple(image_size) + (3,))
        return image, {"bbox_regression": box, "classification": label}

    return fn


def _source(path, image_size, class_names=None):
    if path is None:
        return None
    files, boxes, labels, names = _read_boxes(path, class_names)
    return _data.Source(
        labels=labels,
        class_names=names,
        elements=(files, boxes, labels),
        transform=_transform(image_size),
    )


def object_detection(config=None, *, overwrite=False, callbacks=None, **kwargs):
    """Trains a single-object detector (box + class) on a CSV of boxes.

    Args:
        config: an `ObjectDetectionConfig`, a dict or a JSON/YAML path.
        overwrite: replace another run's outputs. Defaults to `False`.
        callbacks: extra Keras callbacks. Defaults to `None`.
        **kwargs: config fields, overriding `config`.

    Returns:
        A `RecipeResult`; metrics hold `val_iou`, `val_map50` and the
        per-output losses.

    Example:
    ```python
    result = kerasft.recipes.object_detection(
        train="boxes/train.csv", validation="boxes/val.csv",
        epochs=10, output_dir="runs/boxes")
    ```
    """
    config = resolve_config(ObjectDetectionConfig, config, **kwargs)
    run = Run(config, overwrite)
    if run.state == "complete":
        return run.completed_result()
    image_size = check_backbone(config.backbone, config.image_size)
    size = (image_size, image_size)
    if config.train is None:
        raise ValueError("`train` is required: a CSV of boxes.")
    train = _source(config.train, size)
    validation = _source(config.validation, size, train.class_names)
    test = _source(config.test, size, train.class_names)
    num_classes = config.num_classes or len(train.class_names or []) or (
        int(train.labels.max()) + 1
    )
    for source, what in ((train, "Training"), (validation, "Validation"), (test, "Test")):
        _data.check_labels(source, num_classes, what)
    class_names = train.class_names or [str(i) for i in range(num_classes)]

    from kerasft import heads
    with run.strategy.scope():
        backbone = resolve_backbone(config, run.strategy, image_size)
        run.reseed()  # the head starts the same however the backbone was made
        head = heads.detection(
            num_classes,
            conv_filters=tuple(config.conv_filters),
            dropout=config.dropout,
            bbox_loss=config.bbox_loss,
            bbox_loss_weight=config.bbox_loss_weight,
        )
        model = build_and_compile(run, config, backbone, head)

    all_callbacks = with_unfreeze(run, config, backbone, callbacks)
    train_ds = run.batched(run.shuffled(train))
    val_ds = run.batched(validation.dataset) if validation else None
    test_ds = run.batched(test.dataset) if test else None
    history = run.fit(model, train_ds, val_ds, all_callbacks)

    from kerasft import _io, evaluation

    metrics = {}
    for prefix, ds in (("val_", val_ds), ("test_", test_ds)):
        if ds is not None:
            metrics.update(
                prefixed(model.evaluate(ds, verbose=0, return_dict=True), prefix)
            )
            y_true, y_pred = predictions(model, ds)
            metrics.update(
                prefixed(
                    evaluation.compute_metrics(
                        y_true, y_pred, task="detection", class_names=class_names
                    ),
                    prefix,
                )
            )

    def plot(directory):
        if history:
            path = os.path.join(directory, "training_curves.png")
            with _io.atomic_path(path) as tmp:
                evaluation.plot_history(history, tmp)

    return run.finish(
        model, history, metrics, plot=plot, extra_json={"labels.json": class_names}
    )
