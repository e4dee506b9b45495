"""Optimizer wrappers and learning-rate schedules for fine-tuning."""

from kerasft.optimizers.adamw import AdamW
from kerasft.optimizers.factory import make_optimizer
from kerasft.optimizers.gradient_accumulator import GradientAccumulator
from kerasft.optimizers.layerwise_lr import LayerwiseLR
from kerasft.optimizers.schedules import Cyclic
from kerasft.optimizers.schedules import OneCycle
from kerasft.optimizers.schedules import SlantedTriangular
from kerasft.optimizers.schedules import StagedSchedule
from kerasft.optimizers.schedules import WarmupSchedule

__all__ = [
    "AdamW",
    "Cyclic",
    "GradientAccumulator",
    "LayerwiseLR",
    "OneCycle",
    "SlantedTriangular",
    "StagedSchedule",
    "WarmupSchedule",
    "make_optimizer",
]
