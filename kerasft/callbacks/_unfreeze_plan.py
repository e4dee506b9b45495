"""Pure planning for progressive unfreezing: which groups train at epoch e.

Keras-free functions over group names and plain schedule dicts, so the
callback's glue stays thin and the plans are unit-tested without models.
"""

ALL = "all"


def normalize_schedule(schedule, num_groups):
    """Validates `schedule` and returns `{epoch (int): count (int)}`.

    Args:
        schedule: dict mapping a 0-based epoch to the number of groups that
            train, counted from the top, or `"all"`. Epoch keys may be ints
            or digit strings (a config read back from JSON).
        num_groups: number of groups of the backbone.

    Returns:
        A dict sorted by epoch with every `"all"` replaced by `num_groups`.
    """
    if not isinstance(schedule, dict) or not schedule:
        raise ValueError(
            "`schedule` must be a non-empty dict mapping a 0-based epoch to "
            "a number of backbone groups or 'all', e.g. {0: 0, 2: 2, 4: "
            f"'all'}}. Received: schedule={schedule!r}"
        )
    plan = {}
    for key, count in schedule.items():
        epoch = _epoch_key(key, "schedule")
        if count == ALL:
            count = num_groups
        elif isinstance(count, bool) or not isinstance(count, int):
            raise ValueError(
                "`schedule` values must be ints or 'all'. Received: "
                f"schedule[{key!r}]={count!r}"
            )
        elif not 0 <= count <= num_groups:
            raise ValueError(
                f"`schedule` values must be in [0, {num_groups}] (the "
                "backbone's number of groups) or 'all'. Received: "
                f"schedule[{key!r}]={count!r}"
            )
        plan[epoch] = count
    return dict(sorted(plan.items()))


def normalize_rates(learning_rates):
    """Validates `learning_rates` and returns `{epoch (int): rate (float)}`."""
    if learning_rates is None:
        return {}
    if not isinstance(learning_rates, dict):
        raise TypeError(
            "`learning_rates` must be a dict mapping a 0-based epoch to a "
            "learning rate, e.g. {0: 1e-3, 2: 1e-5}. Received: "
            f"learning_rates={learning_rates!r}"
        )
    rates = {}
    for key, rate in learning_rates.items():
        epoch = _epoch_key(key, "learning_rates")
        if isinstance(rate, bool) or not isinstance(rate, (int, float)):
            raise TypeError(
                "`learning_rates` values must be floats. Received: "
                f"learning_rates[{key!r}]={rate!r}"
            )
        if rate < 0:
            raise ValueError(
                "`learning_rates` values must be >= 0. Received: "
                f"learning_rates[{key!r}]={rate!r}"
            )
        rates[epoch] = float(rate)
    return dict(sorted(rates.items()))


def latest_at(plan, epoch, default=None):
    """Value of the latest key `<= epoch` of a sorted plan, else `default`."""
    value = default
    for start, entry in plan.items():
        if start > epoch:
            break
        value = entry
    return value


def groups_at(group_names, plan, epoch):
    """Names of the groups that train at `epoch` (top groups), in model order.

    Epochs before the plan's first key train no backbone group.
    """
    count = latest_at(plan, epoch, default=0)
    return top_groups(group_names, count)


def top_groups(group_names, count):
    """The `count` groups closest to the output, ordered input -> output."""
    group_names = list(group_names)
    if count <= 0:
        return ()
    return tuple(group_names[-count:])


def max_count(plan):
    """Largest number of groups the plan ever trains."""
    return max(plan.values()) if plan else 0


def _epoch_key(key, arg_name):
    if isinstance(key, str) and key.isdigit():
        key = int(key)
    if isinstance(key, bool) or not isinstance(key, int) or key < 0:
        raise ValueError(
            f"`{arg_name}` keys must be 0-based epochs (ints >= 0). "
            f"Received: key {key!r} in {arg_name}"
        )
    return key
