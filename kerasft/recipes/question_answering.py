"""`question_answering`: extractive QA (SQuAD format) with a BERT encoder.

Windows of `max_length` tokens overlapping by `doc_stride` on a long
context, each question's best span over its windows, or no answer with
`version_2_with_negative` (SQuAD v2.0), all as Hugging Face's `run_qa.py`,
whose prediction files the run folder holds too; exact match and F1 by the
official SQuAD rules (`kerasft.evaluation.squad_scores`).
"""

import math
import os

import numpy as np

from kerasft import _io
from kerasft.data import squad
from kerasft.data._split import holdout_indices
from kerasft.evaluation.squad import squad_scores  # noqa: F401 (re-exported)
from kerasft.recipes import _data
from kerasft.recipes import _text_encoder
from kerasft.recipes._runner import Run, prefixed
from kerasft.recipes._subsets import take
from kerasft.recipes._text_options import subset_splits
from kerasft.recipes.config import resolve_config
from kerasft.recipes.configs import QuestionAnsweringConfig  # noqa: F401 (re-exported)


def _examples(path, config, name):
    """The questions of a SQuAD file; unanswerable ones need SQuAD v2.0 mode."""
    if not isinstance(path, str):
        raise TypeError(
            f"QA data must be a SQuAD JSON path. Received: {type(path).__name__}"
        )
    if not os.path.exists(path):
        raise ValueError(f"SQuAD file {path!r} does not exist.")
    examples = squad.read_squad(path)
    if not examples:
        raise ValueError(f"SQuAD file {path!r} holds no questions.")
    missing = [e.id for e in examples if e.answer_start < 0]
    if missing and not config.version_2_with_negative:
        raise ValueError(
            f"{name.capitalize()} data has {len(missing)} question(s) "
            f"without an answer (e.g. {missing[:3]}): SQuAD v2.0 data needs "
            f"{_io.argument('version_2_with_negative', True)}."
        )
    return examples


def _hold_out(examples, fraction, seed):
    """`(train, validation)` questions for `validation_split`: a seeded random
    share of the distinct contexts held out with all their questions, so no
    context's windows fall on both sides."""
    contexts = list(dict.fromkeys(e.context for e in examples))
    try:
        # No label to stratify contexts by: float zeros split at random.
        _, held = holdout_indices(np.zeros(len(contexts)), fraction, seed)
    except ValueError as e:
        raise ValueError(
            f"{e} Question answering holds out whole contexts, and the "
            f"training data has {len(contexts)}."
        ) from None
    held = {contexts[i] for i in held}
    return ([e for e in examples if e.context not in held],
            [e for e in examples if e.context in held])


def _answerable(examples):
    """1 for an answerable question, 0 for one without an answer."""
    return [int(e.answer_start >= 0) for e in examples]


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
    names = ("training", "validation", "test")
    values = (config.train, config.validation, config.test)
    examples = {n: _examples(v, config, n) for n, v in zip(names, values) if v}
    split = config.validation_split
    if "validation" not in examples and split:
        train, held = _hold_out(examples["training"], split, config.seed)
        run.log(
            f"Holding out {len(held)} of {len(train) + len(held)} training "
            f"questions ({len({e.context for e in held})} whole contexts) for "
            f"validation (validation_split={split})."
        )
        examples["training"], examples["validation"] = train, held
    subset_splits(run, examples, "questions", take, _answerable)

    from kerasft import heads

    with run.strategy.scope():
        backbone = _text_encoder.resolve_backbone(config)
        features = {
            name: squad.squad_features(part, backbone, config.max_length,
                                 doc_stride=config.doc_stride)
            for name, part in examples.items()
        }
        head = heads.question_answering(dropout=config.dropout)
        # Steps over windows: a long context gives several examples.
        windows = len(features["training"].context_mask)
        model, callbacks = _text_encoder.build_and_compile(
            run, backbone, head, windows, callbacks, reads_tokens=True,
            training=(features["training"].inputs, None),  # answer spans
        )
    for name, part in features.items():
        if part.truncated:
            run.log(
                f"{part.truncated} {name} answer(s) fit in no window "
                "(longer than a window, or cut with doc_stride=None)."
            )
    run.log(
        f"Fine-tuning {backbone.name} on {len(examples['training'])} questions "
        f"in {windows} windows, {run.replicas} replica(s), precision "
        f"{run.policy.name}."
    )

    sources = {name: _data.Source(elements=(part.inputs, part.labels))
               for name, part in features.items()}
    train_ds, _, eval_ds = _text_encoder.datasets(run, config, sources)
    history = run.fit(model, train_ds, eval_ds.get("validation"), callbacks)

    from kerasft.recipes._classification import plots

    metrics, logits = _text_encoder.predictions(model, head, eval_ds)
    outputs = {}
    version = "2.0" if config.version_2_with_negative else "1.1"
    for name in eval_ds:
        prefix = _text_encoder.split_prefix(name)
        part = examples[name]
        files = _answer_files(logits[name], part, features[name], config)
        scores = squad_scores(files["predictions.json"], part, version)
        metrics.update(prefixed(scores, prefix))
        metrics[f"{prefix}windows"] = len(features[name].context_mask)
        if not outputs:  # the prediction files of the first held-out split
            outputs = files
    plot = plots(history)
    return run.finish(model, history, metrics, plot=plot, extra_json=outputs)


def _answer_files(logits, examples, features, config):
    """The decoded answers as `run_qa.py`'s prediction files."""
    answers = squad.postprocess_predictions(
        examples, features, logits["start_logits"], logits["end_logits"],
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
    return files
