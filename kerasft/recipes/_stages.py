"""The freezing schedule every recipe shares: what trains when, at which rate.

`FineTuningConfig.mode` with `head_epochs`, `unfreeze_groups` and
`fine_tune_learning_rate` means the same in every recipe, for any
`Backbone` with groups (convnets' stages, BERT's and T5's transformer
layers, a ViT's blocks):

- `"feature_extraction"`: the backbone stays frozen; only the head trains.
- `"partial"`: head only for `head_epochs`, then the top `unfreeze_groups`
  groups too, at `fine_tune_learning_rate`.
- `"progressive"`: head only, then the top `unfreeze_groups` groups at
  `fine_tune_learning_rate`, then every group at a tenth of it.
- `"full"`: head only for `head_epochs`, then everything at
  `fine_tune_learning_rate`; with `head_epochs=0` everything trains from
  the first step, with no callback at all.

Stages change inside one `fit` (`kerasft.callbacks.ProgressiveUnfreeze`),
so the optimizer's state carries over and BatchNorm stays in inference
mode.

Rates within a stage: with `lr_schedule="constant"` and `warmup_ratio=0`
`ProgressiveUnfreeze` sets each stage's rate when it begins. Otherwise each
stage runs the schedule (warmup, then constant, linear or cosine decay to
0, or a one-cycle) over its own steps at its own peak rate, as fastai's
`fine_tune` runs one one-cycle per stage: the optimizer's rate is a
`kerasft.optimizers.StagedSchedule` and the callback sets no rate. This
needs the run's `total_steps` (batches of the whole run), a `ValueError`
without it. A single stage keeps one schedule over the whole run.
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
    if config.mode == "feature_extraction":
        return False
    return not (config.mode == "full" and config.head_epochs == 0)


def schedules_stages(config):
    """Whether each stage runs `lr_schedule`/`warmup_ratio` over its own
    steps (a staged mode with a schedule other than a constant rate)."""
    return is_staged(config) and (
        getattr(config, "lr_schedule", "constant") != "constant"
        or bool(getattr(config, "warmup_ratio", 0.0))
    )


def first_learning_rate(config):
    """The base rate of the first step: the head's when the mode starts with
    the head alone, else the backbone's."""
    if config.mode == "full" and config.head_epochs == 0:
        return config.backbone_learning_rate()
    return config.learning_rate


def freeze_first_stage(model, backbone, config):
    """Freezes what the first stage does not train (`kerasft.freeze`;
    BatchNorm stays in inference mode unless `train_batchnorm`)."""
    from kerasft.freezing import freeze

    if config.mode == "feature_extraction":
        strategy = "full_freeze"
    elif is_staged(config):
        strategy = "progressive"
    else:
        strategy = "full"
    freeze(model, backbone, strategy,
           train_batchnorm=getattr(config, "train_batchnorm", False))


def optimizer(run, config, groups, total_steps=None):
    """The run's optimizer (`Run.optimizer`) starting at the first stage's
    rate, `layer_decay` counting `groups` (a `Backbone` or group list).

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
    return run.optimizer(groups, total_steps,
                         learning_rate=first_learning_rate(config))


def unfreeze_callback(run, config, backbone):
    """The mode's `ProgressiveUnfreeze`, or `None` for a single stage; it
    sets the stages' rates unless the optimizer's schedule holds them."""
    schedule, rates = stages(config, len(backbone.groups))
    if schedule is None:
        return None
    from kerasft.callbacks import ProgressiveUnfreeze

    return ProgressiveUnfreeze(
        backbone,
        schedule,
        learning_rates=None if schedules_stages(config) else {
            e: run.scaled_rate(r) for e, r in rates.items()},
        train_batchnorm=getattr(config, "train_batchnorm", False),
        verbose=1 if config.verbose else 0,
    )


def with_unfreeze(run, config, backbone, callbacks):
    """The user's callbacks with the mode's `ProgressiveUnfreeze` first."""
    unfreeze = unfreeze_callback(run, config, backbone)
    return ([unfreeze] if unfreeze is not None else []) + list(callbacks or [])


def build_and_compile(run, config, backbone, head, loss=None, total_steps=None):
    """`build_model` (with `gradient_checkpointing`), the first stage's
    freeze, and `compile` with the run's optimizer (with `loss` instead of
    the head's when given); call it inside `run.strategy.scope()`.

    `total_steps` is the batches of the whole run (batches per epoch times
    `epochs`), needed for `lr_schedule`/`warmup_ratio` (see `optimizer`).
    """
    from kerasft.model import build_model

    model = build_model(backbone, head, remat=config.gradient_checkpointing)
    freeze_first_stage(model, backbone, config)
    compile_kwargs = head.compile_kwargs()
    if loss is not None:
        compile_kwargs["loss"] = loss
    model.compile(optimizer=optimizer(run, config, backbone, total_steps),
                  **compile_kwargs)
    return model
