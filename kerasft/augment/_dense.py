"""Keras's dict convention for dense vision inputs, for the geometric layers.

`{"images": ..., "bounding_boxes": {"boxes": ..., "labels": ...},
"segmentation_masks": ...}` (each key but `"images"` optional; other keys,
such as a per-image `"labels"`, pass through untouched). One output->input
matrix per image moves all three: images through the layer's own warp,
masks with nearest sampling and their fill value, boxes through their
corners (`_boxes`). Single examples (images `[h, w, c]`) work too.
"""

import keras
import tensorflow as tf

from kerasft.augment import _affine
from kerasft.augment import _boxes

IMAGES = "images"
BOXES = "bounding_boxes"
MASKS = "segmentation_masks"


class DenseOptions:
    """What the layers' constructors say about boxes and masks."""

    def __init__(self, bounding_box_format, max_boxes, min_box_area_fraction,
                 mask_fill_value):
        self.bounding_box_format = _boxes.check_format(bounding_box_format)
        if max_boxes is not None and (
            isinstance(max_boxes, bool)
            or not isinstance(max_boxes, int)
            or max_boxes < 1
        ):
            raise ValueError(
                "`max_boxes` must be a positive int or None. "
                f"Received: max_boxes={max_boxes!r}"
            )
        self.max_boxes = max_boxes
        if isinstance(min_box_area_fraction, bool) or not isinstance(
            min_box_area_fraction, (int, float)
        ) or not 0.0 <= min_box_area_fraction <= 1.0:
            raise ValueError(
                "`min_box_area_fraction` must be a number in [0, 1]. "
                f"Received: min_box_area_fraction={min_box_area_fraction!r}"
            )
        self.min_box_area_fraction = float(min_box_area_fraction)
        if isinstance(mask_fill_value, bool) or not isinstance(
            mask_fill_value, (int, float)
        ):
            raise TypeError(
                "`mask_fill_value` must be a number (e.g. 0, or 255 for an "
                f"ignore index). Received: mask_fill_value={mask_fill_value!r}"
            )
        self.mask_fill_value = mask_fill_value

    def config(self):
        return {
            "bounding_box_format": self.bounding_box_format,
            "max_boxes": self.max_boxes,
            "min_box_area_fraction": self.min_box_area_fraction,
            "mask_fill_value": self.mask_fill_value,
        }

    def check(self, inputs):
        if not isinstance(inputs, dict) or IMAGES not in inputs:
            raise ValueError(
                "A dict input must hold an 'images' key (Keras's convention: "
                "{'images', 'bounding_boxes', 'segmentation_masks'}). "
                f"Received keys: {sorted(inputs)}"
            )
        if BOXES in inputs and self.bounding_box_format is None:
            raise ValueError(
                "The input has 'bounding_boxes' but `bounding_box_format` is "
                "None: pass e.g. `bounding_box_format='xyxy'` to the layer."
            )


def apply(inputs, options, plan, output_size=None):
    """Transforms a dict input with one matrix per image.

    Args:
        inputs: the dict (see the module docstring).
        options: a `DenseOptions`.
        plan: `images [b, h, w, c] float32 -> (matrix, image_fn)`: the
            `[b, 3, 3]` output->input maps (pixel centres) or `None` for the
            identity, and the layer's own image path (`images -> images`:
            warp and photometric changes) drawn with the same parameters.
        output_size: `(height, width)` of the outputs; defaults to the
            input's size.
    """
    options.check(inputs)
    images = tf.cast(inputs[IMAGES], tf.float32)
    single = images.shape.rank == 3
    if single:
        images = images[None]
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    out_h, out_w = output_size or (height, width)
    matrix, image_fn = plan(images)
    outputs = dict(inputs)
    outputs[IMAGES] = _unbatch(image_fn(images), single)
    if MASKS in inputs:
        masks = inputs[MASKS]
        if single:
            masks = tf.convert_to_tensor(masks)[None]
        if matrix is not None:
            masks = warp_masks(
                masks, matrix, out_h, out_w, options.mask_fill_value
            )
        outputs[MASKS] = _unbatch(masks, single)
    if BOXES in inputs:
        bounding_boxes = _batched_boxes(inputs[BOXES], single)
        fmt = options.bounding_box_format
        # Cut to `max_boxes` only after dropping, so boxes that leave the
        # image make room for ones further down the list.
        boxes, labels = _boxes.densify(bounding_boxes, None)
        boxes = _boxes.to_xyxy(boxes, fmt, height, width)
        valid = _boxes.is_valid(boxes, labels)
        points = _boxes.corners(boxes)
        if matrix is not None:
            points = _boxes.transform_corners(points, matrix)
        boxes, labels, _ = _boxes.clip_and_drop(
            points, labels, valid, out_h, out_w, options.min_box_area_fraction
        )
        boxes = _boxes.from_xyxy(boxes, fmt, out_h, out_w)
        if options.max_boxes is not None:
            boxes, labels = _boxes.densify(
                {"boxes": boxes, "labels": labels}, options.max_boxes
            )
        outputs[BOXES] = {"boxes": _unbatch(boxes, single),
                          "labels": _unbatch(labels, single)}
    return outputs


def passthrough(inputs, options, image_fn):
    """Inference: images through `image_fn`, boxes only densified/padded."""
    options.check(inputs)
    outputs = dict(inputs)
    outputs[IMAGES] = image_fn(tf.cast(inputs[IMAGES], tf.float32))
    if BOXES in inputs:
        single = tf.convert_to_tensor(inputs[IMAGES]).shape.rank == 3
        bounding_boxes = _batched_boxes(inputs[BOXES], single)
        boxes, labels = _boxes.densify(bounding_boxes, options.max_boxes)
        outputs[BOXES] = {"boxes": _unbatch(boxes, single),
                          "labels": _unbatch(labels, single)}
    return outputs


def warp_masks(masks, matrix, height, width, fill_value):
    """Nearest-neighbour warp of `[b, h, w]` or `[b, h, w, c]` masks.

    Output pixels whose source pixel (the nearest one) lies outside the
    mask take `fill_value`; the dtype is kept.
    """
    masks = tf.convert_to_tensor(masks)
    dtype = masks.dtype
    squeeze = masks.shape.rank == 3
    values = tf.cast(masks[..., None] if squeeze else masks, tf.float32)
    out = _affine.project(
        values, matrix, height, width, "NEAREST", "CONSTANT", fill_value
    )
    out = tf.cast(out, dtype)
    return out[..., 0] if squeeze else out


def output_spec(inputs, options, output_size=None):
    """Symbolic outputs for a dict of `KerasTensor`s (functional models)."""
    options.check(inputs)
    outputs = dict(inputs)
    batched = len(inputs[IMAGES].shape) == 4
    outputs[IMAGES] = _spec(inputs[IMAGES], "float32", output_size, batched)
    if MASKS in inputs:
        outputs[MASKS] = _spec(inputs[MASKS], None, output_size, batched)
    if BOXES in inputs:
        boxes = inputs[BOXES]["boxes"]
        labels = inputs[BOXES]["labels"]
        count = options.max_boxes
        box_shape = list(boxes.shape)
        label_shape = list(labels.shape)
        axis = len(box_shape) - 2
        if count is not None:
            box_shape[axis] = count
            label_shape[axis] = count
        outputs[BOXES] = {
            "boxes": keras.KerasTensor(box_shape, "float32"),
            "labels": keras.KerasTensor(label_shape, labels.dtype),
        }
    return outputs


def _spec(tensor, dtype, output_size, batched):
    shape = list(tensor.shape)
    if output_size is not None:
        start = 1 if batched else 0
        shape[start:start + 2] = list(output_size)
    return keras.KerasTensor(shape, dtype or tensor.dtype)


def _batched_boxes(bounding_boxes, single):
    if not isinstance(bounding_boxes, dict):
        raise ValueError(
            "'bounding_boxes' must be a dict with keys 'boxes' and "
            f"'labels'. Received: {bounding_boxes!r}"
        )
    if not single:
        return dict(bounding_boxes)
    return {k: tf.convert_to_tensor(v)[None]
            for k, v in bounding_boxes.items()}


def _unbatch(tensor, single):
    return tensor[0] if single else tensor
