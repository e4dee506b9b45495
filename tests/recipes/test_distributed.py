"""Recipes under tf.distribute on this machine (two logical CPU devices,
and two local worker processes for MultiWorkerMirroredStrategy)."""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

from kerasft import recipes
from tests.recipes.tiny import tiny_backbone, tiny_images

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(tmp_path, name, strategy, batch_size, precision):
    # The backbone itself computes in the policy: built under it.
    keras.mixed_precision.set_global_policy(precision)
    backbone = tiny_backbone(seed=3)
    x, y = tiny_images(64)
    return recipes.progressive_fine_tuning(
        train=(x, y), backbone=backbone, epochs=3, head_epochs=1, unfreeze_groups=1, layer_decay=0.5,
        learning_rate=5e-2, fine_tune_learning_rate=5e-3, dropout=0.0,
        batch_size=batch_size, lr_scaling="none", strategy=strategy,
        precision=precision, verbose=0, output_dir=str(tmp_path / name),
    )


@pytest.mark.parametrize(
    "precision, rtol",
    [("float32", 1e-4), ("mixed_bfloat16", 5e-2)],
)
def test_mirrored_two_cpus_matches_one_device(tmp_path, precision, rtol):
    """Same global batch (2 x 8 vs 16): the same loss curve (to float32
    rounding; bfloat16's 8-bit mantissa lets curves drift a few percent),
    with LayerwiseLR + ProgressiveUnfreeze (+ mixed precision)."""
    single = _run(tmp_path, "single", "default", 16, precision)
    mirrored = _run(tmp_path, "mirrored", "mirrored", 8, precision)
    assert mirrored.model.distribute_strategy.num_replicas_in_sync == 2
    assert type(mirrored.model.optimizer).__name__ == "LayerwiseLR"
    conv = mirrored.model.get_layer("tiny").get_layer("b1_conv")
    assert conv.compute_dtype == keras.mixed_precision.Policy(precision).compute_dtype
    losses = [np.array(r.history["loss"]) for r in (single, mirrored)]
    assert losses[0][-1] < losses[0][0]  # it learns
    np.testing.assert_allclose(losses[1], losses[0], rtol=rtol)


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_multiworker_two_local_workers_only_chief_writes(tmp_path):
    out = str(tmp_path / "mw")
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "PYTHONPATH": ROOT, "TF_CONFIG": json.dumps(tf_config),
               "CUDA_VISIBLE_DEVICES": ""}
        procs.append(subprocess.Popen(
            # "auto" must pick MultiWorkerMirroredStrategy from TF_CONFIG.
            [sys.executable, "-m", "tests.recipes._child", out, "--strategy", "auto"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        ))
    for proc in procs:
        output, _ = proc.communicate(timeout=400)
        assert proc.returncode == 0, output.decode()[-4000:]
    files = set(os.listdir(out))
    assert {"metrics.json", "model.keras", "history.csv", "config.json"} <= files
    assert not [f for f in files if f.startswith(".worker")]  # removed
    assert "backup" not in files
    with open(os.path.join(out, "config.json")) as f:
        # MultiWorkerMirroredStrategy is CollectiveAllReduceStrategy inside.
        assert json.load(f)["strategy"] == {"strategy": "CollectiveAllReduceStrategy"}
    with open(os.path.join(out, "history.csv")) as f:
        assert len(f.read().strip().splitlines()) == 1 + 4  # header + 4 epochs
