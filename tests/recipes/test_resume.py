"""Resume: a run killed with SIGKILL mid-epoch and started again with the
same command ends like an uninterrupted run; outputs are never half-written."""

import os
import signal
import subprocess
import sys

import pytest

from kerasft.recipes import _resume
from tests.recipes import kill9

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
    kill9.kill_when_held(victim, marker)
    assert victim.returncode == -signal.SIGKILL
    # Killed in epoch 2: epochs 0 and 1 are backed up, no final output exists.
    assert _resume.latest_checkpoint(os.path.join(killed, "backup"))[0] == 2
    left = set(os.listdir(killed))
    assert not left & {"model.keras", "metrics.json", "history.csv"}
    assert not [n for n in left if ".tmp" in n]

    _finish(_child(killed, mode))  # the same command again
    _finish(reference)

    kill9.assert_same_history(straight, killed)
    kill9.assert_same_weights(straight, killed)
    assert "backup" not in os.listdir(killed)
