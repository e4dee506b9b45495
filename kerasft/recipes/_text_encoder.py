"""The glue the BERT-family recipes (text classification, question
answering, token classification) share: the model, its freezing and
optimizer, batches and one pass of predictions per held-out split."""

import copy
import types

import numpy as np

from kerasft import _keras_compat
from kerasft.recipes import _stages
from kerasft.recipes._runner import head_scores, prefixed


def resolve_backbone(config):
    """`kerasft.backbones.bert(config.backbone)` unless given a Backbone."""
    spec = config.backbone
    if hasattr(spec, "model") and hasattr(spec, "groups"):
        if spec.task != "text":
            raise ValueError(
                f"`backbone` must be a text backbone. Received: {spec!r}"
            )
        return spec
    from kerasft import backbones

    return backbones.bert(spec, sequence_length=config.max_length)


def staged_groups(backbone, reads_tokens):
    """The `Backbone` view whose groups the mode freezes and opens, so that
    `unfreeze_groups` counts transformer layers: BERT's `pooler` is left
    out (a head that `reads_tokens` gives it no gradient) or merged into
    the top transformer layer's group (they open together)."""
    names = backbone.group_names
    if "pooler" not in names or len(names) < 2:
        return backbone
    from kerasft.backbones.backbone import Group

    groups = [g for g in backbone.groups if g.name != "pooler"]
    if not reads_tokens:
        top = groups[-1]
        pooler = backbone.group("pooler")
        groups[-1] = Group(top.name, list(top.layers) + list(pooler.layers))
    view = copy.copy(backbone)
    view.groups = tuple(groups)
    return view


def build_and_compile(
    run, backbone, head, examples, callbacks, loss=None, reads_tokens=False,
    training=None,
):
    """`(model, callbacks)`: the model of `backbone` + `head`, frozen as the
    run's config says (LoRA or the mode's stages) and compiled with the run's
    optimizer (steps from training `examples` per epoch) and `loss` in place of
    the head's when given, and the user's `callbacks` with the mode's
    `ProgressiveUnfreeze` first; call it inside `run.strategy.scope()`.
    `training` is `(token inputs, labels or None)`: what `mode="auto"`
    measures (`kerasft.advisor.recipe.follow_advice`) before it builds."""
    from kerasft.advisor.recipe import follow_advice
    from kerasft.model import build_model

    staged = staged_groups(backbone, reads_tokens)
    config = follow_advice(run, staged, *(training or (None, None)),
                           num_examples=examples)
    # Adapters and head start the same however the backbone was made and
    # whether `mode="auto"` measured (its sweep draws random numbers).
    run.reseed()

    if config.lora_rank:
        from kerasft.backbones.bert import enable_lora

        before, after = enable_lora(backbone, config.lora_rank)
        run.log(f"LoRA rank {config.lora_rank}: {after:,} of {before:,} "
                "backbone parameters train.")
    model = build_model(backbone, head, remat=config.gradient_checkpointing)
    if not config.lora_rank:
        # Layers in none of `staged`'s groups (a token head's pooler) freeze.
        _stages.freeze_first_stage(model, staged, config)
    elif reads_tokens and "pooler" in backbone.group_names:
        for layer in backbone.layers_of(["pooler"]):
            layer.trainable = False
    # `layer_decay` counts the groups that train: the top one (the pooler,
    # or a token head's top transformer layer) at `layer_decay ** 1`.
    trained = staged if reads_tokens else backbone
    compile_kwargs = head.compile_kwargs()
    if loss is not None:
        compile_kwargs["loss"] = loss
    steps = config.epochs * -(-examples // run.global_batch)
    optimizer = _stages.optimizer(run, config, trained, steps)
    model.compile(optimizer=optimizer, **compile_kwargs)
    if not config.lora_rank:
        _build_for_reload(model, backbone, config)
    return model, _stages.with_unfreeze(run, config, staged, callbacks)


def _build_for_reload(model, backbone, config):
    """Builds `model.optimizer` over the variables that train once the run's
    `model.keras` is loaded back, so that `load_model` restores its state.

    A KerasHub backbone does not save which layers are frozen (loaded back,
    all train) and Keras skips saved optimizer state whose variable count
    differs: `feature_extraction` freezes the backbone as a whole (its
    config keeps that), other modes give frozen variables slots that stay
    zero. Not for LoRA: Keras saves adapted kernels merged."""
    if config.mode == "feature_extraction":
        backbone.model.trainable = False
        return
    layers = _keras_compat.all_layers(backbone.model)  # parents first
    layer_flags = [layer.trainable for layer in layers]
    variable_flags = [v.trainable for v in backbone.model.variables]
    for layer in layers:
        layer.trainable = True
    variables = list(model.trainable_variables)  # as `load_model` lists them
    for layer, flag in zip(layers, layer_flags):
        layer.trainable = flag
    for variable, flag in zip(backbone.model.variables, variable_flags):
        variable.trainable = flag
    model.optimizer.build(variables)


def datasets(run, config, sources, raw=None, loss=None):
    """`(training dataset, callbacks, {split: batched dataset})` of `sources`
    (`{split: _data.Source}`, training first, then validation): training
    shuffled, or ordered by `curriculum` (scoring `raw`, or by `loss`)."""
    from kerasft.recipes import _curriculum

    train, *held = sources
    if hasattr(config, "curriculum"):
        train_ds, callbacks = _curriculum.training_data(
            run, config, sources[train], raw, loss)
    else:
        train_ds, callbacks = run.batched(run.shuffled(sources[train])), []
    held.sort(key=lambda name: name.lower() != "validation")
    held_ds = {name: run.batched(sources[name].dataset) for name in held}
    return train_ds, callbacks, held_ds


def class_weight(config, labels, class_names):
    """The config's `class_weight` as `{class id: weight}` (`"balanced"` from
    the counts of `labels`), or `None`."""
    if config.class_weight is None:
        return None
    from kerasft.recipes._classification import resolve_class_weight

    names = tuple(class_names)
    counts = np.bincount(np.asarray(labels, "int64"), minlength=len(names))
    train = types.SimpleNamespace(class_names=names, class_counts=tuple(counts))
    return resolve_class_weight(config.class_weight, train)


def split_prefix(name):
    """`"val_"` for the validation split, `"test_"` for the test split."""
    return "val_" if name.lower() == "validation" else "test_"


def predictions(model, head, datasets):
    """`(metrics, {split: logits})`: one pass of predictions per held-out
    split and the head's scores from it, prefixed by `split_prefix`."""
    from kerasft.evaluation import collect_predictions

    metrics, logits = {}, {}
    for name, dataset in datasets.items():
        y_true, logits[name] = collect_predictions(model, dataset)
        scores = head_scores(head, y_true, logits[name])
        metrics.update(prefixed(scores, split_prefix(name)))
    return metrics, logits
