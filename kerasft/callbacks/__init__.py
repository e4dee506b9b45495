"""Callbacks for fine-tuning in anyone's `model.fit`."""

from kerasft.callbacks.lr_finder import ExponentialSweep
from kerasft.callbacks.lr_finder import LRFinder
from kerasft.callbacks.lr_finder import LRFinderResult
from kerasft.callbacks.lr_finder import lr_find
from kerasft.callbacks.curriculum import Curriculum
from kerasft.callbacks.progressive_unfreeze import ProgressiveUnfreeze

__all__ = [
    "Curriculum",
    "ExponentialSweep",
    "LRFinder",
    "LRFinderResult",
    "ProgressiveUnfreeze",
    "lr_find",
]
