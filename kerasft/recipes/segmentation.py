"""`segmentation`: per-pixel classes from a backbone's feature pyramid.

The run: images and masks (a folder with `images/` and `masks/`, tfds, or
arrays; sizes, missing masks and labels checked before anything trains)
-> `kerasft.data.segmentation_*` (decoded once, masks resized with nearest
neighbour, augmentation moving masks with the pixels) -> backbone ->
`kerasft.backbones.feature_pyramid` -> `kerasft.heads.segmentation` (U-Net
or DeepLabV3+) -> the image recipes' freezing modes, layer-wise rates,
precision and strategy -> resumable `fit` -> pixel accuracy, mean and
per-class IoU and Dice from one confusion matrix per split, and a PNG grid
of validation images overlaid with their true and predicted masks.
"""

import os

import numpy as np

from kerasft.recipes import _data
from kerasft.recipes._runner import Run, prefixed
from kerasft.recipes.config import resolve_config
from kerasft.recipes.configs import SegmentationConfig  # noqa: F401 (re-exported)
from kerasft.recipes.image_classification import (
    build_and_compile,
    check_backbone,
    resolve_backbone,
    with_unfreeze,
)

GRID_FILE = "validation_masks.png"
_LEVELS = (1, 2, 3, 4, 5)  # strides 2 to 32


def segmentation(config=None, *, overwrite=False, callbacks=None, **kwargs):
    """Trains a semantic segmentation model (U-Net or DeepLabV3+ decoder).

    Args:
        config: a `SegmentationConfig`, a dict or a JSON/YAML path.
        overwrite: replace another run's outputs. Defaults to `False`.
        callbacks: extra Keras callbacks. Defaults to `None`.
        **kwargs: config fields, overriding `config`.

    Returns:
        A `RecipeResult`; metrics hold, per split (`val_`, `test_`),
        `loss`, `pixel_accuracy`, `mean_iou`, `mean_dice`,
        `iou_per_class` and `dice_per_class` (ignore_index pixels left out).
        The run folder also holds `labels.json` and `validation_masks.png`.

    Example:
    ```python
    result = kerasft.recipes.segmentation(
        train="pets/train", validation="pets/val",  # images/ + masks/ each
        backbone="mobilenetv2", kind="deeplabv3plus", image_size=256,
        loss="crossentropy_dice", output_dir="runs/pets")
    print(result.metrics["val_mean_iou"])
    ```
    """
    config = resolve_config(SegmentationConfig, config, **kwargs)
    run = Run(config, overwrite)
    if run.state == "complete":
        return run.completed_result()
    image_size = check_backbone(config.backbone, config.image_size)
    if config.train is None:
        raise ValueError(
            "`train` is required: a folder with images/ and masks/, "
            "tfds:NAME or (images, masks) arrays."
        )
    train, validation, test = _read_splits(run, config, image_size)
    num_classes = train.num_classes
    class_names = config.class_name_list() or list(train.class_names)

    from kerasft import backbones, heads

    with run.strategy.scope():
        backbone = resolve_backbone(config, run.strategy, image_size)
        levels = config.levels or default_levels(backbone, config.kind)
        pyramid = backbones.feature_pyramid(backbone, levels=levels)
        run.reseed()  # the head starts the same however the backbone was made
        head = heads.segmentation(
            num_classes,
            kind=config.kind,
            filters=config.decoder_filters,
            dice_weight=config.dice_weight if config.loss == "crossentropy_dice" else 0.0,
            ignore_index=config.ignore_index,
            dropout=config.dropout,
            output_size=_output_size(pyramid, image_size),
        )
        model = build_and_compile(run, config, pyramid, head)
    run.log(
        f"Training {config.kind} on {backbone.name} ({config.mode}, levels "
        f"{list(levels)}), {num_classes} classes, {run.replicas} replica(s), "
        f"global batch {run.global_batch}, precision {run.policy.name}."
    )
    history = run.fit(
        model, _data.sharded(train),
        _data.sharded(validation) if validation is not None else None,
        with_unfreeze(run, config, pyramid, callbacks),
    )
    metrics, shown = {}, None
    for prefix, ds in (("val_", validation), ("test_", test)):
        if ds is None:
            continue
        metrics.update(_split_metrics(model, ds, num_classes, config.ignore_index,
                                      class_names, prefix))
        shown = shown or (prefix, ds)
    return run.finish(
        model, history, metrics,
        plot=_outputs(history, model, shown, config.ignore_index),
        extra_json={"labels.json": class_names},
    )


def default_levels(backbone, kind):
    """The pyramid levels a `kind` uses by default that `backbone` has.

    U-Net: levels 1 to 5 (without the stride-2 level of stems that have
    none, e.g. ConvNeXt). DeepLabV3+: level 2 for the low-level skip and
    the deepest level up to 5 for ASPP.
    """
    from kerasft.backbones.feature_pyramid import layer_strides

    strides = set(layer_strides(backbone.model).values())
    reached = [l for l in _LEVELS if 2**l in strides]
    if kind == "unet" or not reached:
        return tuple(reached)
    return tuple(sorted({l for l in (2, reached[-1]) if l in reached}))


def _output_size(pyramid, image_size):
    """`(side, side)` where the finest level is not exactly side/2**L
    (valid-padded stems), else `None` (the head upsamples by the stride)."""
    outputs = pyramid.model.output
    level = min(int(key[1:]) for key in outputs)
    side = outputs[f"P{level}"].shape[1]
    if side is not None and side * 2**level != image_size:
        return (image_size, image_size)
    return None


# === Data ===


def _read_splits(run, config, image_size):
    """`(train, validation, test)` datasets; validation split off `train`
    when none is given and `validation_split` is set."""
    common = dict(
        image_size=image_size, batch_size=run.global_batch,
        num_classes=config.num_classes, ignore_index=config.ignore_index,
        class_names=config.class_name_list(), seed=config.seed,
        drop_remainder=run.on_tpu, epoch=run.epoch_variable,
    )
    split = config.validation_split if config.validation is None else 0
    if split and str(config.train).startswith("tfds:"):
        run.log(f"validation_split={split} not applied to tfds data; pass "
                "`validation` to hold data out.")
        split = 0
    train = _read(config.train, augment=config.augment, shuffle=True,
                  validation_split=split or None,
                  subset="both" if split else None, **common)
    validation = None
    if split:
        train, validation = train
    # Later splits must use the training data's classes.
    common["num_classes"] = train.num_classes
    if config.validation is not None:
        validation = _read(config.validation, shuffle=False, **common)
    test = _read(config.test, shuffle=False, **common) if config.test is not None else None
    return train, validation, test


def _read(value, image_size, batch_size, **kwargs):
    from kerasft import data

    if isinstance(value, str) and value.startswith("tfds:"):
        name, _, split = value[len("tfds:"):].partition(":")
        return data.segmentation_tfds(name, split or "train", image_size,
                                      batch_size, **kwargs)
    if isinstance(value, (str, os.PathLike)):
        folder = os.fspath(value)
        image_dir, mask_dir = (os.path.join(folder, "images"),
                               os.path.join(folder, "masks"))
        if not (os.path.isdir(image_dir) and os.path.isdir(mask_dir)):
            raise ValueError(
                f"Segmentation data folder {folder!r} must hold an images/ "
                "and a masks/ folder (masks named like their images). "
                f"Received: {value!r}"
            )
        return data.segmentation_folder(image_dir, mask_dir, image_size,
                                        batch_size, **kwargs)
    if isinstance(value, (tuple, list)) and len(value) == 2:
        if all(isinstance(v, (str, os.PathLike)) for v in value):
            return data.segmentation_folder(value[0], value[1], image_size,
                                            batch_size, **kwargs)
        return data.segmentation_arrays(value[0], value[1], batch_size,
                                        image_size=image_size, **kwargs)
    raise TypeError(
        "Segmentation data must be a folder with images/ and masks/, "
        "'tfds:NAME[:SPLIT]', (image_dir, mask_dir) or (images, masks) "
        f"arrays. Received: {type(value).__name__}"
    )


# === Evaluation and outputs ===


def _split_metrics(model, ds, num_classes, ignore_index, class_names, prefix):
    """The loss (`evaluate`) and the confusion-matrix scores of one split."""
    from kerasft import evaluation

    loss = model.evaluate(ds, verbose=0, return_dict=True)["loss"]
    confusion = np.zeros((num_classes, num_classes), np.int64)
    for images, masks in ds:
        # `predict`, not `predict_on_batch`: under MirroredStrategy the
        # latter returned a batch twice its size here (Keras 3.15).
        logits = model.predict(images, batch_size=len(images), verbose=0)
        confusion += evaluation.segmentation_confusion_matrix(
            masks.numpy(), logits, num_classes, ignore_index
        )
    scores = evaluation.segmentation_scores(confusion, class_names)
    return prefixed({"loss": float(loss), **scores}, prefix)


def _outputs(history, model, shown, ignore_index):
    """Writes the training curves and the overlay grid."""
    from kerasft import _io, evaluation

    def write(directory):
        if history:
            with _io.atomic_path(os.path.join(directory, "training_curves.png")) as tmp:
                evaluation.plot_history(history, tmp)
        if shown is None:
            return
        prefix, ds = shown
        with _io.atomic_path(os.path.join(directory, GRID_FILE)) as tmp:
            plot_overlays(tmp, model, ds, ignore_index,
                          "validation" if prefix == "val_" else "test")

    return write


def plot_overlays(path, model, ds, ignore_index=255, what="validation", count=8):
    """A PNG grid: for up to `count` images, the image, the true mask and the
    predicted mask overlaid in class colours (ignored pixels left clear)."""
    from matplotlib.figure import Figure

    images, truths = [], []
    for x, y in ds:
        images.append(x.numpy())
        truths.append(y.numpy())
        if sum(len(i) for i in images) >= count:
            break
    images = np.concatenate(images)[:count]
    truths = np.concatenate(truths)[:count]
    predicted = np.argmax(model.predict(images, verbose=0), axis=-1)
    from matplotlib import colormaps

    colours = (colormaps["tab20"](np.arange(256) % 20)[:, :3] * 255).astype("int64")
    figure = Figure(figsize=(6, 2 * len(images)), layout="constrained")
    for row, (image, truth, guess) in enumerate(zip(images, truths, predicted)):
        image = np.clip(image, 0, 255).astype("uint8")
        panels = (("image", image), ("true", _overlay(image, truth, colours, ignore_index)),
                  ("predicted", _overlay(image, guess, colours, ignore_index)))
        for col, (title, panel) in enumerate(panels):
            axes = figure.add_subplot(len(images), 3, 3 * row + col + 1)
            axes.imshow(panel)
            axes.set_axis_off()
            if row == 0:
                axes.set_title(title)
    figure.suptitle(f"{what}: image, true mask, predicted mask")
    figure.savefig(path, format="png", dpi=72)


def _overlay(image, mask, colours, ignore_index):
    """`image` blended half and half with the class colours of `mask`
    (background, label 0, and ignored pixels keep the image)."""
    mask = np.asarray(mask).astype(np.int64)
    shown = (mask > 0) & (mask != (-1 if ignore_index is None else ignore_index))
    out = image.astype("float32")
    painted = colours[np.clip(mask, 0, 255)].astype("float32")
    out[shown] = 0.5 * out[shown] + 0.5 * painted[shown]
    return out.astype("uint8")
