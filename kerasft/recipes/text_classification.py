"""`text_classification`: fine-tune a BERT-family encoder on labelled text.

Data is a CSV (or TSV) with columns `text,label` and optionally `text_pair`
(sentence pairs); labels may be strings (mapped to ids in sorted order, the
mapping saved as `labels.json`) or integer ids. The backbone is
`kerasft.backbones.bert(source)`: a KerasHub preset, `hf://org/model`, or a
local Hugging Face folder. Texts are tokenized once; AdamW with decoupled
weight decay, optionally layer-wise LR decay (`layer_decay`) or LoRA
(`lora_rank`).
"""

import dataclasses
import os
import typing

import keras
import numpy as np

from kerasft.recipes import _data
from kerasft.recipes._runner import Run, prefixed
from kerasft.recipes.config import RecipeConfig, field, resolve_config


@dataclasses.dataclass(frozen=True)
class TextConfig(RecipeConfig):
    """Options shared by the text recipes."""

    backbone: typing.Any = field(
        "bert_base_en_uncased",
        "Encoder: a KerasHub preset, hf://org/model, a local Hugging Face "
        "folder (config.json, model.safetensors, vocab.txt), or in Python a "
        "kerasft text Backbone.",
    )
    max_length: int = field(128, "Tokens per example (pad/truncate).")
    epochs: int = field(3, "Training epochs.")
    batch_size: int = field(16, "Batch size per replica.")
    learning_rate: float = field(
        2e-5, "Peak learning rate (head and top layer), before replica scaling."
    )
    weight_decay: float = field(0.01, "AdamW decoupled weight decay.")
    layer_decay: typing.Optional[float] = field(
        None,
        "Layer-wise learning-rate decay in (0, 1]: transformer layer i from "
        "the top trains at rate x decay**i.",
    )
    dropout: float = field(0.1, "Dropout before the output layer.")

    def _validate(self):
        super()._validate()
        if not isinstance(self.max_length, int) or self.max_length < 8:
            raise ValueError(
                "`max_length` must be an integer >= 8. Received: "
                f"max_length={self.max_length!r}"
            )
        if self.layer_decay is not None and not 0 < self.layer_decay <= 1:
            raise ValueError(
                "`layer_decay` must be in (0, 1]. Received: "
                f"layer_decay={self.layer_decay!r}"
            )


@dataclasses.dataclass(frozen=True)
class TextClassificationConfig(TextConfig):
    """Options of the text classification recipe."""

    train: typing.Any = field(
        None,
        "Training CSV/TSV with text,label[,text_pair] columns; in Python "
        "also (texts, labels).",
    )
    validation: typing.Any = field(None, "Validation CSV/TSV (same columns).")
    test: typing.Any = field(None, "Test CSV/TSV (same columns).")
    text_column: str = field("text", "Column of the (first) text.")
    label_column: str = field("label", "Column of the label.")
    pair_column: typing.Optional[str] = field(
        "auto",
        "Column of the second text of sentence pairs: auto uses text_pair "
        "when present; none reads no pairs.",
    )
    num_classes: typing.Optional[int] = field(
        None, "Number of classes; inferred from the training labels if unset."
    )
    freeze_backbone: bool = field(
        False, "Train only the head (feature extraction)."
    )
    lora_rank: typing.Optional[int] = field(
        None, "LoRA rank: train low-rank adapters instead of the encoder."
    )


def _read_table(value, config, label_mapping=None):
    from kerasft.data import text as text_data

    if value is None:
        return None
    if isinstance(value, tuple) and len(value) == 2:
        texts, labels = value
        labels, mapping = text_data.encode_labels(list(labels), label_mapping)
        return text_data.TextTable(list(texts), np.asarray(labels), None, mapping)
    if isinstance(value, text_data.TextTable):
        return value
    if not isinstance(value, str):
        raise TypeError(
            "Text data must be a CSV/TSV path, a TextTable or (texts, "
            f"labels). Received: {type(value).__name__}"
        )
    if not os.path.exists(value):
        raise ValueError(f"CSV file {value!r} does not exist.")
    return text_data.read_text_csv(
        value,
        text_column=config.text_column,
        label_column=config.label_column,
        pair_column=config.pair_column,
        label_mapping=label_mapping,
    )


def resolve_text_backbone(config):
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


def text_optimizer(run, config, backbone):
    """AdamW at the scaled rate, in `LayerwiseLR` (groups from the backbone)
    when layer decay is on."""
    base = keras.optimizers.AdamW(
        run.scaled_rate(config.learning_rate), weight_decay=config.weight_decay
    )
    if config.layer_decay is None:
        return base
    from kerasft.optimizers import LayerwiseLR

    return LayerwiseLR(base, layer_decay=config.layer_decay, groups=backbone)


def text_classification(config=None, *, overwrite=False, callbacks=None, **kwargs):
    """Fine-tunes a BERT-family encoder to classify texts or text pairs.

    Args:
        config: a `TextClassificationConfig`, a dict or a JSON/YAML path.
        overwrite: replace another run's outputs. Defaults to `False`.
        callbacks: extra Keras callbacks. Defaults to `None`.
        **kwargs: config fields, overriding `config`.

    Returns:
        A `RecipeResult` (`metrics["val_accuracy"]`, ...).

    Example:
    ```python
    result = kerasft.recipes.text_classification(
        train="train.csv", validation="val.csv",
        backbone="path/to/hf_bert_folder", epochs=2, max_length=64,
        output_dir="runs/text")
    ```
    """
    config = resolve_config(TextClassificationConfig, config, **kwargs)
    run = Run(config, overwrite)
    if run.state == "complete":
        return run.completed_result()
    if config.train is None:
        raise ValueError("`train` is required: a CSV of text,label rows.")
    train = _read_table(config.train, config)
    if train.labels is None:
        raise ValueError(f"Training data {config.train!r} has no labels.")
    mapping = train.label_mapping
    validation = _read_table(config.validation, config, mapping)
    test = _read_table(config.test, config, mapping)
    num_classes = config.num_classes or (
        len(mapping) if mapping else int(np.max(train.labels)) + 1
    )
    sources = {}
    for name, table in (("Training", train), ("Validation", validation), ("Test", test)):
        if table is None:
            continue
        labels = np.asarray(table.labels).astype("int64")
        _data.check_labels(_data.Source(labels=labels), num_classes, name)

    from kerasft import heads
    from kerasft.data import text as text_data
    from kerasft.freezing import freeze
    from kerasft.model import build_model

    with run.strategy.scope():
        backbone = resolve_text_backbone(config)
        for name, table in (("Training", train), ("Validation", validation), ("Test", test)):
            if table is None:
                continue
            inputs = text_data.tokenize(
                table.texts, backbone.tokenizer, table.pairs, config.max_length
            )
            labels = np.asarray(table.labels).astype("int64")
            sources[name] = _data.Source(labels=labels, elements=(inputs, labels))
        if config.lora_rank:
            from kerasft.backbones.bert import enable_lora

            before, after = enable_lora(backbone, config.lora_rank)
            run.log(f"LoRA rank {config.lora_rank}: {after:,} of {before:,} "
                    "backbone parameters train.")
        head = heads.text_classification(num_classes, dropout=config.dropout)
        model = build_model(backbone, head)
        if config.freeze_backbone:
            freeze(model, backbone, "full_freeze")
        elif not config.lora_rank:
            freeze(model, backbone, "full")
        model.compile(
            optimizer=text_optimizer(run, config, backbone), **head.compile_kwargs()
        )

    train_ds = run.batched(run.shuffled(sources["Training"]))
    val_ds = run.batched(sources["Validation"].dataset) if validation else None
    test_ds = run.batched(sources["Test"].dataset) if test else None
    run.log(
        f"Fine-tuning {backbone.name} on {len(train)} texts, {num_classes} "
        f"classes, {run.replicas} replica(s), precision {run.policy.name}."
    )
    history = run.fit(model, train_ds, val_ds, callbacks or [])

    from kerasft.recipes.image_classification import _plotter, evaluate_classification

    class_names = (
        sorted(mapping, key=mapping.get) if mapping
        else [str(i) for i in range(num_classes)]
    )
    metrics = evaluate_classification(model, val_ds, test_ds, class_names)
    return run.finish(
        model,
        history,
        metrics,
        plot=_plotter(model, history, val_ds or test_ds, class_names),
        extra_json={"labels.json": mapping or class_names},
    )
