"""`MixUp`: convex combinations of image pairs and of their one-hot labels."""

import keras
import tensorflow as tf

from kerasft.augment import _mixing


@keras.saving.register_keras_serializable(package="kerasft")
class MixUp(_mixing._BatchMixer):
    """MixUp (Zhang et al., 2018) on `(images, one_hot_labels)` batches.

    The mixing is `keras.layers.MixUp`'s (`transform_images`,
    `transform_labels`); what this class adds is why it exists: a call on
    an `(images, labels)` pair, as `dataset.map` passes it (Keras's layer
    takes a `{"images", "labels"}` dict), a clear error for sparse labels,
    and randomness that is a pure function of a `[2]` integer seed tensor
    (`mix(images, labels, seed)`), which `kerasft.data` derives from
    `(seed, epoch, batch)` so a resumed run mixes exactly as the
    uninterrupted one. Keras's `get_random_transformation` only accepts an
    int or a `SeedGenerator` (state that a resume does not restore), so the
    weights and partners are drawn here with stateless ops.

    Each image is blended with a random partner from the same batch:
    `x = lam * x_i + (1 - lam) * x_j`, `y = lam * y_i + (1 - lam) * y_j`,
    with `lam ~ Beta(alpha, alpha)` drawn per image. Labels become soft
    (each row still sums to 1): train with
    `keras.losses.CategoricalCrossentropy()` (not the sparse loss). Use it in
    `tf.data` after batching, e.g. `kerasft.data.image_folder(...,
    label_mode="categorical", mix=MixUp(0.2))` or `dataset.map(MixUp(0.2))`.

    Args:
        alpha: Beta distribution parameter (> 0); small values mix little.
            Defaults to `0.2`.
        seed: integer seed for reproducible mixing. Defaults to `None`.

    Example:
    ```python
    images = np.random.uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    labels = keras.utils.to_categorical(np.arange(8) % 2, 2)
    mixed_images, soft_labels = MixUp(alpha=0.2, seed=0)(images, labels)
    ```
    """

    def __init__(self, alpha=0.2, seed=None):
        super().__init__(alpha, seed)
        # float32 whatever the global policy: augmentation runs in tf.data.
        self._layer = keras.layers.MixUp(alpha=self.alpha, dtype="float32")

    def mix(self, images, labels, seed):
        """Stateless MixUp with a `[2]` int `seed`; returns `(images, labels)`."""
        labels = _mixing.check_labels(labels, "MixUp")
        images = tf.cast(images, tf.float32)
        seed = tf.convert_to_tensor(seed)
        seeds = tf.random.experimental.stateless_split(seed, 2)
        batch = tf.shape(images)[0]
        transformation = {
            "mix_weight": _mixing.sample_beta(self.alpha, [batch], seeds[0]),
            "permutation_order": _mixing.partner_permutation(batch, seeds[1]),
        }
        return (
            self._layer.transform_images(images, transformation),
            self._layer.transform_labels(labels, transformation),
        )
