"""`mode="auto"` in the `image_classification` recipe: advise, then follow."""

import dataclasses
import os

from kerasft.advisor.advice import ADVICE_FILE, Advice


def follow_advice(run, config, image_size):
    """The config the advice chose for an `image_classification` run.

    Reads the training images, resolves the backbone (the returned config
    holds it, so the run does not build it twice), runs `kerasft.advise`
    and writes `advice.json` into the run folder, printing the table. A
    resumed run reads its `advice.json` instead of measuring again, so it
    follows the plan it started with. `run.config` is set to the result
    (the run's identity keeps `mode="auto"`).
    """
    from kerasft.recipes._image_backbone import resolve_backbone

    with run.strategy.scope():
        backbone = resolve_backbone(config, run.strategy, image_size)
    path = os.path.join(run.dir, ADVICE_FILE)
    if run.state == "resume" and os.path.exists(path):
        import json

        with open(path) as f:
            advice = Advice.from_dict(json.load(f))
        run.log(f"Following the advice in {path}.")
    else:
        advice = _measure(run, config, backbone, image_size)
        if run.chief:
            advice.to_json(path)
    run.notice(f"mode=auto chose:\n{advice.table()}")
    fields = advice.config_fields()
    if fields["mode"] == "feature_extraction":
        # Options only opened groups use keep the config's valid values.
        fields = {k: v for k, v in fields.items()
                  if k in ("mode", "epochs", "learning_rate")}
    chosen = dataclasses.replace(config, backbone=backbone, **fields)
    run.config = chosen
    return chosen


def _measure(run, config, backbone, image_size):
    from kerasft.advisor.advising import advise
    from kerasft.recipes.image_classification import read_splits

    train, _, _ = read_splits(
        run, dataclasses.replace(config, test=None),
        image_size, "int", augment=None, shuffle_train=True,
    )
    return advise(
        train, backbone, num_classes=train.num_classes,
        batch_size=run.global_batch, seed=config.seed,
    )
