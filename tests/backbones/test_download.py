"""Default weights offline: one line naming the download and the offline
choices, exit 2, for keras.applications and KerasHub presets."""

import os
import re
import socket
import subprocess
import sys
import urllib.error

import numpy as np
import pytest

from kerasft.backbones import _download

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _offline_env(tmp_path):
    """No download can succeed: every request goes to a closed local port,
    and no weights are cached."""
    env = {**os.environ, "PYTHONPATH": ROOT}
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env[key] = "http://127.0.0.1:9"
    env.pop("NO_PROXY", None)
    env.pop("no_proxy", None)
    env["KERAS_HOME"] = str(tmp_path / "keras_home")
    env["KAGGLEHUB_CACHE"] = str(tmp_path / "kagglehub")
    env["HF_HOME"] = str(tmp_path / "hf")
    return env


def _cli(tmp_path, *args):
    result = subprocess.run(
        [sys.executable, "-m", "kerasft.cli", *args, "--output",
         str(tmp_path / "run")],
        cwd=ROOT, env=_offline_env(tmp_path), capture_output=True, text=True,
        timeout=300,
    )
    # TensorFlow's own start-up lines (absl: "E0000 00:00:...") aside.
    lines = [l for l in result.stderr.splitlines()
             if l.strip() and not re.match(r"[IWEF]\d{4} ", l)]
    return result.returncode, lines, result.stderr


def test_download_failures_are_told_from_other_errors():
    def raised_from(inner):
        try:
            try:
                raise inner
            except Exception:
                raise Exception("URL fetch failure on https://x/y.h5: None -- z")
        except Exception as e:
            return e

    assert _download.is_download_failure(raised_from(urllib.error.URLError("no")))
    assert _download.is_download_failure(socket.gaierror(-2, "Name unknown"))
    assert not _download.is_download_failure(FileNotFoundError("weights.h5"))
    assert not _download.is_download_failure(ValueError("bad shape"))


def test_from_preset_turns_only_a_failed_download_into_one_value_error():
    class Offline:
        @staticmethod
        def from_preset(source, **kwargs):
            raise ConnectionError("Failed to resolve 'api.kaggle.com'")

    class Broken:
        @staticmethod
        def from_preset(source, **kwargs):
            raise KeyError("weights")

    with pytest.raises(ValueError) as info:
        _download.from_preset(Offline, "bert_base_en_uncased")
    message = str(info.value)
    assert "preset 'bert_base_en_uncased'" in message and "\n" not in message
    assert "api.kaggle.com" in message and "local folder" in message
    assert info.value.__suppress_context__
    with pytest.raises(KeyError):
        _download.from_preset(Broken, "x")


def test_cli_image_classification_default_weights_offline(tmp_path):
    from PIL import Image

    for label in ("cat", "dog"):
        os.makedirs(tmp_path / "cls" / "train" / label)
        for i in range(2):
            Image.fromarray(np.full((16, 16, 3), 40 * i, "uint8")).save(
                tmp_path / "cls" / "train" / label / f"{i}.png")
    code, lines, stderr = _cli(
        tmp_path, "image-classification", "--train",
        str(tmp_path / "cls" / "train"), "--epochs", "4")
    assert code == 2, stderr[-3000:]
    assert len(lines) == 1, stderr[-3000:]
    assert "efficientnetb0_notop.h5" in lines[0]
    assert "--weights none" in lines[0] and "weights file" in lines[0]


@pytest.mark.slow  # KerasHub retries the refused connection (~25 s)
@pytest.mark.parametrize("command", ["token-classification", "seq2seq"])
def test_cli_text_recipes_default_preset_offline(tmp_path, command):
    if command == "token-classification":
        data = tmp_path / "train.conll"
        data.write_text("paris B-LOC\nis O\nfine O\n\nthe O\ntower O\n")
    else:
        data = tmp_path / "pairs.csv"
        data.write_text("source,target\none,1\ntwo,2\nthree,3\n")
    code, lines, stderr = _cli(tmp_path, command, "--train", str(data),
                               "--epochs", "1")
    assert code == 2, stderr[-3000:]
    assert len(lines) == 1, stderr[-3000:]
    assert "Could not download the KerasHub preset" in lines[0]
    assert "`--backbone` a local folder" in lines[0]
