"""The text-encoder glue the BERT-family recipes share.

Text classification, question answering and token classification all put a
head on a BERT-family encoder the same way: LoRA adapters (`lora_rank`), or
the mode's stages (`kerasft.recipes._stages`: `feature_extraction` freezes
the encoder, `partial`/`progressive` open its top transformer layers after
`head_epochs`, `full` trains everything), with `gradient_checkpointing`; the
run's one optimizer. Each recipe holds only its data and its head.

`unfreeze_groups` counts transformer layers (`staged_groups`): a head that
reads tokens (question answering, token classification) never uses
`pooled_output`, so the pooler, which would get no gradient, leaves the
groups and stays frozen in every stage; a head on `pooled_output` (text
classification) opens the pooler with the top transformer layer.
"""

from kerasft.recipes import _stages


def staged_groups(backbone, reads_tokens):
    """The `Backbone` view whose groups the mode freezes and opens, so that
    `unfreeze_groups` counts transformer layers.

    The same model, with BERT's `pooler` group either left out (the head
    reads tokens: the pooler never trains) or merged into the top
    transformer layer's group (the head reads `pooled_output`: they open
    together). A backbone without a `pooler` group comes back as it is.

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
    from kerasft.backbones.backbone import Backbone, Group

    groups = [g for g in backbone.groups if g.name != "pooler"]
    if not reads_tokens:
        top = groups[-1]
        pooler = backbone.group("pooler")
        groups[-1] = Group(top.name, list(top.layers) + list(pooler.layers))
    return Backbone(
        backbone.model,
        backbone.preprocess,
        groups,
        backbone.name,
        preprocess_mode=backbone.preprocess_mode,
        input_range=backbone.input_range,
        task=backbone.task,
        tokenizer=backbone.tokenizer,
    )


def build_and_compile(run, config, backbone, head, total_steps, loss=None,
                      reads_tokens=False):
    """The model of `backbone` + `head`, frozen as `config` says and
    compiled with the run's optimizer; call it inside `run.strategy.scope()`.

    Args:
        run: the `Run`.
        config: a `TextConfig` (`mode`, `lora_rank`, ...).
        backbone: the text `Backbone`.
        head: the `kerasft.heads` head.
        total_steps: batches in the whole run (schedules, warmup).
        loss: a loss in place of the head's. Defaults to `None`.
        reads_tokens: the head reads token outputs, not the pooled one, so
            the pooler (which would get no gradient) stays frozen; pass
            `staged_groups(backbone, reads_tokens)` to
            `_stages.with_unfreeze` too. Defaults to `False`.
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
    model.compile(optimizer=_stages.optimizer(run, config, trained, total_steps),
                  **compile_kwargs)
    return model


def with_unfreeze(run, config, backbone, callbacks, reads_tokens=False):
    """The user's callbacks with the mode's `ProgressiveUnfreeze` first,
    over `staged_groups(backbone, reads_tokens)` (as `build_and_compile`
    froze them)."""
    staged = staged_groups(backbone, reads_tokens)
    return _stages.with_unfreeze(run, config, staged, callbacks)
