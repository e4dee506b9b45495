"""`kerasft.tune`: KerasTuner over a tiny recipe; resume after kill -9."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from kerasft import tuning
from kerasft.recipes.configs import ImageClassificationConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A search over the tiny CNN (saved as a .keras file, so that every trial
# starts from the same weights) on coloured 16x16 images.
SCRIPT = textwrap.dedent("""
    import json, os, sys
    import keras
    from kerasft import tune
    from tests.recipes.tiny import tiny_images, tiny_model
    directory, algorithm, max_trials = sys.argv[1], sys.argv[2], int(sys.argv[3])
    backbone = os.path.join(directory, "tiny.keras")
    os.makedirs(directory, exist_ok=True)
    if not os.path.exists(backbone):
        tiny_model().save(backbone)
    x, y = tiny_images(48, seed=0)
    xv, yv = tiny_images(24, seed=1)
    space = {"learning_rate": {"min": 1e-3, "max": 3e-2, "sampling": "log"},
             "head_units": [[], [8]], "dropout": [0.0, 0.2]}
    result = tune(
        "feature_extraction", space, max_trials=max_trials,
        algorithm=algorithm, directory=directory,
        config=dict(train=(x, y), validation=(xv, yv), backbone=backbone,
                    image_size=16, epochs=int(os.environ.get("EPOCHS", "2")),
                    batch_size=16,
                    precision="float32", strategy="default", verbose=0),
    )
    print("RESULT", json.dumps({"best": result.best_values,
                                "score": result.best_score,
                                "trials": result.trials}))
""")


def _run(directory, algorithm="random", max_trials=3, env=None):
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(directory), algorithm, str(max_trials)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": ROOT, **(env or {})},
    )


def _result(process):
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    line = next(l for l in out.splitlines() if l.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def test_search_space_errors_are_clear():
    fields = ImageClassificationConfig.field_names()
    with pytest.raises(ValueError, match="search space is empty"):
        tuning.check_search_space({}, fields)
    with pytest.raises(ValueError, match="did you mean 'learning_rate'"):
        tuning.check_search_space({"learning_rat": [1e-3]}, fields)
    with pytest.raises(ValueError, match="needs 'min' and 'max'"):
        tuning.check_search_space({"dropout": {"min": 0.1}}, fields)
    with pytest.raises(ValueError, match="this recipe fixes it"):
        tuning.check_search_space({"mode": ["full"]}, fields, fixed={"mode": 1})
    with pytest.raises(ValueError, match="search space is empty"):
        tuning.tune("image-classification", {})
    with pytest.raises(ValueError, match="Unknown recipe"):
        tuning.tune("image-clasification", {"dropout": [0.1]})


def test_hyperparameters_from_a_space_and_values_back():
    space = {"learning_rate": {"min": 1e-4, "max": 1e-2, "sampling": "log"},
             "unfreeze_groups": {"min": 1, "max": 3},
             "head_units": [[], [64, 32]], "label_smoothing": 0.1}
    hp = tuning.hyperparameters(space)
    kinds = {p.name: type(p).__name__ for p in hp.space}
    assert kinds == {"learning_rate": "Float", "unfreeze_groups": "Int",
                     "head_units": "Choice", "label_smoothing": "Fixed"}
    values = {"head_units": "[64, 32]", "unfreeze_groups": 2,
              "tuner/epochs": 3}
    assert tuning.decode_values(values, space) == {
        "head_units": [64, 32], "unfreeze_groups": 2}
    assert tuning.direction("val_loss") == "min"
    assert tuning.direction("val_accuracy") == "max"


def test_bayesian_search_writes_a_rerunnable_best_config(tmp_path):
    result = _result(_run(tmp_path / "search", "bayesian", 3))
    assert len(result["trials"]) == 3
    assert all(t["status"] == "COMPLETED" for t in result["trials"])
    assert result["score"] == max(t["score"] for t in result["trials"])
    with open(tmp_path / "search" / "best.json") as f:
        best = json.load(f)
    assert best["output_dir"] == str(tmp_path / "search" / "best")
    for name, value in result["best"].items():
        assert best[name] == value
    # Every trial is a complete recipe run folder.
    for t in result["trials"]:
        trial_dir = tmp_path / "search" / "trials" / f"trial_{t['trial_id']}"
        assert (trial_dir / "metrics.json").exists()


def test_resumes_after_kill_9(tmp_path):
    directory = tmp_path / "search"
    process = _run(directory, "random", 3, env={"EPOCHS": "6"})
    backup = directory / "trials" / "trial_1" / "backup"
    deadline = time.time() + 240
    while not backup.exists():  # trial 1 has finished an epoch
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.time() < deadline
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    first = directory / "trials" / "trial_0" / "model.keras"
    stamp = first.stat().st_mtime
    result = _result(_run(directory, "random", 3, env={"EPOCHS": "6"}))
    ids = [t["trial_id"] for t in result["trials"]]
    assert ids == ["0", "1", "2"]  # trial 1 retried, not a fourth trial
    assert all(t["status"] == "COMPLETED" for t in result["trials"])
    assert first.stat().st_mtime == stamp  # trial 0 was not run again


def test_cli_tune_then_rerun_best_config(tmp_path, capsys):
    from PIL import Image

    from kerasft import cli
    from tests.recipes.tiny import tiny_images, tiny_model

    x, y = tiny_images(24)
    for split, rows in (("train", range(0, 16)), ("val", range(16, 24))):
        for i in rows:
            folder = tmp_path / split / f"c{y[i]}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(x[i].round().astype("uint8")).save(folder / f"{i}.png")
    tiny_model().save(str(tmp_path / "tiny.keras"))
    base = dict(train=str(tmp_path / "train"), validation=str(tmp_path / "val"),
                backbone=str(tmp_path / "tiny.keras"), image_size=16, epochs=1,
                batch_size=8, precision="float32", strategy="default", verbose=0)
    (tmp_path / "base.json").write_text(json.dumps(base))
    (tmp_path / "space.json").write_text(json.dumps({"dropout": [0.0, 0.3]}))
    search = tmp_path / "search"
    assert cli.main([
        "tune", "feature-extraction", "--search-space", str(tmp_path / "space.json"),
        "--config", str(tmp_path / "base.json"), "--max-trials", "2",
        "--algorithm", "random", "--output", str(search)]) == 0
    assert "Best val_accuracy" in capsys.readouterr().out
    assert cli.main(["feature-extraction", "--config",
                     str(search / "best.json")]) == 0
    assert (search / "best" / "metrics.json").exists()
    (tmp_path / "empty.json").write_text("{}")
    assert cli.main([
        "tune", "feature-extraction", "--search-space", str(tmp_path / "empty.json"),
        "--config", str(tmp_path / "base.json"), "--output", str(search)]) == 2
    assert "search space is empty" in capsys.readouterr().err


def test_hyperband_gives_trials_their_epoch_budgets(tmp_path):
    # max_epochs 3 (the config's epochs), factor 3: the first bracket's
    # trials get 1 epoch, the trials that go on get all 3.
    result = _result(_run(tmp_path / "search", "hyperband", 6,
                          env={"EPOCHS": "3"}))
    assert all(t["status"] == "COMPLETED" for t in result["trials"])
    epochs = []
    for t in result["trials"]:
        trial_dir = tmp_path / "search" / "trials" / f"trial_{t['trial_id']}"
        with open(trial_dir / "config.json") as f:
            epochs.append(json.load(f)["epochs"])
    assert set(epochs) == {1, 3}


def test_a_wrong_objective_is_refused_before_any_trial(tmp_path):
    from kerasft.tuning import METRICS, check_objective
    from kerasft.recipes import registry

    assert {r.task for r in registry.RECIPES.values()} == set(METRICS)
    with pytest.raises(ValueError, match="Did you mean 'val_accuracy'"):
        check_objective("image-classification", "val_acc")
    for ok in ("val_accuracy", "test_f1/cat", "train_loss", "val_top5_accuracy"):
        check_objective("image_classification", ok)
    check_objective("causal_lm", "val_perplexity")
    with pytest.raises(ValueError, match="causal_lm recipe"):
        check_objective("causal-lm", "val_accuracy")
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"learning_rate": [1e-3, 1e-2]}))
    base = tmp_path / "base.json"
    base.write_text(json.dumps({"train": str(tmp_path), "epochs": 1}))
    result = subprocess.run(
        [sys.executable, "-m", "kerasft.cli", "tune", "image-classification",
         "--search-space", str(space), "--config", str(base), "--objective",
         "val_acc", "--output", str(tmp_path / "search")],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Did you mean 'val_accuracy'" in result.stderr
    assert not (tmp_path / "search" / "trials").exists()


def test_search_folder_resumes_refuses_or_is_replaced(tmp_path):
    from kerasft.tuning import _prepare_search_folder

    folder = str(tmp_path / "search")
    search = {"objective": "val_accuracy", "max_trials": 2}
    _prepare_search_folder(folder, search, overwrite=False)
    os.makedirs(os.path.join(folder, "trials", "trial_0"))
    _prepare_search_folder(folder, search, overwrite=False)  # resumes
    assert os.path.isdir(os.path.join(folder, "trials", "trial_0"))
    with pytest.raises(ValueError, match=r"differs in: \['objective'\]"):
        _prepare_search_folder(folder, {**search, "objective": "val_loss"},
                               overwrite=False)
    _prepare_search_folder(folder, {**search, "objective": "val_loss"},
                           overwrite=True)
    assert not os.path.exists(os.path.join(folder, "trials"))
    with open(os.path.join(folder, "search.json")) as f:
        assert json.load(f)["objective"] == "val_loss"
