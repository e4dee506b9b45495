"""`question_answering`: extractive QA (SQuAD format) with a BERT encoder.

`[CLS] question [SEP] context [SEP]` windows of `max_length` tokens; a
context longer than one window is split into overlapping windows sharing
`doc_stride` tokens (as Hugging Face's `run_qa.py`). The
`question_answering` head predicts start and end logits per window;
`kerasft.data.postprocess_predictions` picks each question's best span
over all its windows (at most `max_answer_length` tokens, inside the
context) with an `n_best` list, and with `version_2_with_negative` may
answer nothing (SQuAD v2.0). Metrics, all from one pass of predictions
over the validation windows: exact match and F1 by the official SQuAD
rules (`kerasft.evaluation.squad_scores`; HasAns/NoAns parts for v2.0),
plus the head's loss and start/end token accuracies. The run folder also
holds `predictions.json`, `nbest_predictions.json` and, for v2.0,
`null_odds.json`, as `run_qa.py` writes them.
"""

import math
import os

from kerasft import _io
from kerasft.evaluation.squad import squad_scores as _squad_scores
from kerasft.recipes import _data
from kerasft.recipes._runner import Run, head_scores, prefixed
from kerasft.recipes.config import resolve_config
from kerasft.recipes.configs import QuestionAnsweringConfig  # noqa: F401 (re-exported)
from kerasft.recipes.text_classification import resolve_text_backbone


def squad_scores(predictions, examples, version="1.1"):
    """SQuAD exact match and F1; see `kerasft.evaluation.squad_scores`."""
    return _squad_scores(predictions, examples, version)


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


def _check_answers(examples, config, name):
    """Unanswerable questions need SQuAD v2.0 mode."""
    if config.version_2_with_negative:
        return
    missing = [e.id for e in examples if e.answer_start < 0]
    if missing:
        raise ValueError(
            f"{name} data has {len(missing)} question(s) without an answer "
            f"(e.g. {missing[:3]}): SQuAD v2.0 data needs "
            f"{_io.argument('version_2_with_negative', True)}."
        )


def _subset(run, examples, k, seed, what):
    """At most `k` questions, stratified by answerable / unanswerable."""
    if examples is None:
        return None
    import numpy as np

    from kerasft.recipes._subsets import log_subset, subset_indices, take

    answerable = np.asarray([e.answer_start >= 0 for e in examples], "int64")
    keep = subset_indices(answerable, k, seed)
    log_subset(run, f"{what} questions", len(examples), len(keep))
    return take(examples, keep)


def question_answering(config=None, *, overwrite=False, callbacks=None, **kwargs):
    """Fine-tunes a BERT-family encoder for extractive question answering.

    Args:
        config: a `QuestionAnsweringConfig`, a dict or a JSON/YAML path.
        overwrite: replace another run's outputs. Defaults to `False`.
        callbacks: extra Keras callbacks. Defaults to `None`.
        **kwargs: config fields, overriding `config`.

    Returns:
        A `RecipeResult`; metrics hold `val_exact_match`, `val_f1` (and
        `val_has_ans_*`, `val_no_ans_*` with `version_2_with_negative`).

    Example:
    ```python
    result = kerasft.recipes.question_answering(
        train="train-v2.0.json", validation="dev-v2.0.json",
        version_2_with_negative=True, doc_stride=128,
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
    _check_answers(train_examples, config, "Training")
    if val_examples:
        _check_answers(val_examples, config, "Validation")
    train_examples = _subset(run, train_examples, config.max_train_samples,
                             config.seed, "training")
    val_examples = _subset(run, val_examples, config.max_eval_samples,
                           config.seed, "validation")

    from kerasft import heads
    from kerasft.data.squad import squad_features
    from kerasft.freezing import freeze
    from kerasft.model import build_model

    def features(examples):
        return squad_features(
            examples, backbone, config.max_length, doc_stride=config.doc_stride
        )

    with run.strategy.scope():
        backbone = resolve_text_backbone(config)
        train_features = features(train_examples)
        val_features = features(val_examples) if val_examples else None
        head = heads.question_answering(dropout=config.dropout)
        model = build_model(backbone, head)
        freeze(model, backbone, "full")
        if "pooler" in backbone.group_names:  # QA reads tokens, not the pool
            for layer in backbone.layers_of(["pooler"]):
                layer.trainable = False
        # Steps over windows: a long context gives several examples.
        steps = -(-len(train_features.context_mask) // run.global_batch)
        model.compile(
            optimizer=run.optimizer(backbone, total_steps=config.epochs * steps),
            **head.compile_kwargs(),
        )
    for name, part in (("training", train_features), ("validation", val_features)):
        if part is not None and part.truncated:
            run.log(
                f"{part.truncated} {name} answer(s) fit in no window "
                "(longer than a window, or cut with doc_stride=None)."
            )
    run.log(
        f"Fine-tuning {backbone.name} on {len(train_examples)} questions in "
        f"{len(train_features.context_mask)} windows, {run.replicas} "
        f"replica(s), precision {run.policy.name}."
    )

    train = _data.Source(elements=(train_features.inputs, train_features.labels))
    train_ds = run.batched(run.shuffled(train))
    val_ds = None
    if val_features is not None:
        val_ds = run.batched(
            _data.Source(elements=(val_features.inputs, val_features.labels)).dataset
        )
    history = run.fit(model, train_ds, val_ds, callbacks or [])

    metrics, outputs = {}, {}
    if val_features is not None:
        from kerasft.evaluation import collect_predictions

        labels, logits = collect_predictions(model, val_ds)  # the one pass
        metrics.update(prefixed(head_scores(head, labels, logits), "val_"))
        answers, outputs = _answers(logits, val_examples, val_features, config)
        version = "2.0" if config.version_2_with_negative else "1.1"
        scores = _squad_scores({a.id: a.text for a in answers}, val_examples, version)
        metrics.update(prefixed(scores, "val_"))
        metrics["val_windows"] = len(val_features.context_mask)

    from kerasft import _io, evaluation

    def plot(directory):
        if history:
            path = os.path.join(directory, "training_curves.png")
            with _io.atomic_path(path) as tmp:
                evaluation.plot_history(history, tmp)

    return run.finish(model, history, metrics, plot=plot, extra_json=outputs)


def _answers(logits, examples, features, config):
    """Decoded answers and the `run_qa.py`-style prediction files."""
    from kerasft.data.squad import postprocess_predictions

    answers = postprocess_predictions(
        examples,
        features,
        logits["start_logits"],
        logits["end_logits"],
        n_best=config.n_best,
        max_answer_length=config.max_answer_length,
        version_2_with_negative=config.version_2_with_negative,
        null_score_diff_threshold=config.null_score_diff_threshold,
    )
    files = {
        "predictions.json": {a.id: a.text for a in answers},
        "nbest_predictions.json": {a.id: list(a.n_best) for a in answers},
    }
    if config.version_2_with_negative:
        files["null_odds.json"] = {
            a.id: a.null_score - a.score if math.isfinite(a.score) else None
            for a in answers
        }
    return answers, files
