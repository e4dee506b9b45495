"""The freezing schedule every recipe shares: what trains when, at which rate.

Stages change inside one `fit` (`kerasft.callbacks.ProgressiveUnfreeze`), so
the optimizer's state carries over. With a constant rate the callback sets
each stage's rate; otherwise each stage runs the schedule over its own steps
at its own peak rate (as fastai's `fine_tune`), through the optimizer's
`kerasft.optimizers.StagedSchedule`, and the callback sets no rate.
"""


def stages(config, num_groups):
    """`(schedule, learning_rates)` of the mode for `ProgressiveUnfreeze`,
    or `(None, None)` when nothing changes during the run."""
    if not is_staged(config):
        return None, None
    h = config.head_epochs
    n = min(config.unfreeze_groups, num_groups)
    ft = config.backbone_learning_rate()
    schedule, rates = {0: 0}, {0: config.learning_rate}
    if config.mode == "partial":
        schedule[h], rates[h] = n, ft
    elif config.mode == "full":
        schedule[h], rates[h] = "all", ft
    else:  # progressive: top groups, then all at a tenth of the rate
        middle = h + max(1, (config.epochs - h) // 2)
        schedule[h], rates[h] = n, ft
        schedule[middle], rates[middle] = "all", ft / 10
    return schedule, rates


def is_staged(config):
    """Whether the mode opens backbone groups during the run."""
    return config.mode != "feature_extraction" and not (
        config.mode == "full" and config.head_epochs == 0)


def schedules_stages(config):
    """Whether each stage runs `lr_schedule`/`warmup_ratio` over its own
    steps (a staged mode with a schedule other than a constant rate)."""
    return is_staged(config) and (config.lr_schedule != "constant" or
                                  bool(config.warmup_ratio))


def freeze_first_stage(model, backbone, config):
    """Freezes what the first stage does not train (`kerasft.freeze`;
    BatchNorm stays in inference mode unless `train_batchnorm`)."""
    from kerasft.freezing import freeze

    strategy = ("full_freeze" if config.mode == "feature_extraction" else
                "progressive" if is_staged(config) else "full")
    train_bn = getattr(config, "train_batchnorm", False)  # not on text
    freeze(model, backbone, strategy, train_batchnorm=train_bn)


def optimizer(run, config, groups, total_steps=None):
    """The run's optimizer (`Run.optimizer`) at the first stage's rate.

    Args:
        run: the `Run`.
        config: the recipe's `FineTuningConfig`.
        groups: a `Backbone` or group list, for `layer_decay`.
        total_steps: batches of the whole run (all epochs, before
            `accumulation_steps`); needed when `lr_schedule` is not
            `"constant"` or `warmup_ratio > 0`. Defaults to `None`.
    """
    if schedules_stages(config):
        _, rates = stages(config, 1)  # the rates do not depend on the groups
        return run.optimizer(groups, total_steps, stage_rates=rates)
    # The first step's rate: the backbone's when everything trains at once.
    first = (config.backbone_learning_rate() if config.mode == "full" and
             config.head_epochs == 0 else config.learning_rate)
    return run.optimizer(groups, total_steps, learning_rate=first)


def unfreeze_callback(run, config, backbone):
    """The mode's `ProgressiveUnfreeze`, or `None` for a single stage; it
    sets the stages' rates unless the optimizer's schedule holds them."""
    schedule, rates = stages(config, len(backbone.groups))
    if schedule is None:
        return None
    from kerasft.callbacks import ProgressiveUnfreeze

    rates = (None if schedules_stages(config) else {
        e: run.scaled_rate(r)
        for e, r in rates.items()
    })
    return ProgressiveUnfreeze(
        backbone, schedule, learning_rates=rates,
        train_batchnorm=getattr(config, "train_batchnorm",
                                False), verbose=1 if config.verbose else 0)


def with_unfreeze(run, config, backbone, callbacks):
    """The user's callbacks with the mode's `ProgressiveUnfreeze` first."""
    unfreeze = unfreeze_callback(run, config, backbone)
    return ([unfreeze] if unfreeze is not None else []) + list(callbacks or [])


def build_and_compile(run, config, backbone, head, loss=None, total_steps=None):
    """`build_model`, the first stage's freeze, and `compile` with the
    run's optimizer (and `loss` instead of the head's when given), inside
    `run.strategy.scope()`; `total_steps` as `optimizer` takes it."""
    from kerasft.model import build_model

    model = build_model(backbone, head, remat=config.gradient_checkpointing)
    freeze_first_stage(model, backbone, config)
    compile_kwargs = head.compile_kwargs()
    if loss is not None:
        compile_kwargs["loss"] = loss
    model.compile(optimizer=optimizer(run, config, backbone, total_steps),
                  **compile_kwargs)
    return model
