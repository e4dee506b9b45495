"""The images of a detection run's splits, for both kinds of
`object_detection`: annotations read, `validation_split` of the training
images held out when no `validation` is given (every box of an image on
one side), then the `max_train_samples` / `max_eval_samples` subsets.
"""

import numpy as np

_LIMITS = {"train": "max_train_samples", "validation": "max_eval_samples",
           "test": "max_eval_samples"}


def read_splits(run, config, prepare=None, what="{split} images of {source}"):
    """`{"train", "validation", "test"}` -> `BoxAnnotations` (`None` where
    absent), validation held out of train when not given, then subset;
    `prepare(source, annotations)` filters each split read, `what` names it
    in the subset log line (`{split}`, `{source}`)."""
    from kerasft.data.boxes import read_boxes
    from kerasft.recipes._subsets import log_subset, subset_indices

    splits, names = dict.fromkeys(_LIMITS), None
    labels = {split: what.format(split=split, source=getattr(config, split))
              for split in splits}
    for split in splits:
        source = getattr(config, split)
        if source is not None:
            annotations = read_boxes(source, names)
            if prepare is not None:
                annotations = prepare(source, annotations)
            splits[split] = annotations
            names = names or annotations.class_names  # train is read first
    if splits["validation"] is None and config.validation_split:
        splits["train"], splits["validation"] = hold_out(
            run, splits["train"], config.train)
        labels["validation"] = f"validation images held out of {config.train}"
    for split, annotations in splits.items():
        if annotations is not None:
            keep = subset_indices(image_labels(annotations),
                                  getattr(config, _LIMITS[split]),
                                  run.config.seed)
            log_subset(run, labels[split], len(annotations), len(keep))
            splits[split] = annotations.subset(keep)
    return splits


def hold_out(run, annotations, source):
    """`(train, validation)` `BoxAnnotations`: the run's `validation_split`
    of the images held out (at least 2 needed), logged."""
    n = len(annotations)
    if n < 2:
        raise ValueError(
            f"validation_split={run.config.validation_split} needs at least 2 "
            f"training images to hold one out for validation; {source!r} has "
            f"{n}. Pass `validation` data, or validation_split=0 to train on "
            "every image without validation."
        )
    from kerasft.recipes._subsets import hold_out_indices

    rest, held = hold_out_indices(
        run, run.config, image_labels(annotations), "images")
    return annotations.subset(rest), annotations.subset(held)


def image_labels(annotations):
    """One integer class id per image when every image has exactly one box
    (splits and subsets are then stratified), else NaN per image (random)."""
    if len(annotations) and all(len(l) == 1 for l in annotations.labels):
        return np.asarray([int(l[0]) for l in annotations.labels], "int64")
    return np.full(len(annotations), np.nan)


def num_classes(config, names):
    """`num_classes`, else the number of training classes `names`; refuses
    fewer than the data has."""
    count = config.num_classes or len(names)
    if count < len(names):
        raise ValueError(f"`num_classes`={count} is less than the {len(names)} "
                         f"classes of the training data {list(names)}.")
    return count
