"""`text_classification`: fine-tune a BERT-family encoder on labelled text.

Data is a CSV (or TSV) with columns `text,label` and optionally `text_pair`
(sentence pairs), or another source (`_text_options.read_source`); labels
may be strings (mapped to ids in sorted order; `labels.json` lists the names
in id order) or integer ids. The backbone is `kerasft.backbones.bert(source)`.
Texts are tokenized once. Stratified `max_train_samples` /
`max_eval_samples`, and `curriculum` with `difficulty` (the easiest examples
first, `kerasft.recipes._curriculum`).
"""

import numpy as np

from kerasft.recipes import _data
from kerasft.recipes import _text_encoder
from kerasft.recipes._runner import Run
from kerasft.recipes._text_options import (
    hold_out, read_source, subset_splits, take_rows)
from kerasft.recipes.config import resolve_config
from kerasft.recipes.configs import (  # noqa: F401 (re-exported)
    TextClassificationConfig,
    TextConfig,
)


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
    train = read_source(config.train, config)
    if train.labels is None:
        raise ValueError(f"Training data {config.train!r} has no labels.")
    mapping = train.label_mapping
    validation = read_source(config.validation, config, mapping)
    if validation is None and config.validation_split:
        train, validation = hold_out(run, config, train, "texts", take_rows,
                                     _strata)
    test = read_source(config.test, config, mapping)
    tables = {"Training": train, "Validation": validation, "Test": test}
    tables = {name: t for name, t in tables.items() if t is not None}
    train = subset_splits(run, tables, "texts", take_rows, _strata)["Training"]
    num_classes = config.num_classes or (
        len(mapping) if mapping else int(np.max(train.labels)) + 1
    )
    labels = {n: np.asarray(t.labels, "int64") for n, t in tables.items()}
    for name, ids in labels.items():
        _data.check_labels(_data.Source(labels=ids), num_classes, name)

    from kerasft import heads
    from kerasft.data import text as text_data
    from kerasft.evaluation import collect_predictions
    from kerasft.recipes import _classification

    label_mode = _classification.classification_label_mode(config)
    loss = _classification.classification_loss(config)

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
        model, callbacks = _text_encoder.build_and_compile(
            run, backbone, head, len(train.texts), callbacks, loss=loss,
            training=(sources["Training"].elements[0], labels["Training"]),
        )

    # A `difficulty` function scores texts, or (text, text_pair) tuples.
    pairs = train.pairs
    texts = train.texts if pairs is None else zip(train.texts, pairs)
    raw = (list(texts), np.asarray(train.labels))
    train_ds, curriculum, eval_ds = _text_encoder.datasets(
        run, config, sources, raw, model.loss)
    run.log(
        f"Fine-tuning {backbone.name} on {len(train)} texts, {num_classes} "
        f"classes, {run.replicas} replica(s), precision {run.policy.name}."
    )
    classes = [str(i) for i in range(num_classes)]
    if mapping:
        classes = sorted(mapping, key=mapping.get)
    weights = _text_encoder.class_weight(config, labels["Training"], classes)
    val_ds = eval_ds.get("Validation")
    history = run.fit(
        model, train_ds, val_ds, [*curriculum, *callbacks], class_weight=weights
    )
    # One pass of predictions per split; every metric and plot reads them.
    results = {_text_encoder.split_prefix(name): collect_predictions(model, ds)
               for name, ds in eval_ds.items()}
    metrics = _classification.classification_metrics(model, results, classes)
    first = next(iter(results.values()), None)  # validation, else test
    plot = _classification.plotter(history, first, classes)
    extra = {"labels.json": classes}
    return run.finish(model, history, metrics, plot=plot, extra_json=extra)


def _strata(table):
    """The labels to stratify `table` by (its row count when it has none)."""
    return len(table) if table.labels is None else table.labels
