"""`CutMix`: paste a box from a partner image, mix labels by area."""

import keras
import tensorflow as tf

from kerasft.augment import _mixing


@keras.saving.register_keras_serializable(package="kerasft")
class CutMix(_mixing._BatchMixer):
    """CutMix (Yun et al., 2019) on `(images, one_hot_labels)` batches.

    Each image gets a rectangle cut from a random partner in the batch. The
    box has area fraction `1 - lam`, `lam ~ Beta(alpha, alpha)`, a uniformly
    random centre, and is clipped to the image; labels are mixed by the
    area actually pasted, so each row still sums to 1. Train with
    `keras.losses.CategoricalCrossentropy()` on the soft labels.

    The pasting and label mixing are `keras.layers.CutMix`'s
    (`transform_images`, `transform_labels`); the box is drawn here, for
    three reasons. Keras's `get_random_transformation` (Keras 3.15) mixes
    labels by the fractional box area while it pastes whole pixels, so a
    label can be off the pasted area by ~0.15 on 12x12 images (here they
    are equal); it draws `alpha` uniformly in `(0, factor]` for each batch
    instead of using the paper's fixed `alpha` (which may exceed 1); and it
    only takes an int or a `SeedGenerator` seed, while `mix(images, labels,
    seed)` here is a pure function of a `[2]` seed tensor, which
    `kerasft.data` derives from `(seed, epoch, batch)` for exact resume.

    Args:
        alpha: Beta distribution parameter (> 0). Defaults to `1.0`.
        seed: integer seed for reproducible mixing. Defaults to `None`.

    Example:
    ```python
    images = np.random.uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    labels = keras.utils.to_categorical(np.arange(8) % 2, 2)
    mixed_images, soft_labels = CutMix(alpha=1.0, seed=0)(images, labels)
    ```
    """

    def __init__(self, alpha=1.0, seed=None):
        super().__init__(alpha, seed)
        # float32 whatever the global policy: augmentation runs in tf.data.
        self._layer = keras.layers.CutMix(dtype="float32")

    def mix(self, images, labels, seed):
        """Stateless CutMix with a `[2]` int `seed`; returns `(images, labels)`."""
        labels = _mixing.check_labels(labels, "CutMix")
        images = tf.cast(images, tf.float32)
        seed = tf.convert_to_tensor(seed)
        seeds = tf.random.experimental.stateless_split(seed, 3)
        shape = tf.shape(images)
        batch, height, width = shape[0], shape[1], shape[2]
        h = tf.cast(height, tf.float32)
        w = tf.cast(width, tf.float32)
        lam = _mixing.sample_beta(self.alpha, [batch], seeds[0])
        partner = _mixing.partner_permutation(batch, seeds[1])
        centre = tf.random.stateless_uniform([batch, 2], seeds[2])
        cut = tf.sqrt(1.0 - lam)
        cy, cx = centre[:, 0] * h, centre[:, 1] * w
        y0 = tf.clip_by_value(tf.round(cy - cut * h / 2.0), 0.0, h)
        y1 = tf.clip_by_value(tf.round(cy + cut * h / 2.0), 0.0, h)
        x0 = tf.clip_by_value(tf.round(cx - cut * w / 2.0), 0.0, w)
        x1 = tf.clip_by_value(tf.round(cx + cut * w / 2.0), 0.0, w)
        rows = tf.range(h)[None, :]
        cols = tf.range(w)[None, :]
        in_rows = (rows >= y0[:, None]) & (rows < y1[:, None])
        in_cols = (cols >= x0[:, None]) & (cols < x1[:, None])
        box = in_rows[:, :, None] & in_cols[:, None, :]
        transformation = {
            "permutation_order": partner,
            # Keras's layer wants the mask broadcast over channels.
            "batch_masks": box[..., None] & tf.ones_like(images, tf.bool),
            "mix_weight": 1.0 - (y1 - y0) * (x1 - x0) / (h * w),
        }
        return (
            self._layer.transform_images(images, transformation),
            self._layer.transform_labels(labels, transformation),
        )
