"""The `Backbone` value: a Keras model plus its preprocessing and depth groups."""

import dataclasses
import re
from typing import Callable, Optional, Sequence

# What a backbone's model does with its inputs (see `Backbone`).
TASKS = ("image", "text", "causal_lm", "seq2seq")


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
        task: what the model does with its inputs, one of `TASKS`:
            `"image"` (image features), `"text"` (text features),
            `"causal_lm"` (a KerasHub `CausalLM` task: next-token logits)
            or `"seq2seq"` (a KerasHub `Seq2SeqLM` task: encoder-decoder
            logits). `kerasft.build_model` puts a head on `"image"` and
            `"text"` backbones; the generative ones are fit as they are.
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
        if task not in TASKS:
            raise ValueError(
                f"`task` must be one of {TASKS}. Received: task={task!r}"
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
        """The Keras layers of `self.model` in the given groups, in model
        order (a name `"<layer>/<sublayer>"` is a sublayer of a layer)."""
        wanted = set()
        for name in group_names:
            wanted.update(self.group(name).layers)
        return _find_layers(self.model.layers, "", wanted)

    def __repr__(self):
        return (
            f"Backbone(name={self.name!r}, task={self.task!r}, "
            f"groups={self.group_names})"
        )


def _find_layers(layers, prefix, wanted):
    found = []
    for layer in layers:
        path = prefix + layer.name
        if path in wanted:
            found.append(layer)
        elif any(w.startswith(path + "/") for w in wanted):
            # Imported here: this module stays Keras-free until then.
            from kerasft import _keras_compat

            sublayers = _keras_compat.sublayers(layer)
            found.extend(_find_layers(sublayers, path + "/", wanted))
    return found
