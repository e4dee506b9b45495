"""kerasft: correct, fast fine-tuning of pretrained models with Keras 3.

`import kerasft` is light: the sub-packages (and TensorFlow with them) load
on first use (`kerasft.backbones`, `kerasft.build_model`, ...), so the
`kerasft` command answers `--help` without TensorFlow's start-up cost.

kerasft's layers, optimizers and schedules register themselves with Keras
for `keras.models.load_model` without `custom_objects`. So that a saved
`model.keras` loads after a bare `import kerasft`, they are imported as soon
as Keras is (now, when Keras is already loaded).
"""

import importlib as _importlib
import os as _os
import sys as _sys

_os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from kerasft._version import __version__  # noqa: E402

_SUBMODULES = (
    "augment",
    "backbones",
    "callbacks",
    "data",
    "distribute",
    "evaluation",
    "heads",
    "layers",
    "optimizers",
    "recipes",
    "remat",
    "active",
)
_FUNCTIONS = {
    "build_model": "kerasft.model",
    "freeze": "kerasft.freezing",
    # Modules named apart from their function, so importing the module
    # cannot shadow `kerasft.export` / `kerasft.tune` (issue 14).
    "export": "kerasft.exporting",
    "tune": "kerasft.tuning",
    "generate": "kerasft.generation",
}
# The modules whose import registers kerasft's Keras objects.
_REGISTERING = ("augment", "callbacks", "heads", "layers", "optimizers", "remat",
                # The T5 converter's `gelu_approximate` activation.
                "backbones.t5_checkpoint")

__all__ = ["__version__", "build_model", "freeze", "export", "tune", "generate",
           *_SUBMODULES]


def __getattr__(name):
    if name in _SUBMODULES:
        return _importlib.import_module(f"kerasft.{name}")
    if name in _FUNCTIONS:
        return getattr(_importlib.import_module(_FUNCTIONS[name]), name)
    raise AttributeError(f"module 'kerasft' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)


def _register_keras_objects():
    for name in _REGISTERING:
        _importlib.import_module(f"kerasft.{name}")


class _AfterKerasImport:
    """A `sys.meta_path` finder that registers kerasft's Keras objects once
    the `keras` package has been imported (then removes itself)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        _sys.meta_path.remove(self)
        spec = _importlib.util.find_spec("keras")
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            _register_keras_objects()

        loader.exec_module = exec_then_register
        return spec


if "keras" in _sys.modules:
    _register_keras_objects()
else:
    import importlib.util  # noqa: E402,F401 (for _AfterKerasImport)

    _sys.meta_path.insert(0, _AfterKerasImport())
