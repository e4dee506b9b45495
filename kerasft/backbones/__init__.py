"""Pretrained backbones: a Keras model, its preprocessing and its groups."""

from kerasft.backbones.applications import get
from kerasft.backbones.applications import list_backbones
from kerasft.backbones._offsets import token_offsets
from kerasft.backbones.backbone import Backbone
from kerasft.backbones.backbone import Group
from kerasft.backbones.feature_pyramid import feature_pyramid
from kerasft.backbones.generative import load_task
from kerasft.backbones.input_range import check_input_range
from kerasft.backbones.user_model import from_model

# The submodule `bert` shares its name with the function: importing the
# submodule sets the package attribute to the module, so the function is bound
# after it. (`bert.py` imports KerasHub only when called.)
from kerasft.backbones.bert import bert as _bert  # noqa: E402
from kerasft.backbones.keras_hub import from_keras_hub  # noqa: E402
from kerasft.backbones.lora import enable_lora  # noqa: E402
from kerasft.backbones.lora import load_lora  # noqa: E402
from kerasft.backbones.lora import merge_lora  # noqa: E402
from kerasft.backbones.lora import save_lora  # noqa: E402

bert = _bert

__all__ = [
    "Backbone",
    "Group",
    "bert",
    "check_input_range",
    "enable_lora",
    "feature_pyramid",
    "from_keras_hub",
    "from_model",
    "get",
    "list_backbones",
    "load_lora",
    "load_task",
    "merge_lora",
    "save_lora",
    "token_offsets",
]
