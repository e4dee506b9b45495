"""`token_classification`: named-entity recognition with a BERT encoder.

Sentences come from CoNLL-2003-style files, JSON lines of `{"tokens",
"tags"}` or Python `(sentences, tags)` lists (`kerasft.data.read_token_tags`).
Words are tokenized with the backbone's WordPiece tokenizer; each word's tag
sits on its first piece and the other pieces are ignored by the loss
(`label_all_tokens` labels them too). The `token_classification` head gives
per-token logits; predictions are read at each word's first piece. Metrics,
all from one pass of predictions per split: the head's loss, entity-level
precision, recall and F1 over BIO/IOB2 spans (micro, as `seqeval`), per
entity type, word accuracy, and the head's token accuracy.
The run folder holds `labels.json` (the tag set) and `predictions.conll`
(`word gold predicted` lines for the validation, else test, sentences).

Per-token loss options (`kerasft.heads.TokenCrossentropy`): `class_weight`
weighs each scored token by its gold tag's weight (`"balanced"` from the
training tokens' tag counts), `label_smoothing` and `loss="focal"` apply
to each token's loss. `curriculum` with `difficulty` ranks whole sentences.
Without `validation`, `validation_split` holds out a seeded random share of
the training sentences.
"""

import os

from kerasft.recipes import _data
from kerasft.recipes import _text_encoder
from kerasft.recipes._runner import Run, prefixed
from kerasft.recipes.config import resolve_config
from kerasft.recipes.configs import TokenClassificationConfig  # noqa: F401 (re-exported)


def _labels(config, train):
    from kerasft.data.conll import label_list

    if config.labels is None:
        return label_list(train.tags)
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
    from kerasft.data.conll import read_token_tags

    if config.train is None:
        raise ValueError(
            "`train` is required: a CoNLL file, JSON lines of "
            '{"tokens", "tags"}, or (sentences, tags).'
        )
    data = {}
    for name, value in (
        ("Training", config.train),
        ("Validation", config.validation),
        ("Test", config.test),
    ):
        if value is None:
            continue
        part = read_token_tags(value, config.tag_column)
        if part.tags is None:
            raise ValueError(f"{name} data {value!r} has no tags.")
        data[name] = part
    return data


def _hold_out(run, config, data):
    """`validation_split` when no `validation` is given: a seeded random
    share of the training sentences held out (`holdout_indices`, the rule
    every recipe shares; a sentence has no single label to stratify by)."""
    if "Validation" in data or not config.validation_split:
        return data
    import numpy as np

    from kerasft.data._split import holdout_indices
    from kerasft.data.conll import TokenTagData
    from kerasft.recipes._subsets import take

    train = data["Training"]
    # Float zeros: no classes, so a plain seeded random split.
    keep, held = holdout_indices(np.zeros(len(train.sentences)),
                                 config.validation_split, config.seed)
    run.log(
        f"Holding out {len(held)} of {len(train.sentences)} training "
        f"sentences for validation (validation_split={config.validation_split})."
    )
    return {
        **data,
        "Training": TokenTagData(take(train.sentences, keep), take(train.tags, keep)),
        "Validation": TokenTagData(take(train.sentences, held), take(train.tags, held)),
    }


def _tag_weights(run, config, labels, token_labels):
    """`class_weight` as one loss weight per tag id, or `None`: `"balanced"`
    from the tags of the scored training tokens (`resolve_class_weight`,
    the rule of every classification recipe), or a dict keyed by tag name
    or id (tags it leaves out weigh 1.0)."""
    if config.class_weight is None:
        return None
    import numpy as np

    from kerasft.heads.token_classification import IGNORE_INDEX

    scored = np.asarray(token_labels).reshape(-1)
    weights = _text_encoder.class_weight(
        config, scored[scored != IGNORE_INDEX], labels)
    weights = [float(weights[i]) for i in range(len(labels))]
    run.log("Tag weights: " + ", ".join(
        f"{tag} {w:.3g}" for tag, w in zip(labels, weights)) + ".")
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
    from kerasft.data.conll import TokenTagData
    from kerasft.recipes._subsets import take
    from kerasft.recipes._text_options import subset_splits

    # Seeded random subsets: a sentence has no single label to stratify by.
    data = subset_splits(
        run, _hold_out(run, config, data), "sentences",
        lambda part, keep: TokenTagData(take(part.sentences, keep),
                                        take(part.tags, keep)),
        lambda part: len(part.sentences))

    from kerasft import heads
    from kerasft.data.conll import encode_tags, token_features
    tag_ids = {
        name: encode_tags(part.tags, labels, f"{name} data")
        for name, part in data.items()
    }
    with run.strategy.scope():
        backbone = _text_encoder.resolve_backbone(config)
        features = {
            name: token_features(
                part.sentences, backbone, config.max_length, tags=tag_ids[name],
                label_all_tokens=config.label_all_tokens, labels=labels,
            )
            for name, part in data.items()
        }
        head = heads.token_classification(
            len(labels), dropout=config.dropout,
            class_weight=_tag_weights(run, config, labels,
                                      features["Training"].labels),
            label_smoothing=config.label_smoothing, loss=config.loss,
        )
        model = _text_encoder.build_and_compile(
            run, config, backbone, head, len(data["Training"].sentences),
            reads_tokens=True,
        )
    for name, part in features.items():
        if part.truncated_words:
            run.log(
                f"{part.truncated_words} {name.lower()} word(s) past "
                f"max_length={config.max_length} are cut (predicted 'O')."
            )
    # A `difficulty` function scores (sentences, tags), one per sentence.
    train_ds, curriculum, eval_ds = _text_encoder.datasets(run, config, {
        name: _data.Source(elements=(part.inputs, part.labels))
        for name, part in features.items()
    }, (data["Training"].sentences, data["Training"].tags), model.loss)
    run.log(
        f"Fine-tuning {backbone.name} on {len(data['Training'])} sentences, "
        f"{len(labels)} tags, {run.replicas} replica(s), precision "
        f"{run.policy.name}."
    )
    history = run.fit(
        model, train_ds, eval_ds.get("Validation"),
        [*curriculum,
         *_text_encoder.with_unfreeze(run, config, backbone, callbacks,
                                      reads_tokens=True)],
    )

    from kerasft.data.conll import word_tags

    metrics, logits = _text_encoder.predictions(model, head, eval_ds)
    written = None
    for name in eval_ds:
        predicted = word_tags(features[name], logits[name], data[name].sentences,
                              labels)
        metrics.update(prefixed(_scores(data[name].tags, predicted),
                                _text_encoder.split_prefix(name)))
        if written is None:
            written = (data[name], predicted)
    return run.finish(
        model, history, metrics, plot=_plotter(history, written),
        extra_json={"labels.json": labels},
    )


def _scores(gold, predicted):
    from kerasft.evaluation.entities import entity_scores

    scores = entity_scores(gold, predicted)
    return {
        "precision": scores["precision"],
        "recall": scores["recall"],
        "f1": scores["f1"],
        "accuracy": scores["accuracy"],
        "per_type": scores["per_type"],
    }


def _plotter(history, written):
    """Writes `predictions.conll` and the training curves."""
    from kerasft import _io
    from kerasft.data.conll import write_conll
    from kerasft.recipes._classification import write_curves

    def plot(directory):
        if written is not None:
            part, predicted = written
            path = os.path.join(directory, "predictions.conll")
            with _io.atomic_path(path) as tmp:
                write_conll(tmp, part.sentences, part.tags, predicted)
        write_curves(history, directory)

    return plot

