"""Keras layers shipped with kerasft."""

from kerasft.layers.preprocess import Preprocess

__all__ = ["Preprocess"]
