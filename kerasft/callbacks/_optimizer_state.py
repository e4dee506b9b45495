"""Keras glue shared by the callbacks: (re)building a compiled model's optimizer.

Keras optimizers refuse variables they were not built with, and under a
`tf.distribute` strategy `fit` builds the optimizer before any callback runs.
These helpers build it over a chosen variable list, or replace it by a copy
built from its config (inside the strategy's scope) that keeps the state of
every variable the old one knew: step counter, learning rate, slots.
"""

import collections

from kerasft import _keras_compat


def covers(optimizer, variables):
    """Whether `optimizer` is built and knows every variable in `variables`.

    A wrapper (`LossScaleOptimizer`, kerasft's) is built over the same
    variables as the optimizer it wraps, so the innermost one is asked.
    """
    if not optimizer.built:
        return False
    while hasattr(optimizer, "inner_optimizer"):
        optimizer = optimizer.inner_optimizer
    if not optimizer.built:
        return False
    known = _keras_compat.optimizer_built_keys(optimizer)
    return all(
        _keras_compat.optimizer_variable_key(optimizer, v) in known
        for v in variables
    )


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
    path pairs them across two optimizers built from the same config; a path
    that repeats (two model variables with the same path) is paired in order.
    `target` may hold paths `source` lacks (slots of variables that start
    training); every variable of `source` must find its pair, or a
    `ValueError` says which state would be lost.
    """
    sources = collections.defaultdict(list)
    for v in source.variables:
        sources[v.path].append(v)
    targets = collections.defaultdict(list)
    for v in target.variables:
        targets[v.path].append(v)
    for path, olds in sources.items():
        news = targets.get(path, [])
        if len(olds) != len(news):
            raise ValueError(
                f"Cannot carry optimizer state {path!r} over to the rebuilt "
                f"optimizer {target.name!r}: the old one holds {len(olds)} "
                f"variable(s) with this path, the new one {len(news)}. Give "
                "every layer a unique name so that variable paths are unique, "
                "and build the new optimizer over every variable the old one "
                "knew."
            )
        for old, new in zip(olds, news):
            if tuple(old.shape) != tuple(new.shape):
                raise ValueError(
                    f"Cannot carry optimizer state {path!r} over to the "
                    f"rebuilt optimizer {target.name!r}: shape "
                    f"{tuple(old.shape)} became {tuple(new.shape)}."
                )
            new.assign(old.numpy())
