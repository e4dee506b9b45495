"""Pure TensorFlow box helpers for the augmentation layers.

Boxes follow Keras 3's convention for preprocessing layers:
`{"boxes": [b, n, 4], "labels": [b, n]}`, dense (padding rows carry label
`-1`) or ragged, in any `keras.utils.bounding_boxes.convert_format` format.
Internally boxes are absolute `xyxy` pixels with *edge* coordinates (pixel
`i` spans `[i, i + 1]`), while `_affine`'s matrices map pixel *centres*
(pixel `i` at `i`): a point moves by `+-0.5` between the two.
"""

import keras
import tensorflow as tf

# What `keras.utils.bounding_boxes.convert_format` accepts (Keras 3.15.1).
FORMATS = (
    "xyxy",
    "yxyx",
    "xywh",
    "center_xywh",
    "center_yxhw",
    "rel_xyxy",
    "rel_yxyx",
    "rel_xywh",
    "rel_center_xywh",
)
PAD_LABEL = -1


def check_format(bounding_box_format):
    """The format, lower-cased, or a `ValueError` listing the valid ones."""
    if bounding_box_format is None:
        return None
    if (
        not isinstance(bounding_box_format, str)
        or bounding_box_format.lower() not in FORMATS
    ):
        raise ValueError(
            f"`bounding_box_format` must be one of {FORMATS} or None. "
            f"Received: bounding_box_format={bounding_box_format!r}"
        )
    return bounding_box_format.lower()


def densify(bounding_boxes, max_boxes):
    """Dense `[b, m, 4]` float32 boxes and `[b, m, ...]` labels.

    Ragged inputs are padded (label `-1`, boxes `0`), as Keras's layers
    densify them. `m` is `max_boxes` when given (rows past it are cut: a
    fixed count for static shapes), else the input's count.
    """
    if not isinstance(bounding_boxes, dict) or set(bounding_boxes) != {
        "boxes",
        "labels",
    }:
        raise ValueError(
            "`bounding_boxes` must be a dict with exactly the keys 'boxes' "
            "and 'labels' (Keras's convention). "
            f"Received: bounding_boxes={bounding_boxes!r}"
        )
    boxes, labels = bounding_boxes["boxes"], bounding_boxes["labels"]
    if isinstance(boxes, tf.RaggedTensor):
        boxes = boxes.to_tensor(0.0)
    if isinstance(labels, tf.RaggedTensor):
        labels = labels.to_tensor(PAD_LABEL)
    boxes = tf.cast(tf.convert_to_tensor(boxes), tf.float32)
    labels = tf.convert_to_tensor(labels)
    if max_boxes is not None:
        boxes = _fit(boxes, max_boxes, 0.0)
        labels = _fit(labels, max_boxes, PAD_LABEL)
    return boxes, labels


def _fit(values, count, pad):
    """Cuts or pads axis 1 of `values` to exactly `count` entries."""
    values = values[:, :count]
    missing = count - tf.shape(values)[1]
    paddings = tf.concat(
        [[[0, 0], [0, missing]], tf.zeros([tf.rank(values) - 2, 2], tf.int32)],
        axis=0,
    )
    pad = tf.cast(pad, values.dtype)
    padded = tf.pad(values, paddings, constant_values=pad)
    shape = values.shape.as_list()
    shape[1] = count
    return tf.ensure_shape(padded, shape)


def to_xyxy(boxes, bounding_box_format, height, width):
    return keras.utils.bounding_boxes.convert_format(
        boxes, bounding_box_format, "xyxy", height=height, width=width
    )


def from_xyxy(boxes, bounding_box_format, height, width):
    return keras.utils.bounding_boxes.convert_format(
        boxes, "xyxy", bounding_box_format, height=height, width=width
    )


def is_valid(boxes, labels):
    """Real boxes: positive area and (for integer-id labels) label != -1."""
    area = _area(boxes)
    valid = area > 0.0
    if labels.shape.rank == 2:
        valid &= tf.not_equal(labels, tf.cast(PAD_LABEL, labels.dtype))
    return valid


def _area(boxes):
    width = boxes[..., 2] - boxes[..., 0]
    height = boxes[..., 3] - boxes[..., 1]
    return tf.maximum(width, 0.0) * tf.maximum(height, 0.0)


def corners(boxes):
    """`[b, n, 4, 2]` corner points `(x, y)` of xyxy boxes, in cyclic order."""
    x1, y1, x2, y2 = tf.unstack(boxes, axis=-1)
    xs = tf.stack([x1, x2, x2, x1], axis=-1)
    ys = tf.stack([y1, y1, y2, y2], axis=-1)
    return tf.stack([xs, ys], axis=-1)


def transform_corners(points, matrix):
    """Corners after the warp whose `[b, 3, 3]` output->input map (pixel
    centres) is `matrix`: they go through its inverse."""
    inverse = tf.linalg.inv(matrix)[:, None, None, :, :]
    xs = points[..., 0] - 0.5
    ys = points[..., 1] - 0.5
    w = inverse[..., 2, 0] * xs + inverse[..., 2, 1] * ys + inverse[..., 2, 2]
    out_x = (inverse[..., 0, 0] * xs + inverse[..., 0, 1] * ys
             + inverse[..., 0, 2]) / w
    out_y = (inverse[..., 1, 0] * xs + inverse[..., 1, 1] * ys
             + inverse[..., 1, 2]) / w
    return tf.stack([out_x, out_y], axis=-1) + 0.5


def visible_box(points, height, width):
    """The bounding box of a convex quadrilateral and of its part inside
    `[0, width] x [0, height]`, both `[b, n, 4]` xyxy.

    The visible part's extremes lie among the corners inside the image, the
    image corners inside the quadrilateral and the crossings of its edges
    with the image border; a box with none of them has left the image (its
    visible box has zero area). For a rotated or sheared box this is the
    exact bounding box of what stays in view, tighter than clipping the
    bounding box of its corners.
    """
    width = tf.cast(width, tf.float32)
    height = tf.cast(height, tf.float32)
    eps = 1e-4
    xs, ys = points[..., 0], points[..., 1]
    full = tf.stack([tf.reduce_min(xs, -1), tf.reduce_min(ys, -1),
                     tf.reduce_max(xs, -1), tf.reduce_max(ys, -1)], -1)
    # Candidates: [.., 4] corners, [.., 4] image corners, [.., 16] crossings.
    inside = ((xs >= -eps) & (xs <= width + eps)
              & (ys >= -eps) & (ys <= height + eps))
    image_x = tf.stack([0.0, width, width, 0.0])
    image_y = tf.stack([0.0, 0.0, height, height])
    nx, ny = tf.roll(xs, -1, -1), tf.roll(ys, -1, -1)
    cross = ((nx - xs)[..., :, None] * (image_y - ys[..., :, None])
             - (ny - ys)[..., :, None] * (image_x - xs[..., :, None]))
    in_quad = (tf.reduce_all(cross >= -eps, -2)
               | tf.reduce_all(cross <= eps, -2))
    hit_x, hit_y, hit = [], [], []
    for along_x, line in [(True, 0.0), (True, width),
                          (False, 0.0), (False, height)]:
        a, b = (xs, nx) if along_x else (ys, ny)
        delta = b - a
        safe = tf.where(tf.abs(delta) > 1e-9, delta, 1.0)
        t = (line - a) / safe
        px = xs + t * (nx - xs)
        py = ys + t * (ny - ys)
        other, limit = (py, height) if along_x else (px, width)
        ok = ((tf.abs(delta) > 1e-9) & (t >= 0.0) & (t <= 1.0)
              & (other >= -eps) & (other <= limit + eps))
        hit_x.append(px)
        hit_y.append(py)
        hit.append(ok)
    cand_x = tf.concat([xs, image_x * tf.ones_like(xs)] + hit_x, -1)
    cand_y = tf.concat([ys, image_y * tf.ones_like(ys)] + hit_y, -1)
    ok = tf.concat([inside, in_quad] + hit, -1)
    big = tf.constant(3.4e38)
    x1 = tf.reduce_min(tf.where(ok, cand_x, big), -1)
    y1 = tf.reduce_min(tf.where(ok, cand_y, big), -1)
    x2 = tf.reduce_max(tf.where(ok, cand_x, -big), -1)
    y2 = tf.reduce_max(tf.where(ok, cand_y, -big), -1)
    limit = tf.stack([width, height, width, height])
    clipped = tf.clip_by_value(tf.stack([x1, y1, x2, y2], -1), 0.0, limit)
    any_ok = tf.reduce_any(ok, -1, keepdims=True)
    return full, tf.where(any_ok, clipped, 0.0)


def clip_and_drop(points, labels, valid, height, width, min_area_fraction):
    """Boxes of what stays in view; drops the rest and packs kept ones first.

    `points` are the `[b, n, 4, 2]` transformed corners. A box is kept when
    it was valid, its visible part has positive area, and that part's box
    holds at least `min_area_fraction` of the whole transformed box's area.
    Kept boxes move to the front in their order; the rest become padding:
    boxes `0`, labels `-1`. Returns `(boxes, labels, kept)`.
    """
    full, clipped = visible_box(points, height, width)
    visible = _area(clipped)
    keep = valid & (visible > 0.0)
    keep &= visible >= min_area_fraction * _area(full)
    order = tf.argsort(tf.cast(~keep, tf.int32), axis=1, stable=True)
    clipped = tf.gather(clipped, order, batch_dims=1)
    labels = tf.gather(labels, order, batch_dims=1)
    kept = tf.gather(keep, order, batch_dims=1)
    return pad_where(clipped, labels, kept) + (kept,)


def pad_where(boxes, labels, kept):
    """Zero boxes and `-1` labels wherever `kept` is False."""
    label_mask = kept
    for _ in range(labels.shape.rank - 2):
        label_mask = label_mask[..., None]
    labels = tf.where(
        label_mask, labels, tf.cast(PAD_LABEL, labels.dtype)
    )
    boxes = tf.where(kept[..., None], boxes, 0.0)
    return boxes, labels
