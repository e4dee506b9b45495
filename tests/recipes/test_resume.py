"""Resume: a run killed with SIGKILL mid-epoch and started again with the
same command ends like an uninterrupted run; outputs are never half-written."""

import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from kerasft import _io
from kerasft.recipes import _resume

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _child(out, *extra):
    env = {**os.environ, "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.recipes._child", out, *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def _finish(proc, timeout=300):
    output, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, output.decode()[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["--augment", "--feature-extraction"])
def test_kill_9_mid_epoch_then_same_command_matches_uninterrupted(tmp_path, mode):
    """With augmentation on: shuffle order and augmentation are pure
    functions of (seed, epoch, batch), so the resumed run sees the batches
    the uninterrupted one saw. With cached features: the head, trained on
    features computed again after the restart, resumes the same way."""
    straight = str(tmp_path / "straight")
    killed = str(tmp_path / "killed")
    reference = _child(straight, mode)  # alongside the killed one
    victim = _child(killed, "--hold-at-epoch", "2", mode)
    marker = killed + ".marker"
    deadline = time.time() + 300
    while not os.path.exists(marker):
        assert victim.poll() is None, victim.communicate()[0].decode()[-3000:]
        assert time.time() < deadline, "the run never reached epoch 2"
        time.sleep(0.2)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    # Killed in epoch 2: epochs 0 and 1 are backed up, no final output exists.
    assert _resume.latest_checkpoint(os.path.join(killed, "backup"))[0] == 2
    left = set(os.listdir(killed))
    assert not left & {"model.keras", "metrics.json", "history.csv"}
    assert not [n for n in left if ".tmp" in n]

    _finish(_child(killed, mode))  # the same command again
    _finish(reference)

    history = [_io.read_history_csv(os.path.join(d, "history.csv")) for d in (straight, killed)]
    assert len(history[1]["loss"]) == 4
    for key in history[0]:
        np.testing.assert_allclose(history[1][key], history[0][key], rtol=1e-4, atol=1e-6)
    models = [keras.models.load_model(os.path.join(d, "model.keras")) for d in (straight, killed)]
    for a, b in zip(models[0].weights, models[1].weights):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(b), keras.ops.convert_to_numpy(a),
            rtol=1e-4, atol=1e-6, err_msg=a.path,
        )
    assert "backup" not in os.listdir(killed)
