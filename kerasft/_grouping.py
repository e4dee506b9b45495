"""Variable -> group map that `build_model` leaves for `LayerwiseLR`.

Keras variable paths carry only the owning layer's name, not the model it is
nested in, so `build_model` works out each variable's group (`"head"` or a
backbone group name) while it can still see which layers belong to the
backbone. The result is plain data, `{variable path: group}`, kept here per
variable object of this process (nothing is set on the variables); optimizers
that resolved it store the result as plain data (exact-path regexes) in their
config, which is what survives a reload.
"""

import weakref

HEAD = "head"
BACKBONE = "backbone"

# id(variable) -> (weak reference to it, group). Ids are reused once an
# object is gone, so a lookup checks that the reference still points to it.
_GROUPS = {}


def group_map(model, backbone):
    """`{variable path: group}` for every variable of `model`.

    Variables of `backbone.model`'s layers get their layer's group (or
    `None` for layers outside every group); every other variable is the
    head's. Nothing is recorded.
    """
    return {v.path: group for v, group in _variable_groups(model, backbone)}


def tag_model(model, backbone):
    """Records every variable's group for `variable_group`; returns
    `group_map(model, backbone)`."""
    pairs = _variable_groups(model, backbone)
    for v, group in pairs:
        _record(v, group)
    return {v.path: group for v, group in pairs}


def _variable_groups(model, backbone):
    in_backbone = {}
    for layer in backbone.model.layers:
        for v in layer.weights:
            in_backbone[id(v)] = None
    # Per group through `layers_of`, so `"<layer>/<sublayer>"` entries (ViT's
    # blocks inside its encoder layer) get their own group, not the head's.
    for group in backbone.groups:
        for layer in backbone.layers_of([group.name]):
            for v in layer.weights:
                in_backbone[id(v)] = group.name
    return [(v, in_backbone.get(id(v), HEAD)) for v in model.weights]


def _record(variable, group):
    key = id(variable)
    _GROUPS[key] = (weakref.ref(variable, lambda _, key=key: _forget(key)), group)


def _forget(key):
    entry = _GROUPS.get(key)
    if entry is not None and entry[0]() is None:
        del _GROUPS[key]


def variable_group(variable):
    """The group `tag_model` recorded for `variable` (`"head"`, a backbone
    group, or None when it holds none)."""
    entry = _GROUPS.get(id(variable))
    if entry is None or entry[0]() is not variable:
        return None
    return entry[1]
