"""Shared base of the batch-mixing augmentations (MixUp, CutMix)."""

import numbers

import keras
import tensorflow as tf


class _BatchMixer:
    """Callable on `(images, labels)` batches with one-hot labels.

    Subclasses implement `mix(images, labels, seed)` (stateless). Calling the
    object draws a fresh seed from its own generator, so
    `dataset.map(MixUp(...))` mixes differently every batch.
    """

    def __init__(self, alpha, seed=None):
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
            raise TypeError(f"`alpha` must be a number. Received: alpha={alpha!r}")
        if alpha <= 0:
            raise ValueError(f"`alpha` must be > 0. Received: alpha={alpha!r}")
        if seed is not None and not isinstance(seed, numbers.Integral):
            raise TypeError(f"`seed` must be an int or None. Received: seed={seed!r}")
        self.alpha = float(alpha)
        self.seed = seed
        self._generator = None

    def __call__(self, images, labels, *rest):
        if self._generator is None:
            self._generator = keras.random.SeedGenerator(self.seed)
        seed = tf.cast(self._generator.next(), tf.int32)
        return (*self.mix(images, labels, seed), *rest)

    def mix(self, images, labels, seed):
        """Returns `(mixed_images, soft_labels)`; MixUp and CutMix define it."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement `mix(images, labels, seed)`."
        )

    def get_config(self):
        return {"alpha": self.alpha, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"{type(self).__name__}(alpha={self.alpha}, seed={self.seed})"


def check_labels(labels, name):
    labels = tf.convert_to_tensor(labels)
    if labels.shape.rank is not None and labels.shape.rank != 2:
        raise ValueError(
            f"{name} needs one-hot labels of shape [batch, classes] "
            f"(e.g. `image_folder(..., label_mode='categorical')`). "
            f"Received labels of shape {labels.shape}."
        )
    return tf.cast(labels, tf.float32)


def sample_beta(alpha, shape, seed):
    """Beta(alpha, alpha) samples from two stateless gamma draws."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    a = tf.random.stateless_gamma(shape, seeds[0], alpha=alpha)
    b = tf.random.stateless_gamma(shape, seeds[1], alpha=alpha)
    return a / tf.maximum(a + b, 1e-12)


def partner_permutation(batch, seed):
    """A random permutation of the batch: each sample's mixing partner."""
    return tf.argsort(tf.random.stateless_uniform([batch], seed))
