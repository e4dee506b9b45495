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
"""

import dataclasses
import os
import typing

import keras
import numpy as np
import tensorflow as tf

from kerasft.recipes import _data
from kerasft.recipes._runner import Run, predictions, prefixed
from kerasft.recipes.config import RecipeConfig, field, resolve_config

MODES = ("feature_extraction", "partial", "progressive", "full")

# Smallest input side keras.applications accepts per family.
_MIN_SIZE = {"inceptionv3": 75, "inceptionresnetv2": 75, "xception": 71}
_DEFAULT_MIN_SIZE = 32


@dataclasses.dataclass(frozen=True)
class ImageBackboneConfig(RecipeConfig):
    """Options of recipes fine-tuning an image backbone (shared)."""

    train: typing.Any = field(
        None,
        "Training images: a folder with one sub-folder per class, a CSV of "
        "filename,label rows, or tfds:NAME[:SPLIT]. In Python also "
        "(images, labels) arrays or a tf.data.Dataset of (image, label).",
    )
    validation: typing.Any = field(
        None, "Validation data, in the same forms as --train."
    )
    test: typing.Any = field(None, "Test data, in the same forms as --train.")
    backbone: typing.Any = field(
        "efficientnetb0",
        "Backbone: a registry name (see kerasft.backbones.list_backbones), "
        "a saved .keras model, or in Python a kerasft Backbone.",
    )
    weights: typing.Optional[str] = field(
        "imagenet",
        "Backbone weights: imagenet, a weights file path, or none (random).",
    )
    image_size: int = field(224, "Image side in pixels (images are resized).")
    num_classes: typing.Optional[int] = field(
        None, "Number of classes; inferred from the training data if unset."
    )
    mode: str = field(
        "progressive",
        "Fine-tuning strategy: feature_extraction, partial, progressive, full.",
        choices=MODES,
    )
    head_epochs: int = field(
        2, "Epochs training the head alone before any backbone group opens."
    )
    unfreeze_groups: int = field(
        2, "Backbone groups (from the top) opened by partial/progressive."
    )
    fine_tune_learning_rate: float = field(
        1e-4, "Base learning rate once backbone groups train."
    )
    layer_decay: typing.Optional[float] = field(
        None,
        "Layer-wise learning-rate decay in (0, 1]: backbone group i from the "
        "top trains at rate x decay**i (kerasft.optimizers.LayerwiseLR).",
    )
    dropout: float = field(0.2, "Dropout before each Dense layer of the head.")
    train_batchnorm: bool = field(
        False, "Let BatchNorm layers of opened groups train (rarely wanted)."
    )

    def _validate(self):
        super()._validate()
        if self.mode != "feature_extraction":
            needed = self.head_epochs + (2 if self.mode == "progressive" else 1)
            if self.epochs < needed:
                raise ValueError(
                    f"mode={self.mode!r} with head_epochs={self.head_epochs} "
                    f"needs epochs >= {needed} so that backbone groups open. "
                    f"Received: epochs={self.epochs}"
                )
        if not isinstance(self.image_size, int) or self.image_size < 1:
            raise ValueError(
                "`image_size` must be a positive integer. Received: "
                f"image_size={self.image_size!r}"
            )
        if self.num_classes is not None and (
            not isinstance(self.num_classes, int) or self.num_classes < 1
        ):
            raise ValueError(
                "`num_classes` must be a positive integer. Received: "
                f"num_classes={self.num_classes!r}"
            )
        if self.layer_decay is not None and not 0 < self.layer_decay <= 1:
            raise ValueError(
                "`layer_decay` must be in (0, 1]. Received: "
                f"layer_decay={self.layer_decay!r}"
            )


@dataclasses.dataclass(frozen=True)
class ImageClassificationConfig(ImageBackboneConfig):
    """Options of the image classification recipes."""

    validation_split: float = field(
        0.0,
        "Fraction of --train held out for validation when --validation is "
        "not given.",
    )
    head_units: tuple = field(
        (), "Hidden Dense layer sizes of the head, e.g. 1024 or 512,128."
    )
    augment: typing.Optional[dict] = field(
        None,
        "ImageDataGenerator-style augmentation as JSON, e.g. "
        '\'{"rotation_range": 20, "horizontal_flip": true}\'.',
    )

    def _validate(self):
        super()._validate()
        if not 0 <= self.validation_split < 1:
            raise ValueError(
                "`validation_split` must be in [0, 1). Received: "
                f"validation_split={self.validation_split!r}"
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


# === The run ===


def run_image_classification(config, overwrite=False, callbacks=None):
    """Runs an `ImageClassificationConfig` (the recipes' shared body)."""
    run = Run(config, overwrite)
    if run.state == "complete":
        return run.completed_result()
    image_size = check_backbone(config.backbone, config.image_size)
    size = (image_size, image_size)
    channels = _channels(config.backbone)

    train = _data.image_source(config.train, size, channels=channels)
    if train is None:
        raise ValueError("`train` is required: the training images.")
    validation = _data.image_source(
        config.validation, size, train.class_names, "validation", channels
    )
    if validation is None and config.validation_split:
        train, validation = _data.split(train, config.validation_split, config.seed)
    test = _data.image_source(
        config.test, size, train.class_names, "test", channels
    )
    num_classes = _num_classes(config, train)
    for source, what in ((train, "Training"), (validation, "Validation"), (test, "Test")):
        _data.check_labels(source, num_classes, what)
    class_names = train.class_names or [str(i) for i in range(num_classes)]

    from kerasft import heads
    with run.strategy.scope():
        backbone = resolve_backbone(config, run.strategy, image_size)
        run.reseed()  # the head starts the same however the backbone was made
        head = heads.classification(
            num_classes, hidden_units=tuple(config.head_units), dropout=config.dropout
        )
        model = build_and_compile(run, config, backbone, head)

    all_callbacks = with_unfreeze(run, config, backbone, callbacks)

    train_ds = run.batched(run.shuffled(train))
    if config.augment:
        from kerasft.augment import ImageAugmentation

        augmentation = ImageAugmentation(**config.augment)
        train_ds = train_ds.map(lambda x, y: (augmentation(x, training=True), y))
    val_ds = run.batched(validation.dataset) if validation else None
    test_ds = run.batched(test.dataset) if test else None

    run.log(
        f"Training {backbone.name} ({config.mode}) on {num_classes} classes, "
        f"{run.replicas} replica(s), global batch {run.global_batch}, "
        f"precision {run.policy.name}."
    )
    history = run.fit(model, train_ds, val_ds, all_callbacks)
    metrics = evaluate_classification(model, val_ds, test_ds, class_names)
    return run.finish(
        model,
        history,
        metrics,
        plot=_plotter(model, history, val_ds or test_ds, class_names),
        extra_json={"labels.json": class_names},
    )


def _channels(backbone):
    if hasattr(backbone, "model") and hasattr(backbone, "groups"):
        return int(backbone.model.input_shape[-1] or 3)
    return 3


def _num_classes(config, train):
    if config.num_classes is not None:
        return config.num_classes
    if train.num_classes:
        return train.num_classes
    if train.class_names:
        return len(train.class_names)
    if train.labels is not None and len(train.labels):
        return int(train.labels.max()) + 1
    raise ValueError(
        "`num_classes` could not be inferred from the training data; set it."
    )


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

    known = list(backbones.list_backbones())
    if backbone not in known:
        raise ValueError(
            f"Unknown backbone {backbone!r}. Known backbones: {known}"
        )
    minimum = _MIN_SIZE.get(backbone, _DEFAULT_MIN_SIZE)
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


def build_and_compile(run, config, backbone, head):
    """`build_model`, the first stage's freeze, and `compile`; call it inside
    `run.strategy.scope()`."""
    from kerasft.freezing import freeze
    from kerasft.model import build_model

    model = build_model(backbone, head)
    freeze(
        model,
        backbone,
        "full_freeze" if config.mode == "feature_extraction" else "progressive",
        train_batchnorm=config.train_batchnorm,
    )
    model.compile(
        optimizer=make_optimizer(run, config, backbone), **head.compile_kwargs()
    )
    return model


def with_unfreeze(run, config, backbone, callbacks):
    """The user's callbacks with the mode's `ProgressiveUnfreeze` first."""
    unfreeze = unfreeze_callback(run, config, backbone)
    return ([unfreeze] if unfreeze is not None else []) + list(callbacks or [])


def make_optimizer(run, config, backbone):
    """Adam at the scaled head rate, in `LayerwiseLR` when layer decay is on.

    The groups come from the backbone itself (plain regexes), not from
    variable tags, so they hold for whatever variables an optimizer rebuilt
    under a strategy sees.
    """
    base = keras.optimizers.Adam(run.scaled_rate(config.learning_rate))
    if config.layer_decay is None:
        return base
    from kerasft.optimizers import LayerwiseLR

    return LayerwiseLR(base, layer_decay=config.layer_decay, groups=backbone)


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


def evaluate_classification(model, val_ds, test_ds, class_names):
    """`val_`/`test_` metrics: Keras's and `kerasft.evaluation`'s."""
    from kerasft import evaluation

    metrics = {}
    for prefix, ds in (("val_", val_ds), ("test_", test_ds)):
        if ds is None:
            continue
        metrics.update(prefixed(model.evaluate(ds, verbose=0, return_dict=True), prefix))
        y_true, y_pred = predictions(model, ds)
        report = evaluation.compute_metrics(
            y_true, y_pred, task="classification", class_names=class_names
        )
        metrics.update(prefixed(report, prefix))
    return metrics


def _plotter(model, history, eval_ds, class_names):
    from kerasft import _io, evaluation

    def plot(directory):
        if history:
            with _io.atomic_path(os.path.join(directory, "training_curves.png")) as tmp:
                evaluation.plot_history(history, tmp)
        if eval_ds is not None:
            y_true, y_pred = predictions(model, eval_ds)
            with _io.atomic_path(os.path.join(directory, "confusion_matrix.png")) as tmp:
                evaluation.plot_confusion_matrix(
                    np.asarray(y_true), np.asarray(y_pred), class_names, tmp
                )

    return plot
