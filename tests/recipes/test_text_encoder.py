"""`kerasft.recipes._text_encoder`: a finished text run's `model.keras`,
loaded by plain `keras.saving.load_model` (compile=True) in a fresh process,
gets back the optimizer state it was saved with, in every mode.

A KerasHub backbone's config does not keep which of its layers are frozen,
so a token head's frozen pooler (question answering, token classification)
or the layers `partial` never opens used to come back trainable: Keras then
built a bigger optimizer and skipped the saved state ("Skipping variable
loading for optimizer ... 84 variables whereas the saved optimizer has 80").
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from kerasft import recipes
from tests.fixtures.tiny_hf import make_tiny_folder
from tests.recipes.ner_data import ner_sentences
from tests.recipes.test_question_answering import _long_squad

FAST = dict(precision="float32", strategy="default", verbose=0, batch_size=8)

_CHILD = """
import json, sys, warnings
import keras, numpy as np
import kerasft

out = {}
for name, directory in json.loads(sys.argv[1]).items():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = keras.saving.load_model(directory + "/model.keras")
    with np.load(directory + "/trained_optimizer.npz") as saved:
        trained = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    loaded = [np.asarray(v.numpy()) for v in model.optimizer.variables]
    out[name] = {
        "trained": len(trained),
        "loaded": len(loaded),
        "equal": len(trained) == len(loaded) and all(
            a.shape == b.shape and np.array_equal(a, b)
            for a, b in zip(trained, loaded)),
        "skipped": [str(w.message) for w in caught
                    if "Skipping variable loading" in str(w.message)],
    }
print("RESULT " + json.dumps(out))
"""


def _train(name, out, folder, data_dir):
    common = dict(backbone=folder, output_dir=out, **FAST)
    if name == "question_answering":
        squad = _long_squad(os.path.join(data_dir, "squad.json"), 8, seed=0)
        return recipes.question_answering(
            train=squad, validation=squad, max_length=32, doc_stride=8,
            epochs=1, **common)
    if name == "token_classification":
        sentences, tags = ner_sentences(16)
        return recipes.token_classification(
            train=(sentences, tags), validation=(sentences, tags),
            max_length=32, epochs=1, **common)
    texts = ["good film", "bad film", "great", "awful"] * 4
    labels = ["pos", "neg", "pos", "neg"] * 4
    modes = {
        "text_classification_partial": dict(
            mode="partial", epochs=2, head_epochs=1, unfreeze_groups=1),
        "text_classification_feature_extraction": dict(
            mode="feature_extraction", epochs=1),
    }
    return recipes.text_classification(
        train=(texts, labels), validation=(texts, labels), max_length=16,
        **modes[name], **common)


@pytest.mark.slow
def test_fresh_process_load_restores_every_optimizer_variable(tmp_path):
    folder, _ = make_tiny_folder(str(tmp_path / "bert"), hidden=32,
                                 intermediate=64)
    runs = {}
    for name in ("question_answering", "token_classification",
                 "text_classification_partial",
                 "text_classification_feature_extraction"):
        out = str(tmp_path / name)
        model = _train(name, out, folder, str(tmp_path)).model
        variables = [np.asarray(v.numpy()) for v in model.optimizer.variables]
        # The state is real: slots moved away from their zero start.
        assert any(np.any(v != 0) for v in variables[2:]), name
        np.savez(os.path.join(out, "trained_optimizer.npz"), *variables)
        runs[name] = out
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(runs)],
        capture_output=True, text=True, timeout=300,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )
    lines = [l for l in child.stdout.splitlines() if l.startswith("RESULT ")]
    assert lines, child.stderr[-3000:]
    results = json.loads(lines[-1][len("RESULT "):])
    for name, result in results.items():
        assert result["skipped"] == [], (name, result)
        assert result["loaded"] == result["trained"], (name, result)
        assert result["equal"], (name, result)
    # A frozen encoder is frozen as a whole, so only the head has state.
    assert (results["text_classification_feature_extraction"]["trained"]
            < results["text_classification_partial"]["trained"])
