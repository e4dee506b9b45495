"""kerasft.data.tfds with local tfds builders (nothing downloads here)."""

import os

import numpy as np
import pytest

from kerasft.data import tfds as kerasft_tfds
from tests.data._folders import label_from_pixels
from tests.data._folders import make_folder

tfds_lib = pytest.importorskip("tensorflow_datasets")


class KerasftSyntheticColours(tfds_lib.core.GeneratorBasedBuilder):
    """A registered builder generating flat-colour images offline."""

    VERSION = tfds_lib.core.Version("1.0.0")

    def _info(self):
        return tfds_lib.core.DatasetInfo(
            builder=self,
            features=tfds_lib.features.FeaturesDict({
                "image": tfds_lib.features.Image(shape=(None, None, 3)),
                "label": tfds_lib.features.ClassLabel(
                    names=["red", "green", "blue"]),
            }),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(9)}

    def _generate_examples(self, n):
        from tests.data._folders import COLOURS

        for i in range(n):
            label = i % 3
            image = np.zeros((10 + i, 12, 3), np.uint8) + np.uint8(
                COLOURS[label])
            yield i, {"image": image, "label": label}


def test_registered_name_goes_through_tfds(tmp_path):
    data = kerasft_tfds("kerasft_synthetic_colours", "train[:6]", (8, 8),
                        batch_size=4, data_dir=str(tmp_path), seed=0,
                        label_mode="categorical")
    assert data.class_names == ("red", "green", "blue")
    assert data.num_samples == 6
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in data.dataset])
    x, y = np.concatenate(xs), np.concatenate(ys)
    assert x.shape == (6, 8, 8, 3) and y.shape == (6, 3)
    assert data.class_counts == tuple(y.sum(axis=0).astype(int))
    np.testing.assert_array_equal(label_from_pixels(x), y.argmax(1))


def test_folder_builder_with_augmentation(tmp_path):
    root = str(tmp_path / "root")
    make_folder(os.path.join(root, "train"), [3, 2], size=8)
    builder = tfds_lib.folder_dataset.ImageFolder(root)
    data = kerasft_tfds(builder, "train", 8, batch_size=5,
                        augment=dict(horizontal_flip=True), seed=1)
    assert data.class_counts == (3, 2)
    x, y = next(iter(data.dataset))
    assert x.shape == (5, 8, 8, 3)
    np.testing.assert_array_equal(label_from_pixels(x.numpy()),
                                  y.numpy())
    with pytest.raises(TypeError, match="DatasetBuilder"):
        kerasft_tfds(3, "train", 8, 4)
