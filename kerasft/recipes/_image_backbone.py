"""The image recipes' backbone glue: opening the run, building the backbone
in the strategy's scope, logging skipped files, and training end to end or
the head alone on cached features (`feature_cache`)."""

import copy
import os

import keras
import numpy as np
import tensorflow as tf

# In-memory feature caches above this size go to disk (`feature_cache="auto"`).
MEMORY_FEATURES_BYTES = 2 << 30


def open_run(config, overwrite, train):
    """`(run, image_size)`: the image recipe's `Run`, after the checks every
    one makes first (a known backbone, `train` given: `train` says what it
    must be). `image_size` is `None` when the run is already complete; a
    `Backbone` fixes its own side."""
    from kerasft.recipes._runner import Run

    run = Run(config, overwrite)
    if run.state == "complete":
        return run, None
    backbone, image_size = config.backbone, config.image_size
    if hasattr(backbone, "groups") and hasattr(backbone, "model"):
        side = backbone.model.input_shape[1]
        image_size = image_size if side is None else int(side)
    elif not isinstance(backbone, str):
        raise TypeError(
            "`backbone` must be a registry name, a .keras file or a kerasft "
            f"Backbone. Received: backbone={backbone!r}"
        )
    elif backbone.endswith(".keras"):
        if not os.path.exists(backbone):
            raise ValueError(f"Backbone file {backbone!r} does not exist.")
    else:
        from kerasft import backbones
        from kerasft.backbones import applications

        known = list(backbones.list_backbones())
        if backbone not in known:
            raise ValueError(
                f"Unknown backbone {backbone!r}."
                f"{applications.did_you_mean(backbone, known)} Known "
                f"backbones: {known}"
            )
        minimum = applications.spec(backbone).min_size
        if image_size < minimum:
            raise ValueError(
                f"`image_size`={image_size} is too small for backbone "
                f"{backbone!r}: it needs at least {minimum}x{minimum} pixels."
            )
    if config.train is None:
        raise ValueError(f"`train` is required: {train}")
    return run, image_size


def resolve_backbone(config, strategy, image_size):
    """The `Backbone`, with its variables in `strategy`'s scope: one built
    outside a non-default strategy's scope is copied (same layer names,
    hence groups, and weights)."""
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
    weights = spec.model.weights
    if not weights or not tf.distribute.has_strategy():
        return spec
    variable = getattr(weights[0], "value", weights[0])
    if strategy.extended.variable_created_in_scope(variable):
        return spec
    clone = copy.copy(spec)
    clone.model = keras.models.clone_model(spec.model)
    clone.model.set_weights(spec.model.get_weights())
    return clone


def channels(backbone):
    """The backbone's input channels (3 for registry names and files)."""
    if hasattr(backbone, "model") and hasattr(backbone, "groups"):
        return int(backbone.model.input_shape[-1] or 3)
    return 3


def log_skipped(run, *datasets, what="image file(s)"):
    """The unreadable files the datasets left out, logged (first five)."""
    from kerasft.recipes._data import skipped_files

    skipped = skipped_files(*datasets)
    if skipped:
        run.log(f"Skipped {len(skipped)} unreadable {what}: "
                f"{', '.join(skipped[:5])}{', ...' if len(skipped) > 5 else ''}")
    return skipped


def log_training(run, what):
    """Logs "Training `what`", then replicas, global batch and precision."""
    run.log(f"Training {what}, {run.replicas} replica(s), global batch "
            f"{run.global_batch}, precision {run.policy.name}.")


# === Training: end to end, or the head on cached features ===


def caches_features(run, config, inputs="examples",
                    changing="augmentation changes the images"):
    """Whether `feature_extraction` trains the head on cached features: not
    with `feature_cache="off"`, nor (logged) when the inputs change every
    epoch (a curriculum; `augment`, or video's random frame windows:
    `changing` says what changes them)."""
    from kerasft.recipes import _curriculum

    if config.mode != "feature_extraction" or config.feature_cache == "off":
        return False
    if _curriculum.pacing_options(config.curriculum) is not None:
        why = f"a curriculum changes the {inputs}"
    elif config.augment or getattr(config, "sampling", "uniform") != "uniform":
        why = changing
    else:
        return True
    run.log(f"Features are not cached: {why} every epoch, so the frozen "
            "backbone runs on every batch.")
    return False


def fit_and_predict(run, config, model, train, splits, callbacks,
                    class_weight=None, features=None, what="backbone features",
                    **compile_kwargs):
    """`(history, {prefix: (y_true, y_pred)})`: trains `model`, then
    predicts each split once.

    With `features` (the frozen `Backbone`, or the name of the layer whose
    output the head reads, e.g. a video head's per-frame vectors) the
    frozen part runs once per split and only the head trains, on its cached
    outputs (`feature_cache`; logged as `what`), compiled with
    `compile_kwargs`; a model that cannot be split trains end to end.
    """
    from kerasft.evaluation import collect_predictions

    parts = None
    if features is not None:
        with run.strategy.scope():  # the models fit/predict under the strategy
            parts = split_at_features(model, features)
        if parts is None:
            run.log("Features are not cached: the head does not read the "
                    "backbone's output alone.")
    if parts is not None:
        model, train, splits = _on_cached_features(
            run, config, model, parts, train, splits, what, **compile_kwargs
        )
    history = run.fit(model, train, splits.get("val_"), callbacks,
                      class_weight=class_weight)
    return history, {
        p: None if ds is None else collect_predictions(model, ds)
        for p, ds in splits.items()
    }


def _on_cached_features(run, config, model, parts, train, splits, what,
                        loss=None, **compile_kwargs):
    """`(head_model, train, splits)`: the head compiled like `model`, and
    the datasets of the frozen part's cached outputs."""
    from kerasft.data import cache_features

    features_model, head_model = parts
    where = _feature_cache_place(config, train, features_model)
    run.log(f"Caching {what} ({where}); the backbone runs once per split.")
    cache_dir = os.path.join(run.backup_dir, "features")
    if where == "disk":
        import shutil

        shutil.rmtree(cache_dir, ignore_errors=True)  # a killed run's files
        os.makedirs(cache_dir)

    # One trace of the frozen part serves every split.
    spec = train.element_spec[0]
    extract = tf.function(
        lambda inputs: features_model(inputs, training=False),
        input_signature=[tf.TensorSpec([None, *spec.shape[1:]], spec.dtype)],
    )

    def cached(ds, name, shuffle):
        if ds is None:
            return None
        cache = True if where == "memory" else os.path.join(cache_dir, name)
        return cache_features(
            extract, ds, cache=cache, shuffle=shuffle,
            seed=config.seed, epoch=run.epoch_variable,
        ).dataset

    train = cached(train, "train", True)
    splits = {p: cached(ds, p, False) for p, ds in splits.items()}
    with run.strategy.scope():
        head_model.compile(optimizer=model.optimizer, loss=loss or model.loss,
                           **compile_kwargs)
    return head_model, train, splits


def split_at_features(model, features):
    """`(features_model, head_model)` sharing `model`'s layers, or `None`:
    split at the output of `features` (the frozen `Backbone` or a layer
    name); training `head_model` trains `model`'s head."""
    if isinstance(features, str):
        tensor = model.get_layer(features).output
    else:
        layers = model.layers
        after = layers[layers.index(model.get_layer(features.name)) + 1:]
        if not after:
            return None
        tensor = after[0].input
        want = tuple(features.model.output_shape[1:])
        if isinstance(tensor, (list, tuple)) or tuple(tensor.shape[1:]) != want:
            return None
    try:
        head_model = keras.Model(tensor, model.output, name="head_on_features")
    except ValueError:
        return None  # the head reads more than the backbone features
    return keras.Model(model.inputs, tensor, name="features"), head_model


def _feature_cache_place(config, train, features_model):
    place = getattr(config, "feature_cache", "auto")  # detection: no option
    if place in ("memory", "disk"):
        return place
    per_sample = int(np.prod(features_model.output_shape[1:])) * 4
    fits = per_sample * train.num_samples <= MEMORY_FEATURES_BYTES
    return "memory" if fits else "disk"
