"""Boxes and masks move with the pixels: exact geometry against the objects.

Each scene holds non-overlapping axis-aligned rectangles (the objects) with
their boxes and a label map. For the transform a layer applied (its own
`transform_matrix` / `crop_windows`), the ground truth warps each object's
indicator mask with TensorFlow's projective kernel and nearest sampling:
the layer's mask must equal the warped objects exactly, and each returned
box the bounding box of its object's warped pixels (within 1 px).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasft.augment import ImageAugmentation
from kerasft.augment import RandomResizedCrop
from tests.helpers import assert_config_roundtrip
from tests.helpers import assert_model_roundtrip

SIZE = 40
NUM_OBJECTS = 3
FORMATS = ("xyxy", "yxyx", "xywh", "center_xywh", "center_yxhw",
           "rel_xyxy", "rel_yxyx", "rel_xywh", "rel_center_xywh")


def _scene(n, size=SIZE, seed=0, objects=NUM_OBJECTS):
    """Images, boxes (xyxy, edges), labels 1..k and label maps 0..k."""
    rng = np.random.default_rng(seed)
    images = np.full((n, size, size, 3), 90.0, "float32")
    masks = np.zeros((n, size, size, 1), "int32")
    boxes = np.zeros((n, objects, 4), "float32")
    for i in range(n):
        k = 0
        while k < objects:
            h, w = rng.integers(5, size // 3, 2)
            r, c = rng.integers(0, size - h), rng.integers(0, size - w)
            if masks[i, max(r - 1, 0):r + h + 1, max(c - 1, 0):c + w + 1].any():
                continue
            masks[i, r:r + h, c:c + w] = k + 1
            images[i, r:r + h, c:c + w] = rng.uniform(120, 255, 3)
            boxes[i, k] = (c, r, c + w, r + h)
            k += 1
    labels = np.tile(np.arange(1, objects + 1, dtype="int32"), (n, 1))
    return images, boxes, labels, masks


def _inputs(images, boxes, labels, masks):
    return {"images": images,
            "bounding_boxes": {"boxes": boxes, "labels": labels},
            "segmentation_masks": masks}


def _warp_nearest(masks, matrix, height, width):
    """The ground truth: `[b, h, w]` 0/1 masks through the kernel, nearest."""
    matrix = np.asarray(matrix, "float32")
    transforms = np.concatenate(
        [matrix[:, 0], matrix[:, 1], np.zeros((len(matrix), 2), "float32")], -1)
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=masks[..., None].astype("float32"), transforms=transforms,
        output_shape=[height, width], fill_value=0.0,
        interpolation="NEAREST", fill_mode="CONSTANT")
    return out.numpy()[..., 0]


def _bbox(pixels):
    rows, cols = np.nonzero(pixels)
    return np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])


def _check_geometry(out, masks, matrix, height, width, max_boxes, tol=1.0):
    """Returns the largest box deviation (px) after checking everything."""
    n = len(masks)
    objects = [_warp_nearest((masks[..., 0] == k + 1).astype("float32"),
                             matrix, height, width)
               for k in range(NUM_OBJECTS)]
    expected_mask = sum((k + 1) * o for k, o in enumerate(objects))
    np.testing.assert_array_equal(out["segmentation_masks"][..., 0],
                                  expected_mask.astype("int32"))
    boxes = out["bounding_boxes"]["boxes"].numpy()
    labels = out["bounding_boxes"]["labels"].numpy()
    assert boxes.shape == (n, max_boxes, 4) and labels.shape == (n, max_boxes)
    worst = 0.0
    for i in range(n):
        count = int((labels[i] != -1).sum())
        assert (labels[i, :count] != -1).all()  # kept boxes come first
        assert (labels[i, count:] == -1).all()
        assert (boxes[i, count:] == 0).all()
        kept = dict(zip(labels[i, :count], boxes[i, :count]))
        for k in range(NUM_OBJECTS):
            pixels = objects[k][i] > 0
            if pixels.any():
                assert k + 1 in kept, f"image {i}: object {k + 1} dropped"
                box, expected = kept[k + 1], _bbox(pixels)
                # The box holds the centres of its object's pixels...
                assert np.all(box[:2] <= expected[:2] + 0.501), (box, expected)
                assert np.all(box[2:] >= expected[2:] - 0.501), (box, expected)
                # ...and no more than the sampling grid adds at its edges.
                deviation = np.abs(box - expected).max()
                assert deviation <= tol, (i, k, box, expected)
                worst = max(worst, deviation)
            elif k + 1 in kept:  # a sliver thinner than a pixel
                w, h = kept[k + 1][2:] - kept[k + 1][:2]
                assert min(w, h) < 1.0, (i, k, kept[k + 1])
        assert np.all(boxes[i, :count, :2] >= 0)
        assert np.all(boxes[i, :count, 2] <= width)
        assert np.all(boxes[i, :count, 3] <= height)
    return worst


# Sampling adds under 1 px at a box's edges; at the acute corners that
# shear makes, the last pixel centre inside can sit up to ~2 px from them.
SHEARED = ("shear", "all")
TRANSFORMS = {
    "horizontal_flip": dict(horizontal_flip=True),
    "vertical_flip": dict(vertical_flip=True),
    "rotation": dict(rotation_range=45),
    "zoom": dict(zoom_range=(0.6, 1.4)),
    "shear": dict(shear_range=25),
    "width_shift": dict(width_shift_range=12),
    "height_shift": dict(height_shift_range=12),
    "fractional_shift": dict(width_shift_range=0.3, height_shift_range=0.3),
    "all": dict(rotation_range=30, width_shift_range=0.2,
                height_shift_range=0.2, shear_range=15, zoom_range=0.25,
                horizontal_flip=True, vertical_flip=True,
                brightness_range=(0.8, 1.2), channel_shift_range=20.0),
}


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_boxes_and_masks_follow_every_transform(name):
    images, boxes, labels, masks = _scene(8, seed=1)
    layer = ImageAugmentation(**TRANSFORMS[name], fill_mode="constant",
                              bounding_box_format="xyxy", max_boxes=5)
    seed = tf.constant([3, 4])
    out = layer.augment(_inputs(images, boxes, labels, masks), seed)
    matrix = layer.transform_matrix(images, seed).numpy()
    worst = _check_geometry(out, masks, matrix, SIZE, SIZE, max_boxes=5,
                            tol=2.0 if name in SHEARED else 1.0)
    if name in ("horizontal_flip", "vertical_flip", "width_shift",
                "height_shift"):
        assert worst == 0.0  # integer-exact transforms: no tolerance needed
    # The images move the same way, dict or not.
    np.testing.assert_allclose(out["images"], layer.augment(images, seed))


def test_flips_exactly():
    images, boxes, labels, masks = _scene(16, seed=2)
    layer = ImageAugmentation(horizontal_flip=True, vertical_flip=True,
                              bounding_box_format="xyxy")
    seed = tf.constant([0, 1])
    out = layer.augment(_inputs(images, boxes, labels, masks), seed)
    p = layer.transform_parameters(images, seed)
    fh, fv = p["flip_horizontal"].numpy(), p["flip_vertical"].numpy()
    assert fh.any() and (~fh).any() and fv.any() and (~fv).any()
    for i in range(16):
        x1, y1, x2, y2 = boxes[i].T
        if fh[i]:
            x1, x2 = SIZE - x2, SIZE - x1
        if fv[i]:
            y1, y2 = SIZE - y2, SIZE - y1
        np.testing.assert_allclose(out["bounding_boxes"]["boxes"][i],
                                   np.stack([x1, y1, x2, y2], -1), atol=1e-4)
        expected = masks[i][:, ::-1] if fh[i] else masks[i]
        expected = expected[::-1] if fv[i] else expected
        np.testing.assert_array_equal(out["segmentation_masks"][i], expected)


def test_random_resized_crop_geometry():
    images, boxes, labels, masks = _scene(8, size=48, seed=3)
    layer = RandomResizedCrop(32, 24, scale=(0.2, 1.0), aspect_ratio=(0.5, 2),
                              bounding_box_format="xyxy", max_boxes=4)
    seed = tf.constant([5, 6])
    inputs = _inputs(images, boxes, labels, masks)
    out = layer.augment(inputs, seed)
    top, left, ch, cw = layer.crop_windows(inputs, seed).numpy().T
    assert (ch * cw < 0.9 * 48 * 48).any()
    # Output pixel centre x maps to left + (x + 0.5) * cw / width - 0.5.
    sx, sy = cw / 24, ch / 32
    matrix = np.zeros((8, 3, 3), "float32")
    matrix[:, 0, 0], matrix[:, 0, 2] = sx, left + 0.5 * sx - 0.5
    matrix[:, 1, 1], matrix[:, 1, 2] = sy, top + 0.5 * sy - 0.5
    matrix[:, 2, 2] = 1.0
    assert out["images"].shape == (8, 32, 24, 3)
    _check_geometry(out, masks, matrix, 32, 24, max_boxes=4)


def test_crop_keeps_min_object_covered():
    images, boxes, labels, masks = _scene(8, size=48, seed=4)
    layer = RandomResizedCrop(24, 24, scale=(0.1, 0.5), min_object_covered=0.9,
                              bounding_box_format="xyxy")
    windows = layer.crop_windows(_inputs(images, boxes, labels, masks),
                                 tf.constant([1, 1])).numpy()
    for (top, left, h, w), image_boxes in zip(windows, boxes):
        x1 = np.maximum(image_boxes[:, 0], left)
        y1 = np.maximum(image_boxes[:, 1], top)
        x2 = np.minimum(image_boxes[:, 2], left + w)
        y2 = np.minimum(image_boxes[:, 3], top + h)
        inside = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        area = (image_boxes[:, 2:] - image_boxes[:, :2]).prod(-1)
        assert (inside / area).max() >= 0.9 - 1e-6
        assert h * w <= 0.5 * 48 * 48 + 48


# === Dropping and padding ===

def test_object_moved_out_of_view_is_dropped_and_padded():
    images = np.zeros((2, SIZE, SIZE, 3), "float32")
    masks = np.zeros((2, SIZE, SIZE, 1), "int32")
    masks[:, 5:15, 2:10] = 1     # leaves when content moves left by 30
    masks[:, 20:30, 15:25] = 2   # stays either way? no: moves 30 px too
    masks[:, 30:36, 32:38] = 3   # leaves when content moves right by 30
    boxes = np.array([[[2, 5, 10, 15], [15, 20, 25, 30], [32, 30, 38, 36]]] * 2,
                     "float32")
    labels = np.array([[1, 2, 3]] * 2, "int32")
    layer = ImageAugmentation(width_shift_range=[30], fill_mode="constant",
                              bounding_box_format="xyxy", max_boxes=4)
    seed = next(s for s in (tf.constant([0, i]) for i in range(50))
                if sorted(layer.transform_parameters(images, s)["tx"]) == [-30, 30])
    tx = layer.transform_parameters(images, seed)["tx"].numpy()
    out = layer.augment(_inputs(images, boxes, labels, masks), seed)
    got = out["bounding_boxes"]
    for i in range(2):
        # Content moves by -tx: tx = 30 moves left, objects 1 and 2 leave.
        expected = [3, -1, -1, -1] if tx[i] > 0 else [1, -1, -1, -1]
        np.testing.assert_array_equal(got["labels"][i], expected)
        np.testing.assert_array_equal(got["boxes"][i, 1:], 0)
        first = boxes[i, 2] if tx[i] > 0 else boxes[i, 0]
        np.testing.assert_allclose(got["boxes"][i, 0],
                                   first - [tx[i], 0, tx[i], 0])
    matrix = layer.transform_matrix(images, seed).numpy()
    _check_geometry(out, masks, matrix, SIZE, SIZE, max_boxes=4)
    # `max_boxes` cuts after dropping: the one row left is the survivor.
    one = ImageAugmentation(width_shift_range=[30], bounding_box_format="xyxy",
                            max_boxes=1).augment(
        _inputs(images, boxes, labels, masks), seed)["bounding_boxes"]
    np.testing.assert_array_equal(one["labels"][:, 0],
                                  np.where(tx > 0, 3, 1))


def test_min_box_area_fraction():
    images = np.zeros((1, SIZE, SIZE, 3), "float32")
    boxes = np.array([[[0, 0, 14, 10]]], "float32")  # 4 of 14 columns stay
    inputs = {"images": images,
              "bounding_boxes": {"boxes": boxes, "labels": np.array([[7]])}}
    for fraction, label in [(0.5, -1), (0.2, 7)]:
        layer = ImageAugmentation(width_shift_range=[10],
                                  bounding_box_format="xyxy",
                                  min_box_area_fraction=fraction)
        # A seed moving the content left by 10 px.
        seed = next(s for s in (tf.constant([0, i]) for i in range(50))
                    if layer.transform_parameters(images, s)["tx"][0] == 10)
        out = layer.augment(inputs, seed)["bounding_boxes"]
        assert int(out["labels"][0, 0]) == label


def test_ragged_boxes_and_single_examples():
    images, boxes, labels, masks = _scene(3, seed=5)
    ragged = {"boxes": tf.ragged.constant([boxes[0, :1], boxes[1], boxes[2, :2]],
                                          ragged_rank=1),
              "labels": tf.ragged.constant([labels[0, :1], labels[1],
                                            labels[2, :2]])}
    layer = ImageAugmentation(horizontal_flip=True, bounding_box_format="xyxy",
                              max_boxes=6)
    out = layer({"images": tf.constant(images), "bounding_boxes": ragged})
    assert out["bounding_boxes"]["boxes"].shape == (3, 6, 4)
    np.testing.assert_array_equal((out["bounding_boxes"]["labels"] != -1)
                                  .numpy().sum(1), [1, 3, 2])
    one = layer.augment(_inputs(images[0], boxes[0], labels[0], masks[0]),
                        tf.constant([1, 2]))
    assert one["images"].shape == (SIZE, SIZE, 3)
    assert one["bounding_boxes"]["boxes"].shape == (6, 4)
    assert one["segmentation_masks"].shape == (SIZE, SIZE, 1)


def test_box_formats_round_trip():
    images, boxes, labels, masks = _scene(4, seed=6)
    seed = tf.constant([2, 2])
    kwargs = dict(rotation_range=20, zoom_range=0.2, horizontal_flip=True,
                  max_boxes=4)
    reference = ImageAugmentation(bounding_box_format="xyxy", **kwargs)
    ref = reference.augment(_inputs(images, boxes, labels, masks), seed)
    ref_boxes = ref["bounding_boxes"]["boxes"].numpy()
    convert = keras.utils.bounding_boxes.convert_format
    for fmt in FORMATS:
        layer = ImageAugmentation(bounding_box_format=fmt.upper(), **kwargs)
        given = convert(boxes, "xyxy", fmt, height=SIZE, width=SIZE)
        out = layer.augment(_inputs(images, given, labels, masks), seed)
        back = convert(out["bounding_boxes"]["boxes"], fmt, "xyxy",
                       height=SIZE, width=SIZE).numpy()
        kept = ref["bounding_boxes"]["labels"].numpy() != -1
        np.testing.assert_allclose(back[kept], ref_boxes[kept], atol=1e-3,
                                   err_msg=fmt)
        np.testing.assert_array_equal(out["bounding_boxes"]["labels"],
                                      ref["bounding_boxes"]["labels"])


# === Unchanged paths ===

def test_plain_images_and_photometric_ops_leave_labels_alone():
    images, boxes, labels, masks = _scene(4, seed=7)
    seed = tf.constant([9, 9])
    kw = dict(brightness_range=(0.5, 1.5), channel_shift_range=30.0)
    plain = ImageAugmentation(**kw).augment(images, seed)
    layer = ImageAugmentation(**kw, bounding_box_format="xyxy")
    np.testing.assert_array_equal(layer.augment(images, seed), plain)
    out = layer.augment(_inputs(images, boxes, labels, masks), seed)
    np.testing.assert_array_equal(out["images"], plain)
    assert not np.allclose(plain, images)
    np.testing.assert_array_equal(out["bounding_boxes"]["boxes"], boxes)
    np.testing.assert_array_equal(out["segmentation_masks"], masks)


def test_mask_fill_value_marks_pixels_from_outside():
    images, boxes, labels, masks = _scene(4, seed=8)
    layer = ImageAugmentation(rotation_range=40, zoom_range=(1.2, 1.4),
                              mask_fill_value=255)
    seed = tf.constant([4, 0])
    out = layer.augment({"images": images, "segmentation_masks": masks}, seed)
    inside = _warp_nearest(np.ones((4, SIZE, SIZE), "float32"),
                           layer.transform_matrix(images, seed), SIZE, SIZE)
    got = out["segmentation_masks"].numpy()[..., 0]
    assert (inside == 0).any()
    np.testing.assert_array_equal(got == 255, inside == 0)


def test_inference_only_pads_boxes():
    images, boxes, labels, masks = _scene(2, seed=9)
    layer = ImageAugmentation(rotation_range=30, rescale=0.5,
                              bounding_box_format="xyxy", max_boxes=5)
    out = layer(_inputs(images, boxes, labels, masks), training=False)
    np.testing.assert_allclose(out["images"], images * 0.5)
    np.testing.assert_array_equal(out["bounding_boxes"]["boxes"][:, :3], boxes)
    np.testing.assert_array_equal(out["bounding_boxes"]["labels"][:, 3:], -1)
    np.testing.assert_array_equal(out["segmentation_masks"], masks)


def test_seeded_dicts_in_tf_data():
    images, boxes, labels, masks = _scene(8, seed=10)
    ragged = tf.ragged.constant([b[: 1 + i % 3] for i, b in enumerate(boxes)],
                                ragged_rank=1)
    ragged_labels = tf.ragged.constant([l[: 1 + i % 3]
                                        for i, l in enumerate(labels)])
    data = tf.data.Dataset.from_tensor_slices(
        {"images": images, "segmentation_masks": masks,
         "bounding_boxes": {"boxes": ragged, "labels": ragged_labels}})
    layer = ImageAugmentation(rotation_range=20, horizontal_flip=True,
                              bounding_box_format="xyxy", max_boxes=4, seed=1)
    batches = data.ragged_batch(4, drop_remainder=True).map(
        lambda x: layer(x, training=True))
    spec = batches.element_spec
    assert spec["bounding_boxes"]["boxes"].shape == (4, 4, 4)
    assert spec["images"].shape == (4, SIZE, SIZE, 3)
    first = [next(iter(batches)) for _ in range(2)]
    assert not np.allclose(first[0]["images"], first[1]["images"])
    # The stateless path (what resuming relies on): same seed, same batch.
    batch = next(iter(tf.data.Dataset.from_tensor_slices(
        _inputs(images, boxes, labels, masks)).batch(4)))
    crop = RandomResizedCrop(24, 24, bounding_box_format="xyxy", max_boxes=4)
    for aug in (layer, crop):
        runs = [aug.augment(batch, tf.constant(s)) for s in ([7, 0], [7, 0],
                                                            [8, 0])]
        for key in ("images", "segmentation_masks"):
            np.testing.assert_array_equal(runs[0][key], runs[1][key])
            assert not np.array_equal(runs[0][key], runs[2][key])
        np.testing.assert_array_equal(runs[0]["bounding_boxes"]["boxes"],
                                      runs[1]["bounding_boxes"]["boxes"])
    cropped = data.ragged_batch(4).map(lambda x: crop(x, training=True))
    assert cropped.element_spec["images"].shape[1:] == (24, 24, 3)
    assert next(iter(cropped))["bounding_boxes"]["labels"].shape == (4, 4)


# === Serialization ===

def test_config_and_model_roundtrip():
    aug = ImageAugmentation(rotation_range=10, bounding_box_format="rel_xyxy",
                            max_boxes=7, min_box_area_fraction=0.25,
                            mask_fill_value=255, seed=2)
    clone = assert_config_roundtrip(aug)
    assert (clone.bounding_box_format, clone.max_boxes,
            clone.min_box_area_fraction, clone.mask_fill_value) == (
        "rel_xyxy", 7, 0.25, 255)
    crop = RandomResizedCrop(16, 16, scale=(0.5, 1.0), min_object_covered=0.3,
                             bounding_box_format="xywh", max_boxes=3, seed=1)
    assert assert_config_roundtrip(crop).min_object_covered == 0.3
    inputs = keras.Input((24, 24, 3))
    x = aug(crop(inputs))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3)(x))
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    reloaded = assert_model_roundtrip(model, _scene(2, size=24)[0])
    assert [type(l) for l in reloaded.layers[1:3]] == [RandomResizedCrop,
                                                       ImageAugmentation]


def test_dict_model_symbolic_and_saved():
    inputs = {"images": keras.Input((SIZE, SIZE, 3), name="images"),
              "bounding_boxes": {
                  "boxes": keras.Input((3, 4), name="boxes"),
                  "labels": keras.Input((3,), dtype="int32", name="labels")}}
    out = ImageAugmentation(horizontal_flip=True, bounding_box_format="xyxy",
                            max_boxes=5)(inputs)
    assert out["bounding_boxes"]["boxes"].shape == (None, 5, 4)
    assert out["bounding_boxes"]["labels"].dtype == "int32"
    model = keras.Model(inputs, out)
    images, boxes, labels, _ = _scene(2, seed=11)
    data = {"images": images,
            "bounding_boxes": {"boxes": boxes, "labels": labels}}
    reloaded = assert_model_roundtrip(model, data)
    trained = reloaded(data, training=True)
    assert trained["bounding_boxes"]["labels"].shape == (2, 5)


def test_bad_arguments():
    for kwargs, match in [
        (dict(bounding_box_format="xyz"), "bounding_box_format"),
        (dict(max_boxes=0), "max_boxes"),
        (dict(min_box_area_fraction=1.5), "min_box_area_fraction"),
    ]:
        with pytest.raises(ValueError, match=match):
            ImageAugmentation(**kwargs)
    with pytest.raises(TypeError, match="mask_fill_value"):
        ImageAugmentation(mask_fill_value="ignore")
    with pytest.raises(ValueError, match="scale"):
        RandomResizedCrop(8, 8, scale=(0.5, 2.0))
    images, boxes, labels, masks = _scene(1)
    with pytest.raises(ValueError, match="bounding_box_format"):
        ImageAugmentation(rotation_range=5)(_inputs(images, boxes, labels,
                                                    masks))
