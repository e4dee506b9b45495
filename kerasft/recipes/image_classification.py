"""`image_classification`: fine-tune an image backbone on labelled images,
in one of the freezing modes of `kerasft.recipes._stages`, in one resumable
`fit`; with `max_train_samples` / `max_eval_samples` and `curriculum`."""

from kerasft.recipes import _curriculum, _data, _stages
from kerasft.recipes._classification import (
    checked_num_classes,
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
    channels,
    fit_and_predict,
    log_skipped,
    log_training,
    open_run,
    resolve_backbone,
)
from kerasft.recipes.config import resolve_config
from kerasft.recipes.configs import (  # noqa: F401 (re-exported)
    ImageClassificationConfig,
)


def image_classification(config=None, *, overwrite=False, callbacks=None, **kwargs):
    """Fine-tunes an image backbone (EfficientNetB0 by default) for classes.

    Args:
        config: an `ImageClassificationConfig`, a dict, or a path to a
            JSON/YAML file. Defaults to `None` (keyword arguments only).
        overwrite: replace another run's outputs in `output_dir`.
            Defaults to `False`.
        callbacks: extra Keras callbacks for `fit`. Defaults to `None`.
        **kwargs: `ImageClassificationConfig` fields, overriding `config`.

    Returns:
        A `RecipeResult` with `.model`, `.history`, `.metrics`,
        `.output_dir`.

    Example:
    ```python
    result = kerasft.recipes.image_classification(
        train="flowers/train", validation="flowers/val",
        backbone="efficientnetb0", epochs=10, output_dir="runs/flowers")
    print(result.metrics["val_accuracy"])
    ```
    """
    config = resolve_config(ImageClassificationConfig, config, **kwargs)
    return run_image_classification(config, overwrite, callbacks)


def run_image_classification(config, overwrite=False, callbacks=None):
    """Runs an `ImageClassificationConfig` (the recipes' shared body)."""
    run, image_size = open_run(config, overwrite, "the training images.")
    if image_size is None:
        return run.completed_result()
    if config.mode == "auto":
        from kerasft.advisor.recipe import follow_advice_on_images

        config = follow_advice_on_images(run, config, image_size)
    on_features = caches_features(run, config)
    label_mode = classification_label_mode(config)
    curriculum = _curriculum.pacing_options(config.curriculum) is not None
    # A curriculum reads the training images in order, then picks them per
    # epoch. Else shuffled even for cached features: a model that cannot be
    # split at the backbone trains end to end on this very dataset.
    augment, mix = split_mixing(config.augment, config.seed)
    if curriculum:
        augment = mix = None
    train, validation, test = read_splits(
        run, config, image_size, label_mode, augment, not curriculum, mix
    )
    num_classes = checked_num_classes(config, train)
    class_names = list(train.class_names)
    skipped = log_skipped(run, train, validation, test)

    from kerasft import heads

    loss = classification_loss(config)
    # Batches of the whole run (a curriculum's epochs are as long), or None.
    steps = getattr(train, "steps_per_epoch", None)
    if isinstance(steps, int) and steps > 0:
        steps *= config.epochs
    else:
        steps = None
    with run.strategy.scope():
        backbone = resolve_backbone(config, run.strategy, image_size)
        run.reseed()  # the head starts the same however the backbone was made
        head = heads.classification(
            num_classes, hidden_units=tuple(config.head_units),
            dropout=config.dropout, label_mode=label_mode,
        )
        model = _stages.build_and_compile(
            run, config, backbone, head, loss=loss, total_steps=steps
        )

    all_callbacks = _stages.with_unfreeze(run, config, backbone, callbacks)
    if curriculum:
        train, picker = curriculum_data(
            run, config, train, label_mode, model.loss
        )
        all_callbacks = [picker, *all_callbacks]
    if config.mode == "feature_extraction" or config.head_epochs:
        from kerasft.recipes._checks import check_frozen_features

        check_frozen_features(backbone, train, run.notice)
    class_weight = resolve_class_weight(config.class_weight, train)
    log_training(
        run, f"{backbone.name} ({config.mode}) on {num_classes} classes"
    )
    history, results = fit_and_predict(
        run, config, model, train, {"val_": validation, "test_": test},
        all_callbacks, class_weight, features=backbone if on_features else None,
        loss=loss, metrics=head.compile_kwargs()["metrics"],
    )
    metrics = classification_metrics(model, results, class_names)
    shown = results.get("val_") or results.get("test_")
    return run.finish(
        model, history, metrics, plot=plotter(history, shown, class_names),
        extra_json={"labels.json": class_names}, skipped_files=skipped,
    )


def read_splits(
    run, config, image_size, label_mode, augment, shuffle_train, mix=None
):
    """`(train, validation, test)` `kerasft.data` datasets (`None` where
    not given); `validation_split` holds validation out of `train` (not
    of `tfds:` names or datasets: `_data.images` says so in the log); only
    the training part is augmented and mixed (`mix`: MixUp/CutMix)."""
    read = dict(run=run, image_size=(image_size, image_size),
                channels=channels(config.backbone), label_mode=label_mode)
    validation_split = (
        config.validation_split if config.validation is None else None
    )
    train = _data.images(
        config.train, augment=augment, mix=mix, shuffle=shuffle_train,
        num_classes=config.num_classes, validation_split=validation_split,
        max_samples=config.max_train_samples,
        max_held_out=config.max_eval_samples, **read,
    )

    def held_out(split):
        return _data.images(
            getattr(config, split), class_names=train.class_names,
            default_split=split, what=split.capitalize(),
            max_samples=config.max_eval_samples, **read,
        )

    if validation_split:
        train, validation = train  # validation is None for tfds/datasets
    else:
        validation = held_out("validation")
    return train, validation, held_out("test")
