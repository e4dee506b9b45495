"""The kill -9 resume tests' shared steps: kill a child run held in epoch 2,
then compare the resumed run with an uninterrupted one."""

import os
import signal
import time

import keras
import numpy as np

from kerasft import _io


def kill_when_held(victim, marker, timeout=300):
    """Waits for the child run to write `marker` (it holds in epoch 2 with
    `--hold-at-epoch 2`), then kills it with SIGKILL."""
    deadline = time.time() + timeout
    while not os.path.exists(marker):
        assert victim.poll() is None, victim.communicate()[0].decode()[-3000:]
        assert time.time() < deadline, "the run never reached epoch 2"
        time.sleep(0.2)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()


def assert_same_history(straight, killed, epochs=4, err_msg=False, **tolerance):
    """Both run folders' `history.csv` hold `epochs` epochs of equal values
    (`rtol=1e-4, atol=1e-6` unless given)."""
    tolerance = {"rtol": 1e-4, "atol": 1e-6, **tolerance}
    history = [_io.read_history_csv(os.path.join(d, "history.csv"))
               for d in (straight, killed)]
    assert len(history[1]["loss"]) == epochs
    for key in history[0]:
        np.testing.assert_allclose(history[1][key], history[0][key],
                                   err_msg=key if err_msg else "", **tolerance)


def assert_same_weights(straight, killed):
    """Both run folders' `model.keras` hold equal weights."""
    models = [keras.models.load_model(os.path.join(d, "model.keras"))
              for d in (straight, killed)]
    for a, b in zip(models[0].weights, models[1].weights):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(b), keras.ops.convert_to_numpy(a),
            rtol=1e-4, atol=1e-6, err_msg=a.path,
        )
