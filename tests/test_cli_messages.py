"""What a user reads on the command line: flags, not Python names; one line;
no library noise around the output. Each case runs the CLI in a fresh process."""

import os
import subprocess
import sys

import pytest

from kerasft import _io

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T5 = os.path.join(ROOT, "tests", "fixtures", "t5_tiny")


def _kerasft(args, cwd):
    env = {**os.environ, "PYTHONPATH": ROOT, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "kerasft.cli", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pairs")
    rows = ["source,target"] + [f"{w},{i}" for i, w in enumerate(
        "one two three four five six seven eight".split())]
    (folder / "pairs.csv").write_text("\n".join(rows) + "\n")
    return folder


@pytest.mark.parametrize("extra, expected, absent", [
    (["--backbone", "no_such_model"], "error: `--backbone` 'no_such_model'",
     "`source`"),
    (["--backbone", T5, "--source-length", "100000"],
     "Received: --source-length 100000", "sequence_length"),
    (["--backbone", T5, "--source-column", "src"],
     "Pass --source-column with one of them", "(--source-column)"),
])
def test_errors_name_the_flags_typed(pairs, extra, expected, absent):
    result = _kerasft(["seq2seq", "--train", "pairs.csv", "--output", "out",
                       *extra], pairs)
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("kerasft seq2seq: error:"), result.stderr[-2000:]
    assert expected in last and absent not in last, last


def test_parser_errors_are_one_line_not_the_usage(tmp_path):
    result = _kerasft(["image-classification", "--train", "t", "--epohcs", "2"],
                      tmp_path)
    assert result.returncode == 2
    assert "usage:" not in result.stderr
    assert result.stderr.splitlines() == [
        "kerasft image-classification: error: unrecognized arguments: "
        "--epohcs 2 (did you mean --epochs?)",
        "(`kerasft image-classification --help` lists the options.)",
    ]


def test_a_folder_of_another_recipe_is_named(tmp_path):
    folder = str(tmp_path)
    _io.prepare_run_folder(folder, {"recipe": "segmentation", "epochs": 1})
    _io.write_json(os.path.join(folder, _io.CONFIG_FILE),
                   {"recipe": "segmentation", "epochs": 1})
    _io.write_json(os.path.join(folder, _io.METRICS_FILE), {})
    with pytest.raises(ValueError, match=r"another recipe \(segmentation\)"):
        _io.prepare_run_folder(folder, {"recipe": "text_classification",
                                        "epochs": 1})


def test_generate_prints_only_the_generations(pairs):
    train = ["seq2seq", "--train", "pairs.csv", "--backbone", T5, "--epochs", "1",
             "--source-length", "16", "--target-length", "8", "--output", "s2s",
             "--verbose", "0"]
    result = _kerasft(train, pairs)
    assert result.returncode == 0, result.stderr[-2000:]
    result = _kerasft(["generate", "s2s", "--prompt", "one", "--prompt", "two"],
                      pairs)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Warning" not in result.stderr, result.stderr[-2000:]
    assert "warnings.warn" not in result.stdout + result.stderr
    assert result.stdout.count("\n---\n") == 1  # two generations, one separator


def test_same_run_stopped_before_its_first_epoch_says_it_starts_again(tmp_path):
    folder = str(tmp_path)
    config = {"recipe": "image_classification", "epochs": 2}
    os.makedirs(os.path.join(folder, "logs"))
    _io.write_json(os.path.join(folder, _io.CONFIG_FILE), config)
    notices = []
    assert _io.prepare_run_folder(folder, config, log=notices.append) == "new"
    assert len(notices) == 1 and "before it completed an epoch" in notices[0]
    assert not os.path.exists(os.path.join(folder, "logs"))


def test_keras_config_argument_is_not_taken_for_the_config_flag():
    from kerasft import cli
    from kerasft.recipes.configs import ImageClassificationConfig

    message = "Could not deserialize: config={'name': 'dense'} is invalid."
    assert cli.cli_message(message, ImageClassificationConfig) == message
    assert cli.cli_message("Pass `epochs=` or overwrite=True",
                           ImageClassificationConfig) == (
        "Pass `--epochs` or --overwrite")
