"""A finished seq2seq / causal LM run loaded by `kerasft.load(run,
compile=True)` in a fresh process gets back the optimizer it was trained
with, state included.

KerasHub tasks override `compile` without `compile_from_config`, so Keras's
`load_model` leaves them with KerasHub's default, unbuilt optimizer ("Adam",
2 variables) and skips the saved state; `_generative.load_finished_task`
compiles them from the saved compile config instead.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.recipes.causal_lm_data import tiny_gpt2
from tests.recipes.seq2seq_data import tiny_t5
from tests.recipes.test_generative_options import _causal, _seq2seq

pytestmark = pytest.mark.slow  # two tiny runs and one fresh process, ~40 s

_CHILD = """
import json, sys, warnings
import numpy as np
import kerasft

out = {}
for name, directory in json.loads(sys.argv[1]).items():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        task = kerasft.load(directory, compile=True).keras_model
    with np.load(directory + "/trained_optimizer.npz") as saved:
        trained = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    loaded = [np.asarray(v.numpy()) for v in task.optimizer.variables]
    out[name] = {
        "class": type(task.optimizer).__name__,
        "trained": len(trained),
        "loaded": len(loaded),
        "equal": len(trained) == len(loaded) and all(
            a.shape == b.shape and np.array_equal(a, b)
            for a, b in zip(trained, loaded)),
        "skipped": [str(w.message) for w in caught
                    if "Skipping variable loading" in str(w.message)],
        "generates": bool(task.generate(["1 2"], max_length=8)),
    }
print("RESULT " + json.dumps(out))
"""


def test_fresh_process_load_restores_the_optimizer(tmp_path):
    runs = {
        "causal_lm": _causal(tmp_path / "causal",
                             tiny_gpt2(hidden_dim=32, sequence_length=16),
                             weight_decay=0.1),
        "seq2seq": _seq2seq(tmp_path / "seq2seq", tiny_t5(hidden_dim=32),
                            accumulation_steps=2),
    }
    folders = {}
    for name, result in runs.items():
        values = [np.asarray(v.numpy()) for v in result.model.optimizer.variables]
        np.savez(f"{result.output_dir}/trained_optimizer.npz", *values)
        folders[name] = result.output_dir
    child = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(folders)],
                           capture_output=True, text=True, timeout=600)
    lines = [l for l in child.stdout.splitlines() if l.startswith("RESULT ")]
    assert lines, child.stderr[-3000:]
    for name, got in json.loads(lines[-1][len("RESULT "):]).items():
        assert got["class"] == type(runs[name].model.optimizer).__name__, (name, got)
        assert got["trained"] == got["loaded"] > 2, (name, got)
        assert got["equal"], (name, got)
        assert got["skipped"] == [], (name, got)
        assert got["generates"], (name, got)
