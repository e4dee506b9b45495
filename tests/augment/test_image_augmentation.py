"""ImageAugmentation: IDG's meaning, exact match with IDG's own transforms."""

import keras
import numpy as np
import pytest
import scipy.ndimage
import tensorflow as tf

from kerasft.augment import ImageAugmentation
from kerasft.augment import _affine
from tests._required import import_required
from tests.helpers import assert_config_roundtrip
from tests.helpers import assert_model_roundtrip

# The ground truth: ImageDataGenerator's own transforms (Keras 3.15 keeps
# them only in its legacy package).
legacy_image = import_required(
    "keras.src.legacy.preprocessing.image", "install keras>=3.15,<3.16"
)
FILL_MODES = ("nearest", "reflect", "wrap", "constant")


def _smooth_images(n, size, seed=0):
    """Smooth random images in [0, 255]: bilinear interpolation is exact
    enough to compare, and every pixel differs from its neighbours."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, (n, size, size, 3))
    x = scipy.ndimage.gaussian_filter(x, (0, 1.5, 1.5, 0))
    return x.astype("float32")


def _seed(a, b=0):
    return tf.constant([a, b], tf.int32)


# === The fused warp equals IDG's apply_affine_transform ===

WARP_CASES = [
    dict(theta=20),
    dict(tx=3.3, ty=-5),
    dict(shear=15),
    dict(zx=1.2, zy=0.8),
    dict(theta=-37, tx=9, ty=4, shear=10, zx=0.9, zy=1.1),
]


def test_warp_matches_apply_affine_transform():
    x = _smooth_images(1, 24)[0]
    for fill_mode in FILL_MODES:
        for params in WARP_CASES:
            kw = {**dict(theta=0, tx=0, ty=0, shear=0, zx=1, zy=1), **params}
            expected = legacy_image.apply_affine_transform(
                x, **kw, row_axis=0, col_axis=1, channel_axis=2,
                fill_mode=fill_mode, cval=7.0,
            )
            args = [tf.constant([kw[k]], tf.float32)
                    for k in ("theta", "tx", "ty", "shear", "zx", "zy")]
            matrix = _affine.idg_matrix(*args, 24, 24)
            got = _affine.warp(tf.constant(x[None]), matrix, fill_mode, 7.0)
            np.testing.assert_allclose(got[0], expected, atol=1e-3,
                                       err_msg=f"{fill_mode} {params}")


def test_layer_matches_idg_apply_transform():
    """All IDG transforms at once, parameters drawn by the layer, each image
    transformed by IDG itself with the same parameters."""
    for fill_mode in FILL_MODES:
        _compare_layer_with_idg(fill_mode)


def _compare_layer_with_idg(fill_mode):
    kwargs = dict(
        rotation_range=30, width_shift_range=0.2, height_shift_range=0.2,
        shear_range=20, zoom_range=0.2, horizontal_flip=True,
        vertical_flip=True, channel_shift_range=30.0,
        fill_mode=fill_mode, cval=11.0,
    )
    layer = ImageAugmentation(**kwargs, seed=3)
    idg = legacy_image.ImageDataGenerator(**kwargs)
    x = _smooth_images(6, 20)
    seed = _seed(5)
    got = layer.augment(x, seed).numpy()
    params = {k: v.numpy() for k, v in
              layer.transform_parameters(x, seed).items()}
    assert params["flip_horizontal"].any() and not params["flip_horizontal"].all()
    for i in range(len(x)):
        p = {k: v[i] for k, v in params.items()}
        del p["brightness"]
        expected = idg.apply_transform(x[i], p)
        np.testing.assert_allclose(got[i], expected, atol=1e-2)


def test_brightness_matches_idg_within_its_uint8_rounding():
    layer = ImageAugmentation(brightness_range=[0.5, 1.5])
    idg = legacy_image.ImageDataGenerator(brightness_range=[0.5, 1.5])
    x = _smooth_images(4, 16)
    seed = _seed(1)
    got = layer.augment(x, seed).numpy()
    factors = layer.transform_parameters(x, seed)["brightness"].numpy()
    assert np.all((factors >= 0.5) & (factors <= 1.5))
    for i in range(4):
        expected = idg.apply_transform(x[i], {"brightness": factors[i]})
        np.testing.assert_allclose(got[i], expected, atol=2.6)
        np.testing.assert_allclose(got[i], np.clip(x[i] * factors[i], 0, 255),
                                   atol=1e-3)


# === Each argument's effect on synthetic images ===

def test_horizontal_and_vertical_flip():
    x = _smooth_images(16, 8)
    out = ImageAugmentation(horizontal_flip=True).augment(x, _seed(0)).numpy()
    flipped = [np.allclose(o, xi[:, ::-1], atol=1e-4) for o, xi in zip(out, x)]
    same = [np.allclose(o, xi, atol=1e-4) for o, xi in zip(out, x)]
    assert all(f or s for f, s in zip(flipped, same))
    assert any(flipped) and any(same)
    out = ImageAugmentation(vertical_flip=True).augment(x, _seed(0)).numpy()
    flipped = [np.allclose(o, xi[::-1], atol=1e-4) for o, xi in zip(out, x)]
    assert any(flipped) and not all(flipped)


@pytest.mark.parametrize("axis,kwarg", [(2, "width_shift_range"),
                                        (1, "height_shift_range")])
def test_shift_moves_by_expected_pixels(axis, kwarg):
    x = _smooth_images(8, 20)
    out = ImageAugmentation(**{kwarg: [5]}).augment(x, _seed(2)).numpy()
    inner = slice(5, -5)
    index = [slice(None)] * 4
    index[axis] = inner
    signs = []
    for o, xi in zip(out, x):
        for s in (5, -5):
            if np.allclose(np.roll(xi, s, axis=axis - 1)[tuple(index[1:])],
                           o[tuple(index[1:])], atol=1e-3):
                signs.append(s)
    assert len(signs) == 8 and set(signs) == {5, -5}


def test_fractional_shift_is_a_fraction_of_size():
    # One bright column at x=16 of a 32-wide image; 0.25 -> |shift| < 8 px.
    x = np.zeros((32, 32, 32, 1), "float32")
    x[:, :, 16] = 255.0
    layer = ImageAugmentation(width_shift_range=0.25, fill_mode="constant")
    out = layer.augment(x, _seed(4)).numpy()
    centres = (out[:, 10] * np.arange(32)[None, :, None]).sum((1, 2)) / (
        out[:, 10].sum((1, 2)))
    shifts = centres - 16
    assert np.abs(shifts).max() < 8 and np.abs(shifts).max() > 4
    tx = layer.transform_parameters(x, _seed(4))["tx"].numpy()
    np.testing.assert_allclose(shifts, -tx, atol=1e-3)


def test_rotation_keeps_the_centre_pixel():
    x = _smooth_images(8, 31)
    out = ImageAugmentation(rotation_range=90).augment(x, _seed(0)).numpy()
    np.testing.assert_allclose(out[:, 15, 15], x[:, 15, 15], atol=1e-3)
    assert not np.allclose(out, x, atol=1.0)


def test_zoom_above_one_zooms_out():
    x = _smooth_images(2, 21)
    out = ImageAugmentation(zoom_range=[2.0, 2.0]).augment(x, _seed(0))
    out = out.numpy()
    c = 10
    for d in range(-5, 6):
        np.testing.assert_allclose(out[:, c + d, c], x[:, c + 2 * d, c],
                                   atol=1e-3)


def test_zoom_float_means_one_plus_minus():
    layer = ImageAugmentation(zoom_range=0.3)
    assert layer.zoom_range == (0.7, 1.3)
    p = layer.transform_parameters(np.zeros((64, 8, 8, 3)), _seed(0))
    assert 0.7 <= p["zx"].numpy().min() and p["zy"].numpy().max() <= 1.3


def test_shear_moves_rows_in_proportion_to_distance_from_centre():
    # IDG's shear (angle s): input x = x_out - sin(s) * (y_out - cy).
    x = _smooth_images(1, 21)
    matrix = _affine.idg_matrix([0.0], [0.0], [0.0], [30.0], [1.0], [1.0],
                                21, 21)
    np.testing.assert_allclose(matrix[0, 0, 1], -np.sin(np.pi / 6), atol=1e-6)
    out = _affine.warp(tf.constant(x), matrix).numpy()
    np.testing.assert_allclose(out[0, 10], x[0, 10], atol=1e-3)  # centre row


def test_channel_shift_adds_same_intensity_clipped_to_image_range():
    x = _smooth_images(4, 8)
    layer = ImageAugmentation(channel_shift_range=40.0)
    out = layer.augment(x, _seed(0)).numpy()
    shift = layer.transform_parameters(x, _seed(0))[
        "channel_shift_intensity"].numpy()
    for o, xi, s in zip(out, x, shift):
        np.testing.assert_allclose(o, np.clip(xi + s, xi.min(), xi.max()),
                                   atol=1e-3)


def test_rescale_applies_in_training_and_inference():
    x = _smooth_images(2, 8)
    layer = ImageAugmentation(horizontal_flip=True, rescale=1 / 255)
    np.testing.assert_allclose(layer(x, training=False), x / 255, atol=1e-6)
    assert float(tf.reduce_max(layer(x))) <= 1.0


# === Behaviour as a layer ===

def test_deterministic_with_seed():
    x = _smooth_images(4, 16)
    kw = dict(rotation_range=20, zoom_range=0.2, horizontal_flip=True)
    a, b = ImageAugmentation(**kw, seed=7), ImageAugmentation(**kw, seed=7)
    first = [a(x).numpy(), a(x).numpy()]
    np.testing.assert_array_equal(first[0], b(x).numpy())
    np.testing.assert_array_equal(first[1], b(x).numpy())
    assert not np.allclose(first[0], first[1])  # new draw per call
    other = ImageAugmentation(**kw, seed=8)(x).numpy()
    assert not np.allclose(first[0], other)


def test_inactive_at_inference_in_a_model():
    inputs = keras.Input((16, 16, 3))
    outputs = ImageAugmentation(rotation_range=40, horizontal_flip=True)(inputs)
    model = keras.Model(inputs, outputs)
    x = _smooth_images(3, 16)
    np.testing.assert_allclose(model.predict(x, verbose=0), x, atol=1e-5)
    assert not np.allclose(model(x, training=True), x, atol=1.0)


def test_works_batched_inside_tf_data_and_single_images():
    layer = ImageAugmentation(rotation_range=20, fill_mode="reflect", seed=1)
    x = _smooth_images(8, 16)
    ds = tf.data.Dataset.from_tensor_slices(x).batch(4).map(layer)
    batches = list(ds)
    assert [b.shape for b in batches] == [(4, 16, 16, 3)] * 2
    assert batches[0].dtype == tf.float32
    single = tf.data.Dataset.from_tensor_slices(x.astype("uint8")).map(layer)
    assert next(iter(single)).shape == (16, 16, 3)


def test_trains_inside_a_model_and_declines_xla():
    layer = ImageAugmentation(rotation_range=10, shear_range=5, seed=0)
    assert layer.supports_jit is False
    model = keras.Sequential([
        keras.Input((16, 16, 3)), layer, keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(4, 3), keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(2),
    ])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(True))
    history = model.fit(_smooth_images(8, 16), np.arange(8) % 2, epochs=1,
                        verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_trains_under_mirrored_strategy(two_cpu_strategy):
    with two_cpu_strategy.scope():
        model = keras.Sequential([
            keras.Input((16, 16, 3)),
            ImageAugmentation(rotation_range=10, horizontal_flip=True,
                              rescale=1 / 255, seed=0),
            keras.layers.Conv2D(2, 3), keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2),
        ])
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(True))
    history = model.fit(_smooth_images(8, 16), np.arange(8) % 2,
                        batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_float32_under_mixed_bfloat16():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    inputs = keras.Input((16, 16, 3))
    x = ImageAugmentation(rotation_range=20)(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3)(x))
    out = model(_smooth_images(2, 16), training=True)
    assert out.dtype == tf.bfloat16  # the conv computes in bf16 after it


def test_config_and_model_roundtrip():
    layer = ImageAugmentation(
        rotation_range=20, width_shift_range=[2, 4], height_shift_range=3,
        shear_range=0.2, zoom_range=(0.8, 1.2), horizontal_flip=True,
        brightness_range=(0.9, 1.1), channel_shift_range=5.0,
        fill_mode="constant", cval=3.0, rescale=0.5, seed=9,
    )
    clone = assert_config_roundtrip(layer)
    assert clone.zoom_range == (0.8, 1.2)
    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, keras.layers.Dense(2)(layer(inputs)))
    reloaded = assert_model_roundtrip(model, _smooth_images(2, 16))
    assert isinstance(reloaded.layers[1], ImageAugmentation)


# === Argument errors ===

def test_misspelled_kwarg_is_a_clear_error():
    with pytest.raises(TypeError, match="Did you mean `rotation_range`"):
        ImageAugmentation(rotaton_range=20)
    with pytest.raises(TypeError, match="Supported arguments: rotation_range"):
        ImageAugmentation(whatever=1)


def test_statistics_kwargs_say_what_to_do():
    for kwarg, advice in [("featurewise_center", "Normalization"),
                          ("zca_whitening", "preprocessing"),
                          ("samplewise_std_normalization", "std"),
                          ("preprocessing_function", "dataset.map"),
                          ("validation_split", "image_folder")]:
        with pytest.raises(ValueError, match=f"does not take `{kwarg}`.*"
                                             f"{advice}"):
            ImageAugmentation(**{kwarg: True})


def test_bad_values():
    for kwargs, match in [
        (dict(fill_mode="mirror"), "fill_mode"),
        (dict(zoom_range=[1.2]), "zoom_range"),
        (dict(zoom_range=1.5), "zoom_range"),
        (dict(rotation_range=-1), "rotation_range"),
        (dict(brightness_range=0.5), "brightness_range"),
        (dict(interpolation_order=3), "interpolation_order"),
    ]:
        with pytest.raises(ValueError, match=match):
            ImageAugmentation(**kwargs)
    with pytest.raises(TypeError, match="horizontal_flip"):
        ImageAugmentation(horizontal_flip="yes")
