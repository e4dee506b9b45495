"""`mode="auto"` in every recipe with `mode`: advise, then follow.

A recipe calls `follow_advice(run, backbone, data, labels)` once it holds
its backbone and training data, before it builds and compiles: with
`mode="auto"` the run's config becomes the advice's (strategy, groups, head
epochs, epochs, rates, layer decay), `advice.json` is written into the run
folder and the table printed; any other mode returns the config unchanged.
"""

import dataclasses
import json
import os

from kerasft.advisor.advice import ADVICE_FILE, Advice

# Examples a recipe's advice measures at most (a stratified subset).
MAX_SAMPLES = 1000


def follow_advice(run, backbone, data, labels=None, num_examples=None,
                  num_classes=None):
    """`run.config`, with `mode="auto"` replaced by `kerasft.advise`'s plan.

    Options of the advice the user set to other than the recipe's default
    (`epochs=5`, `--layer-decay 0.9`) are kept: the advice records them as
    "set by the user". A resumed run reads its `advice.json` instead of
    measuring again, so it follows the plan it started with. `run.config`
    is set to the result (the run's identity keeps `mode="auto"`).

    Args:
        run: the recipe's `Run`.
        backbone: the `Backbone` the run fine-tunes.
        data: training inputs: an array, a dict of token arrays, a
            `tf.data.Dataset` of `(inputs, targets, ...)` batches (its first
            `MAX_SAMPLES` examples are measured), or `None` (only the size,
            `num_examples`, decides: generative models).
        labels: one integer class per example (an array; for a dataset, a
            function of a batch's targets), or `None` when the task has no
            class per example (masks, boxes, captions, target text).
        num_examples: training examples in all. Defaults to `None` (those
            in `data`).
        num_classes: number of classes. Defaults to `None` (from labels).
    """
    config = run.config
    if config.mode != "auto":
        return config
    path = os.path.join(run.dir, ADVICE_FILE)
    if run.state == "resume" and os.path.exists(path):
        with open(path) as f:
            advice = Advice.from_dict(json.load(f))
        run.log(f"Following the advice in {path}.")
    else:
        from kerasft.advisor.advising import advise

        data = None if data is None else sample(data, labels)
        advice = advise(
            data, backbone, num_classes=num_classes,
            batch_size=run.global_batch, max_samples=MAX_SAMPLES,
            seed=config.seed, num_examples=num_examples,
            allowed_modes=allowed_modes(config),
            default_rates=(config.learning_rate,
                           config.fine_tune_learning_rate),
            head_stage=not _refuses(config, "head_epochs"),
        )
        set_by_user = _set_by_user(config)
        if set_by_user:
            advice = advice.replace(**set_by_user)
        if run.chief:
            advice.to_json(path)
    run.notice(f"mode=auto chose:\n{advice.table()}")
    fields = advice.config_fields()
    if fields["mode"] == "feature_extraction":
        # Options only opened groups use keep the config's valid values.
        fields = {k: v for k, v in fields.items()
                  if k in ("mode", "epochs", "learning_rate")}
    chosen = dataclasses.replace(config, **fields)
    run.config = chosen
    return chosen


def _set_by_user(config):
    """`{field: value}` of the advice's fields (but `mode`) that `config`
    sets to other than the recipe's default: the user's, kept over the
    advice (`Advice.replace`). A value equal to the default counts as
    not set."""
    from kerasft.advisor.advice import FIELDS

    return {name: getattr(config, name) for name in FIELDS
            if name != "mode" and hasattr(config, name)
            and getattr(config, name) != _field(config, name).default}


def allowed_modes(config):
    """The strategies `config`'s `mode` field accepts (not "auto")."""
    meta = _field(config, "mode").metadata
    refused = tuple(meta.get("refused_values") or ())
    return [m for m in meta["choices"] if m != "auto" and m not in refused]


def _field(config, name):
    return next(f for f in dataclasses.fields(config) if f.name == name)


def _refuses(config, name):
    return bool(_field(config, name).metadata.get("refused"))


def sample(data, labels, max_samples=MAX_SAMPLES):
    """`(x, y)` in memory: `data` as it is, or the first `max_samples`
    examples (or more, to the end of a batch) of a dataset of batches
    (`labels` maps a batch's targets to classes, or is `None`)."""
    import numpy as np
    import tensorflow as tf

    if not isinstance(data, tf.data.Dataset):
        return data, labels
    xs, ys, seen = [], [], 0
    for batch in data:
        inputs, targets = batch[0], batch[1]
        xs.append(tf.nest.map_structure(np.asarray, inputs))
        if labels is not None:
            ys.append(np.asarray(labels(targets)))
        seen += len(np.asarray(tf.nest.flatten(inputs)[0]))
        if seen >= max_samples:
            break
    if not xs:
        raise ValueError("`mode='auto'` needs training examples to measure; "
                         "the training data is empty.")
    if isinstance(xs[0], dict):
        x = {k: np.concatenate([b[k] for b in xs]) for k in xs[0]}
    else:
        x = np.concatenate(xs)
    return x, (np.concatenate(ys) if labels is not None else None)


def follow_advice_on_images(run, config, image_size):
    """`follow_advice` for the image classification recipes: the backbone
    resolved (the returned config holds it, so the run does not build it
    twice) and the training images read without augmentation."""
    from kerasft.recipes._image_backbone import resolve_backbone
    from kerasft.recipes.image_classification import read_splits

    with run.strategy.scope():
        backbone = resolve_backbone(config, run.strategy, image_size)
    run.config = config = dataclasses.replace(config, backbone=backbone)
    if config.mode != "auto" or (run.state == "resume" and os.path.exists(
            os.path.join(run.dir, ADVICE_FILE))):
        return follow_advice(run, backbone, None)
    train, _, _ = read_splits(
        run, dataclasses.replace(config, test=None),
        image_size, "int", augment=None, shuffle_train=True,
    )
    x, y = sample(train, lambda t: t)
    return follow_advice(run, backbone, x, y,
                         num_examples=_count(train, len(y)),
                         num_classes=train.num_classes)


def _count(dataset, default):
    """Examples in a `kerasft.data` dataset (its `num_samples`, else
    `default`)."""
    n = getattr(dataset, "num_samples", None)
    return int(n) if isinstance(n, int) and n > 0 else default
