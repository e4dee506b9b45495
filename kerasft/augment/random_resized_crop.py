"""`RandomResizedCrop`: a random crop resized to a fixed size, box-aware."""

import numbers

import keras
import tensorflow as tf

from kerasft import _keras_compat
from kerasft.augment import _affine
from kerasft.augment import _boxes
from kerasft.augment import _dense

_INTERPOLATIONS = {"bilinear": "BILINEAR", "nearest": "NEAREST"}


@keras.saving.register_keras_serializable(package="kerasft")
class RandomResizedCrop(keras.layers.Layer):
    """Crops a random window of each image and resizes it to `height x width`.

    The window covers a fraction of the image area drawn from `scale`, with
    a width/height ratio drawn from `aspect_ratio`, as torchvision's and
    Inception's random resized crop; with `min_object_covered > 0` it must
    also hold at least that fraction of one of the image's boxes (SSD-style
    crops; `tf.image.stateless_sample_distorted_bounding_box` draws it).
    Takes images `[b, h, w, c]` (or one image `[h, w, c]`) with pixels in
    `[0, 255]`, or Keras's dict `{"images", "bounding_boxes":
    {"boxes", "labels"}, "segmentation_masks"}`: masks are cropped with
    nearest sampling, boxes become their part inside the window, rescaled,
    and boxes left with less than `min_box_area_fraction` of their area are
    dropped with their labels, the rest padded to `max_boxes` rows (label
    `-1`). In inference (`training=False`) the whole image is resized to
    `height x width`, boxes and masks with it. Outputs are float32 images.

    Args:
        height, width: output size in pixels.
        scale: `(min, max)` fraction of the image area the window covers.
            Defaults to `(0.08, 1.0)`.
        aspect_ratio: `(min, max)` of the window's width / height.
            Defaults to `(3 / 4, 4 / 3)`.
        min_object_covered: the window must contain at least this fraction
            of at least one box (ignored for images without boxes).
            Defaults to `0.0`.
        max_attempts: windows tried before falling back to the whole image.
            Defaults to `100`.
        interpolation: `"bilinear"` or `"nearest"` for the images.
            Defaults to `"bilinear"`.
        bounding_box_format: format of the boxes (any of
            `keras.utils.bounding_boxes.convert_format`'s), also that of the
            outputs (relative formats relative to the output size).
            Defaults to `None` (no boxes).
        max_boxes: box rows in the output; `None` keeps the input's count.
            Defaults to `None`.
        min_box_area_fraction: drop a box keeping less than this fraction of
            its area inside the window. Defaults to `0.0`.
        mask_fill_value: mask value outside the image. Defaults to `0`.
        seed: integer seed. Defaults to `None`.
        **kwargs: `name`, `dtype`, `trainable` of the Keras layer.

    Example:
    ```python
    crop = RandomResizedCrop(64, 64, scale=(0.3, 1.0), min_object_covered=0.5,
                             bounding_box_format="xyxy", max_boxes=10, seed=0)
    out = crop({"images": np.zeros((2, 100, 120, 3), "float32"),
                "bounding_boxes": {"boxes": np.array([[[10., 20., 60., 80.]]] * 2),
                                   "labels": np.array([[3]] * 2)}})
    out["images"].shape                    # (2, 64, 64, 3)
    out["bounding_boxes"]["labels"].shape  # (2, 10)
    ```
    """

    def __init__(
        self,
        height,
        width,
        scale=(0.08, 1.0),
        aspect_ratio=(3 / 4, 4 / 3),
        min_object_covered=0.0,
        max_attempts=100,
        interpolation="bilinear",
        bounding_box_format=None,
        max_boxes=None,
        min_box_area_fraction=0.0,
        mask_fill_value=0,
        seed=None,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.height = _positive_int("height", height)
        self.width = _positive_int("width", width)
        self.scale = _range("scale", scale, upper=1.0)
        self.aspect_ratio = _range("aspect_ratio", aspect_ratio)
        if not isinstance(min_object_covered, numbers.Real) or not (
            0.0 <= min_object_covered <= 1.0
        ):
            raise ValueError(
                "`min_object_covered` must be a number in [0, 1]. "
                f"Received: min_object_covered={min_object_covered!r}"
            )
        self.min_object_covered = float(min_object_covered)
        self.max_attempts = _positive_int("max_attempts", max_attempts)
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(
                "`interpolation` must be 'bilinear' or 'nearest'. "
                f"Received: interpolation={interpolation!r}"
            )
        self.interpolation = interpolation
        self._dense_options = _dense.DenseOptions(
            bounding_box_format, max_boxes, min_box_area_fraction,
            mask_fill_value,
        )
        self.bounding_box_format = self._dense_options.bounding_box_format
        self.max_boxes = self._dense_options.max_boxes
        self.min_box_area_fraction = self._dense_options.min_box_area_fraction
        self.mask_fill_value = self._dense_options.mask_fill_value
        if seed is not None and not isinstance(seed, numbers.Integral):
            raise TypeError(
                f"`seed` must be an int or None. Received: seed={seed!r}"
            )
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_jit = False
        _keras_compat.keep_input_dtype(self)

    # === Layer API ===

    def call(self, inputs, training=True):
        if training:
            seed = tf.cast(self.seed_generator.next(), tf.int32)
            return self.augment(inputs, seed)
        return self._run(inputs, lambda images, boxes: _whole(images))

    def augment(self, inputs, seed):
        """The training transform with a stateless `seed` (`[2]` ints)."""
        return self._run(
            inputs, lambda images, boxes: self._sample(images, boxes, seed)
        )

    def crop_windows(self, inputs, seed):
        """`[b, 4]` int32 windows `(top, left, crop_height, crop_width)`
        that `augment(inputs, seed)` crops, in input pixels."""
        data = inputs if isinstance(inputs, dict) else {_dense.IMAGES: inputs}
        images = tf.cast(data[_dense.IMAGES], tf.float32)
        if images.shape.rank == 3:
            images = images[None]
        return self._sample(images, self._absolute_boxes(data, images), seed)

    def compute_output_spec(self, inputs, training=True):
        size = (self.height, self.width)
        if isinstance(inputs, dict):
            return _dense.output_spec(inputs, self._dense_options, size)
        shape = list(inputs.shape)
        shape[-3:-1] = size
        return keras.KerasTensor(shape, "float32")

    # === Internals ===

    def _run(self, inputs, window_fn):
        """Applies the windows `window_fn(images, xyxy boxes or None)`."""
        is_dict = isinstance(inputs, dict)
        data = inputs if is_dict else {_dense.IMAGES: inputs}

        def plan(images):
            boxes = self._absolute_boxes(data, images)
            window = window_fn(images, boxes)
            matrix = _affine.crop_matrix(
                window[:, 0], window[:, 1], window[:, 2], window[:, 3],
                self.height, self.width,
            )
            return matrix, lambda x: _affine.project(
                x, matrix, self.height, self.width,
                _INTERPOLATIONS[self.interpolation], "NEAREST",
            )

        out = _dense.apply(
            data, self._dense_options, plan, (self.height, self.width)
        )
        return out if is_dict else out[_dense.IMAGES]

    def _absolute_boxes(self, data, images):
        if _dense.BOXES not in data or self.min_object_covered == 0.0:
            return None
        bounding_boxes = data[_dense.BOXES]
        if images.shape.rank == 4 and (
            tf.convert_to_tensor(data[_dense.IMAGES]).shape.rank == 3
        ):
            bounding_boxes = {
                k: tf.convert_to_tensor(v)[None]
                for k, v in bounding_boxes.items()
            }
        boxes, labels = _boxes.densify(bounding_boxes, None)
        shape = tf.shape(images)
        boxes = _boxes.to_xyxy(
            boxes, self.bounding_box_format, shape[1], shape[2]
        )
        return boxes, _boxes.is_valid(boxes, labels)

    def _sample(self, images, boxes, seed):
        shape = tf.shape(images)
        batch, height, width = shape[0], shape[1], shape[2]
        h = tf.cast(height, tf.float32)
        w = tf.cast(width, tf.float32)
        whole = tf.constant([[0.0, 0.0, 1.0, 1.0]])
        if boxes is None:
            normalized = tf.tile(whole[None], [batch, 1, 1])
            valid = tf.ones([batch, 1], tf.bool)
        else:
            xyxy, valid = boxes
            x1, y1, x2, y2 = tf.unstack(xyxy, axis=-1)
            normalized = tf.clip_by_value(
                tf.stack([y1 / h, x1 / w, y2 / h, x2 / w], -1), 0.0, 1.0
            )
            valid &= (normalized[..., 2] > normalized[..., 0]) & (
                normalized[..., 3] > normalized[..., 1]
            )
        seeds = tf.random.experimental.stateless_split(seed, batch)
        image_size = tf.stack([height, width, shape[3]])

        def one(args):
            boxes_i, valid_i, seed_i = args
            has = tf.reduce_any(valid_i)
            # Padding rows must not count as boxes: they repeat a real one
            # (or, with none, the whole image stands in and nothing binds).
            boxes_i = tf.concat([boxes_i, whole], 0)
            valid_i = tf.concat([valid_i, [tf.logical_not(has)]], 0)
            first = tf.gather(boxes_i, tf.argmax(tf.cast(valid_i, tf.int32)))
            boxes_i = tf.where(valid_i[:, None], boxes_i, first)
            covered = tf.where(has, self.min_object_covered, 0.0)
            begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
                image_size,
                boxes_i[None],
                seed=seed_i,
                min_object_covered=covered,
                aspect_ratio_range=self.aspect_ratio,
                area_range=self.scale,
                max_attempts=self.max_attempts,
                use_image_if_no_bounding_boxes=True,
            )
            return tf.stack([begin[0], begin[1], size[0], size[1]])

        return tf.map_fn(
            one, (normalized, valid, seeds), fn_output_signature=tf.int32
        )

    # === Config ===

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "height": self.height,
                "width": self.width,
                "scale": list(self.scale),
                "aspect_ratio": list(self.aspect_ratio),
                "min_object_covered": self.min_object_covered,
                "max_attempts": self.max_attempts,
                "interpolation": self.interpolation,
                "seed": self.seed,
                **self._dense_options.config(),
            }
        )
        return config


def _whole(images):
    shape = tf.shape(images)
    zeros = tf.zeros([shape[0]], tf.int32)
    return tf.stack(
        [zeros, zeros, zeros + shape[1], zeros + shape[2]], axis=-1
    )


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or (
        value < 1
    ):
        raise ValueError(
            f"`{name}` must be a positive int. Received: {name}={value!r}"
        )
    return int(value)


def _range(name, value, upper=None):
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(
            f"`{name}` must be a pair (min, max). Received: {name}={value!r}"
        )
    lo, hi = (float(v) for v in value)
    if not 0.0 < lo <= hi or (upper is not None and hi > upper):
        bound = f" <= {upper}" if upper is not None else ""
        raise ValueError(
            f"`{name}` must give 0 < min <= max{bound}. "
            f"Received: {name}={value!r}"
        )
    return (lo, hi)
