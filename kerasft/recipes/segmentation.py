"""`segmentation`: per-pixel classes from a backbone's feature pyramid.

Images and masks (a folder with `images/` and `masks/`, tfds or arrays)
-> `kerasft.data.masks` -> backbone -> `kerasft.backbones.feature_pyramid`
-> `kerasft.heads.segmentation` (U-Net or DeepLabV3+) with the image
recipes' freezing modes -> pixel accuracy, IoU and Dice from one confusion
matrix per split, and a PNG grid of true and predicted masks.
"""

import functools
import os

import numpy as np

from kerasft.advisor.recipe import follow_advice
from kerasft.recipes import _data
from kerasft.recipes._runner import prefixed
from kerasft.recipes.config import resolve_config
from kerasft.recipes.configs import SegmentationConfig  # noqa: F401 (re-exported)
from kerasft.recipes._classification import plots
from kerasft.recipes._image_backbone import (
    log_skipped,
    log_training,
    open_run,
    resolve_backbone,
)
from kerasft.recipes._stages import build_and_compile, with_unfreeze

GRID_FILE = "validation_masks.png"


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
    run, image_size = open_run(
        config, overwrite, "a folder with images/ and masks/, tfds:NAME or "
        "(images, masks) arrays.")
    if image_size is None:
        return run.completed_result()
    train, validation, test = _read_splits(run, config, image_size)
    skipped = log_skipped(run, train, validation, test)
    num_classes = train.num_classes
    class_names = config.class_name_list() or list(train.class_names)

    from kerasft import backbones, heads

    dice = config.dice_weight if config.loss == "crossentropy_dice" else 0.0
    with run.strategy.scope():
        backbone = resolve_backbone(config, run.strategy, image_size)
        levels = config.levels or default_levels(backbone, config.kind)
        pyramid = backbones.feature_pyramid(backbone, levels=levels)
    # Masks hold no class per image: the shift and the size decide.
    config = follow_advice(run, pyramid, train, num_examples=train.num_samples)
    steps = train.steps_per_epoch * config.epochs
    with run.strategy.scope():
        run.reseed()  # the head starts the same however the backbone was made
        head = heads.segmentation(
            num_classes, kind=config.kind, filters=config.decoder_filters,
            dice_weight=dice, ignore_index=config.ignore_index,
            dropout=config.dropout,
            output_size=_output_size(pyramid, image_size),
        )
        model = build_and_compile(run, config, pyramid, head, total_steps=steps)
    log_training(run, f"{config.kind} on {backbone.name} ({config.mode}, "
                      f"levels {list(levels)}), {num_classes} classes")
    history = run.fit(
        model, _data.sharded(train),
        _data.sharded(validation) if validation is not None else None,
        with_unfreeze(run, config, pyramid, callbacks),
    )
    metrics, grid = {}, {}
    for prefix, what, ds in (("val_", "validation", validation),
                             ("test_", "test", test)):
        if ds is None:
            continue
        metrics.update(_split_metrics(model, ds, config, class_names, prefix))
        grid = grid or {GRID_FILE: functools.partial(
            plot_overlays, model=model, ds=ds, what=what,
            ignore_index=config.ignore_index, class_names=class_names,
        )}
    return run.finish(
        model, history, metrics, plot=plots(history, grid),
        extra_json={"labels.json": class_names}, skipped_files=skipped,
    )


def default_levels(backbone, kind):
    """The pyramid levels a `kind` uses by default that `backbone` has:
    U-Net 1 to 5 (no stride-2 level for stems without one, e.g. ConvNeXt);
    DeepLabV3+ level 2 (the low-level skip) and the deepest up to 5 (ASPP).
    """
    from kerasft.backbones.feature_pyramid import layer_strides

    strides = set(layer_strides(backbone.model).values())
    reached = [l for l in range(1, 6) if 2**l in strides]  # strides 2 to 32
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
    """`(train, validation, test)` datasets: `validation_split` of `train`
    held out when no validation is given, each a seeded random subset
    (images have no single label to stratify by) before decoding."""
    from kerasft.recipes._subsets import (
        hold_out_indices,
        log_subset,
        subset_indices,
    )

    common = dict(
        image_size=image_size, batch_size=run.global_batch,
        num_classes=config.num_classes, ignore_index=config.ignore_index,
        class_names=config.class_name_list(), seed=config.seed,
        drop_remainder=run.on_tpu, epoch=run.epoch_variable,
    )

    def read(source, what, index=None, **kwargs):
        if source is None:
            return None
        if not isinstance(source, _Source):
            source = _source(source, config)
        index = np.arange(len(source)) if index is None else index
        limit = (config.max_train_samples if what == "training"
                 else config.max_eval_samples)
        keep = index[subset_indices(len(index), limit, config.seed)]
        log_subset(run, f"{what} images", len(index), len(keep))
        return source.dataset(keep, shuffle=what == "training", **kwargs,
                              **common)

    source = _source(config.train, config)
    index, held = None, None
    if config.validation is None and config.validation_split:
        index, held = hold_out_indices(run, config, len(source), "images")
    train = read(source, "training", index, augment=config.augment)
    common["num_classes"] = train.num_classes  # later splits: train's classes
    if held is None:
        validation = read(config.validation, "validation")
    else:
        validation = read(source, "validation", held, skipped=False)
    return train, validation, read(config.test, "test")


class _Source:
    """Image/mask pairs listed, not yet decoded: arrays, or file paths
    (`files`: `segmentation_files`' `where` and `skipped_files`)."""

    def __init__(self, images, masks, files=None):
        self.images, self.masks, self.files = images, masks, files

    def __len__(self):
        return len(self.images)

    def dataset(self, keep, skipped=True, **kwargs):
        """Decodes and batches the pairs at `keep` only."""
        from kerasft.data import masks
        from kerasft.recipes._subsets import take

        pairs = take(self.images, keep), take(self.masks, keep)
        if self.files is None:
            return masks.segmentation_arrays(*pairs, **kwargs)
        files = self.files if skipped else dict(self.files, skipped_files=())
        return masks.segmentation_files(*pairs, **files, **kwargs)


def _source(value, config):
    """The `_Source` of a data option: a folder with images/ and masks/,
    `(image_dir, mask_dir)`, `"tfds:NAME[:SPLIT]"` or `(images, masks)`."""
    from kerasft.data import masks

    if isinstance(value, str) and value.startswith("tfds:"):
        name, _, split = value[len("tfds:"):].partition(":")
        return _Source(*masks.tfds_arrays(
            name, split or "train", ignore_index=config.ignore_index))
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
        value = (image_dir, mask_dir)
    if isinstance(value, (tuple, list)) and len(value) == 2:
        if all(isinstance(v, (str, os.PathLike)) for v in value):
            images, labels, skipped = masks.pair_files(
                os.fspath(value[0]), os.fspath(value[1]), return_skipped=True)
            files = dict(where=os.fspath(value[0]), skipped_files=skipped)
            return _Source(images, labels, files)
        return _Source(value[0], value[1])
    raise TypeError(
        "Segmentation data must be a folder with images/ and masks/, "
        "'tfds:NAME[:SPLIT]', (image_dir, mask_dir) or (images, masks) "
        f"arrays. Received: {type(value).__name__}"
    )


# === Evaluation and outputs ===


def _split_metrics(model, ds, config, class_names, prefix):
    """The loss (`evaluate`) and the confusion-matrix scores of one split."""
    from kerasft import evaluation

    loss = model.evaluate(ds, verbose=0, return_dict=True)["loss"]
    confusion = np.zeros((len(class_names),) * 2, np.int64)
    for images, masks in ds:
        # `predict`, not `predict_on_batch`: under MirroredStrategy the
        # latter returned a batch twice its size here (Keras 3.15).
        logits = model.predict(images, batch_size=len(images), verbose=0)
        confusion += evaluation.segmentation_confusion_matrix(
            masks.numpy(), logits, len(class_names), config.ignore_index)
    scores = evaluation.segmentation_scores(confusion, class_names)
    return prefixed({"loss": float(loss), **scores}, prefix)


def plot_overlays(path, model, ds, ignore_index=255, what="validation", count=8,
                  class_names=None):
    """A PNG grid: for up to `count` images, the image, the true mask and the
    predicted mask, masks in solid class colours (every class, background
    included: a prediction never looks like the image; `kerasft predict`'s
    `tab20` palette), with a colour key naming the classes (and ignored
    pixels)."""
    from matplotlib.figure import Figure

    pairs = [(x.numpy(), y.numpy()) for x, y in ds.unbatch().take(count)]
    images, truths = (np.stack(p) for p in zip(*pairs))
    logits = model.predict(images, verbose=0)
    predicted = np.argmax(logits, axis=-1)
    num_classes = logits.shape[-1]
    names = list(class_names or [str(i) for i in range(num_classes)])
    colours = _colours(num_classes)
    figure = Figure(figsize=(6, 2 * len(images) + 0.6), layout="constrained")
    titles = ("image", "true mask", "predicted mask")
    for row, (image, truth, guess) in enumerate(zip(images, truths, predicted)):
        image = np.clip(image, 0, 255).astype("uint8")
        masks = (mask_image(m, colours, ignore_index) for m in (truth, guess))
        for col, panel in enumerate((image, *masks)):
            axes = figure.add_subplot(len(images), 3, 3 * row + col + 1)
            axes.imshow(panel, interpolation="nearest")
            axes.set_axis_off()
            if row == 0:
                axes.set_title(titles[col])
    figure.legend(handles=_key(names, colours, ignore_index, truths),
                  loc="outside lower center", ncols=min(4, num_classes + 1),
                  fontsize="small", frameon=False)
    figure.suptitle(f"{what}: image, true mask, predicted mask")
    figure.savefig(path, format="png", dpi=72)


def _colours(num_classes):
    """uint8 `[num_classes, 3]`: `kerasft predict`'s palette (`tab20`)."""
    from kerasft.predictors.segmentation import palette

    return np.asarray(palette(num_classes), "uint8")


def mask_image(mask, colours, ignore_index):
    """A mask of class ids as an RGB uint8 image: each pixel its class's
    colour, ignored (and out-of-range) pixels white.

    Args:
        mask: int `(h, w)` class ids.
        colours: uint8 `[num_classes, 3]`.
        ignore_index: the label of pixels to ignore, or `None`.

    Returns:
        A uint8 `(h, w, 3)` array.
    """
    mask = np.asarray(mask).astype(np.int64)
    known = (mask >= 0) & (mask < len(colours))
    if ignore_index is not None:
        known &= mask != ignore_index
    out = np.full(mask.shape + (3,), 255, "uint8")  # white: no class
    out[known] = colours[mask[known]]
    return out


def _key(names, colours, ignore_index, truths):
    """Legend patches: one per class, and "ignored" when a true mask has
    ignored pixels."""
    from matplotlib.patches import Patch

    edge = dict(edgecolor="black", linewidth=0.5)
    handles = [Patch(facecolor=c / 255.0, label=f"{i}: {name}", **edge)
               for i, (name, c) in enumerate(zip(names, colours))]
    if ignore_index is not None and np.any(truths == ignore_index):
        handles.append(
            Patch(facecolor="white", label=f"{ignore_index}: ignored", **edge))
    return handles
