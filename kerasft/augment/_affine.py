"""Pure TensorFlow helpers: ImageDataGenerator's affine matrix and one fused warp.

`ImageDataGenerator` composes its geometric transforms as
`C @ rotation @ shift @ shear @ zoom @ C^-1` (C moves the origin to the image
centre), maps every *output* pixel to an input coordinate with that matrix,
interpolates bilinearly with `scipy.ndimage`, then flips the result. Here the
flips are folded into the same matrix, so one `ImageProjectiveTransformV3`
call per batch does all of it. Coordinates are `(x, y) = (column, row)`, as
both IDG (after its axis swap) and `ImageProjectiveTransformV3` use them.
"""

import math

import tensorflow as tf

FILL_MODES = ("nearest", "reflect", "wrap", "constant")


def idg_matrix(theta, tx, ty, shear, zx, zy, height, width,
               flip_horizontal=None, flip_vertical=None):
    """Batched 3x3 output->input matrices with IDG's composition and centre.

    Args:
        theta: `[b]` rotation in degrees.
        tx, ty: `[b]` shifts in pixels along x (columns) and y (rows); the
            content moves by `-tx`, `-ty`, as in IDG's
            `apply_affine_transform(tx=..., ty=...)`.
        shear: `[b]` shear angle in degrees.
        zx, zy: `[b]` zoom factors; `> 1` zooms out (IDG's convention).
        height, width: image size (Python numbers or scalar tensors).
        flip_horizontal, flip_vertical: optional `[b]` booleans; the flip is
            applied after the affine transform, as IDG does.

    Returns:
        A `[b, 3, 3]` float32 tensor.
    """
    theta = tf.cast(theta, tf.float32) * (math.pi / 180.0)
    shear = tf.cast(shear, tf.float32) * (math.pi / 180.0)
    tx = tf.cast(tx, tf.float32)
    ty = tf.cast(ty, tf.float32)
    zx = tf.cast(zx, tf.float32)
    zy = tf.cast(zy, tf.float32)
    height = tf.cast(height, tf.float32)
    width = tf.cast(width, tf.float32)
    cos, sin = tf.cos(theta), tf.sin(theta)
    sh_sin, sh_cos = tf.sin(shear), tf.cos(shear)
    # A = R @ S(shift) @ Shear @ Z, written out element-wise:
    # R @ S = [[c, -s, c*tx - s*ty], [s, c, s*tx + c*ty]]
    # (R @ S) @ Shear = [[c, -c*shs - s*shc, .], [s, -s*shs + c*shc, .]]
    # ... @ Z scales column 0 by zx and column 1 by zy.
    a00 = cos * zx
    a01 = (-cos * sh_sin - sin * sh_cos) * zy
    a02 = cos * tx - sin * ty
    a10 = sin * zx
    a11 = (-sin * sh_sin + cos * sh_cos) * zy
    a12 = sin * tx + cos * ty
    cx = (width - 1.0) / 2.0
    cy = (height - 1.0) / 2.0
    # C @ A @ C^-1: the linear part is unchanged, the offset re-centres.
    b02 = a02 + cx - a00 * cx - a01 * cy
    b12 = a12 + cy - a10 * cx - a11 * cy
    zeros = tf.zeros_like(a00)
    ones = tf.ones_like(a00)
    matrix = tf.stack(
        [
            tf.stack([a00, a01, b02], -1),
            tf.stack([a10, a11, b12], -1),
            tf.stack([zeros, zeros, ones], -1),
        ],
        axis=-2,
    )
    if flip_horizontal is not None or flip_vertical is not None:
        # Flipping the output is the output->input map x -> (w - 1 - x),
        # composed on the right.
        fh = _flip_sign(flip_horizontal, a00)
        fv = _flip_sign(flip_vertical, a00)
        flip = tf.stack(
            [
                tf.stack([fh, zeros, (1.0 - fh) / 2.0 * (width - 1.0)], -1),
                tf.stack([zeros, fv, (1.0 - fv) / 2.0 * (height - 1.0)], -1),
                tf.stack([zeros, zeros, ones], -1),
            ],
            axis=-2,
        )
        matrix = tf.matmul(matrix, flip)
    return matrix


def _flip_sign(flag, like):
    if flag is None:
        return tf.ones_like(like)
    return 1.0 - 2.0 * tf.cast(flag, tf.float32)


def warp(images, matrix, fill_mode="nearest", cval=0.0, order=1):
    """Warps `[b, h, w, c]` float32 images with `[b, 3, 3]` output->input maps.

    `fill_mode` follows `scipy.ndimage` as IDG calls it: `"nearest"` and
    `"reflect"` are the kernel's own modes; `"constant"` fills every output
    pixel whose input coordinate falls outside `[0, n - 1]` with `cval`
    (scipy's rule, rather than blending with `cval` at the border);
    `"wrap"` follows scipy's `"wrap"` (SciPy >= 1.6, what IDG calls): the
    image repeats with period `n - 1`, its first and last rows/columns
    overlapping.
    """
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    kernel_mode = {"constant": "NEAREST", "wrap": "WRAP"}.get(
        fill_mode, fill_mode.upper()
    )
    if fill_mode == "wrap":
        return _sample_wrapped(images, matrix, order)
    out = project(
        images,
        matrix,
        height,
        width,
        interpolation="BILINEAR" if order == 1 else "NEAREST",
        fill_mode=kernel_mode,
        fill_value=cval,
    )
    if fill_mode == "constant":
        xs, ys = _source_coordinates(matrix, height, width)
        w1 = tf.cast(width - 1, tf.float32)
        h1 = tf.cast(height - 1, tf.float32)
        inside = (xs >= 0.0) & (xs <= w1) & (ys >= 0.0) & (ys <= h1)
        out = tf.where(inside[..., None], out, tf.cast(cval, out.dtype))
    return out


def project(images, matrix, height, width, interpolation="BILINEAR",
            fill_mode="NEAREST", fill_value=0.0):
    """One `ImageProjectiveTransformV3` call: `[b, height, width, c]` float32
    outputs sampled from `images` at `matrix @ (x, y, 1)`.

    `interpolation` and `fill_mode` are the kernel's (`"BILINEAR"` /
    `"NEAREST"`; `"NEAREST"`, `"REFLECT"`, `"WRAP"`, `"CONSTANT"`): with
    `"CONSTANT"` and nearest sampling, an output pixel takes `fill_value`
    exactly when its nearest source pixel lies outside the image.
    """
    transforms = tf.concat(
        [matrix[:, 0, :], matrix[:, 1, :], tf.zeros_like(matrix[:, 0, :2])],
        axis=-1,
    )
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.stack([height, width]),
        fill_value=tf.cast(fill_value, tf.float32),
        interpolation=interpolation,
        fill_mode=fill_mode,
    )


def crop_matrix(top, left, crop_height, crop_width, height, width):
    """`[b, 3, 3]` output->input maps that resize the window `(top, left,
    crop_height, crop_width)` of each image to `height x width` pixels, with
    half-pixel centres as `tf.image.resize` aligns them."""
    f = [tf.cast(v, tf.float32) for v in
         (top, left, crop_height, crop_width)]
    top, left, crop_height, crop_width = f
    sy = crop_height / tf.cast(height, tf.float32)
    sx = crop_width / tf.cast(width, tf.float32)
    zeros = tf.zeros_like(sx)
    ones = tf.ones_like(sx)
    return tf.stack(
        [
            tf.stack([sx, zeros, left + 0.5 * sx - 0.5], -1),
            tf.stack([zeros, sy, top + 0.5 * sy - 0.5], -1),
            tf.stack([zeros, zeros, ones], -1),
        ],
        axis=-2,
    )


def _source_coordinates(matrix, height, width):
    ys, xs = tf.meshgrid(
        tf.range(height, dtype=tf.float32),
        tf.range(width, dtype=tf.float32),
        indexing="ij",
    )
    m = matrix[:, :, :, None, None]
    src_x = m[:, 0, 0] * xs + m[:, 0, 1] * ys + m[:, 0, 2]
    src_y = m[:, 1, 0] * xs + m[:, 1, 1] * ys + m[:, 1, 2]
    return src_x, src_y


def _scipy_wrap(coord, size):
    """scipy.ndimage's `mode="wrap"` coordinate map (period `size - 1`)."""
    period = tf.maximum(tf.cast(size, tf.float32) - 1.0, 1.0)
    below = coord + period * (tf.floor(-coord / period) + 1.0)
    above = coord - period * tf.floor(coord / period)
    return tf.where(coord < 0.0, below, tf.where(coord > period, above, coord))


def _sample_wrapped(images, matrix, order):
    """Bilinear (order 1) or nearest (order 0) gather after scipy's wrap."""
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    xs, ys = _source_coordinates(matrix, height, width)
    xs = _scipy_wrap(xs, width)
    ys = _scipy_wrap(ys, height)
    flat = tf.reshape(images, [shape[0], height * width, shape[3]])

    def gather(yi, xi):
        yi = tf.clip_by_value(yi, 0, height - 1)
        xi = tf.clip_by_value(xi, 0, width - 1)
        return tf.gather(flat, yi * width + xi, batch_dims=1)

    if order == 0:
        yi = tf.cast(tf.floor(ys + 0.5), tf.int32)
        xi = tf.cast(tf.floor(xs + 0.5), tf.int32)
        return gather(yi, xi)
    x0 = tf.floor(xs)
    y0 = tf.floor(ys)
    wx = (xs - x0)[..., None]
    wy = (ys - y0)[..., None]
    x0 = tf.cast(x0, tf.int32)
    y0 = tf.cast(y0, tf.int32)
    top = gather(y0, x0) * (1.0 - wx) + gather(y0, x0 + 1) * wx
    bottom = gather(y0 + 1, x0) * (1.0 - wx) + gather(y0 + 1, x0 + 1) * wx
    return top * (1.0 - wy) + bottom * wy
