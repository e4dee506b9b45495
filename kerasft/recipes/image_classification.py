"""`image_classification`: fine-tune an image backbone on labelled images.

The run, in `strategy.scope()` under the chosen precision policy:
backbone (+ its preprocessing inside the model) -> classification head ->
`kerasft.freeze` (BatchNorm stays in inference mode) -> Adam (wrapped in
`LayerwiseLR` when `layer_decay` is set) -> `fit` with `ProgressiveUnfreeze`
opening backbone groups at the stage epochs and lowering the rate, resumable
from `output_dir/backup` -> metrics, plots and `model.keras`.

Modes (`mode=`), the tutorial's four strategies done right:

- `"feature_extraction"`: the backbone stays frozen; only the head trains.
- `"partial"`: head only for `head_epochs`, then the top `unfreeze_groups`
  backbone groups train too at `fine_tune_learning_rate`.
- `"progressive"`: head only, then the top `unfreeze_groups` groups at
  `fine_tune_learning_rate`, then every group at a tenth of it.
- `"full"`: head only for `head_epochs`, then everything at
  `fine_tune_learning_rate` (`head_epochs=0`: everything from the start).

Options from `docs/data_strategies.md`: stratified `max_train_samples` /
`max_eval_samples` (chosen from the file list or arrays before decoding),
and `curriculum` with `difficulty` (the easiest images first).
"""

import os

import keras
import numpy as np
import tensorflow as tf

from kerasft.recipes import _curriculum, _data
from kerasft.recipes._runner import Run, prefixed
from kerasft.recipes.config import resolve_config
from kerasft.recipes.configs import (  # noqa: F401 (re-exported)
    MODES,
    ImageBackboneConfig,
    ImageClassificationConfig,
)

# In-memory feature caches above this size go to disk (`feature_cache="auto"`).
_MEMORY_FEATURES_BYTES = 2 << 30


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


# === The run ===


def run_image_classification(config, overwrite=False, callbacks=None):
    """Runs an `ImageClassificationConfig` (the recipes' shared body)."""
    run = Run(config, overwrite)
    if run.state == "complete":
        return run.completed_result()
    image_size = check_backbone(config.backbone, config.image_size)
    if config.train is None:
        raise ValueError("`train` is required: the training images.")
    if config.mode == "auto":
        from kerasft.advisor.recipe import follow_advice

        config = follow_advice(run, config, image_size)
    on_features = _caches_features(run, config)
    label_mode = classification_label_mode(config)
    curriculum = _curriculum.pacing_options(config.curriculum) is not None
    # Shuffled either way: if the model cannot be split at the backbone,
    # the end-to-end fallback trains on this very dataset. A curriculum
    # reads the training images in order, then picks them per epoch.
    train, validation, test = read_splits(
        run, config, image_size, label_mode,
        augment=None if curriculum else config.augment,
        shuffle_train=not curriculum,
    )
    num_classes = _num_classes(config, train)
    class_names = list(train.class_names)
    skipped = _data.skipped_files(train, validation, test)
    if skipped:
        run.log(f"Skipped {len(skipped)} unreadable image file(s): "
                f"{', '.join(skipped[:5])}{', ...' if len(skipped) > 5 else ''}")

    from kerasft import heads
    with run.strategy.scope():
        backbone = resolve_backbone(config, run.strategy, image_size)
        run.reseed()  # the head starts the same however the backbone was made
        head = heads.classification(
            num_classes, hidden_units=tuple(config.head_units),
            dropout=config.dropout, label_mode=label_mode,
        )
        model = build_and_compile(
            run, config, backbone, head, loss=classification_loss(config)
        )

    all_callbacks = with_unfreeze(run, config, backbone, callbacks)
    if curriculum:
        train, picker = _curriculum_data(
            run, config, train, label_mode,
            classification_loss(config) or head.compile_kwargs()["loss"],
        )
        all_callbacks = [picker, *all_callbacks]
    if config.mode == "feature_extraction" or config.head_epochs:
        from kerasft.recipes._checks import check_frozen_features

        check_frozen_features(backbone, train, run.notice)
    class_weight = resolve_class_weight(config.class_weight, train)
    run.log(
        f"Training {backbone.name} ({config.mode}) on {num_classes} classes, "
        f"{run.replicas} replica(s), global batch {run.global_batch}, "
        f"precision {run.policy.name}."
    )
    splits = {"val_": validation, "test_": test}
    if on_features:
        trained = fit_on_features(
            run, config, model, backbone, train, splits, all_callbacks,
            class_weight, loss=classification_loss(config),
            metrics=head.compile_kwargs()["metrics"],
        )
    else:
        trained = None
    if trained is None:
        history = run.fit(
            model, train, validation, all_callbacks, class_weight=class_weight
        )
        results = {p: predict(model, ds) for p, ds in splits.items()}
    else:
        history, results = trained
    metrics = classification_metrics(model, results, class_names)
    shown = results.get("val_") or results.get("test_")
    return run.finish(
        model,
        history,
        metrics,
        plot=_plotter(history, shown, class_names),
        extra_json={"labels.json": class_names},
        skipped_files=skipped,
    )


def _curriculum_data(run, config, train, label_mode, loss):
    """`(training dataset, Curriculum)` of `curriculum=`: the training
    images (read in order) ranked by `difficulty`, each epoch the easiest
    fraction the pacing allows."""
    x, y = _data.decoded(train)
    targets = keras.ops.convert_to_numpy(
        keras.ops.one_hot(y, len(train.class_names))
    ) if label_mode == "categorical" else y
    scores = _curriculum.difficulty_scores(run, config, (x, y), x, targets,
                                           loss)
    picker = _curriculum.curriculum_callback(run, config, scores)
    return _data.curriculum_images(
        picker, x, y, train, run, config.augment, label_mode
    ), picker


def _splittable(value):
    """Whether `validation_split` can hold data out of `value` (a folder,
    a CSV or arrays; not `tfds:` names or datasets)."""
    if isinstance(value, tuple):
        return True
    return isinstance(value, (str, os.PathLike)) and not os.fspath(
        value
    ).startswith("tfds:")


def read_splits(run, config, image_size, label_mode, augment=None,
                shuffle_train=True):
    """`(train, validation, test)` `kerasft.data` datasets (`None` where
    not given); `validation_split` holds validation out of `train`."""
    read = dict(run=run, image_size=(image_size, image_size),
                channels=_channels(config.backbone), label_mode=label_mode)
    validation_split = None
    if config.validation is None and getattr(config, "validation_split", 0):
        if _splittable(config.train):
            validation_split = config.validation_split
        else:
            run.log(
                "No validation data: validation_split needs a folder, a CSV "
                "or arrays as train; pass validation data to hold some out."
            )
    max_eval = config.max_eval_samples
    train = _data.images(
        config.train, augment=augment, shuffle=shuffle_train,
        num_classes=config.num_classes, validation_split=validation_split,
        max_samples=config.max_train_samples,
        max_held_out=max_eval, **read,
    )
    if validation_split:
        train, validation = train
    else:
        validation = _data.images(
            config.validation, class_names=train.class_names,
            default_split="validation", what="Validation",
            max_samples=max_eval, **read,
        )
    test = _data.images(
        config.test, class_names=train.class_names, default_split="test",
        what="Test", max_samples=max_eval, **read,
    )
    return train, validation, test


def predict(model, ds):
    """`(y_true, y_pred)` of one pass over `ds` (`None` for no data)."""
    if ds is None:
        return None
    from kerasft.evaluation import collect_predictions

    return collect_predictions(model, ds)


# === Imbalanced data ===


def classification_label_mode(config):
    """One-hot labels where the loss needs them (smoothing, focal)."""
    if config.loss == "focal" or config.label_smoothing:
        return "categorical"
    return "int"


def classification_loss(config):
    """The configured loss, or `None` for the head's own."""
    if config.loss == "focal":
        return keras.losses.CategoricalFocalCrossentropy(
            label_smoothing=config.label_smoothing
        )
    if config.label_smoothing:
        return keras.losses.CategoricalCrossentropy(
            label_smoothing=config.label_smoothing
        )
    return None


def resolve_class_weight(value, train):
    """`fit`'s `class_weight` dict from the config's `class_weight`.

    `"balanced"` uses scikit-learn's `compute_class_weight` on the training
    labels (`train.class_counts`); a dict (or its JSON) is keyed by class
    name or id, classes it leaves out weigh 1.0.
    """
    if value is None:
        return None
    import json

    from kerasft.data.class_weights import from_labels

    names = list(train.class_names)
    if isinstance(value, str) and value.strip().startswith("{"):
        value = json.loads(value)
    if value == "balanced":
        counts = np.asarray(train.class_counts, "int64")
        return from_labels(
            np.repeat(np.arange(len(counts)), counts), len(counts)
        )
    weights = {i: 1.0 for i in range(len(names))}
    for key, weight in value.items():
        if key in names:
            index = names.index(key)
        elif str(key).lstrip("-").isdigit() and 0 <= int(key) < len(names):
            index = int(key)
        else:
            raise ValueError(
                f"`class_weight` key {key!r} is neither a class name nor a "
                f"class id. Classes: {names}"
            )
        weights[index] = float(weight)
    return weights


# === Feature caching ===


def _caches_features(run, config):
    """Whether `feature_extraction` trains the head on cached features."""
    if config.mode != "feature_extraction" or config.feature_cache == "off":
        return False
    if _curriculum.pacing_options(config.curriculum) is not None:
        run.log(
            "Features are not cached: a curriculum changes the examples "
            "every epoch, so the frozen backbone runs on every batch."
        )
        return False
    if config.augment:
        run.log(
            "Features are not cached: augmentation changes the images every "
            "epoch, so the frozen backbone runs on every batch."
        )
        return False
    return True


def split_at_backbone(model, backbone):
    """`(features_model, head_model)` sharing `model`'s layers, or `None`.

    `features_model` maps raw images to the backbone's features (the
    preprocessing and the frozen backbone); `head_model` maps those features
    to the outputs with the very layers of `model`, so training it trains
    `model`'s head.
    """
    layers = model.layers
    nested = model.get_layer(backbone.name)
    after = layers[layers.index(nested) + 1:]
    if not after:
        return None
    features = after[0].input
    if isinstance(features, (list, tuple)) or tuple(features.shape[1:]) != tuple(
        backbone.model.output_shape[1:]
    ):
        return None
    try:
        head_model = keras.Model(features, model.output, name="head_on_features")
    except ValueError:
        return None  # the head reads more than the backbone features
    return keras.Model(model.inputs, features, name="features"), head_model


def fit_on_features(run, config, model, backbone, train, splits, callbacks,
                    class_weight, loss=None, metrics=None, loss_weights=None):
    """Runs the frozen backbone once per split, trains the head on features.

    Returns `(history, {prefix: (y_true, y_pred)})`, or `None` when the
    model cannot be split at the backbone (then train end to end).
    """
    from kerasft.data import cache_features

    with run.strategy.scope():  # the models fit/predict under the strategy
        parts = split_at_backbone(model, backbone)
    if parts is None:
        run.log("Features are not cached: the head does not read the "
                "backbone's output alone.")
        return None
    features_model, head_model = parts
    where = _feature_cache_place(run, config, train, features_model)
    run.log(f"Caching backbone features ({where}); the backbone runs once "
            "per split.")
    cache_dir = os.path.join(run.backup_dir, "features")
    if where == "disk":
        import shutil

        shutil.rmtree(cache_dir, ignore_errors=True)  # a killed run's partial files
        os.makedirs(cache_dir)

    # One trace of the frozen part serves every split.
    spec = train.element_spec[0]
    extract = tf.function(
        lambda images: features_model(images, training=False),
        input_signature=[tf.TensorSpec([None, *spec.shape[1:]], spec.dtype)],
    )

    def features(ds, name, shuffle):
        if ds is None:
            return None
        cache = True if where == "memory" else os.path.join(cache_dir, name)
        return cache_features(
            extract, ds, cache=cache, shuffle=shuffle,
            seed=config.seed, epoch=run.epoch_variable,
        ).dataset

    train_features = features(train, "train", True)
    split_features = {p: features(ds, p, False) for p, ds in splits.items()}
    with run.strategy.scope():
        head_model.compile(
            optimizer=model.optimizer, loss=loss or model.loss,
            metrics=metrics, loss_weights=loss_weights,
        )
    history = run.fit(
        head_model, train_features, split_features.get("val_"), callbacks,
        class_weight=class_weight,
    )
    results = {p: predict(head_model, ds) for p, ds in split_features.items()}
    return history, results


def _feature_cache_place(run, config, train, features_model):
    place = getattr(config, "feature_cache", "auto")
    if place in ("memory", "disk"):
        return place
    per_sample = int(np.prod(features_model.output_shape[1:])) * 4
    return "memory" if per_sample * train.num_samples <= _MEMORY_FEATURES_BYTES else "disk"


def _channels(backbone):
    if hasattr(backbone, "model") and hasattr(backbone, "groups"):
        return int(backbone.model.input_shape[-1] or 3)
    return 3


def _num_classes(config, train):
    if config.num_classes is not None and config.num_classes != train.num_classes:
        raise ValueError(
            f"`num_classes`={config.num_classes} differs from the "
            f"{train.num_classes} classes of the training data "
            f"({list(train.class_names)})."
        )
    return train.num_classes


def check_backbone(backbone, image_size):
    """Fails fast on an unknown backbone name or a too small image size.

    Returns the image side to use (a `Backbone` fixes its own).
    """
    if hasattr(backbone, "groups") and hasattr(backbone, "model"):
        shape = backbone.model.input_shape
        side = shape[1]
        if side is not None and side != image_size:
            return int(side)
        return image_size
    if not isinstance(backbone, str):
        raise TypeError(
            "`backbone` must be a registry name, a .keras file or a kerasft "
            f"Backbone. Received: backbone={backbone!r}"
        )
    if backbone.endswith(".keras"):
        if not os.path.exists(backbone):
            raise ValueError(f"Backbone file {backbone!r} does not exist.")
        return image_size
    from kerasft import backbones
    from kerasft.backbones import applications

    known = list(backbones.list_backbones())
    if backbone not in known:
        raise ValueError(
            f"Unknown backbone {backbone!r}."
            f"{applications.did_you_mean(backbone, known)} Known backbones: {known}"
        )
    minimum = applications.spec(backbone).min_size
    if image_size < minimum:
        raise ValueError(
            f"`image_size`={image_size} is too small for backbone "
            f"{backbone!r}: it needs at least {minimum}x{minimum} pixels."
        )
    return image_size


def resolve_backbone(config, strategy, image_size):
    """The `Backbone`, with its variables in `strategy`'s scope."""
    from kerasft import backbones

    spec = config.backbone
    if isinstance(spec, str) and spec.endswith(".keras"):
        return backbones.from_model(keras.models.load_model(spec))
    if isinstance(spec, str):
        weights = config.weights
        if isinstance(weights, str) and weights.lower() == "none":
            weights = None
        return backbones.get(
            spec, weights=weights, input_shape=(image_size, image_size, 3)
        )
    return in_scope(spec, strategy)


def in_scope(backbone, strategy):
    """`backbone` itself, or a copy whose variables live in `strategy`.

    A Backbone built outside a non-default strategy's scope has plain
    variables; the copy keeps layer names (hence groups) and weights.
    """
    weights = backbone.model.weights
    if not weights or not tf.distribute.has_strategy():
        return backbone
    variable = getattr(weights[0], "value", weights[0])
    if strategy.extended.variable_created_in_scope(variable):
        return backbone
    from kerasft.backbones.backbone import Backbone

    clone = keras.models.clone_model(backbone.model)
    clone.set_weights(backbone.model.get_weights())
    return Backbone(
        clone,
        backbone.preprocess,
        backbone.groups,
        backbone.name,
        preprocess_mode=backbone.preprocess_mode,
        input_range=backbone.input_range,
        task=backbone.task,
        tokenizer=backbone.tokenizer,
    )


def build_and_compile(run, config, backbone, head, loss=None):
    """`build_model`, the first stage's freeze, and `compile` (with `loss`
    instead of the head's when given); call it inside
    `run.strategy.scope()`."""
    from kerasft.freezing import freeze
    from kerasft.model import build_model

    model = build_model(backbone, head, remat=config.gradient_checkpointing)
    freeze(
        model,
        backbone,
        "full_freeze" if config.mode == "feature_extraction" else "progressive",
        train_batchnorm=config.train_batchnorm,
    )
    compile_kwargs = head.compile_kwargs()
    if loss is not None:
        compile_kwargs["loss"] = loss
    model.compile(optimizer=run.optimizer(backbone), **compile_kwargs)
    return model


def with_unfreeze(run, config, backbone, callbacks):
    """The user's callbacks with the mode's `ProgressiveUnfreeze` first."""
    unfreeze = unfreeze_callback(run, config, backbone)
    return ([unfreeze] if unfreeze is not None else []) + list(callbacks or [])


def stages(config, num_groups):
    """`(schedule, learning_rates)` of the mode, or `(None, None)`."""
    if config.mode == "feature_extraction":
        return None, None
    h = config.head_epochs
    n = min(config.unfreeze_groups, num_groups)
    ft = config.fine_tune_learning_rate
    schedule, rates = {0: 0}, {0: config.learning_rate}
    if config.mode == "partial":
        schedule[h], rates[h] = n, ft
    elif config.mode == "full":
        schedule[h], rates[h] = "all", ft
    else:  # progressive: top groups, then all at a tenth of the rate
        middle = h + max(1, (config.epochs - h) // 2)
        schedule[h], rates[h] = n, ft
        schedule[middle], rates[middle] = "all", ft / 10
    return schedule, rates


def unfreeze_callback(run, config, backbone):
    schedule, rates = stages(config, len(backbone.groups))
    if schedule is None:
        return None
    from kerasft.callbacks import ProgressiveUnfreeze

    return ProgressiveUnfreeze(
        backbone,
        schedule,
        learning_rates={e: run.scaled_rate(r) for e, r in rates.items()},
        train_batchnorm=config.train_batchnorm,
        verbose=1 if config.verbose else 0,
    )


def classification_metrics(model, results, class_names):
    """`val_`/`test_` metrics, all from one pass of predictions per split.

    `results` maps a prefix to `(y_true, y_pred)` (or `None`); the loss is
    the compiled loss on those predictions, the rest
    `kerasft.evaluation.compute_metrics`.
    """
    from kerasft import evaluation

    metrics = {}
    loss = keras.losses.get(model.loss)
    for prefix, result in results.items():
        if result is None:
            continue
        y_true, y_pred = result
        metrics[prefix + "loss"] = float(keras.ops.convert_to_numpy(
            keras.ops.mean(loss(y_true, y_pred))
        ))
        report = evaluation.compute_metrics(
            _class_ids(y_true), y_pred, task="classification",
            class_names=class_names,
        )
        metrics.update(prefixed(report, prefix))
    return metrics


def _class_ids(y_true):
    y_true = np.asarray(y_true)
    return y_true.argmax(axis=-1) if y_true.ndim == 2 else y_true


def _plotter(history, result, class_names):
    """Training curves, and the confusion matrix of `(y_true, y_pred)`."""
    from kerasft import _io, evaluation

    def plot(directory):
        if history:
            with _io.atomic_path(os.path.join(directory, "training_curves.png")) as tmp:
                evaluation.plot_history(history, tmp)
        if result is not None:
            y_true, y_pred = result
            with _io.atomic_path(os.path.join(directory, "confusion_matrix.png")) as tmp:
                evaluation.plot_confusion_matrix(
                    _class_ids(y_true), np.asarray(y_pred), class_names, tmp
                )

    return plot
