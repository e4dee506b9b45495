"""An option a recipe always refuses is absent from its `--help` and refused
in Python in one line (issue 21)."""

import os
import subprocess
import sys

import pytest

from kerasft.recipes import registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# recipe -> [(what --help must not show, config values Python refuses,
#             the refusal's start)]
REFUSED = {
    "seq2seq": [
        ("feature_extraction", {"mode": "feature_extraction"},
         "mode='feature_extraction' trains only a head"),
        ("--head-epochs", {"mode": "partial", "head_epochs": 1, "epochs": 2},
         "`head_epochs` trains only a head first"),
        ("--export", {"export": "saved_model"},
         "`export` is not supported by seq2seq"),
    ],
    "causal-lm": [
        ("feature_extraction", {"mode": "feature_extraction"},
         "mode='feature_extraction' trains only a head"),
        ("--head-epochs", {"head_epochs": 1, "epochs": 2},
         "`head_epochs` trains only a head first"),
        ("--export", {"export": "tflite"},
         "`export` is not supported by causal_lm"),
    ],
    "image-captioning": [
        ("--num-classes", {"num_classes": 3},
         "`num_classes` is not used by image_captioning"),
        ("--export", {"export": "saved_model"},
         "`export` is not supported by image_captioning"),
    ],
}


@pytest.mark.parametrize("command", sorted(REFUSED))
def test_refused_options_are_absent_from_help_and_refused_in_python(command):
    text = subprocess.run(
        [sys.executable, "-m", "kerasft.cli", command, "--help"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    assert "--mode" in text or command == "image-captioning"
    config_class = registry.get(command).config_class()
    for shown, values, refusal in REFUSED[command]:
        assert shown not in text, (command, shown)
        with pytest.raises(ValueError) as error:
            config_class(train="x", **values)
        message = str(error.value)
        assert message.startswith(refusal), message
        assert "Received:" in message and "\n" not in message


@pytest.mark.parametrize("command", sorted(REFUSED))
def test_a_refused_flag_is_answered_with_why(command, capsys):
    from kerasft import cli

    for shown, values, refusal in REFUSED[command]:
        if not shown.startswith("--"):
            continue  # a value: test_a_refused_value_is_answered_with_why
        with pytest.raises(SystemExit) as exit_:
            cli.main([command, "--train", "x", shown, "1"])
        err = capsys.readouterr().err
        assert exit_.value.code == 2
        assert f"unrecognized arguments: {shown} 1 (not an option here: " in err
        assert refusal.split(" ", 1)[1] in err  # the Python refusal's why


@pytest.mark.parametrize("command", ["seq2seq", "causal-lm"])
@pytest.mark.parametrize("spelling",
                         ["feature_extraction", "feature-extraction"])
def test_a_refused_value_is_answered_with_why(command, spelling, capsys):
    """`--mode feature_extraction` is refused like a refused flag: one line
    saying why and what to use instead (exit 2), not argparse's "invalid
    choice"; in Python the same reason as a ValueError."""
    from kerasft import cli
    from kerasft import recipes

    assert cli.main([command, "--train", "x", "--mode", spelling]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(
        f"kerasft {command}: error: --mode 'feature_extraction' trains only a "
        "head, and GPT-2, T5 and BART have no layer outside the pretrained "
        "model to train alone (their output layer is the token embedding's). "
        "Use --mode 'partial'"), err
    assert "`--lora-rank` (adapters)" in err and "invalid choice" not in err
    recipe = getattr(recipes, registry.get(command).name)
    with pytest.raises(ValueError) as error:
        recipe(train="x", mode=spelling)
    message = str(error.value)
    assert message.startswith("mode='feature_extraction' trains only a head")
    assert "Use mode='partial'" in message and "\n" not in message
    assert message.endswith("Received: mode='feature_extraction'")
