"""The text-encoder glue the BERT-family recipes share.

Text classification, question answering and token classification all put a
head on a BERT-family encoder the same way: LoRA adapters (`lora_rank`), or
the mode's stages (`kerasft.recipes._stages`: `feature_extraction` freezes
the encoder, `partial`/`progressive` open its top transformer layers after
`head_epochs`, `full` trains everything), with `gradient_checkpointing`; the
pooler frozen when the head reads tokens; the run's one optimizer. Each
recipe holds only its data and its head.
"""

from kerasft.recipes import _stages


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
            the pooler (which would get no gradient) stays frozen. Defaults
            to `False`.
    """
    from kerasft.model import build_model

    if config.lora_rank:
        from kerasft.backbones.bert import enable_lora

        before, after = enable_lora(backbone, config.lora_rank)
        run.log(f"LoRA rank {config.lora_rank}: {after:,} of {before:,} "
                "backbone parameters train.")
    model = build_model(backbone, head, remat=config.gradient_checkpointing)
    if not config.lora_rank:
        _stages.freeze_first_stage(model, backbone, config)
    if reads_tokens and "pooler" in backbone.group_names:
        for layer in backbone.layers_of(["pooler"]):
            layer.trainable = False
    compile_kwargs = head.compile_kwargs()
    if loss is not None:
        compile_kwargs["loss"] = loss
    model.compile(optimizer=_stages.optimizer(run, config, backbone, total_steps),
                  **compile_kwargs)
    return model
