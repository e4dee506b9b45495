"""`from_keras_hub(model)`: any KerasHub backbone or task as a kerasft `Backbone`.

KerasHub names the layers of its transformer backbones the same way across
families (`token_embedding`, `transformer_layer_3`,
`transformer_decoder_layer_0`, `pooled_dense`, `vit_encoder` holding
`transformer_block_1`..), so their depth groups are declared once, as
ordered name rules (`GROUP_RULES`), like the per-family regexes of
`kerasft.backbones.grouping`. `plan_groups` applies them to layer names
alone (pure, no Keras); `from_keras_hub` is the thin glue that reads the
names off a model.
"""

import re

import keras

from kerasft import _grouping
from kerasft import _keras_compat
from kerasft.backbones import grouping
from kerasft.backbones.backbone import Backbone
from kerasft.backbones.backbone import Group

# === Grouping rules (plain data) ===

EMBEDDINGS = "embeddings"

# Ordered `(group name template, regex)` over layer names; the first rule
# whose regex matches (`re.search`) a layer names its group, `{0}` being the
# position of the regex's captured layer index among those found (so groups
# count from 0 even where KerasHub counts from 1, as ViT does). The rule
# order is the group order, input -> output (a seq2seq encoder's layers
# before its decoder's); within a rule, groups are ordered by index.
GROUP_RULES = (
    (EMBEDDINGS, r"embedding"),
    ("encoder_layer_{0}", r"^(?:transformer_)?encoder_(?:layer|block)_(\d+)$"),
    (
        "layer_{0}",
        r"^(?:transformer_(?:layer|block)|f_net_layer|rwkv_layer|xlnet_encoder"
        r"|disentangled_attention_encoder_layer)_(\d+)$",
    ),
    ("decoder_layer_{0}", r"^(?:transformer_)?decoder_(?:layer|block)_(\d+)$"),
    ("pooler", r"^pooled_dense$"),
)
_ENCODER, _LAYER, _DECODER = 1, 2, 3

# Layers that hold a whole stack of transformer layers as sublayers (ViT's
# `vit_encoder`): their sublayers are grouped as if they were top-level
# layers, and named `<container>/<sublayer>` in the groups.
CONTAINERS = (r"^vit_encoder$",)


def plan_groups(layers):
    """Groups of a KerasHub backbone from its layers' names: plain data.

    Rules, over `layers` in model order (input -> output):

    1. A layer matched by a rule of `GROUP_RULES` joins that rule's group.
    2. Any other layer joins the group of the layer before it: final layer
       norms (`layer_norm`, `encoder_output_layer_norm`) merge into the top
       transformer layer before them, dropouts and adds stay with their
       block. Layers before the first matched one join the first group.
    3. Groups are ordered by rule, then by layer index, so an encoder's
       layers come before its decoder's even where the model interleaves
       them. Decoder layers of a model without an encoder (Gemma's
       `decoder_block_i`) are named `layer_i`.

    When no transformer layer is found (a KerasHub CNN such as
    `ResNetBackbone`), the layers are grouped by
    `kerasft.backbones.grouping.auto_groups`, the documented fallback for
    user models.

    Args:
        layers: `(name, has_weights)` pairs in model order; names of
            sublayers of a container are `"<container>/<sublayer>"`.

    Returns:
        A list of `(group name, [layer names])` ordered input -> output,
        every layer in exactly one group.

    Example:

    >>> plan_groups([("token_embedding", True),
    ...              ("transformer_layer_0", True),
    ...              ("transformer_layer_1", True), ("layer_norm", True)])
    [('embeddings', ['token_embedding']), ('layer_0', ['transformer_layer_0']), \
('layer_1', ['transformer_layer_1', 'layer_norm'])]
    """
    layers = [(str(name), bool(weighted)) for name, weighted in layers]
    rules = [re.compile(regex) for _, regex in GROUP_RULES]
    assigned, previous = [], None
    for name, _ in layers:
        key = _rule_key(name.rsplit("/", 1)[-1], rules) or previous
        assigned.append(key)
        previous = key
    if not any(key is not None and key[0] > 0 for key in assigned):
        weighted = {name for name, has in layers if has}
        return grouping.auto_groups([n for n, _ in layers], weighted)
    first = next(key for key in assigned if key is not None)
    members = {}
    for (name, _), key in zip(layers, assigned):
        members.setdefault(key or first, []).append(name)
    order = sorted(members)
    ranks = {rank for rank, _ in order}
    positions = {}
    for rank, index in order:
        positions[(rank, index)] = sum(1 for r, _ in positions if r == rank)
    names = {rank: template for rank, (template, _) in enumerate(GROUP_RULES)}
    if _DECODER in ranks and not ranks & {_ENCODER, _LAYER}:
        # Decoder-only (Gemma's `decoder_block_i`): plain `layer_i`.
        names[_DECODER] = names[_LAYER]
    return [
        (names[rank].format(positions[(rank, index)]), members[(rank, index)])
        for rank, index in order
    ]


def _rule_key(name, rules):
    """`(rule rank, layer index)` of the first rule matching `name`."""
    for rank, regex in enumerate(rules):
        match = regex.search(name)
        if match:
            return (rank, int(match.group(1)) if match.groups() else 0)
    return None


def check_groups(groups, weighted):
    """Raises `ValueError` unless every name in `weighted` is in exactly one
    of `groups` (`(name, [layer names])` pairs)."""
    seen = {}
    for group, names in groups:
        for name in names:
            if name in seen:
                raise ValueError(
                    f"Layer {name!r} is in groups {seen[name]!r} and "
                    f"{group!r}; each layer must be in exactly one group."
                )
            seen[name] = group
    missing = [name for name in weighted if name not in seen]
    if missing:
        raise ValueError(
            f"Layers with weights {missing} are in no group. Pass the model "
            "to `kerasft.backbones.from_model(model, groups=...)` instead."
        )


# === Keras glue ===


def from_keras_hub(model, name=None):
    """Any KerasHub backbone or task as a kerasft `Backbone` with its groups.

    `model` may be a KerasHub `Backbone` (`GPT2Backbone`, `T5Backbone`,
    `BertBackbone`, `ViTBackbone`, ...) or a `Task` (`GPT2CausalLM`,
    `T5Seq2SeqLM`, `BartSeq2SeqLM`, `BertTextClassifier`,
    `ViTImageClassifier`, ...). For a task the groups are those of
    `task.backbone`, and `kerasft.freeze(task, backbone, strategy)`,
    `kerasft.optimizers.LayerwiseLR(..., groups=backbone)` and
    `kerasft.callbacks.ProgressiveUnfreeze(backbone, schedule)` act on the
    task itself in a plain `task.fit(...)`.

    Groups, ordered input -> output (see `plan_groups`): `embeddings`
    (token, position and segment embeddings with their norm), then one
    group per transformer layer: `layer_0`, `layer_1`, ... for decoder-only
    and encoder-only models, `encoder_layer_0`, ..., then
    `decoder_layer_0`, ... for encoder-decoder models; final layer norms
    join the top layer before them; BERT's pooler is its own group
    `pooler`. Every layer with weights is in exactly one group. Tied
    input/output embeddings (GPT-2, BART, T5 v1.0: the task's output
    projection is the token embedding read in reverse) are one variable,
    in `embeddings`, so they freeze and train together.

    Weights whose Keras path does not start with their layer's name (T5's
    relative attention bias, created outside its layer's scope as
    `self_attention/embeddings` in both the encoder and the decoder) get
    the path they would have had (`transformer_encoder_layer_0/...`), so
    the path regexes of `Backbone.group_patterns` reach them. Every
    variable is also tagged with its group, as `kerasft.build_model`
    does, so `LayerwiseLR(..., groups=None)` finds the groups too.

    Args:
        model: a `keras_hub.models.Backbone` or `keras_hub.models.Task`.
        name: name of the returned `Backbone`. Defaults to the KerasHub
            backbone's name (`backbone.model.name` always is).

    Returns:
        A `kerasft.backbones.Backbone` whose `.model` is the KerasHub
        backbone and whose `.tokenizer` is the task's preprocessor (`None`
        for a backbone, or a task without one). `task` is `"causal_lm"`
        for a `CausalLM`, `"seq2seq"` for a `Seq2SeqLM`, `"image"` for
        image inputs and `"text"` otherwise.

    Example:

    ```python
    import keras_hub
    gpt2 = keras_hub.models.GPT2Backbone(
        vocabulary_size=64, num_layers=2, num_heads=2, hidden_dim=8,
        intermediate_dim=16, max_sequence_length=16)
    lm = keras_hub.models.GPT2CausalLM(backbone=gpt2, preprocessor=None)
    backbone = kerasft.backbones.from_keras_hub(lm)
    backbone.group_names  # ['embeddings', 'layer_0', 'layer_1']
    ```
    """
    keras_hub = _keras_hub()
    task = None
    if isinstance(model, keras_hub.models.Task):
        task, hub_backbone = model, model.backbone
    elif isinstance(model, keras_hub.models.Backbone):
        hub_backbone = model
    else:
        raise TypeError(
            "`model` must be a KerasHub Backbone or Task (e.g. "
            "keras_hub.models.GPT2CausalLM). For a plain Keras model use "
            "`kerasft.backbones.from_model`. Received: "
            f"model={type(model).__name__}"
        )
    if name is not None and (not isinstance(name, str) or not name):
        raise ValueError(
            f"`name` must be a non-empty string. Received: name={name!r}"
        )
    layers = _named_layers(hub_backbone)
    weighted = [n for n, layer in layers if layer.weights]
    groups = plan_groups([(n, bool(layer.weights)) for n, layer in layers])
    check_groups(groups, weighted)
    _qualify_paths(layers)
    preprocessor = getattr(task, "preprocessor", None)
    backbone = Backbone(
        model=hub_backbone,
        preprocess=preprocessor,
        groups=[Group(g, names) for g, names in groups],
        name=name or hub_backbone.name,
        preprocess_mode="none" if _is_image(hub_backbone) else None,
        input_range=None,
        task=_task_kind(task, hub_backbone, keras_hub),
        tokenizer=preprocessor,
    )
    _grouping.tag_model(task if task is not None else hub_backbone, backbone)
    return backbone


def _keras_hub():
    try:
        import keras_hub
    except ImportError as e:  # pragma: no cover - keras-hub is required
        raise ImportError(
            "kerasft.backbones.from_keras_hub needs KerasHub: "
            "pip install keras-hub"
        ) from e
    return keras_hub


def _named_layers(model):
    """`(name, layer)` in model order; containers' sublayers as
    `"<container>/<sublayer>"`. Input layers are left out."""
    containers = [re.compile(c) for c in CONTAINERS]
    out = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if any(c.search(layer.name) for c in containers):
            out.extend(
                (f"{layer.name}/{sub.name}", sub)
                for sub in _keras_compat.sublayers(layer)
            )
        else:
            out.append((layer.name, layer))
    return out


def _qualify_paths(layers):
    """Gives each weight whose path does not start with its layer's name
    the path it would have had inside the layer (T5's relative bias)."""
    for name, layer in layers:
        for variable in layer.weights:
            if not variable.path.startswith(name + "/"):
                _keras_compat.set_variable_path(
                    variable, f"{name}/{variable.path}"
                )


def _is_image(hub_backbone):
    inputs = hub_backbone.input
    return not isinstance(inputs, dict) and len(inputs.shape) == 4


def _task_kind(task, hub_backbone, keras_hub):
    if isinstance(task, keras_hub.models.Seq2SeqLM):
        return "seq2seq"
    if isinstance(task, keras_hub.models.CausalLM):
        return "causal_lm"
    return "image" if _is_image(hub_backbone) else "text"
