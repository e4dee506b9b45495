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


@pytest.mark.parametrize("command", sorted(cli._COMMANDS))
def test_help_documents_every_option(command):
    recipe = cli._COMMANDS[command]
    config_class = recipe.config_class()
    text = _subparsers()[command].format_help()
    ignored = cli.ignored_options(config_class, recipe.fixed)
    for f in dataclasses.fields(config_class):
        if (f.name in recipe.fixed or f.name in ignored
                or not f.metadata.get("cli", True)):
            assert cli.flag(f.name) + " " not in text
            continue
        flag = cli.flag(f.name)
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
    """Every example config loads into the config class of the recipe it is
    named after."""
    paths = glob.glob(os.path.join(ROOT, "recipes", "configs", "*"))
    assert len(paths) >= 8
    for path in paths:
        name = os.path.splitext(os.path.basename(path))[0]
        command = cli._COMMANDS[name.replace("_", "-")]
        config = command.config_class().from_dict(load_config_file(path))
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


# === Issue 15: the command line and run folders as a user meets them ===


def _tiny_args(tmp_path, *extra, command="feature-extraction"):
    """A feature-extraction run on a 16 px PNG folder with a tiny backbone."""
    train = tmp_path / "train"
    if not train.exists():
        _png_folder(str(train))
    backbone_file = tmp_path / "tiny.keras"
    if not backbone_file.exists():
        tiny_model().save(str(backbone_file))
    return [
        command, "--train", str(train), "--backbone", str(backbone_file),
        "--image-size", "16", "--epochs", "1", "--batch-size", "4",
        "--precision", "float32", "--strategy", "default",
        "--output", str(tmp_path / "out"), *extra,
    ]


def _read(path):
    with open(path) as f:
        return json.load(f)


def test_changed_data_is_refused_never_silently_reused(tmp_path, capsys):
    args = _tiny_args(tmp_path, "--verbose", "0", "--validation-split", "0")
    out = tmp_path / "out"
    assert cli.main(args) == 0, capsys.readouterr().err
    capsys.readouterr()
    # The same command on the same data reuses the run, and says so even
    # with --verbose 0.
    assert cli.main(args) == 0
    err = capsys.readouterr().err
    assert "holds this run" in err and "completed; loading it" in err
    # A new class folder: refused, naming what changed and the flag.
    new_class = tmp_path / "train" / "class_9"
    new_class.mkdir()
    for i in range(4):
        keras.utils.save_img(str(new_class / f"{i}.png"),
                             np.full((16, 16, 3), 40 * i, "uint8"))
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert "completed run with the same options on other data" in err
    assert "classes" in err and "--overwrite" in err and "overwrite=True" not in err
    assert _read(out / "labels.json") == ["class_0", "class_1", "class_2"]
    # --overwrite trains again on the new data.
    assert cli.main(args + ["--overwrite"]) == 0, capsys.readouterr().err
    assert _read(out / "labels.json") == ["class_0", "class_1", "class_2", "class_9"]
    # A run killed after an epoch (a backup, no final files) is not resumed
    # on changed data either.
    for name in ("metrics.json", "model.keras", "history.csv"):
        os.remove(out / name)
    (out / "backup").mkdir()
    (out / "backup" / "ckpt-00001.weights.h5").write_bytes(b"x")
    os.remove(next((tmp_path / "train" / "class_9").iterdir()))
    capsys.readouterr()
    assert cli.main(args) == 2
    assert "an interrupted run with the same options on other data" in (
        capsys.readouterr().err
    )


def test_training_metrics_and_warning_without_validation(tmp_path, capsys):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"unfreeze_groups": 3}))
    args = _tiny_args(tmp_path, "--validation-split", "0", "--verbose", "0",
                      "--config", str(config))
    assert cli.main(args) == 0, capsys.readouterr().err
    captured = capsys.readouterr()
    assert "train_accuracy" in captured.out
    notes = [l for l in captured.err.splitlines() if "is ignored" in l]
    # An ignored option from a config file: one line, not an error.
    assert notes == ["kerasft: note: --unfreeze-groups 3 is ignored: the "
                     "backbone stays frozen in feature extraction."]
    metrics = _read(tmp_path / "out" / "metrics.json")
    assert {"train_loss", "train_accuracy"} <= set(metrics)
    assert "No data was held out" in metrics["warning"]
    assert "--val" in metrics["warning"] and "--validation-split" in metrics["warning"]


def test_validation_split_is_held_out_by_default(tmp_path, capsys):
    args = _tiny_args(tmp_path, "--verbose", "0")
    assert cli.main(args) == 0, capsys.readouterr().err
    metrics = _read(tmp_path / "out" / "metrics.json")
    assert "val_accuracy" in metrics and "warning" not in metrics
    help_text = _subparsers()["text-classification"].format_help()
    assert "--validation-split" in help_text and "(default: 0.1)" in help_text


def test_leftovers_of_a_run_that_never_completed_an_epoch_are_replaced(
    tmp_path, capsys
):
    out = tmp_path / "out"
    (out / "logs").mkdir(parents=True)
    (out / "config.json").write_text(json.dumps({"epochs": 99, "mode": "full"}))
    args = _tiny_args(tmp_path, "--verbose", "0")
    assert cli.main(args) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert "never completed an epoch" in err and "replacing it" in err
    assert len(err.strip().splitlines()) == 1
    assert _read(out / "config.json")["epochs"] == 1


def test_messages_name_flags_under_the_cli(tmp_path, capsys):
    from kerasft.recipes import TextClassificationConfig

    csv_path = tmp_path / "t.csv"
    csv_path.write_text("text,label\ngood,1\nbad,0\n")
    code = cli.main(["text-classification", "--train", str(csv_path),
                     "--max-length", "4", "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "`--max-length` must be" in err and "max_length" not in err
    code = cli.main(["text-classification", "--train", str(csv_path),
                     "--label-column", "stars", "--strategy", "default",
                     "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "--label-column" in err and "label_column" not in err
    message = cli.cli_message(
        "`sequence_length` must be at most 512. Received: sequence_length=100000",
        TextClassificationConfig,
    )
    assert message == "`--max-length` must be at most 512. Received: --max-length 100000"
    # An occupied folder: the flag, not the Python argument.
    args = _tiny_args(tmp_path, "--verbose", "0")
    assert cli.main(args) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert cli.main(args[:-2] + ["--seed", "3", "--verbose", "0"]) == 2
    err = capsys.readouterr().err
    assert "Pass --overwrite" in err and "overwrite=True" not in err


def test_near_misses(tmp_path, capsys):
    code = cli.main(_tiny_args(tmp_path, "--backbone", "mobilenet_v2"))
    assert code == 2
    assert "Did you mean 'mobilenetv2'?" in capsys.readouterr().err
    args = cli.build_parser().parse_args(
        ["image-classification", "--train", "t", "--mode", "feature-extraction"]
    )
    config = cli.config_from_args(recipes.ImageClassificationConfig, args)
    assert config.mode == "feature_extraction"
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["feature-extraction", "--train", "t", "--epohcs", "2"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    # One line and where to look, not the 40-flag usage.
    assert err.startswith("kerasft feature-extraction: error: unrecognized")
    assert "usage:" not in err and len(err.splitlines()) == 2
    assert "--epohcs 2" in err and "did you mean --epochs?" in err
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(SystemExit):
        cli.main(["text-classification", "--train", str(empty)])
    assert "is empty" in capsys.readouterr().err


def test_options_the_mode_ignores_are_rejected_and_not_listed(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["feature-extraction", "--train", "t", "--unfreeze-groups",
                  "99", "--layer-decay", "0.5"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--unfreeze-groups and --layer-decay do nothing here" in err
    with pytest.raises(SystemExit):
        cli.main(["image-classification", "--train", "t", "--mode",
                  "feature_extraction", "--head-epochs", "1"])
    assert "--head-epochs does nothing here" in capsys.readouterr().err
    text = _subparsers()["feature-extraction"].format_help()
    for option in ("--unfreeze-groups", "--layer-decay", "--head-epochs",
                   "--fine-tune-learning-rate", "--train-batchnorm"):
        assert option not in text
    assert "(required)" in text.split("--train TRAIN", 2)[2].split("--val")[0]
    with pytest.raises(SystemExit):
        cli.main(["feature-extraction", "--epochs", "1"])
    assert "required: --train" in capsys.readouterr().err


def test_degenerate_frozen_features_are_warned(tmp_path, capsys):
    x, y = tiny_images(8, size=32)
    for i, (image, label) in enumerate(zip(x, y)):
        folder = tmp_path / "train" / f"c{label}"
        folder.mkdir(parents=True, exist_ok=True)
        keras.utils.save_img(str(folder / f"{i}.png"), image.astype("uint8"))
    code = cli.main(
        ["feature-extraction", "--train", str(tmp_path / "train"),
         "--backbone", "mobilenetv2", "--weights", "none", "--image-size", "32",
         "--epochs", "1", "--batch-size", "4", "--verbose", "0",
         "--validation-split", "0", "--strategy", "default",
         "--precision", "float32", "--output", str(tmp_path / "out")]
    )
    assert code == 0
    lines = [l for l in capsys.readouterr().err.splitlines() if "barely differ" in l]
    assert len(lines) == 1
    assert "--weights none" in lines[0] and "BatchNorm in inference mode" in lines[0]


def test_help_without_tensorflow_and_registration_after_lazy_import(tmp_path):
    code = (
        "import sys\n"
        "from kerasft import cli\n"
        "for argv in (['--help'], ['image-classification', '--help'],"
        " ['text-classification', '--help']):\n"
        "    try:\n"
        "        cli.main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('TF_LOADED', 'tensorflow' in sys.modules, file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert "TF_LOADED False" in result.stderr, result.stderr[-2000:]
    # `import kerasft` is lazy, yet a saved model with kerasft layers loads
    # after it without custom_objects.
    path = str(tmp_path / "m.keras")
    inputs = keras.Input((4, 4, 3))
    from kerasft.layers import Preprocess

    keras.Model(inputs, Preprocess("tf")(inputs)).save(path)
    load = f"import kerasft\nimport keras\nkeras.models.load_model({path!r})\nprint('OK')"
    result = subprocess.run([sys.executable, "-c", load], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.stdout.strip() == "OK", result.stderr[-2000:]


def test_console_is_quiet_and_line_per_epoch_when_piped(tmp_path):
    args = _tiny_args(tmp_path, "--verbose", "1", "--epochs", "2",
                      command="partial-fine-tuning")
    args += ["--head-epochs", "1", "--unfreeze-groups", "1"]
    env = {**os.environ, "PYTHONPATH": ROOT}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    result = subprocess.run(
        [sys.executable, "-m", "kerasft.cli", *args], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for noise in ("I0000", "cuInit", "absl::InitializeLog", "oneDNN"):
        assert noise not in result.stderr, result.stderr[-2000:]
    assert "\x08" not in result.stdout and "\x1b[" not in result.stdout
    epoch_lines = [l for l in result.stdout.splitlines() if " - loss: " in l]
    assert len(epoch_lines) == 2, result.stdout[-3000:]
    assert "ProgressiveUnfreeze training 1/2" in result.stdout


def test_progressive_unfreeze_is_quiet_when_fit_is(capsys):
    from kerasft.callbacks import ProgressiveUnfreeze
    from tests.recipes.tiny import tiny_backbone

    backbone = tiny_backbone()
    inputs = keras.Input((16, 16, 3))
    features = keras.layers.GlobalAveragePooling2D()(backbone.model(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1)(features))
    model.compile("adam", "mse")
    x, _ = tiny_images(4)
    for verbose, expect in ((0, False), (1, True)):
        unfreeze = ProgressiveUnfreeze(backbone, {0: 0, 1: "all"})
        model.fit(x, np.ones((4, 1)), epochs=2, callbacks=[unfreeze],
                  verbose=verbose)
        assert ("ProgressiveUnfreeze" in capsys.readouterr().out) is expect


def test_training_curves_have_integer_epochs_and_say_when_unvalidated(
    tmp_path, monkeypatch
):
    from matplotlib.figure import Figure

    from kerasft.evaluation import plot_history

    figures = []
    save = Figure.savefig
    monkeypatch.setattr(
        Figure, "savefig", lambda self, *a, **k: (figures.append(self), save(self, *a, **k))
    )
    plot_history({"loss": [1.0, 0.5, 0.4]}, str(tmp_path / "a.png"))
    plot_history({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]}, str(tmp_path / "b.png"))
    unvalidated, validated = figures
    assert "no validation data" in unvalidated._suptitle.get_text()
    assert validated._suptitle is None
    for fig in figures:
        fig.canvas.draw()
        ticks = fig.axes[0].get_xticks()
        assert all(float(t).is_integer() for t in ticks), ticks


def test_verbose_2_shows_tensorflow_start_up_lines_once():
    code = "from kerasft.cli import quiet_tensorflow; quiet_tensorflow(2)"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [l.split("] ", 1)[-1] for l in result.stderr.splitlines() if l.strip()]
    assert len(lines) == len(set(lines)), result.stderr


@pytest.mark.slow
def test_text_classification_holds_out_a_stratified_split_by_default(tmp_path, capsys):
    from tests.fixtures.tiny_hf import make_tiny_folder

    folder, _ = make_tiny_folder(str(tmp_path / "bert"))
    rows = [("a good film", "pos"), ("a bad film", "neg")] * 10
    train = tmp_path / "train.csv"
    train.write_text("text,label\n" + "".join(f"{t},{l}\n" for t, l in rows))
    out = tmp_path / "run"
    code = cli.main(
        ["text-classification", "--train", str(train), "--backbone", folder,
         "--epochs", "1", "--batch-size", "4", "--max-length", "8",
         "--precision", "float32", "--strategy", "default", "--verbose", "1",
         "--output", str(out)]
    )
    assert code == 0, capsys.readouterr().err
    assert "Holding out 2 of 20 training texts" in capsys.readouterr().out
    assert "val_accuracy" in _read(out / "metrics.json")
