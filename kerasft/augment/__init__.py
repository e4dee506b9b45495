"""Image augmentation: ImageDataGenerator's arguments as one fused Keras layer,
plus MixUp, CutMix and a RandAugment pass-through."""

from kerasft.augment.cutmix import CutMix
from kerasft.augment.image_augmentation import ImageAugmentation
from kerasft.augment.mixup import MixUp
from kerasft.augment.random_resized_crop import RandomResizedCrop
from kerasft.augment.rand_augment import rand_augment

__all__ = [
    "CutMix",
    "ImageAugmentation",
    "MixUp",
    "RandomResizedCrop",
    "rand_augment",
]
