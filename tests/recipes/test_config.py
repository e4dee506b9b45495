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


def test_unknown_option_of_replace_is_named():
    config = ImageClassificationConfig()
    with pytest.raises(ValueError, match=r"Unknown ImageClassificationConfig "
                       r"option\(s\) \['lr'\]. Known options: \['output_dir'"):
        config.replace(lr=0.1)
    assert config.replace(epochs=4).epochs == 4


def test_refused_field_has_no_flag_and_only_its_default():
    import dataclasses

    from kerasft.recipes.config import RecipeConfig, field

    @dataclasses.dataclass(frozen=True)
    class Refusing(RecipeConfig):
        _recipe = "refusing"
        stride: int = field(0, "Not supported.", refused="is not used by "
                            "{recipe} (no windows)")

    meta = {f.name: f.metadata for f in dataclasses.fields(Refusing)}
    assert meta["stride"]["cli"] is False and meta["epochs"]["cli"] is True
    assert Refusing().stride == 0
    with pytest.raises(ValueError) as error:
        Refusing(stride=2)
    assert str(error.value) == (
        "`stride` is not used by refusing (no windows). Received: stride=2")


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


def test_choices_take_hyphens_too():
    assert ImageClassificationConfig(mode="feature-extraction").mode == "feature_extraction"
    with pytest.raises(ValueError, match="`mode` must be one of"):
        ImageClassificationConfig(mode="feature-extractor")


def test_identity_records_data_fingerprints_and_loads_back(tmp_path):
    (tmp_path / "train" / "cat").mkdir(parents=True)
    (tmp_path / "train" / "cat" / "a.png").write_bytes(b"abc")
    config = ImageClassificationConfig(
        train=str(tmp_path / "train"), output_dir=str(tmp_path / "train" / "run")
    )
    identity = config.identity()
    fingerprint = identity["data_fingerprint"]["train"]
    assert fingerprint["classes"] == ["cat"] and fingerprint["files"] == 1
    # The run's own folder inside the data folder does not count.
    (tmp_path / "train" / "run").mkdir()
    (tmp_path / "train" / "run" / "x.txt").write_text("x")
    assert config.data_fingerprint() == identity["data_fingerprint"]
    # A run's config.json works as a config file.
    again = ImageClassificationConfig.from_dict(json.loads(json.dumps(identity)))
    assert again == config


def test_default_validation_split():
    assert ImageClassificationConfig().validation_split == 0.1
    assert TextClassificationConfig().validation_split == 0.1
    with pytest.raises(ValueError, match="`validation_split` must be in"):
        TextClassificationConfig(validation_split=1.0)


def test_configs_module_does_not_import_tensorflow():
    import subprocess
    import sys

    code = ("import sys, kerasft.recipes.configs, kerasft.recipes, kerasft.cli; "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr[-2000:]


def test_holdout_is_stratified():
    from kerasft.data._split import holdout_indices

    labels = np.array([0] * 30 + [1] * 10)
    train, val = holdout_indices(labels, 0.1, seed=0)
    assert len(val) == 4 and sorted(labels[val].tolist()) == [0, 0, 0, 1]
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(40))
    with pytest.raises(ValueError, match="leaves no training data"):
        holdout_indices(np.array([0]), 0.5, seed=0)


def test_ignored_values_are_those_set_away_from_defaults():
    from kerasft.recipes.configs import ignored_values

    assert ignored_values(ImageClassificationConfig(mode="feature_extraction")) == {}
    config = ImageClassificationConfig(mode="full", unfreeze_groups=4, layer_decay=0.5)
    assert ignored_values(config) == {
        "unfreeze_groups": "full fine-tuning opens every group"}
