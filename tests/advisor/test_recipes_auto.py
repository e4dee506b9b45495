"""`mode="auto"` in every recipe that has `mode`, as a user types it.

Each case is the tiny run of the fresh-process round trip
(`tests/round_trip_data.py`) with `--mode auto` in place of its mode and
epochs: the advice is measured on the recipe's own training data, written
to `run/advice.json`, printed, and followed (the run trains the epochs it
chose). The step targets are shrunk so that every run takes a few epochs.
"""

import json
import os

import numpy as np
import pytest

from kerasft._io import CONFIG_FILE, HISTORY_FILE, read_history_csv
from kerasft.advisor import _rules
from kerasft.recipes import registry
from tests import round_trip_data as data

pytestmark = pytest.mark.slow

# Each recipe with its own data path into `follow_advice` (the four
# tutorial aliases share image_classification's), and what it measures with
# the case's tiny backbone: BatchNorm shift, per-group probes (a backbone
# without BatchNorm, class labels), or nothing but the size (neither).
CASES = {
    "image_classification": "batchnorm",
    "object_detection": "batchnorm",
    "object_detection_retinanet": "none",
    "segmentation": "none",
    "video_classification": "probe",
    "image_captioning": "none",
    "text_classification": "probe",
    "question_answering": "none",
    "token_classification": "none",
    "seq2seq": "none",
    "causal_lm": "none",
}


def _auto(args):
    """`args` with `--mode auto` for its `--mode` and without `--epochs`."""
    out, skip = [], False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg in ("--mode", "--epochs", "--head-epochs"):
            skip = True
            continue
        out.append(arg)
    return out + ["--mode", "auto"]


@pytest.fixture
def short_steps(monkeypatch):
    for name, value in (("HEAD_STEPS", 1), ("TRAIN_STEPS", 1),
                        ("FEATURE_STEPS", 2), ("MIN_EPOCHS", 1)):
        monkeypatch.setattr(_rules, name, value)


def test_every_recipe_with_a_mode_is_covered():
    import dataclasses

    with_mode = {
        name for name in registry.names()
        if "mode" in {f.name for f in dataclasses.fields(
            registry.get(name).config_class())}
    }
    covered = {data.recipe_of(case) for case in CASES}
    aliases = {"feature_extraction", "partial_fine_tuning",
               "progressive_fine_tuning", "full_fine_tuning"}
    assert with_mode - aliases == covered


@pytest.mark.parametrize("case", list(CASES))
def test_mode_auto_measures_writes_and_follows(case, tmp_path, monkeypatch,
                                               capsys, short_steps):
    from kerasft import cli

    written = data.write_case(case, str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert cli.main(_auto(written.train)) == 0
    printed = capsys.readouterr()
    assert "mode=auto chose" in printed.out + printed.err

    with open(os.path.join(data.RUN, "advice.json")) as f:
        advice = json.load(f)
    choices, measured = advice["choices"], advice["measurements"]
    assert measured["shift_kind"] == CASES[case]
    assert measured["num_examples"] > 0
    config = registry.get(written.recipe).config_class()
    from kerasft.advisor.recipe import allowed_modes

    assert choices["mode"] in allowed_modes(config)
    if CASES[case] == "batchnorm":
        assert all(s >= 0 for s in measured["group_shift"])
    history = read_history_csv(os.path.join(data.RUN, HISTORY_FILE))
    assert len(history["loss"]) == choices["epochs"]
    with open(os.path.join(data.RUN, CONFIG_FILE)) as f:
        assert json.load(f)["mode"] == "auto"  # the run's identity


def test_options_the_user_sets_are_kept_over_the_advice(tmp_path, monkeypatch,
                                                        short_steps):
    from kerasft import cli

    written = data.write_case("text_classification", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    args = _auto(written.train) + ["--epochs", "2", "--learning-rate", "0.003"]
    assert cli.main(args) == 0
    with open(os.path.join(data.RUN, "advice.json")) as f:
        advice = json.load(f)
    assert advice["choices"]["epochs"] == 2
    assert advice["choices"]["learning_rate"] == 0.003
    assert advice["reasons"]["epochs"] == "set by the user"
    assert sorted(advice["overridden"]) == ["epochs", "learning_rate"]
    history = read_history_csv(os.path.join(data.RUN, HISTORY_FILE))
    assert len(history["loss"]) == 2


def test_a_resumed_auto_run_follows_the_advice_it_started_with(
        tmp_path, monkeypatch, short_steps):
    import keras

    from kerasft.recipes import text_classification

    monkeypatch.setattr(_rules, "TRAIN_STEPS", 3)  # 1 head + 3 epochs
    data.write_case("text_classification", str(tmp_path))
    options = dict(
        train=str(tmp_path / "reviews.csv"), backbone=str(tmp_path / "bert"),
        max_length=8, validation_split=0.0, batch_size=8, mode="auto",
        precision="float32", strategy="default", verbose=0,
        output_dir=str(tmp_path / "run"))

    class Crash(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        text_classification(callbacks=[Crash()], **options)
    path = str(tmp_path / "run" / "advice.json")
    with open(path) as f:
        first = json.load(f)
    stamp = os.stat(path).st_mtime_ns
    # The rules change before the restart: the run keeps its own plan.
    monkeypatch.setattr(_rules, "TRAIN_STEPS", 9)
    result = text_classification(**options)
    assert os.stat(path).st_mtime_ns == stamp
    assert len(result.history["loss"]) == first["choices"]["epochs"] == 4


def test_an_auto_run_trains_as_the_same_options_set_by_hand(
        tmp_path, monkeypatch, short_steps):
    """The measurements draw random numbers (the head sweep): the model
    still starts and trains as a run given the advice's options does."""
    from kerasft.recipes import text_classification

    data.write_case("text_classification", str(tmp_path))
    options = dict(
        train=str(tmp_path / "reviews.csv"), backbone=str(tmp_path / "bert"),
        max_length=8, validation_split=0.0, batch_size=4,
        precision="float32", strategy="default", verbose=0)
    auto = text_classification(mode="auto", output_dir=str(tmp_path / "a"),
                               **options)
    with open(tmp_path / "a" / "advice.json") as f:
        choices = json.load(f)["choices"]
    assert choices["mode"] != "feature_extraction"
    chosen = {k: v for k, v in choices.items() if v is not None}
    by_hand = text_classification(output_dir=str(tmp_path / "b"), **chosen,
                                  **options)
    np.testing.assert_allclose(auto.history["loss"], by_hand.history["loss"],
                               rtol=1e-5)
