"""Variable -> group tags that `build_model` leaves for `LayerwiseLR`.

Keras variable paths carry only the owning layer's name, not the model it is
nested in, so `build_model` tags each variable with its group (`"head"` or a
backbone group name). Tags live on the variable objects of this process;
optimizers that resolved them store the result as plain data in their config.
"""

_TAG = "_kerasft_group"
HEAD = "head"
BACKBONE = "backbone"


def tag_model(model, backbone):
    """Tags every variable of `model` with its group name; returns the map."""
    layer_group = {}
    for group in backbone.groups:
        for layer_name in group.layers:
            layer_group[layer_name] = group.name
    backbone_ids = set()
    for layer in backbone.model.layers:
        group = layer_group.get(layer.name)
        for v in layer.weights:
            backbone_ids.add(id(v))
            if group is not None:
                setattr(v, _TAG, group)
    for v in model.weights:
        if id(v) not in backbone_ids:
            setattr(v, _TAG, HEAD)
    return {v.path: getattr(v, _TAG, None) for v in model.weights}


def variable_group(variable):
    """The tag `tag_model` left on `variable` (`"head"`, a group, or None)."""
    return getattr(variable, _TAG, None)
