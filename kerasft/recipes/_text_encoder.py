"""The text-encoder glue the BERT-family recipes share.

Text classification, question answering and token classification put a
head on a BERT-family encoder the same way: LoRA adapters (`lora_rank`) or
the mode's stages (`kerasft.recipes._stages`), `gradient_checkpointing`,
the run's one optimizer; then batches (`datasets`) and one pass of
predictions per held-out split (`predictions`). Each recipe holds only its
data and its head.
"""

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
    `unfreeze_groups` counts transformer layers.

    BERT's `pooler` group is left out (the head reads tokens: the pooler
    gets no gradient and never trains) or merged into the top transformer
    layer's group (the head reads `pooled_output`: they open together).

    Args:
        backbone: the text `Backbone`.
        reads_tokens: the head reads `sequence_output`, not `pooled_output`.

    Example:
    ```python
    view = staged_groups(backbone, reads_tokens=True)
    view.group_names[-1]  # 'transformer_layer_5'
    ```
    """
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


def build_and_compile(run, config, backbone, head, train_examples, loss=None,
                      reads_tokens=False):
    """The model of `backbone` + `head`, frozen as `config` says and
    compiled with the run's optimizer; call it inside `run.strategy.scope()`.

    Args:
        run: the `Run`.
        config: a `TextConfig` (`mode`, `lora_rank`, ...).
        backbone: the text `Backbone`.
        head: the `kerasft.heads` head.
        train_examples: training examples per epoch (QA: windows).
        loss: a loss in place of the head's. Defaults to `None`.
        reads_tokens: the head reads token outputs, not the pooled one, so
            the pooler stays frozen. Defaults to `False`.
    """
    from kerasft.model import build_model

    if config.lora_rank:
        from kerasft.backbones.bert import enable_lora

        before, after = enable_lora(backbone, config.lora_rank)
        run.log(f"LoRA rank {config.lora_rank}: {after:,} of {before:,} "
                "backbone parameters train.")
    model = build_model(backbone, head, remat=config.gradient_checkpointing)
    staged = staged_groups(backbone, reads_tokens)
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
    total_steps = config.epochs * -(-train_examples // run.global_batch)
    model.compile(optimizer=_stages.optimizer(run, config, trained, total_steps),
                  **compile_kwargs)
    if not config.lora_rank:
        _build_for_reload(model, backbone, config)
    return model


def _build_for_reload(model, backbone, config):
    """Builds `model.optimizer` over the variables that train once the run's
    `model.keras` is loaded back, so that `load_model` restores its state.

    A KerasHub backbone does not save which layers are frozen: loaded back,
    all train, and Keras skips saved optimizer state whose variable count
    differs. So `feature_extraction` freezes the backbone as a whole (its
    config keeps that); otherwise the optimizer holds every backbone
    variable, frozen ones with slots that stay zero. Not for LoRA: Keras
    saves adapted kernels merged.
    """
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


def with_unfreeze(run, config, backbone, callbacks, reads_tokens=False):
    """The user's callbacks with the mode's `ProgressiveUnfreeze` first, over
    the groups `build_and_compile` froze."""
    staged = staged_groups(backbone, reads_tokens)
    return _stages.with_unfreeze(run, config, staged, callbacks)


def datasets(run, config, sources, raw=None, loss=None):
    """`(training dataset, callbacks, {split: batched dataset})` of `sources`
    (`{split: _data.Source}`, training first): training shuffled by `(seed,
    epoch)` or ordered by the config's `curriculum` (`difficulty` scores
    `raw`, or the compiled `loss`); the held-out splits, validation first."""
    from kerasft.recipes import _curriculum

    train, *held = sources
    if hasattr(config, "curriculum"):
        train_ds, callbacks = _curriculum.training_data(
            run, config, sources[train], raw, loss)
    else:
        train_ds, callbacks = run.batched(run.shuffled(sources[train])), []
    held.sort(key=lambda name: name.lower() != "validation")
    return train_ds, callbacks, {
        name: run.batched(sources[name].dataset) for name in held}


def class_weight(config, labels, class_names):
    """The config's `class_weight` as `{class id: weight}` (`"balanced"` from
    the counts of `labels`), or `None`: every classification recipe's rule."""
    if config.class_weight is None:
        return None
    from kerasft.recipes._classification import resolve_class_weight

    counts = np.bincount(np.asarray(labels, "int64"), minlength=len(class_names))
    return resolve_class_weight(config.class_weight, types.SimpleNamespace(
        class_names=tuple(class_names), class_counts=tuple(counts)))


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
        metrics.update(prefixed(head_scores(head, y_true, logits[name]),
                                split_prefix(name)))
    return metrics, logits
