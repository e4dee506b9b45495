"""Gradient checkpointing for backbone groups (`keras.RematScope` segments).

`rematerialize(backbone)` returns a model that computes exactly
`backbone.model` but runs each backbone group as one rematerialized segment:
during the backward pass only the tensors that cross group boundaries are
kept, and the activations inside a group are recomputed. It shares every
layer (and so every variable) with `backbone.model`, so freezing,
`ProgressiveUnfreeze` and `LayerwiseLR` act on it unchanged.

Why segments, not `keras.RematScope`: the scope acts when an operation is
*created* (`Operation.__init__` reads it), so it cannot reach a backbone
that already exists, and it wraps each layer's call on its own. Wrapping
each layer of a CNN saves nothing, since every layer's input is the previous
layer's output and is kept anyway; wrapping a whole stage in `keras.remat`
(`tf.recompute_grad`) keeps only the stage's inputs. (A functional model
created under `RematScope` is wrapped as a whole, but `tf.recompute_grad`
rejects the `training=` keyword in graph mode, hence `RematSegment`.)
"""

import keras
from keras import tree

from kerasft import _keras_compat


def rematerialize(backbone, groups=None, name=None):
    """A model equal to `backbone.model` whose groups recompute activations.

    Args:
        backbone: a `kerasft.backbones.Backbone` whose `.model` is a
            functional Keras model (keras.applications and KerasHub
            backbones are).
        groups: names of the groups to rematerialize; the others run as
            plain layers. Defaults to `None`: every group.
        name: name of the returned model. Defaults to `None`:
            `backbone.model.name`, so `build_model` nests it under the same
            name.

    Returns:
        A functional `keras.Model` with the same inputs and outputs as
        `backbone.model`, built from one functional sub-model per contiguous
        run of a group's layers; those of rematerialized groups run inside
        a `RematSegment` (`keras.remat`). It saves to `.keras` and loads
        back with the segments rematerialized.

    The saving in memory is bought with a second forward pass through each
    rematerialized group during backpropagation. Layers whose output is
    random in training (dropout) draw a new mask in the recomputation, so
    use it with those only in inference mode.

    Example:

    ```python
    backbone = kerasft.backbones.get("mobilenetv2", input_shape=(96, 96, 3))
    features = kerasft.remat.rematerialize(backbone)
    inputs = keras.Input((96, 96, 3))
    x = features(inputs, training=False)
    outputs = keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    ```
    """
    model = backbone.model
    if not _keras_compat.is_functional(model):
        raise TypeError(
            "`rematerialize` needs a functional backbone model (built with "
            "keras.Input and layer calls). Received a "
            f"{type(model).__name__}: {model.name!r}"
        )
    names = backbone.group_names
    if groups is None:
        wanted = set(names)
    else:
        unknown = [g for g in groups if g not in names]
        if unknown:
            raise ValueError(
                f"Unknown groups {unknown} for backbone {backbone.name!r}. "
                f"Known groups: {names}"
            )
        wanted = set(groups)

    segments = _segments(model, backbone)
    # A functional model's `input`/`output` are the structures it was
    # built with (a tensor, a list or a dict).
    inputs = tree.map_structure(_clone_input, model.input)
    values = {
        id(ref): new
        for ref, new in zip(tree.flatten(model.input), tree.flatten(inputs))
    }
    for index, (group, nodes, seg_inputs, seg_outputs) in enumerate(segments):
        segment = _segment_model(
            nodes, seg_inputs, seg_outputs, f"{group or 'ungrouped'}_{index}"
        )
        if group in wanted:
            segment = RematSegment(segment, name=f"{segment.name}_remat")
        results = segment([values[id(t)] for t in seg_inputs])
        for ref, new in zip(seg_outputs, tree.flatten(results)):
            values[id(ref)] = new
    outputs = tree.map_structure(lambda t: values[id(t)], model.output)
    return keras.Model(inputs, outputs, name=name or model.name)


@keras.saving.register_keras_serializable(package="kerasft")
class RematSegment(keras.layers.Layer):
    """Runs a functional sub-model under `keras.remat` (gradient checkpointing).

    Only the segment's inputs are kept for the backward pass; its inner
    activations are recomputed. The call is closed over `training` because
    `tf.recompute_grad` takes no keyword arguments in graph mode.

    Args:
        segment: a functional `keras.Model` taking a list of tensors.
        **kwargs: base `Layer` arguments (`name`, ...).

    Example:

    ```python
    inputs = keras.Input((8,))
    inner = keras.Model(inputs, keras.layers.Dense(4, activation="relu")(inputs))
    layer = RematSegment(inner)
    y = layer([np.ones((2, 8), "float32")])
    ```
    """

    def __init__(self, segment, **kwargs):
        super().__init__(**kwargs)
        self.segment = segment

    def build(self, input_shape):
        self.built = True

    def call(self, inputs, training=None):
        inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]

        def run(*tensors):
            return tuple(
                tree.flatten(self.segment(list(tensors), training=training))
            )

        outputs = keras.remat(run)(*inputs)
        return list(outputs)

    def compute_output_spec(self, inputs, training=None):
        return self.segment.compute_output_spec(list(inputs))

    def get_config(self):
        config = super().get_config()
        config["segment"] = keras.saving.serialize_keras_object(self.segment)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["segment"] = keras.saving.deserialize_keras_object(
            config["segment"]
        )
        return cls(**config)


def _segment_model(nodes, seg_inputs, seg_outputs, name):
    """A self-contained functional model replaying `nodes` on fresh inputs.

    The same layer objects are called again, so variables are shared."""
    fresh = [_clone_input(t) for t in seg_inputs]
    values = {id(ref): new for ref, new in zip(seg_inputs, fresh)}
    for node in nodes:
        args, kwargs = _keras_compat.node_call_arguments(node, values)
        results = node.operation(*args, **kwargs)
        for ref, new in zip(node.outputs, tree.flatten(results)):
            values[id(ref)] = new
    return keras.Model(fresh, [values[id(t)] for t in seg_outputs], name=name)


def _clone_input(tensor):
    return keras.Input(
        batch_shape=tensor.shape, dtype=tensor.dtype, sparse=tensor.sparse
    )


def _ordered_nodes(model):
    """The model's call nodes in execution order (as Keras runs them)."""
    order = []
    nodes_by_depth = _keras_compat.functional_nodes_by_depth(model)
    for depth in sorted(nodes_by_depth, reverse=True):
        for node in nodes_by_depth[depth]:
            if node.operation is not None and not node.is_input:
                order.append(node)
    return order


def _segments(model, backbone):
    """Maximal runs of consecutive nodes of one group, with the tensors that
    enter and leave each run. Layers outside every group join the run
    before them (they hold no weights: pads, activations, adds)."""
    runs = []
    current = None
    for node in _ordered_nodes(model):
        group = backbone.group_of(node.operation.name)
        if group is None:
            group = current
        if not runs or group != current:
            runs.append((group, []))
            current = group
        runs[-1][1].append(node)

    consumers = {}
    for index, (_, nodes) in enumerate(runs):
        for node in nodes:
            for t in node.input_tensors:
                consumers.setdefault(id(t), set()).add(index)
    final = {id(t) for t in tree.flatten(model.output)}

    segments = []
    for index, (group, nodes) in enumerate(runs):
        produced, seg_inputs, seg_outputs = set(), [], []
        for node in nodes:
            for t in node.input_tensors:
                if id(t) not in produced and all(t is not s for s in seg_inputs):
                    seg_inputs.append(t)
            for t in node.outputs:
                produced.add(id(t))
        for node in nodes:
            for t in node.outputs:
                later = consumers.get(id(t), set()) - {index}
                if later or id(t) in final:
                    seg_outputs.append(t)
        segments.append((group, nodes, seg_inputs, seg_outputs))
    return segments
