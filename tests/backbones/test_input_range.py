"""`check_input_range` warns on images already scaled to [0, 1]."""

import warnings

import numpy as np
import pytest

from kerasft.backbones import Backbone
from kerasft.backbones import check_input_range


def _backbone(input_range=(0, 255)):
    return Backbone(
        model=None, preprocess=None, groups=[], name="net",
        input_range=input_range,
    )


def test_warns_naming_max_and_range():
    images = np.random.default_rng(0).uniform(0, 1, (2, 4, 4, 3))
    observed = float(images.max())
    with pytest.warns(UserWarning) as record:
        assert check_input_range(images, _backbone()) is False
    message = str(record[0].message)
    assert f"{observed:.4g}" in message
    assert "(0, 255)" in message
    assert "'net'" in message


def test_raw_pixels_pass_quietly():
    images = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_input_range(images, _backbone()) is True
        assert check_input_range(images.astype("uint8"), (0, 255)) is True
        # A model that wants [0, 1] is happy with [0, 1] images.
        assert check_input_range(images / 255, _backbone((0, 1))) is True
        # Token ids: no image range to check.
        assert check_input_range(np.ones((2, 3)), _backbone(None)) is True


def test_bad_backbone_argument():
    with pytest.raises(TypeError, match="input range"):
        check_input_range(np.ones((1, 2)), "resnet50")
