"""`object_detection`: one box and one class per image (the tutorial's head),
or, with `kind="retinanet"`, any number of boxes per image
(`kerasft.recipes._retinanet_run`: CSV, COCO JSON or Pascal VOC data,
COCO mAP, `predictions.csv` and a PNG grid of boxes).

Data is a CSV with the header `filename,xmin,ymin,xmax,ymax,label`: image
paths relative to the CSV's folder, box corners in pixels of the original
image, and a class label (name or integer id). With `kind="single"` each
image has exactly one box row; data with several boxes for an image is
refused, naming `kind="retinanet"`. Boxes are normalized to
[0, 1] by each image's width and height, so resizing does not move them.
The model (MobileNetV2 by default + `kerasft.heads.detection`) has two
outputs, `bbox_regression` (sigmoid, `xyxy`) and `classification`, with a
loss each. Metrics: mean IoU and mAP@0.5 (`kerasft.evaluation`).
"""

import os

import keras
import numpy as np
import tensorflow as tf

from kerasft.data import _pipeline
from kerasft.data.images import load_files
from kerasft.recipes import _data
from kerasft.recipes._runner import prefixed
from kerasft.recipes.config import resolve_config
from kerasft.recipes.configs import ObjectDetectionConfig  # noqa: F401 (re-exported)
from kerasft.recipes._classification import write_curves
from kerasft.recipes._image_backbone import (
    fit_and_predict,
    log_skipped,
    open_run,
    resolve_backbone,
)
from kerasft.recipes._stages import build_and_compile, with_unfreeze


def _rows(annotations):
    """`(files, boxes, labels)`, one row per image of `annotations` (each
    has one box: `_one_box_images`)."""
    boxes = [b[0] for b in annotations.boxes]
    labels = [int(l[0]) for l in annotations.labels]
    return (list(annotations.paths), np.asarray(boxes, "float32").reshape(-1, 4),
            np.asarray(labels, "int64"))


def _one_box_images(path, annotations):
    """The images of `annotations` with their one box (images without a
    box left out: the head has nothing to learn from them); refuses a
    split with no box, or with several boxes for an image (the one-box
    head would train on each box as its own image, teaching it to guess
    among them)."""
    counts = [len(b) for b in annotations.boxes]
    several = [(p, n) for p, n in zip(annotations.paths, counts) if n > 1]
    if several:
        file, count = several[0]
        raise ValueError(
            f"{path!r} has several boxes per image ({len(several)} of "
            f"{len(counts)} images, e.g. {os.path.basename(file)!r} with "
            f"{count}), but kind=single predicts one box per image. Pass "
            "kind=retinanet to detect every box."
        )
    boxed = [i for i, n in enumerate(counts) if n]
    if not boxed:
        raise ValueError(f"{path!r} holds no box.")
    return annotations.subset(boxed)


def _boxes_data(annotations, where, run, image_size, shuffle=False):
    """The `kerasft.data` pipeline of one split's `BoxAnnotations` (read,
    held out and subset by `kerasft.recipes._box_splits`): images decoded
    once (unreadable ones skipped), boxes normalized by each image's size."""
    if annotations is None:
        return None
    files, boxes, labels = _rows(annotations)
    names = list(annotations.class_names)
    loaded = load_files(files, (boxes, labels.astype("int32")), image_size,
                        where=where)

    def targets(image, target, size):
        box, label = target
        size = tf.cast(size, "float32")
        scale = tf.stack([size[1], size[0], size[1], size[0]])
        box = tf.clip_by_value(box / scale, 0.0, 1.0)
        return image, {"bbox_regression": box, "classification": label}

    kept_labels = loaded.targets[1]
    ds = _pipeline.finish(
        loaded.dataset.map(targets),
        num_samples=len(kept_labels),
        num_classes=len(names),
        batch_size=run.global_batch,
        cache=False,  # load_files cached the decoded images
        shuffle=shuffle,
        seed=run.config.seed,
        drop_remainder=run.on_tpu,
        epoch=run.epoch_variable,
    )
    return _data.sharded(_pipeline.with_info(
        ds,
        class_names=names,
        class_counts=np.bincount(kept_labels, minlength=len(names)),
        num_samples=len(kept_labels),
        batch_size=run.global_batch,
        drop_remainder=run.on_tpu,
        file_paths=loaded.paths,
        skipped_files=loaded.skipped,
    ))


def object_detection(config=None, *, overwrite=False, callbacks=None, **kwargs):
    """Trains a detector: one box + class per image, or RetinaNet.

    `kind="single"` (default) trains the tutorial's head on a CSV of boxes.
    `kind="retinanet"` trains `kerasft.heads.RetinaNetHead` on the
    backbone's `feature_pyramid` from a CSV (several rows per image), a
    COCO JSON file or a Pascal VOC folder; metrics are COCO's (`val_map`,
    `val_map50`, ...), and the run folder also holds `predictions.csv` and
    `validation_boxes.png`. Without `validation`, `validation_split` of
    the training images is held out for validation
    (`kerasft.recipes._box_splits`).

    Args:
        config: an `ObjectDetectionConfig`, a dict or a JSON/YAML path.
        overwrite: replace another run's outputs. Defaults to `False`.
        callbacks: extra Keras callbacks. Defaults to `None`.
        **kwargs: config fields, overriding `config`.

    Returns:
        A `RecipeResult`; metrics hold `val_iou`, `val_map50` and the
        per-output losses (`kind="single"`), or the losses and COCO
        metrics `val_map`, `val_map50`, `val_map75`, ... (`"retinanet"`).

    Example:
    ```python
    result = kerasft.recipes.object_detection(
        train="boxes/train.csv", validation="boxes/val.csv",
        epochs=10, output_dir="runs/boxes")
    many = kerasft.recipes.object_detection(
        train="coco/train.json", validation="coco/val.json",
        kind="retinanet", backbone="resnet50", image_size=512,
        output_dir="runs/coco")
    ```
    """
    config = resolve_config(ObjectDetectionConfig, config, **kwargs)
    retinanet = config.kind == "retinanet"
    needs = "a CSV, COCO .json or VOC folder." if retinanet else "a CSV of boxes."
    run, image_size = open_run(config, overwrite, needs)
    if image_size is None:
        return run.completed_result()
    if retinanet:
        from kerasft.recipes._retinanet_run import run_retinanet

        return run_retinanet(run, config, image_size, callbacks)
    size = (image_size, image_size)
    from kerasft.recipes._box_splits import read_splits

    annotations = read_splits(run, config, prepare=_one_box_images,
                              what="rows of {source}")
    where = {"train": config.train, "test": config.test,
             "validation": config.validation or
             f"validation images held out of {config.train}"}
    train, validation, test = (
        _boxes_data(annotations[split], where[split], run, size,
                    shuffle=split == "train")
        for split in ("train", "validation", "test")
    )
    class_names = list(train.class_names)
    num_classes = config.num_classes or len(class_names)
    if num_classes < len(class_names):
        raise ValueError(
            f"`num_classes`={num_classes} is less than the "
            f"{len(class_names)} classes of the training data."
        )
    skipped = log_skipped(run, train, validation, test)

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
        model = build_and_compile(
            run, config, backbone, head,
            total_steps=train.steps_per_epoch * config.epochs,
        )

    compile_kwargs = head.compile_kwargs()
    # In feature_extraction the backbone never trains: run it once per split.
    history, results = fit_and_predict(
        run, config, model, train, {"val_": validation, "test_": test},
        with_unfreeze(run, config, backbone, callbacks),
        features=backbone if config.mode == "feature_extraction" else None,
        metrics=compile_kwargs["metrics"],
        loss_weights=compile_kwargs["loss_weights"],
    )
    metrics = _detection_metrics(
        model, compile_kwargs["loss_weights"], results, class_names
    )
    return run.finish(
        model, history, metrics,
        plot=lambda directory: write_curves(history, directory),
        extra_json={"labels.json": class_names}, skipped_files=skipped,
    )


def _detection_metrics(model, loss_weights, results, class_names):
    """`val_`/`test_` losses, IoU, mAP and accuracy from one pass of
    predictions per split (`results`: prefix -> `(y_true, y_pred)`)."""
    from kerasft import evaluation

    metrics = {}
    for prefix, result in results.items():
        if result is None:
            continue
        y_true, y_pred = result
        metrics.update(prefixed(
            _losses(model.loss, loss_weights, y_true, y_pred), prefix
        ))
        metrics.update(prefixed(
            evaluation.compute_metrics(
                y_true, y_pred, task="detection", class_names=class_names
            ),
            prefix,
        ))
    return metrics


def _losses(losses, weights, y_true, y_pred):
    """`{"<output>_loss": ..., "loss": weighted sum}` from predictions."""
    out, total = {}, 0.0
    for name, loss in losses.items():
        value = keras.losses.get(loss)(y_true[name], y_pred[name])
        value = float(np.mean(keras.ops.convert_to_numpy(value)))
        out[f"{name}_loss"] = value
        total += weights.get(name, 1.0) * value
    out["loss"] = total
    return out
