"""kerasft's Keras objects load in any fresh process, whatever the import order."""

import os
import re
import subprocess
import sys

import keras
import pytest

import kerasft

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _fresh(code, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


def test_every_registering_module_is_listed():
    """A module that registers Keras objects but is missing from
    `kerasft._REGISTERING` would load only where it happened to be imported."""
    package = os.path.join(ROOT, "kerasft")
    registering = set()
    for folder, _, files in os.walk(package):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            with open(path, encoding="utf-8") as f:
                if not re.search(r"register_keras_serializable\(", f.read()):
                    continue
            module = os.path.relpath(path, package)[:-3].replace(os.sep, ".")
            registering.add(re.sub(r"\.__init__$", "", module))
    listed = set(kerasft._REGISTERING)
    missing = {m for m in registering
               if not any(m == p or m.startswith(p + ".") for p in listed)}
    assert not missing, missing


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A model with a kerasft layer and a kerasft optimizer (saved state)."""
    from kerasft.layers import Preprocess
    from kerasft.optimizers import LayerwiseLR

    path = str(tmp_path_factory.mktemp("saved") / "m.keras")
    inputs = keras.Input((4, 4, 3))
    x = Preprocess("caffe")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2, name="head")(x)
    model = keras.Model(inputs, outputs)
    model.compile(LayerwiseLR(keras.optimizers.Adam(1e-3), layer_decay=0.5), "mse")
    model.fit(keras.random.uniform((4, 4, 4, 3)), keras.random.uniform((4, 2)),
              verbose=0)
    model.save(path)
    return path


@pytest.mark.parametrize("imports", [
    "import tensorflow\nimport kerasft",  # what the CLI does
    "import kerasft\nimport keras",
    "import keras\nimport kerasft",
    "import kerasft.layers",  # one piece, not the package's __init__ first
])
def test_saved_model_loads_after_any_import_order(saved_model, tmp_path, imports):
    code = (
        f"{imports}\nimport keras\n"
        f"m = keras.models.load_model({saved_model!r})\n"
        "print(type(m.layers[1]).__name__, type(m.optimizer).__name__)\n"
    )
    result = _fresh(code, tmp_path)
    assert result.stdout.split() == ["Preprocess", "LayerwiseLR"], (
        result.stderr[-2000:])


def test_single_pieces_import_in_a_fresh_process(tmp_path):
    result = _fresh(
        "import kerasft.layers, kerasft.heads\nimport kerasft.backbones\n"
        "import kerasft.optimizers, kerasft.callbacks, kerasft.augment\n"
        "print('OK')", tmp_path)
    assert result.stdout.strip() == "OK", result.stderr[-2000:]


def test_importing_kerasft_imports_none_of_its_layers(tmp_path):
    """Registration waits for Keras's first lookup: `import kerasft` then
    `import keras` stays light."""
    result = _fresh(
        "import sys, kerasft, keras\n"
        "print(sorted(m for m in sys.modules if m.startswith('kerasft.')))",
        tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "kerasft.layers" not in result.stdout
    assert "kerasft.heads" not in result.stdout
