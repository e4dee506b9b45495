"""Keras glue shared by the callbacks: (re)building a compiled model's optimizer.

Keras optimizers refuse variables they were not built with, and under a
`tf.distribute` strategy `fit` builds the optimizer before any callback runs.
These helpers build it over a chosen variable list, or replace it by a copy
built from its config (inside the strategy's scope) that keeps the state of
every variable the old one knew: step counter, learning rate, slots.
"""

import collections


def covers(optimizer, variables):
    """Whether `optimizer` is built and knows every variable in `variables`."""
    if not optimizer.built:
        return False
    known = getattr(optimizer, "_trainable_variables_indices", None)
    if known is None:
        return False
    return all(optimizer._var_key(v) in known for v in variables)


def clone(optimizer, strategy):
    """A fresh, unbuilt optimizer from `optimizer`'s config, in `strategy`."""
    with strategy.scope():
        return optimizer.__class__.from_config(optimizer.get_config())


def prepare(model, variables):
    """Makes `model.optimizer` built over `variables` (a superset is fine).

    Builds an unbuilt optimizer in place; replaces a built one that lacks some
    of `variables` by a clone built over them, copying the old state by
    variable path. Returns True when the optimizer object was replaced.
    """
    optimizer = model.optimizer
    strategy = model.distribute_strategy
    if covers(optimizer, variables):
        return False
    if not optimizer.built:
        with strategy.scope():
            optimizer.build(list(variables))
        return False
    new = clone(optimizer, strategy)
    with strategy.scope():
        new.build(list(variables))
    copy_state(optimizer, new)
    model.optimizer = new
    return True


def copy_state(source, target):
    """Copies optimizer variables from `source` to `target` by path.

    Slot variables are named after the model variable they track, so the
    path pairs them across two optimizers built from the same config. A path
    that repeats (two model variables with the same path) is paired in order
    only when both optimizers hold it the same number of times.
    """
    by_path = collections.defaultdict(list)
    for v in source.variables:
        by_path[v.path].append(v)
    wanted = collections.defaultdict(list)
    for v in target.variables:
        wanted[v.path].append(v)
    for path, targets in wanted.items():
        sources = by_path.get(path, [])
        if len(sources) != len(targets):
            continue
        for src, dst in zip(sources, targets):
            if tuple(src.shape) == tuple(dst.shape):
                dst.assign(src.numpy())
