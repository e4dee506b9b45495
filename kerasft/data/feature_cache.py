"""`cache_features`: run a frozen backbone once, train the head on its features."""

import dataclasses

import numpy as np
import tensorflow as tf

from kerasft.data import _pipeline


@dataclasses.dataclass(frozen=True)
class CachedFeatures:
    """Features of a frozen backbone, ready for head training.

    Attributes:
        dataset: `tf.data.Dataset` of `(features, labels)` batches (plus
            sample weights when the source had them).
        feature_shape: shape of one feature tensor (the head's input).
        num_samples: number of cached samples.
        batch_size: the batch size of `dataset`.
    """

    dataset: tf.data.Dataset
    feature_shape: tuple
    num_samples: int
    batch_size: int


def cache_features(
    backbone,
    data,
    cache=True,
    batch_size=None,
    shuffle=True,
    seed=None,
    preprocess=None,
    epoch=None,
):
    """Runs a frozen backbone once over `data`; returns its features.

    The tutorial's feature-extraction recipe re-runs the frozen backbone on
    every image in every epoch; its output never changes, so computing it
    once and training the head on the stored features is exact and many
    times faster. The head is any Keras model or layer stack taking the
    feature tensor (`feature_shape`); afterwards the full model is
    `inputs -> preprocessing -> backbone(training=False) -> head`, e.g.
    `kerasft.build_model(backbone, head)` with the trained head's weights.

    Augmentation cannot be combined with the cache: augmented images
    change every epoch, so cached features would freeze one augmented view.
    `data` built with `augment=` or `mix=` is therefore an error; train
    end-to-end (backbone frozen) without the cache instead.

    Args:
        backbone: a `kerasft.backbones.Backbone` (its `.model` is run on
            `backbone.preprocess(images)`), a Keras model/layer, or any
            callable from an image batch to features. Run with
            `training=False` when it accepts it.
        data: a dataset from `kerasft.data` (`image_folder`,
            `image_arrays`, `tfds`; not augmented) or any `tf.data` dataset
            of `(images, labels)` or `(images, labels, weights)` batches.
        cache: `True` keeps the features in memory (numpy); a string
            writes them to that `tf.data` cache file. Defaults to `True`.
        batch_size: batch size of the feature dataset. Defaults to `None`
            (the source's batch size).
        shuffle: reshuffle the features every epoch. Defaults to `True`.
        seed: shuffle seed. Defaults to `None`.
        preprocess: callable applied to images before the backbone;
            overrides a `Backbone`'s own. Defaults to `None`.
        epoch: a `tf.Variable` holding the epoch number: the shuffle order
            of epoch `e` is then a pure function of `(seed, e)`, as in
            `image_folder`, so a resumed run repeats. Defaults to `None`.

    Returns:
        A `CachedFeatures` (`.dataset`, `.feature_shape`, `.num_samples`).

    Example:
    ```python
    backbone = kerasft.backbones.get("mobilenetv2", input_shape=(96, 96, 3))
    data = kerasft.data.image_folder("photos/", (96, 96), 32)
    feats = cache_features(backbone, data, seed=0)
    head = keras.Sequential([keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(data.num_classes)])
    head.compile("adam", keras.losses.SparseCategoricalCrossentropy(True))
    head.fit(feats.dataset, epochs=10)
    ```
    """
    model, preprocess = _resolve_backbone(backbone, preprocess)
    if _pipeline.has_info(data):
        if data.augment is not None or data.mix is not None:
            raise ValueError(
                "Feature caching runs the backbone once, but this data is "
                "augmented (augment=/mix=), so its images change every "
                "epoch and cached features would freeze one augmented view. "
                "Build the data without `augment`/`mix` to train the head on "
                "cached features, or keep augmentation and train without "
                "the cache."
            )
        if batch_size is None:
            batch_size = data.batch_size
        dataset = data
    elif isinstance(data, tf.data.Dataset):
        dataset = data
    else:
        raise TypeError(
            "`data` must be a kerasft.data dataset or a tf.data.Dataset of "
            f"(images, labels) batches. Received: {type(data).__name__}"
        )
    if cache is not True and not isinstance(cache, str):
        raise TypeError(
            "`cache` must be True (memory) or a file path. "
            f"Received: cache={cache!r}"
        )

    spec = dataset.element_spec
    image_spec = spec[0] if isinstance(spec, (tuple, list)) else None
    extract = _extractor(model, preprocess, image_spec)

    def batches():
        for element in dataset:
            if not isinstance(element, (tuple, list)) or len(element) < 2:
                raise ValueError(
                    "`data` must yield (images, labels) or (images, labels, "
                    "weights) batches."
                )
            images, rest = element[0], tuple(element[1:])
            yield (extract(images),) + rest

    # Labels may be nested (a dict per output): handled as flat lists.
    if cache is True:
        parts, structure = None, None
        for element in batches():
            if parts is None:
                structure = element
                parts = [[] for _ in tf.nest.flatten(element)]
                if batch_size is None:
                    batch_size = int(element[0].shape[0])
            for store, value in zip(parts, tf.nest.flatten(element)):
                store.append(np.asarray(value))
        if parts is None:
            raise ValueError("`data` yielded no batches.")
        arrays = tf.nest.pack_sequence_as(
            structure, [np.concatenate(p, axis=0) for p in parts]
        )
        num_samples = len(arrays[0])
        feature_shape = tuple(arrays[0].shape[1:])
        ds = tf.data.Dataset.from_tensor_slices(arrays)
    else:
        first = next(iter(batches()), None)
        if first is None:
            raise ValueError("`data` yielded no batches.")
        if batch_size is None:
            batch_size = int(first[0].shape[0])
        signature = tf.nest.map_structure(
            lambda v: tf.TensorSpec(
                [None] + list(np.shape(v)[1:]), tf.as_dtype(np.asarray(v).dtype)
            ),
            first,
        )
        ds = tf.data.Dataset.from_generator(
            lambda: (tf.nest.map_structure(np.asarray, e) for e in batches()),
            output_signature=signature,
        )
        ds = ds.unbatch().cache(cache)
        num_samples = 0
        for _ in ds:  # one pass writes the cache file
            num_samples += 1
        feature_shape = tuple(first[0].shape[1:])
    # On disk the shuffle buffer is bounded: the features may not fit RAM.
    buffer = num_samples if cache is True else min(num_samples, 8192)
    ds = _batches(ds, buffer, num_samples, batch_size, shuffle, seed, epoch)
    return CachedFeatures(
        dataset=ds,
        feature_shape=feature_shape,
        num_samples=num_samples,
        batch_size=batch_size,
    )


def _batches(ds, buffer, num_samples, batch_size, shuffle, seed, epoch):
    """Batches, reshuffled per epoch from a stateless `(seed, epoch)` seed."""
    steps = -(-num_samples // batch_size)
    features = ds
    if not shuffle:
        ds = features.batch(batch_size)
    else:
        ds = _pipeline.epoch_seeds(seed, epoch).flat_map(
            lambda epoch_seed: _pipeline.shuffled(
                features, buffer, epoch_seed
            ).batch(batch_size)
        )
    # Known to `fit` (a file cache read back has no cardinality of its own).
    ds = ds.apply(tf.data.experimental.assert_cardinality(steps))
    return ds.prefetch(tf.data.AUTOTUNE)


def _resolve_backbone(backbone, preprocess):
    model = getattr(backbone, "model", None)
    if model is not None and hasattr(backbone, "groups"):
        if preprocess is None:
            preprocess = backbone.preprocess
        return model, preprocess
    if not callable(backbone):
        raise TypeError(
            "`backbone` must be a kerasft Backbone, a Keras model or a "
            f"callable. Received: {backbone!r}"
        )
    return backbone, preprocess


def _extractor(model, preprocess, image_spec):
    import keras

    takes_training = isinstance(model, keras.layers.Layer)
    signature = None
    if isinstance(image_spec, tf.TensorSpec) and image_spec.shape.rank:
        # One trace for every batch, the last partial one included.
        signature = [
            tf.TensorSpec([None] + image_spec.shape.as_list()[1:],
                          image_spec.dtype)
        ]

    @tf.function(input_signature=signature, reduce_retracing=True)
    def extract(images):
        images = tf.cast(images, tf.float32)
        if preprocess is not None:
            images = preprocess(images)
        if takes_training:
            return model(images, training=False)
        return model(images)

    return extract
