"""Run folders under faults (issue 24): one writer at a time, checked
checkpoints, no leftovers, one-line errors naming the file."""

import os
import signal
import subprocess
import sys

import pytest

from kerasft import _io

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = {**os.environ, "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": "",
       "TF_CPP_MIN_LOG_LEVEL": "3"}


def _python(*args, **kwargs):
    return subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, **kwargs,
    )


def _hold(out):
    holder = _python("-m", "tests.recipes._lock_holder", out)
    line = holder.stdout.readline().decode()
    assert line.strip() == "held", line + holder.communicate()[0].decode()
    return holder


# === Item 1: one run per folder ===


def test_second_process_is_refused_naming_the_holder_and_kill_9_frees_it(tmp_path):
    out = str(tmp_path / "run")
    holder = _hold(out)
    try:
        second = _python("-c", (
            "import sys; from kerasft import _io\n"
            "try:\n"
            f"    _io.prepare_run_folder({out!r}, {{'epochs': 6}})\n"
            "except ValueError as e:\n"
            "    print(e); sys.exit(2)\n"
        ))
        output = second.communicate(timeout=120)[0].decode()
        assert second.returncode == 2, output
        assert f"in use by another kerasft run (PID {holder.pid})" in output
        assert not os.path.exists(os.path.join(out, "config.json"))
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    # The kernel dropped the lock with its process: no stale lock.
    assert _io.prepare_run_folder(out, {"epochs": 6}) == "new"
    _io.unlock_run_folder(out)


def test_the_same_process_may_take_its_own_lock_again(tmp_path):
    out = str(tmp_path / "run")
    _io.lock_run_folder(out)
    _io.lock_run_folder(out)
    assert _io.prepare_run_folder(out, {"epochs": 1}) == "new"
    _io.unlock_run_folder(out)
    _io.unlock_run_folder(out)  # no-op


def test_cli_refuses_a_held_folder_with_exit_2(tmp_path, capsys):
    from kerasft import cli

    out = str(tmp_path / "run")
    holder = _hold(out)
    try:
        code = cli.main(["image-classification", "--train", str(tmp_path),
                         "--output", out, "--weights", "none", "--epochs", "4"])
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"PID {holder.pid}" in err and len(err.strip().splitlines()) == 1


# === Item 6/8: the output folder is checked first ===


def test_output_that_is_a_file_or_under_a_file_is_refused_first(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        _io.prepare_run_folder(str(a_file), {})
    with pytest.raises(ValueError, match=r"under .*file.txt', which is a file"):
        _io.prepare_run_folder(str(a_file / "run"), {})


def test_unwritable_output_folder_is_refused(tmp_path, monkeypatch):
    out = tmp_path / "ro"
    out.mkdir()
    monkeypatch.setattr(os, "access", lambda *a, **k: False)
    with pytest.raises(ValueError, match="'.*ro' is not writable"):
        _io.check_output_folder(str(out))


# === Item 2: checkpoints are checked before they are trusted ===

import errno  # noqa: E402
import glob  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402

import keras  # noqa: E402

from kerasft import recipes  # noqa: E402
from kerasft.recipes import _resume  # noqa: E402
from tests.recipes.tiny import tiny_backbone, tiny_images  # noqa: E402


class _Stop(Exception):
    pass


class _StopAt(keras.callbacks.Callback):
    """Stops the run when epoch `epoch` begins (epochs before it are
    checkpointed), as a kill would."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise _Stop()


def _run(out, stop_at=None, **kwargs):
    x, y = tiny_images(32)
    options = dict(
        train=(x, y), validation=(x[:8], y[:8]), backbone=tiny_backbone(),
        epochs=4, learning_rate=5e-2, batch_size=16, precision="float32",
        verbose=0, output_dir=out, dropout=0.2,
        callbacks=[_StopAt(stop_at)] if stop_at is not None else [],
    )
    options.update(kwargs)
    return recipes.feature_extraction(**options)


def _interrupted(out, at=2):
    with pytest.raises(_Stop):
        _run(out, stop_at=at)
    backup = os.path.join(out, "backup")
    assert sorted(os.listdir(backup)) == [
        f"ckpt-{at:05d}.rng.npz", f"ckpt-{at:05d}.sha256.json",
        f"ckpt-{at:05d}.weights.h5", "history.json",
    ]
    return os.path.join(backup, f"ckpt-{at:05d}")


def test_checkpoint_checksum_is_recorded_and_a_changed_file_refused(tmp_path):
    out = str(tmp_path / "run")
    ckpt = _interrupted(out)
    with open(ckpt + ".sha256.json") as f:
        sums = json.load(f)
    assert sums["weights"] == _resume._sha256(ckpt + ".weights.h5")
    with open(ckpt + ".weights.h5", "r+b") as f:  # one weight value changes
        f.seek(-64, os.SEEK_END)
        byte = f.read(1)
        f.seek(-64, os.SEEK_END)
        f.write(bytes([byte[0] ^ 0x5A]))
    with pytest.raises(ValueError) as info:
        _run(out)
    message = str(info.value)
    assert "ckpt-00002.weights.h5" in message and "does not match" in message
    assert "overwrite=True" in message and "\n" not in message
    assert not os.path.exists(os.path.join(out, "metrics.json"))


def test_checkpoint_past_the_runs_epochs_is_refused_for_the_good_one(
    tmp_path, capsys
):
    out = str(tmp_path / "run")
    ckpt = _interrupted(out)
    stray = ckpt.replace("ckpt-00002", "ckpt-00009")
    for suffix in (".weights.h5", ".rng.npz", ".sha256.json"):
        shutil.copy(ckpt + suffix, stray + suffix)
    result = _run(out)
    err = capsys.readouterr().err
    assert "refusing checkpoint" in err and "ckpt-00009.weights.h5" in err
    assert "past this run's 4 epochs" in err
    assert len(result.history["loss"]) == 4


def test_missing_rng_state_warns_that_resume_is_not_exact(tmp_path, capsys):
    out = str(tmp_path / "run")
    ckpt = _interrupted(out)
    os.remove(ckpt + ".rng.npz")
    result = _run(out)
    err = capsys.readouterr().err
    assert "ckpt-00002.rng.npz' is missing" in err and "not exact" in err
    assert len(result.history["loss"]) == 4


def test_unreadable_history_backup_names_the_file_and_overwrite(tmp_path):
    out = str(tmp_path / "run")
    _interrupted(out)
    with open(os.path.join(out, "backup", "history.json"), "w") as f:
        f.write("{not json")
    with pytest.raises(ValueError, match=r"history.json'.*overwrite=True"):
        _run(out)


# === Item 5: no leftovers ===


def _plant_temp_files(out):
    names = [".model.keras.ab12cd34.tmp.keras", ".history.csv.x_9y8z7w.tmp.csv",
             ".training_curves.png.q1w2e3r4.tmp.png"]
    os.makedirs(os.path.join(out, "backup"), exist_ok=True)
    planted = [os.path.join(out, n) for n in names] + [
        os.path.join(out, "backup", ".ckpt-00001.weights.h5.zzzzzzzz.tmp.weights.h5")
    ]
    for path in planted:
        with open(path, "w") as f:
            f.write("half-written")
    with open(os.path.join(out, ".mine.txt"), "w") as f:  # not kerasft's
        f.write("keep")
    return planted


def test_temp_files_of_a_killed_run_are_removed_on_start_and_on_overwrite(tmp_path):
    out = str(tmp_path / "run")
    planted = _plant_temp_files(out)
    _run(out, epochs=2)
    assert not any(os.path.exists(p) for p in planted)
    assert os.path.exists(os.path.join(out, ".mine.txt"))
    planted = _plant_temp_files(out)
    _run(out, epochs=2, overwrite=True)
    assert not any(os.path.exists(p) for p in planted)


def test_backup_left_by_a_kill_after_metrics_is_removed_on_reuse(tmp_path):
    out = str(tmp_path / "run")
    _run(out, epochs=2)
    backup = os.path.join(out, "backup")
    assert not os.path.exists(backup)
    os.makedirs(backup)  # as a kill between metrics.json and its removal
    with open(os.path.join(backup, "ckpt-00002.weights.h5"), "w") as f:
        f.write("x")
    result = _run(out, epochs=2)
    assert result.metrics and not os.path.exists(backup)


# === Item 6: a full disk ends in one line naming the file ===


def test_full_disk_at_a_checkpoint_names_the_file_and_keeps_the_last_one(
    tmp_path, monkeypatch
):
    out = str(tmp_path / "run")
    save_weights = keras.Model.save_weights
    calls = []

    def full_disk(self, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return save_weights(self, path, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save_weights", full_disk)
    with pytest.raises(_io.WriteError) as info:
        _run(out)
    message = str(info.value)
    assert "ckpt-00002.weights.h5" in message and "No space left" in message
    assert " free on its disk" in message and "\n" not in message
    backup = os.path.join(out, "backup")
    # The previous checkpoint is intact and verifies; no temp file is left.
    assert sorted(os.listdir(backup)) == [
        "ckpt-00001.rng.npz", "ckpt-00001.sha256.json",
        "ckpt-00001.weights.h5", "history.json",
    ]
    assert _resume.latest_checkpoint(backup, 4)[0] == 1
    monkeypatch.setattr(keras.Model, "save_weights", save_weights)
    assert len(_run(out).history["loss"]) == 4


def test_checkpoint_that_cannot_fit_is_refused_before_writing(tmp_path, monkeypatch):
    out = str(tmp_path / "run")
    usage = shutil.disk_usage(str(tmp_path))
    monkeypatch.setattr(
        _io.shutil, "disk_usage",
        lambda path: usage._replace(free=1000),
    )
    with pytest.raises(_io.WriteError, match=r"ckpt-00001.weights.h5.*1000 bytes free"):
        _run(out)
    assert not glob.glob(os.path.join(out, "backup", "*.weights.h5"))


def test_write_error_names_the_file_and_free_space(tmp_path, monkeypatch):
    path = str(tmp_path / "metrics.json")
    _io.write_json(path, {"a": 1})

    def no_space(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_io.os, "replace", no_space)
    with pytest.raises(_io.WriteError, match=r"metrics.json'.*free on its disk"):
        _io.write_json(path, {"a": 2})
    with open(path) as f:
        assert json.load(f) == {"a": 1}
    assert os.listdir(tmp_path) == ["metrics.json"]


# === Item 8: damaged outputs of a completed run ===


@pytest.mark.parametrize("name,damage", [
    ("metrics.json", "{oops"),
    ("history.csv", "epoch,loss\n0,not-a-number\n"),
    ("model.keras", None),  # truncated
])
def test_damaged_output_of_a_completed_run_names_the_file(tmp_path, name, damage):
    out = tmp_path / "run"
    out.mkdir()
    config = {"epochs": 1}
    _io.write_json(str(out / "config.json"), config)
    _io.write_json(str(out / "metrics.json"), {"loss": 1.0})
    _io.write_history_csv(str(out / "history.csv"), {"loss": [1.0]})
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    _io.save_model(model, str(out / "model.keras"))
    assert _io.prepare_run_folder(str(out), config) == "complete"
    if damage is None:
        data = (out / name).read_bytes()
        (out / name).write_bytes(data[: len(data) // 2])
    else:
        (out / name).write_text(damage)
    with pytest.raises(ValueError) as info:
        _io.prepare_run_folder(str(out), config)
    message = str(info.value)
    assert f"{name}'" in message and "overwrite=True" in message
    assert "\n" not in message


# === Item 4: equivalent spellings are one run ===


def test_relative_and_absolute_paths_and_none_spellings_are_one_run(
    tmp_path, monkeypatch
):
    from kerasft.recipes.configs import ImageClassificationConfig

    data = tmp_path / "data" / "cat"
    data.mkdir(parents=True)
    (data / "a.png").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    out = str(tmp_path / "run")
    typed = ImageClassificationConfig(train="data", weights="none", output_dir=out)
    flagged = ImageClassificationConfig(
        train=str(tmp_path / "data" / "cat" / ".."), weights=None,
        output_dir=out, lr_scaling="LINEAR".lower(),
    )
    first, second = typed.identity(), flagged.identity()
    assert first["train"] == str(tmp_path.resolve() / "data")
    assert first["weights"] is None
    assert first == second
    _io.prepare_run_folder(out, first)
    _io.write_json(os.path.join(out, "config.json"), first)
    os.makedirs(os.path.join(out, "backup"))
    open(os.path.join(out, "backup", "ckpt-00001.weights.h5"), "w").close()
    assert _io.prepare_run_folder(out, second) == "resume"
    # A config.json written before normalisation (relative, "none").
    _io.write_json(os.path.join(out, "config.json"),
                   {**first, "train": "data", "weights": "none"})
    assert _io.prepare_run_folder(out, second) == "resume"
    # Other data is still another run.
    (tmp_path / "other").mkdir()
    with pytest.raises(ValueError, match=r"differs in: \['train'\]"):
        _io.prepare_run_folder(out, {**second, "train": str(tmp_path / "other")})


# === Item 3: resume restores optimizer state under mixed precision ===


class _Iterations(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.at_epoch_begin = {}
        self.optimizer_type = None

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        self.optimizer_type = type(optimizer).__name__
        self.at_epoch_begin[epoch] = int(
            keras.ops.convert_to_numpy(optimizer.iterations)
        )


def test_resume_under_mixed_float16_restores_layerwise_optimizer_state(tmp_path):
    out = str(tmp_path / "run")
    x, y = tiny_images(32)
    common = dict(
        train=(x, y), backbone=tiny_backbone(), epochs=3, head_epochs=1,
        unfreeze_groups=1, layer_decay=0.5, learning_rate=5e-2,
        batch_size=16, precision="mixed_float16", verbose=0, output_dir=out,
    )
    first = _Iterations()
    with pytest.raises(_Stop):
        recipes.progressive_fine_tuning(callbacks=[first, _StopAt(2)], **common)
    assert first.optimizer_type == "LossScaleOptimizer"
    steps = first.at_epoch_begin[2]
    assert steps > 0
    resumed = _Iterations()
    result = recipes.progressive_fine_tuning(callbacks=[resumed], **common)
    assert resumed.at_epoch_begin == {2: steps}
    assert len(result.history["loss"]) == 3


def test_config_file_that_is_not_a_regular_file_is_refused(tmp_path):
    from kerasft.recipes.config import load_config_file

    with pytest.raises(ValueError, match="is not a regular file"):
        load_config_file(str(tmp_path))
    with pytest.raises(ValueError, match="is not a regular file"):
        load_config_file("/dev/zero")
    (tmp_path / "bad.yaml").write_text("epochs: !!python/object:os.system x\n")
    with pytest.raises(ValueError, match="bad.yaml' is not valid YAML"):
        load_config_file(str(tmp_path / "bad.yaml"))
