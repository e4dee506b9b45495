"""`object_detection(kind="retinanet")`: many boxes per image, from
`kerasft.data.box_dataset` through a feature pyramid and `RetinaNetHead`
to COCO metrics, `predictions.csv` and a PNG grid of boxes.
"""

import csv
import functools

import numpy as np

from kerasft.advisor.recipe import follow_advice
from kerasft.recipes import _data
from kerasft.recipes._runner import prefixed
from kerasft.recipes._classification import plots
from kerasft.recipes._image_backbone import (
    log_skipped,
    log_training,
    resolve_backbone,
)
from kerasft.recipes._stages import build_and_compile, with_unfreeze

PREDICTIONS_FILE = "predictions.csv"
GRID_FILE = "validation_boxes.png"
_SCORE_SHOWN = 0.3  # boxes drawn on the grid; predictions.csv keeps all


def run_retinanet(run, config, image_size, callbacks=None):
    """Trains and evaluates a RetinaNet run (`image_size`: the checked
    side, `_image_backbone.open_run`); returns `run.finish(...)`."""
    from kerasft import backbones, data, evaluation, heads
    from kerasft.recipes._box_splits import num_classes, read_splits

    if image_size % 32:
        raise ValueError(
            f"The backbone's image side {image_size} is not a multiple of 32, "
            "which kind='retinanet' needs."
        )
    annotations = read_splits(run, config)
    names = annotations["train"].class_names
    classes = num_classes(config, names)
    max_boxes = config.max_boxes or max(
        1, *(a.max_boxes for a in annotations.values() if a)
    )
    common = dict(image_size=image_size, batch_size=run.global_batch,
                  max_boxes=max_boxes, seed=config.seed, epoch=run.epoch_variable,
                  drop_remainder=run.on_tpu)
    train = data.box_dataset(
        annotations["train"], augment=config.augment, shuffle=True, **common
    )
    splits = {p: data.box_dataset(a, shuffle=False, **common) if a else None
              for p, a in zip(("val_", "test_"), (annotations["validation"],
                                                  annotations["test"]))}
    skipped = log_skipped(run, train, *splits.values())

    with run.strategy.scope():
        backbone = resolve_backbone(config, run.strategy, image_size)
        pyramid = backbones.feature_pyramid(backbone, levels=(3, 4, 5))
    config = follow_advice(run, pyramid, train,
                           num_examples=len(annotations["train"]))
    with run.strategy.scope():
        run.reseed()  # the head starts the same however the backbone was made
        head = heads.detection(
            classes, kind="retinanet", max_level=config.max_level,
            anchor_size=config.anchor_size, fpn_filters=config.fpn_filters,
            head_filters=config.head_filters,
            head_conv_layers=config.head_conv_layers,
        )
        steps = train.steps_per_epoch * config.epochs
        model = build_and_compile(
            run, config, pyramid, head, total_steps=steps
        )
    log_training(
        run, f"RetinaNet on {backbone.name} ({config.mode}), {classes} classes"
    )

    def targets(ds):
        return None if ds is None else _data.sharded(ds).map(head.training_targets)

    history = run.fit(model, targets(train), targets(splits["val_"]),
                      with_unfreeze(run, config, pyramid, callbacks))
    metrics, files = {}, {}
    for prefix, ds in splits.items():
        if ds is None:
            continue
        losses = model.evaluate(targets(ds), verbose=0, return_dict=True)
        truth, found = _detect(model, head, ds, image_size)
        original = _original(found, ds, image_size)
        coco = evaluation.coco_metrics(
            original, _original(truth, ds, image_size), class_names=names
        )
        metrics.update(prefixed({**losses, **coco}, prefix))
        what = "validation" if prefix == "val_" else "test"
        files = files or {  # the validation (else test) predictions and grid
            PREDICTIONS_FILE: functools.partial(
                _write_predictions, ds, original, names
            ),
            GRID_FILE: functools.partial(
                _plot_grid, ds, truth, found, names, what
            ),
        }
    return run.finish(
        model, history, metrics, plot=plots(history, files),
        extra_json={"labels.json": list(names)}, skipped_files=skipped,
    )


def _detect(model, head, ds, image_size, chunk=64):
    """`(truth, predictions)`: one dict per image, boxes in the resized
    image's pixels; predictions after NMS. One `predict` pass (distributed
    like `fit`), decoded in chunks."""
    outputs = model.predict(ds.map(lambda images, targets: images), verbose=0)
    boxes = np.concatenate([t["boxes"].numpy() for _, t in ds])
    labels = np.concatenate([t["labels"].numpy() for _, t in ds])
    truth = [{"boxes": b, "labels": l} for b, l in zip(boxes, labels)]
    found = []
    for start in range(0, len(truth), chunk):
        part = {k: v[start:start + chunk] for k, v in outputs.items()}
        decoded = {k: np.asarray(v) for k, v in
                   head.decode(part, (image_size, image_size)).items()}
        found.extend({"boxes": b, "scores": s, "labels": l} for b, s, l in zip(
            decoded["boxes"], decoded["confidence"], decoded["labels"]))
    return truth, found


def _original(entries, ds, image_size):
    """Boxes scaled back to each original image's pixels (for COCO's area
    ranges and for `predictions.csv`)."""
    out = []
    for entry, (height, width) in zip(entries, ds.image_sizes):
        scale = np.asarray([width, height] * 2, "float64") / image_size
        boxes = np.asarray(entry["boxes"], "float64") * scale
        out.append({**entry, "boxes": boxes})
    return out


def _write_predictions(ds, found, class_names, path):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["filename", "xmin", "ymin", "xmax", "ymax", "label", "score"])
        for file, entry in zip(ds.file_paths, found):
            for box, label, score in zip(entry["boxes"], entry["labels"], entry["scores"]):
                if label < 0:
                    continue
                writer.writerow([file, *(f"{v:.2f}" for v in box),
                                 _name(class_names, label), f"{score:.4f}"])


def _plot_grid(ds, truth, found, class_names, what, path, count=16):
    """Up to `count` images: true boxes cyan, predictions (score >=
    `_SCORE_SHOWN`) red with label and score."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    images = np.concatenate([x.numpy() for x, _ in ds.take(-(-count // ds.batch_size))])
    n = min(count, len(images))
    cols = min(4, n)
    rows = -(-n // cols)
    figure = Figure(figsize=(3 * cols, 3 * rows))
    for i in range(n):
        axes = figure.add_subplot(rows, cols, i + 1)
        axes.imshow(np.clip(images[i], 0, 255).astype("uint8"))
        axes.set_axis_off()
        for box, label in zip(truth[i]["boxes"], truth[i]["labels"]):
            if label >= 0:
                axes.add_patch(_rectangle(Rectangle, box, "cyan"))
        for box, label, score in zip(found[i]["boxes"], found[i]["labels"], found[i]["scores"]):
            if label >= 0 and score >= _SCORE_SHOWN:
                axes.add_patch(_rectangle(Rectangle, box, "red"))
                text = f"{_name(class_names, label)} {score:.2f}"
                axes.text(*box[:2], text, color="red", fontsize=7, va="bottom")
    figure.suptitle(f"{what}: true boxes cyan, predicted red")
    figure.savefig(path, format="png", dpi=80)


def _rectangle(rectangle, box, colour):
    x0, y0, x1, y1 = (float(v) for v in box)
    return rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=colour,
                     linewidth=1.5)


def _name(class_names, label):
    """The class name of `label` (its id beyond the training classes)."""
    return class_names[int(label)] if label < len(class_names) else int(label)
