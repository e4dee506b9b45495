"""kerasft: correct, fast fine-tuning of pretrained models with Keras 3."""

import os as _os

_os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from kerasft._version import __version__  # noqa: E402
from kerasft import backbones  # noqa: E402
from kerasft import layers  # noqa: E402
from kerasft import heads  # noqa: E402
from kerasft import optimizers  # noqa: E402
from kerasft import callbacks  # noqa: E402
from kerasft import augment  # noqa: E402
from kerasft import data  # noqa: E402
from kerasft import distribute  # noqa: E402
from kerasft import evaluation  # noqa: E402
from kerasft import recipes  # noqa: E402
from kerasft import remat  # noqa: E402
from kerasft.model import build_model  # noqa: E402
from kerasft.freezing import freeze  # noqa: E402

__all__ = [
    "__version__",
    "augment",
    "backbones",
    "build_model",
    "callbacks",
    "data",
    "distribute",
    "evaluation",
    "freeze",
    "heads",
    "layers",
    "optimizers",
    "recipes",
    "remat",
]
