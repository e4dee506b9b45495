"""`video_classification`: an image backbone per frame + a temporal head.

`kerasft.data.video_folder` clips -> the backbone on every frame ->
`kerasft.heads.video_classification` (GRU by default), with the modes and
classification options of `image_classification` (`class_weight`,
`label_smoothing`, focal loss, MixUp/CutMix of whole clips, subsets chosen
before decoding, `curriculum`). In `feature_extraction` with uniform
sampling and no augmentation the per-frame features are cached and only
the temporal head trains. Metrics add top-5 accuracy and a confusion matrix.
"""

import numpy as np
import tensorflow as tf
from sklearn import metrics as skm

from kerasft.advisor.recipe import MAX_SAMPLES, follow_advice, sample
from kerasft.recipes import _curriculum
from kerasft.recipes._classification import (
    checked_num_classes,
    class_ids,
    classification_label_mode,
    classification_loss,
    classification_metrics,
    curriculum_data,
    plotter,
    resolve_class_weight,
    split_mixing,
)
from kerasft.recipes._image_backbone import (
    caches_features,
    fit_and_predict,
    log_skipped,
    log_training,
    open_run,
    resolve_backbone,
)
from kerasft.recipes._stages import build_and_compile, with_unfreeze
from kerasft.recipes.config import resolve_config
from kerasft.recipes.configs import VideoClassificationConfig  # noqa: F401

__all__ = ["VideoClassificationConfig", "video_classification"]


def video_classification(config=None, *, overwrite=False, callbacks=None, **kwargs):
    """Trains a video classifier on class-per-folder clips.

    Args:
        config: a `VideoClassificationConfig`, a dict, or a path to a
            JSON/YAML file. Defaults to `None` (keyword arguments only).
        overwrite: replace another run's outputs in `output_dir`.
            Defaults to `False`.
        callbacks: extra Keras callbacks for `fit`. Defaults to `None`.
        **kwargs: `VideoClassificationConfig` fields, overriding `config`.

    Returns:
        A `RecipeResult` with `.model`, `.history`, `.metrics`
        (`val_accuracy`, `val_top5_accuracy` with more than 5 classes,
        ...), `.output_dir`.

    Example:
    ```python
    result = kerasft.recipes.video_classification(
        train="ucf101/train", validation="ucf101/val", frames=16,
        image_size=112, backbone="mobilenetv2", temporal="gru",
        mode="feature_extraction", epochs=10, output_dir="runs/ucf")
    print(result.metrics["val_accuracy"], result.metrics["val_top5_accuracy"])
    ```
    """
    config = resolve_config(VideoClassificationConfig, config, **kwargs)
    run, image_size = open_run(config, overwrite,
                               "a folder of class folders of clips.")
    if image_size is None:
        return run.completed_result()
    label_mode = classification_label_mode(config)
    train, validation, test = _read_splits(run, config, image_size, label_mode)
    checked_num_classes(config, train, "clips")
    class_names = list(train.class_names)
    skipped = log_skipped(run, train, validation, test, what="clip(s)")
    padded = [f for ds in (train, validation, test) if ds is not None
              for f in ds.padded_files]
    if padded:
        run.log(f"Padded {len(padded)} clip(s) shorter than {config.frames} "
                "frames by repeating their last frame.")

    from kerasft import heads

    with run.strategy.scope():
        backbone = resolve_backbone(config, run.strategy, image_size)
    config = follow_advice(run, backbone, *_frames(train),
                           num_examples=train.num_samples,
                           num_classes=len(class_names))
    changing = "augmentation or random frame windows change the clips"
    on_features = caches_features(run, config, "clips", changing)
    steps = train.steps_per_epoch * config.epochs
    with run.strategy.scope():
        run.reseed()
        head = heads.video_classification(
            len(class_names), frames=config.frames, temporal=config.temporal,
            units=config.temporal_units, hidden_units=tuple(config.head_units),
            dropout=config.dropout, label_mode=label_mode,
        )
        loss = classification_loss(config)
        model = build_and_compile(run, config, backbone, head, loss, steps)
    all_callbacks = with_unfreeze(run, config, backbone, callbacks)
    if _curriculum.pacing_options(config.curriculum) is not None:
        train, picker = curriculum_data(run, config, train, label_mode,
                                        model.loss, per_clip=_per_clip)
        all_callbacks = [picker, *all_callbacks]
    class_weight = resolve_class_weight(config.class_weight, train)
    if config.mode == "feature_extraction" or config.head_epochs:
        from kerasft.recipes._checks import check_frozen_features

        check_frozen_features(backbone, _frames_of(train), run.notice)
    log_training(
        run, f"{backbone.name} per frame + {config.temporal} ({config.mode}) "
        f"on {len(class_names)} classes, {config.frames} frames",
    )
    history, results = fit_and_predict(
        run, config, model, train, {"val_": validation, "test_": test},
        all_callbacks, class_weight, what="per-frame features",
        features=head.frame_features_name if on_features else None,
        metrics=head.metrics,
    )
    metrics = classification_metrics(model, results, class_names)
    matrices = {}
    for prefix, result in results.items():
        if result is None:
            continue
        labels, scores = class_ids(result[0]).reshape(-1), np.asarray(result[1])
        classes = range(len(class_names))
        if len(class_names) > 5:  # with 5 or fewer classes it is always 1.0
            metrics[prefix + "top5_accuracy"] = float(skm.top_k_accuracy_score(
                labels, scores, k=5, labels=classes))
        matrices[prefix.rstrip("_")] = skm.confusion_matrix(
            labels, scores.argmax(axis=-1), labels=classes).tolist()
    if padded:
        metrics["padded_files"] = list(padded)
    shown = results.get("val_") or results.get("test_")
    extra = {"labels.json": class_names, "confusion_matrix.json": matrices}
    return run.finish(
        model, history, metrics, plot=plotter(history, shown, class_names),
        extra_json=extra, skipped_files=skipped,
    )


# === Data ===


def _read_splits(run, config, image_size, label_mode):
    """`(train, validation, test)` `video_folder` datasets (`None` where not
    given), subset before decoding; with a curriculum the training clips
    are read in order, unaugmented (`curriculum_data` picks them)."""
    from kerasft.data import video_folder

    curriculum = _curriculum.pacing_options(config.curriculum) is not None
    read = dict(
        frames=config.frames, image_size=image_size,
        batch_size=run.global_batch, sampling=config.sampling,
        seed=config.seed, epoch=run.epoch_variable, label_mode=label_mode,
    )
    augment, mix = split_mixing(config.augment, seed=config.seed)
    if curriculum:
        augment = mix = None
    split = config.validation_split if config.validation is None else None
    train = video_folder(config.train, validation_split=split or None,
                         subset="both" if split else None,
                         select=_subset(run, "training"), augment=augment,
                         mix=mix, shuffle=not curriculum, **read)

    def other(folder, what):
        if folder is None:
            return None
        return video_folder(folder, class_names=train.class_names,
                            shuffle=False, select=_subset(run, what), **read)

    if split:
        train, validation = train
    else:
        validation = other(config.validation, "validation")
    return train, validation, other(config.test, "test")


def _subset(run, what):
    """`video_folder`'s `select`: the stratified `max_train_samples` (the
    training part) / `max_eval_samples` (held out, validation, test) subset
    of the listed clips, logged."""
    from kerasft.recipes._subsets import log_subset, subset_indices

    config = run.config

    def select(labels, part):
        name = what if part == "training" else "validation"  # held out of train
        train = name == "training"
        k = config.max_train_samples if train else config.max_eval_samples
        keep = subset_indices(labels, k, config.seed)
        log_subset(run, f"{name} clips", len(labels), len(keep))
        return keep

    return select


def _per_clip(augment, mix):
    """The curriculum's augmentation and mixing, clip-wise (one transform,
    one blend weight or box per clip)."""
    from kerasft.augment import ImageAugmentation
    from kerasft.data.video_folder import (
        ClipAugmentation,
        ClipMixing,
        _resolve_augment,
    )

    augment = _resolve_augment(augment)
    if isinstance(augment, ImageAugmentation):
        augment = ClipAugmentation(augment)
    return augment, None if mix is None else ClipMixing(mix)


def _frames_of(clips):
    """The clips' frames as one image batch (for per-frame checks)."""
    return clips.map(lambda x, y: (
        tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], 0)), y
    ))


def _frames(train, per_clip=4):
    """`(frames, labels)` for `kerasft.advise`, which measures the image
    backbone frame by frame: `per_clip` evenly spaced frames of the first
    clips, each with its clip's class."""
    import numpy as np

    def classes(targets):  # one-hot or integer labels
        targets = np.asarray(targets)
        return targets.argmax(-1) if targets.ndim > 1 else targets

    clips, labels = sample(train, classes, MAX_SAMPLES // per_clip)
    picked = np.linspace(0, clips.shape[1] - 1, per_clip).round().astype(int)
    frames = clips[:, picked].reshape(-1, *clips.shape[2:])
    return frames, np.repeat(labels, len(picked))
