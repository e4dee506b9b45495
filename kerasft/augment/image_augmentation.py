"""`ImageAugmentation`: ImageDataGenerator's augmentation as one Keras layer."""

import numbers

import keras
import tensorflow as tf

from kerasft import _keras_compat
from kerasft.augment import _affine
from kerasft.augment import _dense
from kerasft.augment import _idg_arguments as _args


@keras.saving.register_keras_serializable(package="kerasft")
class ImageAugmentation(keras.layers.Layer):
    """Random image augmentation taking `ImageDataGenerator`'s keyword arguments.

    Every argument keeps `ImageDataGenerator`'s meaning and units, and the
    geometric transforms compose exactly as IDG composes them (rotation,
    shift, shear and zoom about the image centre, then flips), fused into
    one projective warp per image. Works on a batch `[b, h, w, c]` or a single
    image `[h, w, c]` with pixel values in `[0, 255]`, inside `tf.data`
    (`dataset.map(aug)`, the default in `kerasft.data.image_folder`) or inside
    a model, where it is active only in training. `rescale` is applied
    last, in training and in inference alike, as IDG applies it to every
    image it yields. Outputs are float32.

    Args:
        rotation_range: maximum rotation in degrees; angles are drawn from
            `[-rotation_range, rotation_range]`. Defaults to `0`.
        width_shift_range: horizontal shift. A float `< 1` is a fraction of
            the width, a float `>= 1` is pixels, both drawn uniformly from
            `(-r, r)`; an int `n` draws whole pixels from `(-n, n)`; a list
            draws one of its values with a random sign. Defaults to `0.0`.
        height_shift_range: vertical shift, as `width_shift_range`.
            Defaults to `0.0`.
        shear_range: maximum shear angle in degrees (counter-clockwise).
            Defaults to `0.0`.
        zoom_range: a float `z` (zoom drawn from `[1 - z, 1 + z]`) or a pair
            `[lower, upper]`. Height and width zoom are drawn independently;
            a value above 1 zooms out, as in IDG. Defaults to `0.0`.
        horizontal_flip: flip left-right with probability 0.5.
            Defaults to `False`.
        vertical_flip: flip up-down with probability 0.5. Defaults to `False`.
        brightness_range: a pair `[lower, upper]` of multiplicative
            brightness factors; results are clipped to `[0, 255]`.
            Defaults to `None`.
        channel_shift_range: maximum shift added to all channels, in pixel
            units, clipped to the image's own min and max as IDG does.
            Defaults to `0.0`.
        fill_mode: how points outside the image are filled: `"nearest"`,
            `"reflect"`, `"wrap"` or `"constant"`, with scipy's semantics as
            IDG uses them. Defaults to `"nearest"`.
        cval: fill value for `fill_mode="constant"`. Defaults to `0.0`.
        rescale: factor multiplied into every output (e.g. `1 / 255`), in
            training and inference. Defaults to `None` (no rescaling).
        interpolation_order: `1` (bilinear, IDG's default) or `0`
            (nearest). Defaults to `1`.
        seed: integer seed; the same seed gives the same sequence of
            augmentations. Defaults to `None`.
        bounding_box_format: format of `inputs["bounding_boxes"]["boxes"]`
            when the layer gets Keras's dict input, one of
            `keras.utils.bounding_boxes.convert_format`'s formats (`"xyxy"`,
            `"rel_xyxy"`, `"xywh"`, `"center_xywh"`, `"yxyx"`, ...); boxes
            come back in it. Defaults to `None` (no boxes).
        max_boxes: number of box rows in the output (kept boxes first, then
            padding with label `-1` and zero boxes), for static shapes.
            Defaults to `None`: as many rows as the input has (ragged inputs
            are padded to the longest row).
        min_box_area_fraction: a box is dropped, with its label, when the
            part of its transformed box left inside the image is smaller
            than this fraction of it; boxes that leave the image are always
            dropped. Defaults to `0.0`.
        mask_fill_value: value of `segmentation_masks` pixels whose source
            lies outside the image (e.g. `255` with an ignore index).
            Defaults to `0`.
        **kwargs: `name`, `dtype` or `trainable` of the Keras layer; any
            other keyword is an error listing the supported ones.

    Example:
    ```python
    aug = ImageAugmentation(rotation_range=20, width_shift_range=0.2,
                            height_shift_range=0.2, shear_range=0.2,
                            zoom_range=0.2, horizontal_flip=True,
                            fill_mode="nearest", seed=1)
    images = np.random.uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    augmented = aug(images)
    ```

    Boxes and masks follow the pixels (Keras's dict convention):
    ```python
    aug = ImageAugmentation(rotation_range=20, horizontal_flip=True,
                            bounding_box_format="xyxy", max_boxes=8)
    out = aug({"images": images,
               "bounding_boxes": {"boxes": np.array([[[4., 4., 12., 20.]]] * 4),
                                  "labels": np.array([[1]] * 4)},
               "segmentation_masks": np.zeros((4, 32, 32, 1), "uint8")})
    out["bounding_boxes"]["boxes"].shape    # (4, 8, 4)
    ```
    """

    def __init__(
        self,
        rotation_range=0,
        width_shift_range=0.0,
        height_shift_range=0.0,
        shear_range=0.0,
        zoom_range=0.0,
        horizontal_flip=False,
        vertical_flip=False,
        brightness_range=None,
        channel_shift_range=0.0,
        fill_mode="nearest",
        cval=0.0,
        rescale=None,
        interpolation_order=1,
        seed=None,
        bounding_box_format=None,
        max_boxes=None,
        min_box_area_fraction=0.0,
        mask_fill_value=0,
        **kwargs,
    ):
        _args.check_unknown(kwargs)
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.rotation_range = _args.non_negative(
            "rotation_range", rotation_range
        )
        self.width_shift_range = _args.shift(
            "width_shift_range", width_shift_range
        )
        self.height_shift_range = _args.shift(
            "height_shift_range", height_shift_range
        )
        self.shear_range = _args.non_negative("shear_range", shear_range)
        self.zoom_range = _args.zoom(zoom_range)
        self.horizontal_flip = _args.boolean(
            "horizontal_flip", horizontal_flip
        )
        self.vertical_flip = _args.boolean("vertical_flip", vertical_flip)
        self.brightness_range = _args.brightness(brightness_range)
        self.channel_shift_range = _args.non_negative(
            "channel_shift_range", channel_shift_range
        )
        if fill_mode not in _affine.FILL_MODES:
            raise ValueError(
                f"`fill_mode` must be one of {_affine.FILL_MODES}. "
                f"Received: fill_mode={fill_mode!r}"
            )
        self.fill_mode = fill_mode
        self.cval = float(_args.number("cval", cval))
        if rescale is not None:
            rescale = float(_args.number("rescale", rescale))
        self.rescale = rescale
        if interpolation_order not in (0, 1):
            raise ValueError(
                "`interpolation_order` must be 0 (nearest) or 1 (bilinear). "
                f"Received: interpolation_order={interpolation_order!r}"
            )
        self.interpolation_order = int(interpolation_order)
        if seed is not None and not isinstance(seed, numbers.Integral):
            raise TypeError(
                f"`seed` must be an int or None. Received: seed={seed!r}"
            )
        self.seed = seed
        self._dense_options = _dense.DenseOptions(
            bounding_box_format, max_boxes, min_box_area_fraction,
            mask_fill_value,
        )
        self.bounding_box_format = self._dense_options.bounding_box_format
        self.max_boxes = self._dense_options.max_boxes
        self.min_box_area_fraction = self._dense_options.min_box_area_fraction
        self.mask_fill_value = self._dense_options.mask_fill_value
        self.seed_generator = keras.random.SeedGenerator(seed)
        # The warp has no XLA kernel; Keras then compiles without XLA.
        self.supports_jit = False
        _keras_compat.keep_input_dtype(self)

    # === Layer API ===

    def call(self, inputs, training=True):
        if training:
            seed = tf.cast(self.seed_generator.next(), tf.int32)
            return self.augment(inputs, seed)
        if isinstance(inputs, dict):
            return _dense.passthrough(
                inputs, self._dense_options, self._rescale
            )
        return self._rescale(tf.cast(inputs, tf.float32))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_output_spec(self, inputs, training=True):
        if isinstance(inputs, dict):
            return _dense.output_spec(inputs, self._dense_options)
        return keras.KerasTensor(tuple(inputs.shape), "float32")

    def augment(self, inputs, seed):
        """The training-mode transform with a stateless `seed` (`[2]` ints).

        `inputs` are images or Keras's dict of `"images"`,
        `"bounding_boxes"` and `"segmentation_masks"`. Same `seed`, same
        result; `rescale` included. `kerasft.data` calls this with
        per-batch seeds so pipelines are reproducible.
        """
        if isinstance(inputs, dict):
            return _dense.apply(
                inputs,
                self._dense_options,
                lambda images: self._plan(images, seed),
            )
        images = tf.cast(inputs, tf.float32)
        single = images.shape.rank == 3
        if single:
            images = images[None]
        matrix, image_fn = self._plan(images, seed)
        images = image_fn(images)
        return images[0] if single else images

    def transform_matrix(self, images, seed):
        """The `[b, 3, 3]` output->input pixel maps `augment` warps with.

        Coordinates are `(x, y) = (column, row)` of pixel centres; `None`
        when the layer has no geometric transform.
        """
        images = tf.convert_to_tensor(images)
        if images.shape.rank == 3:
            images = images[None]
        return self._plan(images, seed)[0]

    def _plan(self, images, seed):
        """`(matrix or None, image_fn)` for a `[b, h, w, c]` float batch."""
        p = self.transform_parameters(images, seed)
        shape = tf.shape(images)
        matrix = None
        if self._has_geometry():
            matrix = _affine.idg_matrix(
                p["theta"], p["tx"], p["ty"], p["shear"], p["zx"], p["zy"],
                shape[1], shape[2], p["flip_horizontal"], p["flip_vertical"],
            )
        return matrix, lambda images: self._apply(images, matrix, p)

    def _apply(self, images, matrix, p):
        images = tf.cast(images, tf.float32)
        if matrix is not None:
            images = _affine.warp(
                images,
                matrix,
                self.fill_mode,
                self.cval,
                self.interpolation_order,
            )
        if self.channel_shift_range:
            intensity = p["channel_shift_intensity"][:, None, None, None]
            low = tf.reduce_min(images, axis=[1, 2, 3], keepdims=True)
            high = tf.reduce_max(images, axis=[1, 2, 3], keepdims=True)
            images = tf.clip_by_value(images + intensity, low, high)
        if self.brightness_range is not None:
            factor = p["brightness"][:, None, None, None]
            images = tf.clip_by_value(images * factor, 0.0, 255.0)
        return self._rescale(images)

    def transform_parameters(self, images, seed):
        """The per-image random parameters `augment(images, seed)` applies.

        Mirrors `ImageDataGenerator.get_random_transform`: a dict of `[b]`
        tensors under the names IDG's `apply_transform` takes (`theta`,
        `tx`, `ty`, `shear`, `zx`, `zy`, `flip_horizontal`, `flip_vertical`,
        `channel_shift_intensity`, `brightness`), `tx`/`ty` in pixels along
        x (width) and y (height).
        """
        images = tf.convert_to_tensor(images)
        if images.shape.rank == 3:
            images = images[None]
        shape = tf.shape(images)
        batch, height, width = shape[0], shape[1], shape[2]
        u = tf.random.stateless_uniform([batch, 12], seed=seed)
        lo, hi = self.zoom_range
        if lo == 1 and hi == 1:
            zx = zy = tf.ones([batch])
        else:
            zx = lo + (hi - lo) * u[:, 4]
            zy = lo + (hi - lo) * u[:, 5]
        b_lo, b_hi = self.brightness_range or (1.0, 1.0)
        return {
            "theta": self.rotation_range * (2.0 * u[:, 0] - 1.0),
            "tx": _draw_shift(self.width_shift_range, u[:, 1], u[:, 10], width),
            "ty": _draw_shift(
                self.height_shift_range, u[:, 2], u[:, 11], height
            ),
            "shear": self.shear_range * (2.0 * u[:, 3] - 1.0),
            "zx": zx,
            "zy": zy,
            "flip_horizontal": (u[:, 6] < 0.5) & self.horizontal_flip,
            "flip_vertical": (u[:, 7] < 0.5) & self.vertical_flip,
            "channel_shift_intensity": (
                self.channel_shift_range * (2.0 * u[:, 8] - 1.0)
            ),
            "brightness": b_lo + (b_hi - b_lo) * u[:, 9],
        }

    def _has_geometry(self):
        return bool(
            self.rotation_range
            or _active(self.width_shift_range)
            or _active(self.height_shift_range)
            or self.shear_range
            or tuple(self.zoom_range) != (1.0, 1.0)
            or self.horizontal_flip
            or self.vertical_flip
        )

    def _rescale(self, images):
        if self.rescale is None:
            return images
        return images * self.rescale

    # === Config ===

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "rotation_range": self.rotation_range,
                "width_shift_range": self.width_shift_range,
                "height_shift_range": self.height_shift_range,
                "shear_range": self.shear_range,
                "zoom_range": list(self.zoom_range),
                "horizontal_flip": self.horizontal_flip,
                "vertical_flip": self.vertical_flip,
                "brightness_range": (
                    None
                    if self.brightness_range is None
                    else list(self.brightness_range)
                ),
                "channel_shift_range": self.channel_shift_range,
                "fill_mode": self.fill_mode,
                "cval": self.cval,
                "rescale": self.rescale,
                "interpolation_order": self.interpolation_order,
                "seed": self.seed,
                **self._dense_options.config(),
            }
        )
        return config


def _active(shift):
    return any(shift) if isinstance(shift, list) else bool(shift)


def _draw_shift(shift, u, u_sign, size):
    """Pixels of shift with IDG's rules for float, int and list ranges."""
    size = tf.cast(size, tf.float32)
    if isinstance(shift, list):
        values = tf.constant(shift, tf.float32)
        index = tf.minimum(
            tf.cast(u * len(shift), tf.int32), len(shift) - 1
        )
        pixels = tf.gather(values, index)
        pixels *= tf.where(u_sign < 0.5, -1.0, 1.0)
        scale = max(shift) < 1
    elif isinstance(shift, int):
        # np.random.choice(n) draws from range(n), then a random sign.
        pixels = tf.minimum(tf.floor(u * shift), max(shift - 1, 0))
        pixels *= tf.where(u_sign < 0.5, -1.0, 1.0)
        scale = False
    else:
        pixels = shift * (2.0 * u - 1.0)
        scale = shift < 1
    return pixels * size if scale else pixels
