"""Recipe configs: dict/file round trips, validation, object descriptions."""

import json

import numpy as np
import pytest

from kerasft.recipes import ImageClassificationConfig, TextClassificationConfig
from kerasft.recipes.config import describe, resolve_config


def test_to_dict_from_dict_round_trip():
    config = ImageClassificationConfig(
        train="data/train", backbone="mobilenetv2", epochs=5, head_units=(64, 32),
        augment={"rotation_range": 20},
    )
    data = config.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["head_units"] == [64, 32]
    again = ImageClassificationConfig.from_dict(json.loads(json.dumps(data)))
    assert again == config
    assert again.head_units == (64, 32)


def test_unknown_option_is_named():
    with pytest.raises(ValueError, match=r"Unknown ImageClassificationConfig option\(s\) \['epoch'\]"):
        ImageClassificationConfig.from_dict({"epoch": 3})
    with pytest.raises(TypeError, match="lr"):
        resolve_config(ImageClassificationConfig, None, lr=0.1)


def test_json_and_yaml_files_with_overrides(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"epochs": 7, "backbone": "vgg16"}))
    config = ImageClassificationConfig.from_file(str(path), epochs=9)
    assert (config.epochs, config.backbone) == (9, "vgg16")
    yaml_path = tmp_path / "c.yaml"
    yaml_path.write_text("epochs: 4\nmode: feature_extraction\nhead_units: [16]\n")
    config = resolve_config(ImageClassificationConfig, str(yaml_path), batch_size=8)
    assert (config.epochs, config.mode, config.head_units, config.batch_size) == (
        4, "feature_extraction", (16,), 8,
    )
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="must hold a mapping"):
        ImageClassificationConfig.from_file(str(bad))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": 0}, "`epochs` must be a positive integer"),
        ({"batch_size": 2.5}, "`batch_size` must be a positive integer"),
        ({"learning_rate": -1.0}, "`learning_rate` must be a positive number"),
        ({"mode": "half"}, "`mode` must be one of"),
        ({"mode": "progressive", "epochs": 3, "head_epochs": 2}, "needs epochs >= 4"),
        ({"validation_split": 1.0}, "`validation_split` must be in"),
        ({"layer_decay": 1.5}, "`layer_decay` must be in"),
        ({"precision": "half"}, "`precision` must be one of"),
    ],
)
def test_bad_values_fail_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ImageClassificationConfig(**kwargs)


def test_describe_summarizes_objects():
    x = np.zeros((4, 2, 2, 3), "float32")
    y = np.array([0, 1, 0, 1])
    first = describe((x, y))
    assert first["arrays"][0]["shape"] == [4, 2, 2, 3]
    y2 = y.copy()
    y2[0] = 1
    assert describe((x, y2)) != first  # a changed label changes the digest
    assert describe((x, y)) == first


def test_text_config_defaults_and_cli_names():
    config = TextClassificationConfig(train="t.csv", max_length=32)
    assert config.learning_rate == 2e-5
    assert "max_length" in TextClassificationConfig.field_names()
    with pytest.raises(ValueError, match="`max_length` must be an integer >= 8"):
        TextClassificationConfig(max_length=4)
