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
    "load": "kerasft.loading",
    "advise": "kerasft.advisor",
}
# The modules whose import registers kerasft's Keras objects (a test checks
# that every module using `register_keras_serializable` is listed).
_REGISTERING = ("augment", "callbacks", "heads", "layers", "optimizers", "remat",
                # The T5 converter's `gelu_approximate` activation.
                "backbones.t5_checkpoint",
                # The generation sampler that masks ids past the vocabulary.
                "generation",
                # Hugging Face-exact WordPiece, T5 sentinel and byte-level
                # BPE tokenizers.
                "backbones._wordpiece", "backbones._t5_tokenizer",
                "backbones._byte_level_bpe")

__all__ = ["__version__", "build_model", "freeze", "export", "tune", "generate",
           "load", *_SUBMODULES]


def __getattr__(name):
    if name in _SUBMODULES:
        return _importlib.import_module(f"kerasft.{name}")
    if name in _FUNCTIONS:
        return getattr(_importlib.import_module(_FUNCTIONS[name]), name)
    raise AttributeError(f"module 'kerasft' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)


def register_keras_objects():
    """Imports every kerasft module that registers Keras objects, so that
    `keras.models.load_model` finds them (kerasft's loaders call it; Keras
    also triggers it on its first lookup of a `kerasft>` name)."""
    for name in _REGISTERING:
        _importlib.import_module(f"kerasft.{name}")


def _register_on_lookup():
    from kerasft import _keras_compat

    _keras_compat.register_on_lookup("kerasft>", register_keras_objects)


class _AfterKerasImport:
    """A `sys.meta_path` finder that, once the `keras` package has been
    executed, makes Keras register kerasft's objects on their first lookup.

    It stays in `sys.meta_path` until Keras really executes: TensorFlow's
    own `importlib.util.find_spec("keras")` only asks for a spec, which is
    then thrown away. Nothing of kerasft is imported at that moment, so an
    import of Keras from inside a kerasft module cannot make a cycle.
    """

    def __init__(self):
        self._finding = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras" or self._finding:
            return None
        self._finding = True
        try:
            spec = _importlib.util.find_spec("keras")
        finally:
            self._finding = False
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module
        finder = self

        def exec_then_register(module):
            exec_module(module)
            if finder in _sys.meta_path:
                _sys.meta_path.remove(finder)
            _register_on_lookup()

        loader.exec_module = exec_then_register
        return spec


if "keras" in _sys.modules:
    _register_on_lookup()
else:
    import importlib.util  # noqa: E402,F401 (for _AfterKerasImport)

    _sys.meta_path.insert(0, _AfterKerasImport())
