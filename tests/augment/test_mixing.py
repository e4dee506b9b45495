"""MixUp and CutMix: soft labels that sum to 1 and match the pixels mixed."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasft.augment import CutMix
from kerasft.augment import MixUp
from kerasft.augment import rand_augment
from tests.helpers import assert_config_roundtrip


def _two_class_batch(n=16, size=12):
    """Class 0 images are all 0, class 1 all 255: the fraction of class 1 in
    each mixed pixel is readable from its value."""
    labels = np.arange(n) % 2
    images = np.zeros((n, size, size, 3), "float32")
    images[labels == 1] = 255.0
    return images, keras.utils.to_categorical(labels, 2)


def test_mixup_labels_sum_to_one_and_match_the_images():
    images, labels = _two_class_batch()
    mixed, soft = MixUp(alpha=0.4, seed=0)(images, labels)
    soft = soft.numpy()
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-6)
    # Every pixel of image i is 255 * (class-1 mass of its label).
    np.testing.assert_allclose(mixed.numpy()[:, 0, 0, 0], 255 * soft[:, 1],
                               atol=1e-3)
    assert mixed.numpy().std(axis=(1, 2, 3)).max() < 1e-3
    assert ((soft > 0.01) & (soft < 0.99)).any()  # some labels are soft


def test_cutmix_label_mass_equals_pasted_area():
    images, labels = _two_class_batch()
    mixed, soft = CutMix(alpha=1.0, seed=1)(images, labels)
    soft = soft.numpy()
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-6)
    area_class1 = (mixed.numpy()[..., 0] == 255.0).mean(axis=(1, 2))
    np.testing.assert_allclose(area_class1, soft[:, 1], atol=1e-5)
    assert ((area_class1 > 0) & (area_class1 < 1)).any()


def test_mixers_in_tf_data_are_deterministic_with_seed():
    images, labels = _two_class_batch()
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
    for cls in (MixUp, CutMix):
        a = [y.numpy() for _, y in ds.map(cls(seed=4))]
        b = [y.numpy() for _, y in ds.map(cls(seed=4))]
        np.testing.assert_array_equal(np.concatenate(a), np.concatenate(b))
        assert not np.allclose(a[0], a[1])


def test_sparse_labels_are_a_clear_error():
    images, labels = _two_class_batch()
    with pytest.raises(ValueError, match="one-hot labels"):
        MixUp()(images, np.arange(16))


def test_bad_alpha_and_config_roundtrip():
    with pytest.raises(ValueError, match="alpha"):
        MixUp(alpha=0)
    clone = assert_config_roundtrip(CutMix(alpha=0.5, seed=3))
    assert clone.alpha == 0.5 and clone.seed == 3
    assert_config_roundtrip(MixUp(alpha=0.2))


def test_rand_augment_pass_through_runs_on_0_255_batches():
    layer = rand_augment(num_ops=2, factor=0.5, seed=0)
    assert isinstance(layer, keras.layers.RandAugment)
    x = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 3)).astype(
        "float32")
    out = layer(x).numpy()
    assert out.shape == x.shape and 0 <= out.min() and out.max() <= 255.0


def test_mixing_is_keras_layers_and_stays_float32_under_mixed_policy():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    images, labels = _two_class_batch()
    for cls, keras_cls in ((MixUp, keras.layers.MixUp), (CutMix, keras.layers.CutMix)):
        mixer = cls(seed=0)
        assert isinstance(mixer._layer, keras_cls)
        mixed, soft = mixer.mix(images, labels, tf.constant([3, 4]))
        assert mixed.dtype == tf.float32 and soft.dtype == tf.float32
        again, _ = mixer.mix(images, labels, tf.constant([3, 4]))
        np.testing.assert_array_equal(mixed.numpy(), again.numpy())  # stateless


def test_keras_cutmix_labels_differ_from_pasted_area():
    # Why CutMix draws its own box (see its docstring): Keras 3.15 mixes
    # labels by the fractional box area but pastes whole pixels.
    images, labels = _two_class_batch()
    out = keras.layers.CutMix(seed=1)({"images": images, "labels": labels})
    area = (out["images"].numpy()[..., 0] == 255.0).mean(axis=(1, 2))
    assert np.abs(area - out["labels"].numpy()[:, 1]).max() > 0.02
