"""Pure planning for `LayerwiseLR`: which learning rate each variable gets.

Keras-free on purpose: the functions here map variable paths, group names
and the user's `learning_rates` / `layer_decay` to plain data, so the plan is
unit-tested without building a model and the optimizer glue stays thin.
"""

import collections
import numbers
import re

# The group names `build_model` assigns (one definition, Keras-free).
from kerasft._grouping import BACKBONE, HEAD  # noqa: F401 (re-exported)

# How a variable's rate is computed at each step:
# - "relative": `value` times the current base rate of the wrapped optimizer;
# - "constant": the float `value`, whatever the base rate does;
# - "schedule": the schedule stored under key `value` of `learning_rates`,
#   evaluated at the optimizer's step.
Rate = collections.namedtuple("Rate", ["kind", "value", "group"])


def normalize_groups(groups):
    """`{group: regex or [regex, ...]}` -> ordered `{group: [regex, ...]}`.

    Raises `TypeError`/`ValueError` on values that are not (lists of)
    compilable regexes, naming the group.
    """
    if not isinstance(groups, dict):
        raise TypeError(
            "`groups` must be None, a kerasft Backbone or a dict "
            "{group name: regex or list of regexes} ordered input -> output. "
            f"Received: groups={groups!r}"
        )
    normalized = {}
    for name, patterns in groups.items():
        if not isinstance(name, str):
            raise TypeError(
                f"`groups` keys must be group names (str). Received: {name!r}"
            )
        if name in (HEAD, BACKBONE):
            raise ValueError(
                f"`groups` may not define a group called {name!r}: "
                f"{HEAD!r} and {BACKBONE!r} are derived (variables outside "
                "every group, and every group). Rename it."
            )
        if isinstance(patterns, str):
            patterns = [patterns]
        if not isinstance(patterns, (list, tuple)) or not all(
            isinstance(p, str) for p in patterns
        ):
            raise TypeError(
                f"`groups[{name!r}]` must be a regex or a list of regexes. "
                f"Received: {patterns!r}"
            )
        for p in patterns:
            _compile(p, f"groups[{name!r}]")
        normalized[name] = list(patterns)
    return normalized


def merge_tag_groups(paths, tags, groups=None):
    """Adds the tags `kerasft.build_model` leaves on variables to `groups`.

    A variable matched by a regex of `groups` keeps that group; a variable
    matched by none and tagged with a backbone group joins the tag's group,
    as an exact-path regex (plain data that survives a reload, where tags are
    gone). When tags add anything, groups are ordered by their first variable
    in `paths` (model order, input -> output); groups without variables here
    come first, so depths counted from the top stay right when bottom groups
    are frozen.

    Args:
        paths: variable paths, in model order.
        tags: the tag of each variable: a backbone group name, `"head"` or
            `None`.
        groups: ordered `{group: [regex, ...]}` already known, or None.

    Returns:
        A new ordered `{group: [regex, ...]}`.
    """
    groups = {k: list(v) for k, v in (groups or {}).items()}
    member = memberships(paths, groups)
    added = False
    for i, (path, tag) in enumerate(zip(paths, tags)):
        if tag is None or tag == HEAD or member[i] != HEAD:
            continue
        groups.setdefault(tag, []).append("^" + re.escape(path) + "$")
        member[i] = tag
        added = True
    if not added:
        return groups
    first = {}
    for i, g in enumerate(member):
        first.setdefault(g, i)
    order = sorted(groups, key=lambda g: (g in first, first.get(g, -1)))
    return {g: groups[g] for g in order}


def memberships(paths, groups):
    """For each path, the first group (in order) with a regex matching it,
    or `"head"`. Patterns are compiled once: a model's exact-path groups
    hold hundreds of them, more than `re`'s cache."""
    compiled = [
        (name, [re.compile(p) for p in patterns])
        for name, patterns in groups.items()
    ]
    member = []
    for path in paths:
        found = HEAD
        for name, patterns in compiled:
            if any(p.search(path) for p in patterns):
                found = name
                break
        member.append(found)
    return member


def plan_rates(paths, groups, learning_rates=None, layer_decay=None,
               base_rate=None, tagged=False):
    """The `Rate` of each variable.

    Args:
        paths: variable paths (`"<layer name>/<variable name>"`).
        groups: ordered `{backbone group: [regex, ...]}`, input -> output
            (see `normalize_groups`). Variables in no group form `"head"`.
        learning_rates: `{key: rate}`. A key is a group name, `"backbone"`
            (every group), `"head"`, or a regex searched in variable paths.
            A rate is a float or any other object (a schedule), which is
            returned by key as kind `"schedule"`.
        layer_decay: float in (0, 1] or None. Backbone group `i`, counted
            from the top starting at 1, gets `layer_decay ** i` times the
            base rate; the head gets the base rate.
        base_rate: the base learning rate as a float, or None when the base
            rate is a schedule. A float group rate `r` becomes the multiplier
            `r / base_rate`; with a schedule base it is a constant rate.
        tagged: whether the variables carry `build_model` group tags; then
            `"head"` and `"backbone"` are known even if no backbone variable
            is among `paths` (a frozen backbone).

    Precedence when several keys match a variable: a backbone group name or
    a regex beats `"backbone"`/`"head"`; within each tier the later key in
    `learning_rates` wins. Explicit rates beat `layer_decay`.

    Returns:
        A tuple of `Rate(kind, value, group)`, one per path.

    Raises:
        ValueError: a key that is neither a group name nor a regex matching
            some path (the message lists the group names that exist), or a
            float rate when `base_rate` is 0.
    """
    learning_rates = dict(learning_rates or {})
    member = memberships(paths, groups)
    order = list(groups)
    rates = [Rate("relative", 1.0, g) for g in member]

    if layer_decay is not None:
        depth = {name: len(order) - k for k, name in enumerate(order)}
        for i, g in enumerate(member):
            if g != HEAD:
                rates[i] = Rate("relative", float(layer_decay) ** depth[g], g)

    umbrella, specific = [], []
    for key, value in learning_rates.items():
        matches = _matches(key, paths, member, groups, tagged)
        (umbrella if key in (HEAD, BACKBONE) else specific).append(
            (key, value, matches)
        )
    for key, value, matches in umbrella + specific:
        rate = _rate_for(key, value, base_rate)
        for i in matches:
            rates[i] = rate._replace(group=member[i])
    return tuple(rates)


def _matches(key, paths, member, groups, tagged=False):
    """Indices of the paths `key` selects; ValueError if none and unknown."""
    if not isinstance(key, str):
        raise TypeError(
            "`learning_rates` keys must be group names or regexes (str). "
            f"Received: {key!r}"
        )
    known = [HEAD, BACKBONE] + list(groups) if groups or tagged else []
    if key in (HEAD, BACKBONE) and not known:
        raise ValueError(
            f"`learning_rates` key {key!r} needs group names, but none are "
            "known: build the model with `kerasft.build_model` (it tags "
            "variables with their group) or pass `groups=backbone` or "
            "`groups={name: regex}`, or use regexes on variable paths."
        )
    if key == HEAD:
        return [i for i, g in enumerate(member) if g == HEAD]
    if key == BACKBONE:
        return [i for i, g in enumerate(member) if g != HEAD]
    if key in groups:
        # A known group with no variable here (e.g. frozen when the optimizer
        # was built) is not an error: the name exists.
        return [i for i, g in enumerate(member) if g == key]
    pattern = _compile(key, "learning_rates key")
    found = [i for i, p in enumerate(paths) if pattern.search(p)]
    if not found:
        raise ValueError(
            f"`learning_rates` key {key!r} is not a group name and, as a "
            "regex, matches no variable path. Known group names: "
            f"{known or 'none (no groups known)'}. Example paths: "
            f"{list(paths[:5])}. A group none of whose variables is in the "
            "optimizer (frozen when it was built) is only known through "
            "`groups=backbone`."
        )
    return found


def _rate_for(key, value, base_rate):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return Rate("schedule", key, None)
    value = float(value)
    if value < 0:
        raise ValueError(
            f"`learning_rates[{key!r}]` must be >= 0. Received: {value}"
        )
    if base_rate is None:
        return Rate("constant", value, None)
    if base_rate == 0:
        raise ValueError(
            "A float group rate is expressed relative to the base learning "
            "rate, which is 0 here. Give the wrapped optimizer a non-zero "
            f"learning rate. Received: learning_rates[{key!r}]={value}"
        )
    return Rate("relative", value / base_rate, None)


def _compile(pattern, what):
    try:
        return re.compile(pattern)
    except re.error as e:
        raise ValueError(
            f"{what} {pattern!r} is not a valid regex: {e}"
        ) from None
