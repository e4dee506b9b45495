"""Atomic outputs and run folders (kerasft._io)."""

import json
import os

import keras
import numpy as np
import pytest

from kerasft import _io


def test_atomic_write_replaces_only_on_success(tmp_path):
    path = str(tmp_path / "metrics.json")
    _io.write_json(path, {"accuracy": 0.5})
    with pytest.raises(RuntimeError):
        with _io.atomic_path(path) as tmp:
            with open(tmp, "w") as f:
                f.write('{"accuracy": 0.')  # a half-written file...
            raise RuntimeError("killed")  # ...then the writer dies
    with open(path) as f:
        assert json.load(f) == {"accuracy": 0.5}
    assert os.listdir(tmp_path) == ["metrics.json"]  # no temp left behind


def test_save_model_keeps_keras_suffix_and_reloads(tmp_path):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    path = str(tmp_path / "model.keras")
    _io.save_model(model, path)
    x = np.ones((2, 3), "float32")
    np.testing.assert_allclose(
        keras.models.load_model(path).predict(x, verbose=0),
        model.predict(x, verbose=0),
    )
    assert sorted(os.listdir(tmp_path)) == ["model.keras"]


def test_history_csv_round_trip(tmp_path):
    path = str(tmp_path / "history.csv")
    history = {"loss": [1.0, 0.5, 0.25], "val_loss": [1.5, 0.75, 0.5]}
    _io.write_history_csv(path, history)
    with open(path) as f:
        assert f.readline().strip() == "epoch,loss,val_loss"
    assert _io.read_history_csv(path) == history


def test_run_folder_states(tmp_path):
    out = str(tmp_path / "run")
    config = {"epochs": 2, "output_dir": out, "verbose": 1}
    assert _io.prepare_run_folder(out, config) == "new"
    _io.write_json(os.path.join(out, "config.json"), config)
    # Same config, stopped before an epoch completed: started again.
    assert _io.prepare_run_folder(out, config, log=lambda m: None) == "new"
    _io.write_json(os.path.join(out, "config.json"), config)
    os.makedirs(os.path.join(out, "backup"))
    open(os.path.join(out, "backup", "ckpt-00001.weights.h5"), "w").close()
    # Same config (verbosity does not count), an epoch done: resume.
    assert _io.prepare_run_folder(out, {**config, "verbose": 0}) == "resume"
    with pytest.raises(ValueError, match=r"holds another run .*\['epochs'\]"):
        _io.prepare_run_folder(out, {**config, "epochs": 3})
    _io.write_json(os.path.join(out, "metrics.json"), {"a": 1})
    assert _io.prepare_run_folder(out, config) == "complete"
    # overwrite removes the previous run's outputs, and only those.
    with open(os.path.join(out, "notes.txt"), "w") as f:
        f.write("mine")
    assert _io.prepare_run_folder(out, {**config, "epochs": 3}, overwrite=True) == "new"
    assert _visible(out) == ["notes.txt"]


def test_outputs_without_config_are_refused(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "model.keras").write_text("x")
    with pytest.raises(ValueError, match="without its config.json"):
        _io.prepare_run_folder(str(out), {"epochs": 1})


def test_worker_dir():
    assert _io.worker_dir("out", True) == "out"
    assert _io.worker_dir("out", False, "worker", 1) == os.path.join(
        "out", ".worker-worker-1"
    )


def test_data_fingerprint_decides_reuse(tmp_path):
    from kerasft.recipes.config import data_fingerprint

    data = tmp_path / "data" / "cat"
    data.mkdir(parents=True)
    (data / "a.png").write_bytes(b"1234")
    out = str(tmp_path / "run")
    first = data_fingerprint(str(tmp_path / "data"))
    assert first["classes"] == ["cat"] and first["files"] == 1
    config = {"epochs": 1, "data_fingerprint": {"train": first}}
    _io.write_json(os.path.join(out, "config.json"), config)
    _io.write_json(os.path.join(out, "metrics.json"), {})
    assert _io.prepare_run_folder(out, config) == "complete"
    (tmp_path / "data" / "dog").mkdir()
    (tmp_path / "data" / "dog" / "b.png").write_bytes(b"5")
    changed = {"epochs": 1, "data_fingerprint": {
        "train": data_fingerprint(str(tmp_path / "data"))}}
    with pytest.raises(ValueError) as info:
        _io.prepare_run_folder(out, changed)
    message = str(info.value)
    assert "completed run with the same options on other data" in message
    assert "['cat'] -> ['cat', 'dog']" in message
    # Python callers are told the Python argument, not the flag.
    assert "overwrite=True" in message and "--overwrite" not in message
    assert _io.prepare_run_folder(out, changed, overwrite=True) == "new"


def test_small_files_are_fingerprinted_by_content(tmp_path):
    from kerasft.recipes.config import data_fingerprint

    path = tmp_path / "t.csv"
    path.write_text("text,label\na,1\n")
    first = data_fingerprint(str(path))
    path.write_text("text,label\nb,1\n")  # same size, other content
    assert data_fingerprint(str(path)) != first
    assert data_fingerprint("tfds:beans:validation") == {
        "tfds": "beans", "split": "validation"}


def test_leftovers_without_a_completed_epoch_are_replaced(tmp_path):
    out = tmp_path / "run"
    (out / "logs").mkdir(parents=True)
    (out / "config.json").write_text('{"epochs": 5}')
    (out / "notes.txt").write_text("mine")
    notices = []
    assert _io.prepare_run_folder(str(out), {"epochs": 1}, log=notices.append) == "new"
    assert len(notices) == 1 and "never completed an epoch" in notices[0]
    assert _visible(out) == ["notes.txt"]


def _visible(folder):
    """The folder's entries but the run folder's lock file."""
    return sorted(n for n in os.listdir(folder) if n != _io.LOCK_FILE)
