"""`object_detection`: one box and one class per image (`kind="single"`,
the tutorial's head, from a CSV `filename,xmin,ymin,xmax,ymax,label`: paths
relative to the CSV, corners in the image's pixels, normalized by its size;
mean IoU and mAP@0.5), or any number of boxes with `kind="retinanet"`
(`kerasft.recipes._retinanet_run`)."""

import os

import keras
import numpy as np
import tensorflow as tf

from kerasft.advisor.recipe import follow_advice
from kerasft.data import _pipeline
from kerasft.data.images import load_files
from kerasft.recipes import _data
from kerasft.recipes._runner import prefixed
from kerasft.recipes.config import resolve_config
from kerasft.recipes.configs import ObjectDetectionConfig  # noqa: F401 (re-exported)
from kerasft.recipes._classification import plots
from kerasft.recipes._image_backbone import (
    fit_and_predict,
    log_skipped,
    open_run,
    resolve_backbone,
)
from kerasft.recipes._stages import build_and_compile, with_unfreeze


def _one_box_images(path, annotations):
    """The images of `annotations` with their one box (images without one
    left out); refuses a split with no box, or with several boxes for an
    image (the head would learn to guess among them)."""
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


def _boxes_data(run, annotations, where, image_size, shuffle):
    """The `kerasft.data` pipeline of one split's `BoxAnnotations` (read,
    held out and subset by `kerasft.recipes._box_splits`): images decoded
    once (unreadable ones skipped), boxes normalized by each image's size."""
    if annotations is None:
        return None
    names = list(annotations.class_names)
    boxes = np.asarray([b[0] for b in annotations.boxes], "float32")
    labels = np.asarray([int(l[0]) for l in annotations.labels], "int32")
    loaded = load_files(list(annotations.paths), (boxes.reshape(-1, 4), labels),
                        (image_size, image_size), where=where)

    def targets(image, target, size):
        box, label = target
        size = tf.cast(size, "float32")
        box = tf.clip_by_value(box / tf.stack([size[1], size[0]] * 2), 0.0, 1.0)
        return image, {"bbox_regression": box, "classification": label}

    kept_labels = loaded.targets[1]
    ds = _pipeline.finish(
        loaded.dataset.map(targets), num_samples=len(kept_labels),
        num_classes=len(names), batch_size=run.global_batch,
        cache=False,  # load_files cached the decoded images
        shuffle=shuffle, seed=run.config.seed, drop_remainder=run.on_tpu,
        epoch=run.epoch_variable,
    )
    return _pipeline.with_info(
        _data.by_data(ds), class_names=names,
        class_counts=np.bincount(kept_labels, minlength=len(names)),
        num_samples=len(kept_labels), batch_size=run.global_batch,
        drop_remainder=run.on_tpu, file_paths=loaded.paths,
        skipped_files=loaded.skipped,
    )


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
    run, image_size = open_run(config, overwrite, (
        "a CSV, COCO .json or VOC folder." if retinanet else "a CSV of boxes."
    ))
    if image_size is None:
        return run.completed_result()
    if retinanet:
        from kerasft.recipes._retinanet_run import run_retinanet

        return run_retinanet(run, config, image_size, callbacks)
    from kerasft.recipes._box_splits import num_classes, read_splits

    annotations = read_splits(run, config, prepare=_one_box_images,
                              what="rows of {source}")
    held = f"validation images held out of {config.train}"
    train, validation, test = (  # test: None without `config.test`
        _boxes_data(run, annotations[s], getattr(config, s) or held,
                    image_size, s == "train")
        for s in ("train", "validation", "test")
    )
    class_names = list(train.class_names)
    classes = num_classes(config, class_names)
    skipped = log_skipped(run, train, validation, test)

    from kerasft import heads
    with run.strategy.scope():
        backbone = resolve_backbone(config, run.strategy, image_size)
    # Boxes are no class per image: the shift and the size decide.
    config = follow_advice(run, backbone, train, num_examples=train.num_samples)
    with run.strategy.scope():
        run.reseed()  # the head starts the same however the backbone was made
        head = heads.detection(
            classes, conv_filters=tuple(config.conv_filters),
            dropout=config.dropout, bbox_loss=config.bbox_loss,
            bbox_loss_weight=config.bbox_loss_weight,
        )
        steps = train.steps_per_epoch * config.epochs
        model = build_and_compile(
            run, config, backbone, head, total_steps=steps
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
    metrics = _detection_metrics(model, compile_kwargs, results, class_names)
    return run.finish(
        model, history, metrics, plot=plots(history),
        extra_json={"labels.json": class_names}, skipped_files=skipped,
    )


def _detection_metrics(model, compile_kwargs, results, class_names):
    """`val_`/`test_` losses (per output, and their weighted sum), IoU, mAP
    and accuracy from one pass of predictions per split (`results`: prefix
    -> `(y_true, y_pred)`)."""
    from kerasft import evaluation

    weights, metrics = compile_kwargs["loss_weights"], {}
    for prefix, result in results.items():
        if result is None:
            continue
        y_true, y_pred = result
        scores, total = {}, 0.0
        for name, loss in model.loss.items():
            value = keras.losses.get(loss)(y_true[name], y_pred[name])
            value = float(np.mean(keras.ops.convert_to_numpy(value)))
            scores[f"{name}_loss"] = value
            total += weights.get(name, 1.0) * value
        scores["loss"] = total
        scores.update(evaluation.compute_metrics(
            y_true, y_pred, task="detection", class_names=class_names
        ))
        metrics.update(prefixed(scores, prefix))
    return metrics
