"""The `Backbone` value: a Keras model plus its preprocessing and depth groups."""

import dataclasses
import re
from typing import Callable, Optional, Sequence


@dataclasses.dataclass(frozen=True)
class Group:
    """One depth group of a backbone (a stage, block or transformer layer).

    Args:
        name: group name, unique within the backbone (e.g. `"conv5"`).
        layers: names of the layers of `backbone.model` in this group,
            in model order.
    """

    name: str
    layers: tuple

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))


class Backbone:
    """A pretrained feature extractor, its preprocessing and its layer groups.

    Args:
        model: the Keras model, without a classification top. Its name is the
            name of the nested layer in models made by `kerasft.build_model`.
        preprocess: the callable the family expects on raw inputs (for images
            exactly `keras.applications.<family>.preprocess_input`).
        groups: `Group`s ordered input -> output. Every layer with weights
            belongs to exactly one group.
        name: short registry name (e.g. `"resnet50"`).
        preprocess_mode: how `kerasft.layers.Preprocess` reproduces
            `preprocess` inside a model: `"caffe"`, `"tf"`, `"torch"` or
            `"none"` (images); `None` for non-image backbones.
        input_range: the value range the model expects on its raw input,
            e.g. `(0, 255)`; `None` when it does not apply (token ids).
        task: `"image"` or `"text"`.
        tokenizer: for text backbones, the matching KerasHub preprocessor or
            tokenizer. Defaults to `None`.
    """

    def __init__(
        self,
        model,
        preprocess: Optional[Callable],
        groups: Sequence[Group],
        name: str,
        preprocess_mode: Optional[str] = "none",
        input_range=(0, 255),
        task: str = "image",
        tokenizer=None,
    ):
        groups = tuple(
            g if isinstance(g, Group) else Group(*g) for g in groups
        )
        names = [g.name for g in groups]
        if len(set(names)) != len(names):
            raise ValueError(
                f"Group names must be unique. Received: {names}"
            )
        if task not in ("image", "text"):
            raise ValueError(
                f"`task` must be 'image' or 'text'. Received: task={task!r}"
            )
        self.model = model
        self.preprocess = preprocess
        self.groups = groups
        self.name = name
        self.preprocess_mode = preprocess_mode
        self.input_range = input_range
        self.task = task
        self.tokenizer = tokenizer

    # === Group queries (plain data, no Keras calls) ===

    @property
    def group_names(self):
        """Group names ordered input -> output."""
        return [g.name for g in self.groups]

    def group(self, name):
        """The `Group` called `name`; `KeyError` listing the names otherwise."""
        for g in self.groups:
            if g.name == name:
                return g
        raise KeyError(
            f"Unknown group {name!r} for backbone {self.name!r}. "
            f"Known groups: {self.group_names}"
        )

    def group_of(self, layer_name):
        """Name of the group holding `layer_name`, or `None`."""
        for g in self.groups:
            if layer_name in g.layers:
                return g.name
        return None

    def group_patterns(self):
        """`{group name: regex}` matching the variable paths of each group.

        Keras variable paths start with the owning layer's name
        (`"conv5_block3_3_conv/kernel"`), so a group's regex is an anchored
        alternation of its layer names. Plain data: serializable.
        """
        return {
            g.name: "^(?:" + "|".join(re.escape(n) for n in g.layers) + ")/"
            for g in self.groups
            if g.layers
        }

    def layers_of(self, group_names):
        """The Keras layers of `self.model` in the given groups."""
        wanted = set()
        for name in group_names:
            wanted.update(self.group(name).layers)
        return [l for l in self.model.layers if l.name in wanted]

    def __repr__(self):
        return (
            f"Backbone(name={self.name!r}, task={self.task!r}, "
            f"groups={self.group_names})"
        )
