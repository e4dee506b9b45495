"""Pretrained backbones: a Keras model, its preprocessing and its groups."""

from kerasft.backbones.applications import get
from kerasft.backbones.applications import list_backbones
from kerasft.backbones.backbone import Backbone
from kerasft.backbones.backbone import Group
from kerasft.backbones.input_range import check_input_range
from kerasft.backbones.user_model import from_model

# The submodule `bert` shares its name with the function: importing the
# submodule sets the package attribute to the module, so the function is bound
# after it. (`bert.py` imports KerasHub only when called.)
from kerasft.backbones.bert import bert as _bert  # noqa: E402
from kerasft.backbones.bert import enable_lora  # noqa: E402

bert = _bert

__all__ = [
    "Backbone",
    "Group",
    "bert",
    "check_input_range",
    "enable_lora",
    "from_model",
    "get",
    "list_backbones",
]
