"""The images of a detection run's splits, for both kinds of
`object_detection`.

Annotations are read for `train`, `validation` and `test`. When no
`validation` is given, `validation_split` holds a seeded share of the
training IMAGES out for validation (every box of an image stays on one
side) by the one hold-out rule, `kerasft.data._split.holdout_indices`:
stratified by class when every image has exactly one box, else at random.
Then `max_train_samples` / `max_eval_samples` take their subsets of what
each side holds (`kerasft.recipes._subsets`), as image classification
does, so the held-out images do not depend on the subset sizes.

Fewer than two training images cannot be split: the run is refused with
a line naming `validation` and `validation_split=0`, rather than training
on every image and silently reporting no validation metrics.
"""

import numpy as np

_LIMITS = {"train": "max_train_samples", "validation": "max_eval_samples",
           "test": "max_eval_samples"}


def read_splits(run, config, prepare=None, what="{split} images of {source}"):
    """`{"train", "validation", "test"}` -> `BoxAnnotations` (`None` where
    absent), validation held out of train when not given, then subset.

    Args:
        run: the `Run` (its seed and log).
        config: an `ObjectDetectionConfig`; `train` must be set.
        prepare: called as `prepare(source, annotations)` on each split
            read, returning the annotations to use (kind="single" refuses
            images with several boxes and leaves out those with none).
            Defaults to `None`.
        what: how the subset log line names a given split, with `{split}`
            and `{source}`. Defaults to `"{split} images of {source}"`.

    Example:
    ```python
    splits = read_splits(run, config)
    train, validation = splits["train"], splits["validation"]
    ```
    """
    from kerasft.data.boxes import read_boxes

    splits, names = {}, None
    for split in ("train", "validation", "test"):
        source = getattr(config, split)
        if source is None:
            splits[split] = None
            continue
        annotations = read_boxes(source, names)
        if prepare is not None:
            annotations = prepare(source, annotations)
        names = names or annotations.class_names  # train is read first
        splits[split] = annotations
    labels = {split: what.format(split=split, source=getattr(config, split))
              for split in splits}
    if splits["validation"] is None and config.validation_split:
        splits["train"], splits["validation"] = hold_out(
            run, splits["train"], config.validation_split, config.seed,
            config.train,
        )
        labels["validation"] = f"validation images held out of {config.train}"
    for split, annotations in splits.items():
        if annotations is not None:
            splits[split] = subset(run, annotations,
                                   getattr(config, _LIMITS[split]), labels[split])
    return splits


def hold_out(run, annotations, fraction, seed, source):
    """`(train, validation)` `BoxAnnotations`: `fraction` of the images
    held out (`holdout_indices`), one log line saying how many.

    Raises:
        ValueError: fewer than two images, or a `fraction` leaving no
            training image.
    """
    n = len(annotations)
    if n < 2:
        raise ValueError(
            f"validation_split={fraction} needs at least 2 training images "
            f"to hold one out for validation; {source!r} has {n}. Pass "
            "`validation` data, or validation_split=0 to train on every "
            "image without validation."
        )
    from kerasft.data._split import holdout_indices

    rest, held = holdout_indices(image_labels(annotations), fraction, seed)
    run.log(f"Holding out {len(held)} of {n} training images for validation "
            f"(validation_split={fraction}).")
    return (annotations.subset([int(i) for i in rest]),
            annotations.subset([int(i) for i in held]))


def subset(run, annotations, max_samples, what):
    """At most `max_samples` images of `annotations` (`subset_indices`),
    logged as `what` when some are left out."""
    from kerasft.recipes._subsets import log_subset, subset_indices

    keep = subset_indices(image_labels(annotations), max_samples, run.config.seed)
    log_subset(run, what, len(annotations), len(keep))
    return annotations.subset([int(i) for i in keep])


def image_labels(annotations):
    """One integer class id per image when every image has exactly one box
    (splits and subsets are then stratified), else NaN per image (random)."""
    if len(annotations) and all(len(l) == 1 for l in annotations.labels):
        return np.asarray([int(l[0]) for l in annotations.labels], "int64")
    return np.full(len(annotations), np.nan)
