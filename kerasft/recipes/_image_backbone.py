"""The image-backbone glue of the image recipes (classification, detection,
segmentation, video, captioning): checking and building the backbone in
the strategy's scope, and training a head on cached features of a frozen
backbone (`feature_cache`)."""

import os

import keras
import numpy as np
import tensorflow as tf

# In-memory feature caches above this size go to disk (`feature_cache="auto"`).
MEMORY_FEATURES_BYTES = 2 << 30


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


def channels(backbone):
    if hasattr(backbone, "model") and hasattr(backbone, "groups"):
        return int(backbone.model.input_shape[-1] or 3)
    return 3


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
    from kerasft.recipes._classification import predict

    results = {p: predict(head_model, ds) for p, ds in split_features.items()}
    return history, results


def _feature_cache_place(run, config, train, features_model):
    place = getattr(config, "feature_cache", "auto")
    if place in ("memory", "disk"):
        return place
    per_sample = int(np.prod(features_model.output_shape[1:])) * 4
    return "memory" if per_sample * train.num_samples <= MEMORY_FEATURES_BYTES else "disk"
