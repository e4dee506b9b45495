"""`question_answering`: extractive QA (SQuAD format) with a BERT encoder.

`[CLS] question [SEP] context [SEP]` windows of `max_length` tokens; the
`question_answering` head predicts start and end logits; spans are decoded
with `kerasft.data.squad.decode_spans` (answers at most
`max_answer_length` tokens, inside the context). Metrics: exact match and
token F1 against every gold answer (SQuAD's normalization), plus the
start/end token accuracies.
"""

import collections
import dataclasses
import os
import re
import string
import typing

import numpy as np

from kerasft.recipes import _data
from kerasft.recipes._runner import Run, prefixed
from kerasft.recipes.config import field, resolve_config
from kerasft.recipes.text_classification import (
    TextConfig,
    resolve_text_backbone,
    text_optimizer,
)


@dataclasses.dataclass(frozen=True)
class QuestionAnsweringConfig(TextConfig):
    """Options of the question answering recipe."""

    train: typing.Any = field(None, "Training SQuAD-format JSON file.")
    validation: typing.Any = field(None, "Validation SQuAD-format JSON file.")
    max_length: int = field(384, "Tokens per question+context window.")
    max_answer_length: int = field(30, "Longest answer span in tokens.")
    learning_rate: float = field(3e-5, "Peak learning rate, before scaling.")


def _normalize(text):
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _f1(prediction, truth):
    pred, gold = _normalize(prediction).split(), _normalize(truth).split()
    common = collections.Counter(pred) & collections.Counter(gold)
    same = sum(common.values())
    if not pred or not gold:
        return float(pred == gold)
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions, examples):
    """SQuAD exact match and F1 (max over each example's gold answers)."""
    em, f1 = [], []
    for prediction, example in zip(predictions, examples):
        golds = list(example.answers) or [example.answer_text]
        em.append(max(float(_normalize(prediction) == _normalize(g)) for g in golds))
        f1.append(max(_f1(prediction, g) for g in golds))
    return {"exact_match": float(np.mean(em)), "f1": float(np.mean(f1))}


def _examples(path):
    from kerasft.data.squad import read_squad

    if not isinstance(path, str):
        raise TypeError(
            f"QA data must be a SQuAD JSON path. Received: {type(path).__name__}"
        )
    if not os.path.exists(path):
        raise ValueError(f"SQuAD file {path!r} does not exist.")
    examples = read_squad(path)
    if not examples:
        raise ValueError(f"SQuAD file {path!r} holds no questions.")
    return examples


def question_answering(config=None, *, overwrite=False, callbacks=None, **kwargs):
    """Fine-tunes a BERT-family encoder for extractive question answering.

    Args:
        config: a `QuestionAnsweringConfig`, a dict or a JSON/YAML path.
        overwrite: replace another run's outputs. Defaults to `False`.
        callbacks: extra Keras callbacks. Defaults to `None`.
        **kwargs: config fields, overriding `config`.

    Returns:
        A `RecipeResult`; metrics hold `val_exact_match`, `val_f1`.

    Example:
    ```python
    result = kerasft.recipes.question_answering(
        train="train-v1.1.json", validation="dev-v1.1.json",
        backbone="bert_base_en_uncased", output_dir="runs/qa")
    ```
    """
    config = resolve_config(QuestionAnsweringConfig, config, **kwargs)
    run = Run(config, overwrite)
    if run.state == "complete":
        return run.completed_result()
    if config.train is None:
        raise ValueError("`train` is required: a SQuAD-format JSON file.")
    train_examples = _examples(config.train)
    val_examples = _examples(config.validation) if config.validation else None

    from kerasft import heads
    from kerasft.data.squad import decode_spans, span_texts, squad_features
    from kerasft.freezing import freeze
    from kerasft.model import build_model

    with run.strategy.scope():
        backbone = resolve_text_backbone(config)
        train_features = squad_features(train_examples, backbone, config.max_length)
        val_features = (
            squad_features(val_examples, backbone, config.max_length)
            if val_examples else None
        )
        head = heads.question_answering(dropout=config.dropout)
        model = build_model(backbone, head)
        freeze(model, backbone, "full")
        if "pooler" in backbone.group_names:  # QA reads tokens, not the pool
            for layer in backbone.layers_of(["pooler"]):
                layer.trainable = False
        model.compile(
            optimizer=text_optimizer(run, config, backbone), **head.compile_kwargs()
        )

    train = _data.Source(
        elements=(train_features.inputs, train_features.labels)
    )
    train_ds = run.batched(run.shuffled(train))
    val_ds = None
    if val_features is not None:
        val_ds = run.batched(
            _data.Source(elements=(val_features.inputs, val_features.labels)).dataset
        )
    history = run.fit(model, train_ds, val_ds, callbacks or [])

    metrics = {}
    if val_features is not None:
        metrics.update(prefixed(model.evaluate(val_ds, verbose=0, return_dict=True), "val_"))
        outputs = model.predict(
            run.batched(_data.Source(elements=val_features.inputs).dataset),
            verbose=0,
        )
        spans, _ = decode_spans(
            outputs["start_logits"],
            outputs["end_logits"],
            val_features.context_mask,
            config.max_answer_length,
        )
        answers = span_texts(val_features, spans)
        metrics.update(prefixed(squad_scores(answers, val_examples), "val_"))

    from kerasft import _io, evaluation

    def plot(directory):
        if history:
            path = os.path.join(directory, "training_curves.png")
            with _io.atomic_path(path) as tmp:
                evaluation.plot_history(history, tmp)

    return run.finish(model, history, metrics, plot=plot)
