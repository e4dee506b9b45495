"""`token_classification`: named-entity recognition with a BERT encoder.

Each word's tag sits on its first WordPiece (`label_all_tokens` labels the
others too), where predictions are read; entity scores are micro, over
BIO/IOB2 spans, as `seqeval`. Splits and subsets are seeded random ones (a
sentence has no single label). The run folder holds `labels.json` (the tag
set) and `predictions.conll` (`word gold predicted`, validation else test).
"""

import functools

import numpy as np

from kerasft.data import conll
from kerasft.recipes import _data
from kerasft.recipes import _text_encoder
from kerasft.recipes._runner import Run, prefixed
from kerasft.recipes._subsets import take
from kerasft.recipes._text_options import hold_out, subset_splits
from kerasft.recipes.config import resolve_config
from kerasft.recipes.configs import TokenClassificationConfig  # noqa: F401 (re-exported)


def _labels(config, train):
    if config.labels is None:
        return conll.label_list(train.tags)
    labels = config.labels
    if isinstance(labels, str):
        labels = [t.strip() for t in labels.split(",") if t.strip()]
    labels = list(labels)
    if not labels or not all(isinstance(t, str) for t in labels):
        raise ValueError(
            "`labels` must be tag names, e.g. 'O,B-PER,I-PER'. Received: "
            f"labels={config.labels!r}"
        )
    if len(set(labels)) != len(labels):
        raise ValueError(f"`labels` has duplicates: {labels}")
    return labels


def _read(config):
    """`{"Training": TokenTagData, ...}` for the configured splits."""
    if config.train is None:
        raise ValueError(
            "`train` is required: a CoNLL file, JSON lines of "
            '{"tokens", "tags"}, or (sentences, tags).'
        )
    data = {}
    names = ("Training", "Validation", "Test")
    values = (config.train, config.validation, config.test)
    for name, value in zip(names, values):
        if value is not None:
            data[name] = conll.read_token_tags(value, config.tag_column)
            if data[name].tags is None:
                raise ValueError(f"{name} data {value!r} has no tags.")
    return data


def _take(part, keep):
    return conll.TokenTagData(take(part.sentences, keep), take(part.tags, keep))


def _hold_out(run, config, data):
    """`validation_split` when no `validation` is given: a seeded random
    share of the training sentences held out."""
    if "Validation" in data or not config.validation_split:
        return data
    train, held = hold_out(run, config, data["Training"], "sentences", _take)
    return {**data, "Training": train, "Validation": held}


def _tag_weights(run, config, labels, token_labels):
    """`class_weight` as one loss weight per tag id, or `None`: `"balanced"`
    from the tags of the scored training tokens, or a dict keyed by tag name
    or id (tags it leaves out weigh 1.0)."""
    if config.class_weight is None:
        return None
    scored = np.asarray(token_labels).reshape(-1)
    scored = scored[scored != conll.IGNORE_INDEX]
    weights = _text_encoder.class_weight(config, scored, labels)
    weights = [float(weights[i]) for i in range(len(labels))]
    shown = ", ".join(f"{tag} {w:.3g}" for tag, w in zip(labels, weights))
    run.log(f"Tag weights: {shown}.")
    return weights


def token_classification(config=None, *, overwrite=False, callbacks=None, **kwargs):
    """Fine-tunes a BERT-family encoder to tag words (NER, chunking, POS).

    Args:
        config: a `TokenClassificationConfig`, a dict or a JSON/YAML path.
        overwrite: replace another run's outputs. Defaults to `False`.
        callbacks: extra Keras callbacks. Defaults to `None`.
        **kwargs: config fields, overriding `config`.

    Returns:
        A `RecipeResult`; metrics hold `val_precision`, `val_recall`,
        `val_f1` (entity level), `val_accuracy` (words),
        `val_token_accuracy` (the head's) and `val_per_type` (and `test_*`).

    Example:
    ```python
    result = kerasft.recipes.token_classification(
        train="eng.train", validation="eng.testa",
        backbone="bert_base_en_uncased", output_dir="runs/ner")
    ```
    """
    config = resolve_config(TokenClassificationConfig, config, **kwargs)
    run = Run(config, overwrite)
    if run.state == "complete":
        return run.completed_result()
    data = _read(config)
    labels = _labels(config, data["Training"])  # before splitting: every tag
    data = subset_splits(run, _hold_out(run, config, data), "sentences", _take)

    from kerasft import heads

    tag_ids = {name: conll.encode_tags(part.tags, labels, f"{name} data")
               for name, part in data.items()}
    with run.strategy.scope():
        backbone = _text_encoder.resolve_backbone(config)
        features = {
            name: conll.token_features(
                part.sentences, backbone, config.max_length, tags=tag_ids[name],
                label_all_tokens=config.label_all_tokens, labels=labels,
            )
            for name, part in data.items()
        }
        weights = _tag_weights(run, config, labels, features["Training"].labels)
        head = heads.token_classification(
            len(labels), dropout=config.dropout, class_weight=weights,
            label_smoothing=config.label_smoothing, loss=config.loss,
        )
        sentences = len(data["Training"].sentences)
        model, callbacks = _text_encoder.build_and_compile(
            run, backbone, head, sentences, callbacks, reads_tokens=True,
            training=(features["Training"].inputs, None),  # tags per token
        )
    for name, part in features.items():
        if part.truncated_words:
            run.log(
                f"{part.truncated_words} {name.lower()} word(s) past "
                f"max_length={config.max_length} are cut (predicted 'O')."
            )
    sources = {name: _data.Source(elements=(part.inputs, part.labels))
               for name, part in features.items()}
    # A `difficulty` function scores (sentences, tags), one per sentence.
    raw = (data["Training"].sentences, data["Training"].tags)
    train_ds, curriculum, eval_ds = _text_encoder.datasets(
        run, config, sources, raw, model.loss)
    run.log(
        f"Fine-tuning {backbone.name} on {len(data['Training'])} sentences, "
        f"{len(labels)} tags, {run.replicas} replica(s), precision "
        f"{run.policy.name}."
    )
    history = run.fit(
        model, train_ds, eval_ds.get("Validation"), [*curriculum, *callbacks]
    )

    from kerasft.evaluation.entities import entity_scores
    from kerasft.recipes._classification import plots

    metrics, logits = _text_encoder.predictions(model, head, eval_ds)
    files = {}
    for name in eval_ds:
        part = data[name]
        predicted = conll.word_tags(features[name], logits[name],
                                    part.sentences, labels)
        scores = entity_scores(part.tags, predicted)
        metrics.update(prefixed(scores, _text_encoder.split_prefix(name)))
        if not files:  # validation, else test
            files["predictions.conll"] = functools.partial(
                conll.write_conll, sentences=part.sentences, gold=part.tags,
                predicted=predicted)
    plot = plots(history, files)
    extra = {"labels.json": labels}
    return run.finish(model, history, metrics, plot=plot, extra_json=extra)

