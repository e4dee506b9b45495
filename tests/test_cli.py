"""The `kerasft` command line and the `recipes/` scripts."""

import dataclasses
import glob
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from kerasft import __version__, cli, recipes
from kerasft.recipes.config import load_config_file
from tests.recipes.tiny import tiny_images, tiny_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"kerasft {__version__}"


def _subparsers():
    parser = cli.build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


@pytest.mark.parametrize("command", sorted(cli._recipes()))
def test_help_documents_every_option(command):
    _, config_class, _ = cli._recipes()[command]
    text = _subparsers()[command].format_help()
    fixed = cli._FIXED.get(command, ())
    for f in dataclasses.fields(config_class):
        if f.name in fixed:
            assert f"--{f.name}" not in text
            continue
        flag = cli._FLAG_NAMES.get(f.name, ["--" + f.name.replace("_", "-")])[0]
        assert flag in text, (command, flag)
        assert f.metadata["help"].split()[0] in text
    assert "--config FILE" in text and "--overwrite" in text


def test_text_classification_flags_from_the_issue(tmp_path):
    args = cli.build_parser().parse_args(
        ["text-classification", "--train", "train.csv", "--val", "val.csv",
         "--backbone", "some/folder", "--epochs", "2", "--batch-size", "8",
         "--max-length", "64", "--output", str(tmp_path), "--layer-decay", "none"]
    )
    config = cli.config_from_args(recipes.TextClassificationConfig, args)
    assert (config.train, config.validation, config.backbone) == (
        "train.csv", "val.csv", "some/folder",
    )
    assert (config.epochs, config.batch_size, config.max_length) == (2, 8, 64)
    assert config.output_dir == str(tmp_path) and config.layer_decay is None


def test_config_file_then_flags(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 7\nbackbone: vgg16\nhead_units: [32]\n"
                    "augment: {horizontal_flip: true}\n")
    args = cli.build_parser().parse_args(
        ["image-classification", "--config", str(path), "--epochs", "5",
         "--head-units", "64,16", "--no-train-batchnorm"]
    )
    config = cli.config_from_args(recipes.ImageClassificationConfig, args)
    assert config.epochs == 5  # the flag wins
    assert config.backbone == "vgg16"  # from the file
    assert config.head_units == (64, 16)
    assert config.augment == {"horizontal_flip": True}
    assert config.train_batchnorm is False


def test_example_configs_load():
    classes = {
        "object_detection": recipes.ObjectDetectionConfig,
        "text_classification": recipes.TextClassificationConfig,
        "question_answering": recipes.QuestionAnsweringConfig,
    }
    paths = glob.glob(os.path.join(ROOT, "recipes", "configs", "*"))
    assert len(paths) == 8
    for path in paths:
        name = os.path.splitext(os.path.basename(path))[0]
        config_class = classes.get(name, recipes.ImageClassificationConfig)
        config = config_class.from_dict(load_config_file(path))
        assert config.output_dir.startswith("runs/")


def test_bad_input_exits_2_with_the_message(tmp_path, capsys):
    code = cli.main(
        ["image-classification", "--train", str(tmp_path), "--backbone",
         "resnet5", "--output", str(tmp_path / "out")]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "Unknown backbone 'resnet5'" in err and "resnet50" in err


def _png_folder(root):
    x, y = tiny_images(12, size=16)
    for i, (image, label) in enumerate(zip(x, y)):
        folder = os.path.join(root, f"class_{label}")
        os.makedirs(folder, exist_ok=True)
        keras.utils.save_img(
            os.path.join(folder, f"{i}.png"), np.clip(image, 0, 255).astype("uint8")
        )


def test_cli_run_from_a_folder_and_a_saved_backbone(tmp_path, capsys):
    _png_folder(str(tmp_path / "train"))
    backbone_file = str(tmp_path / "tiny.keras")
    tiny_model().save(backbone_file)
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"epochs": 5, "batch_size": 4, "verbose": 0}))
    out = str(tmp_path / "out")
    code = cli.main(
        ["feature-extraction", "--config", str(config), "--train",
         str(tmp_path / "train"), "--val", str(tmp_path / "train"),
         "--backbone", backbone_file, "--image-size", "16", "--epochs", "1",
         "--precision", "float32", "--strategy", "default", "--output", out]
    )
    assert code == 0, capsys.readouterr().err
    assert "val_accuracy" in capsys.readouterr().out
    with open(os.path.join(out, "metrics.json")) as f:
        assert 0 <= json.load(f)["val_accuracy"] <= 1
    with open(os.path.join(out, "labels.json")) as f:
        assert json.load(f) == ["class_0", "class_1", "class_2"]
    with open(os.path.join(out, "config.json")) as f:
        saved = json.load(f)
    assert (saved["epochs"], saved["batch_size"], saved["mode"]) == (
        1, 4, "feature_extraction",
    )


def test_recipe_script_is_the_same_command():
    env = {**os.environ, "PYTHONPATH": ROOT}
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "recipes", "text_classification.py"),
         "--help"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--max-length" in result.stdout and "--config FILE" in result.stdout
