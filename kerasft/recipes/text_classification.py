"""`text_classification`: fine-tune a BERT-family encoder on labelled text.

Data is a CSV (or TSV) with columns `text,label` and optionally `text_pair`
(sentence pairs); labels may be strings (mapped to ids in sorted order; `labels.json`
lists the names in id order, as every recipe's does) or integer ids. The backbone is
`kerasft.backbones.bert(source)`: a KerasHub preset, `hf://org/model`, or a
local Hugging Face folder. Texts are tokenized once; AdamW with decoupled
weight decay, optionally layer-wise LR decay (`layer_decay`) or LoRA
(`lora_rank`), and Trainer's `lr_schedule`/`warmup_ratio`. Options from
`docs/data_strategies.md`: stratified `max_train_samples` /
`max_eval_samples`, and `curriculum` with `difficulty` (the easiest
examples first, `kerasft.recipes._curriculum`).
"""

import os

import keras
import numpy as np

from kerasft.recipes import _data
from kerasft.recipes import _text_encoder
from kerasft.recipes._runner import Run
from kerasft.recipes.config import resolve_config
from kerasft.recipes.configs import (  # noqa: F401 (re-exported)
    TextClassificationConfig,
    TextConfig,
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
    from kerasft.recipes import _text_options

    table = _text_options.read_source(value, config, label_mapping)
    if table is not None:  # tfds:NAME[:SPLIT] or a datasets.Dataset
        return table
    if not isinstance(value, str):
        raise TypeError(
            "Text data must be a CSV/TSV path, `tfds:NAME[:SPLIT]`, a Hugging "
            "Face `datasets.Dataset`, a TextTable or (texts, "
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


def _hold_out(table, fraction, seed):
    """`(train, validation)` TextTables, stratified by label."""
    from kerasft.data._split import holdout_indices
    from kerasft.recipes._text_options import take_rows

    train, val = holdout_indices(table.labels, fraction, seed)
    return take_rows(table, train), take_rows(table, val)


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
    if validation is None and config.validation_split:
        train, validation = _hold_out(train, config.validation_split, config.seed)
        run.log(
            f"Holding out {len(validation)} of {len(train) + len(validation)} "
            "training texts for validation (validation_split="
            f"{config.validation_split})."
        )
    test = _read_table(config.test, config, mapping)
    train, validation, test = _subsets(run, config, train, validation, test)
    num_classes = config.num_classes or (
        len(mapping) if mapping else int(np.max(train.labels)) + 1
    )
    tables = {name: table for name, table in (
        ("Training", train), ("Validation", validation), ("Test", test))
        if table is not None}
    labels = {name: np.asarray(t.labels).astype("int64") for name, t in tables.items()}
    for name, ids in labels.items():
        _data.check_labels(_data.Source(labels=ids), num_classes, name)

    from kerasft import heads
    from kerasft.data import text as text_data
    from kerasft.recipes._classification import (
        classification_label_mode,
        classification_loss,
        classification_metrics,
        plotter,
        predict,
    )

    label_mode = classification_label_mode(config)

    with run.strategy.scope():
        backbone = _text_encoder.resolve_backbone(config)
        sources = {}
        for name, table in tables.items():
            inputs = text_data.tokenize(
                table.texts, backbone.tokenizer, table.pairs, config.max_length
            )
            targets = labels[name]
            if label_mode == "categorical":
                targets = np.eye(num_classes, dtype="float32")[targets]
            sources[name] = _data.Source(labels=labels[name],
                                         elements=(inputs, targets))
        head = heads.text_classification(
            num_classes, dropout=config.dropout, label_mode=label_mode
        )
        model = _text_encoder.build_and_compile(
            run, config, backbone, head, len(train.texts),
            loss=classification_loss(config),
        )

    raw = (_raw_texts(train), np.asarray(train.labels))
    train_ds, curriculum, eval_ds = _text_encoder.datasets(
        run, config, sources, raw, model.loss)
    val_ds, test_ds = eval_ds.get("Validation"), eval_ds.get("Test")
    run.log(
        f"Fine-tuning {backbone.name} on {len(train)} texts, {num_classes} "
        f"classes, {run.replicas} replica(s), precision {run.policy.name}."
    )
    class_names = (
        sorted(mapping, key=mapping.get) if mapping
        else [str(i) for i in range(num_classes)]
    )
    class_weight = _text_encoder.class_weight(config, labels["Training"],
                                              class_names)
    history = run.fit(
        model, train_ds, val_ds,
        [*curriculum,
         *_text_encoder.with_unfreeze(run, config, backbone, callbacks)],
        class_weight=class_weight,
    )
    # One pass of predictions per split; every metric and plot reads them.
    results = {"val_": predict(model, val_ds), "test_": predict(model, test_ds)}
    metrics = classification_metrics(model, results, class_names)
    return run.finish(
        model,
        history,
        metrics,
        plot=plotter(history, results["val_"] or results["test_"], class_names),
        extra_json={"labels.json": class_names},
    )


def _subsets(run, config, train, validation, test):
    """`max_train_samples` / `max_eval_samples`: stratified subsets."""
    from kerasft.recipes._text_options import subset_table

    out = (
        subset_table(train, config.max_train_samples, config.seed),
        subset_table(validation, config.max_eval_samples, config.seed),
        subset_table(test, config.max_eval_samples, config.seed),
    )
    for name, before, after in zip(("training", "validation", "test"),
                                   (train, validation, test), out):
        if before is not None and len(after.texts) < len(before.texts):
            run.log(f"Using {len(after.texts)} of {len(before.texts)} "
                    f"{name} texts (stratified subset).")
    return out


def _raw_texts(table):
    """The texts a `difficulty` function scores: strings, or `(text,
    text_pair)` tuples for sentence pairs."""
    if table.pairs is None:
        return list(table.texts)
    return list(zip(table.texts, table.pairs))
