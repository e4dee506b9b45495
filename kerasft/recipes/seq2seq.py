"""`seq2seq`: fine-tune T5 or BART on (source, target) text pairs.

Pairs (`kerasft.data.read_pairs`, checked before anything loads) get
`task_prefix` and are tokenized once; how many `source_length` /
`target_length` cut is logged and recorded (`metrics["truncated"]`).
Evaluation generates greedily and, with `num_beams > 1`, by beam search,
scored by `kerasft.evaluation.generation`; `predictions.csv` holds
`source,target,prediction` (plus `beam_prediction`) for the validation set.
"""

import csv
import io

import keras
import keras_hub
import numpy as np

from kerasft.data.pairs import count_longer, read_pairs, token_lengths
from kerasft.recipes import _generative
from kerasft.recipes._runner import Run, prefixed
from kerasft.recipes._text_options import hold_out, subset_splits
from kerasft.recipes.config import resolve_config
from kerasft.recipes.configs import Seq2SeqConfig  # noqa: F401 (re-exported)

__all__ = ["Seq2SeqConfig", "seq2seq"]

_CHUNK = 1024


def _read_splits(run, config):
    """`{split: TextPairs}`, validation held out of train when asked,
    subsets taken."""
    splits = _generative.read_splits(
        config, "a CSV/TSV of source,target pairs (or Python pairs)",
        lambda value: read_pairs(value, source_column=config.source_column,
                                 target_column=config.target_column))
    if "validation" not in splits and config.validation_split:
        splits["train"], splits["validation"] = hold_out(
            run, config, splits["train"], "pairs", _take)
    return subset_splits(run, splits, "pairs", _take)


def _take(pairs, keep):
    return pairs.take(keep)


def _truncation(run, preprocessor, splits, config):
    """Counts (and logs) the sources and targets longer than their room."""
    # Tokens of text that fit: the lengths minus the special tokens the
    # preprocessor packs around an empty text.
    x, _, _ = preprocessor({"encoder_text": [""], "decoder_text": [""]})
    rooms = {
        "source": preprocessor.encoder_sequence_length
        - int(np.sum(np.asarray(x["encoder_padding_mask"]))),
        "target": preprocessor.decoder_sequence_length + 1
        - int(np.sum(np.asarray(x["decoder_padding_mask"]))),
    }
    report = {}
    for name, pairs in splits.items():
        report[name] = {"pairs": len(pairs)}
        sources = [config.task_prefix + s for s in pairs.sources]
        for what, texts in (("source", sources), ("target", pairs.targets)):
            cut, longest = count_longer(
                token_lengths(preprocessor.tokenizer, texts), rooms[what])
            report[name].update({f"{what}s": cut, f"longest_{what}": longest})
            if cut:
                length = getattr(config, f"{what}_length")
                run.notice(
                    f"Truncation: {cut} of {len(pairs)} {name} {what}s are "
                    f"longer than {what}_length={length} allows (longest: "
                    f"{longest} tokens + special tokens); their ends are cut."
                )
    return report


def _encode(preprocessor, pairs, prefix):
    """`(x, y, sample_weight)` numpy arrays of the packed token ids."""
    parts = [preprocessor({
        "encoder_text": [prefix + s for s in pairs.sources[start:start + _CHUNK]],
        "decoder_text": list(pairs.targets[start:start + _CHUNK]),
    }) for start in range(0, len(pairs), _CHUNK)]
    x, y, weight = keras.tree.map_structure(
        lambda *chunks: np.concatenate([np.asarray(c) for c in chunks]), *parts)
    return x, y, weight.astype("float32")


def _evaluate(run, config, task, splits, datasets):
    """Loss, then generation scores per held-out split; the validation
    predictions as CSV text (or `None`)."""
    from kerasft.evaluation.generation import generation_scores
    from kerasft.generation import generate_with

    metrics, table = {}, None
    length = config.generation_length or config.target_length
    samplers = [("", "greedy")]
    if config.num_beams > 1:
        samplers.append(
            ("beam_", keras_hub.samplers.BeamSampler(num_beams=config.num_beams))
        )
    for name, prefix in (("validation", "val_"), ("test", "test_")):
        if name not in splits:
            continue
        with _generative.without_preprocessor(task):
            scores = task.evaluate(datasets[name], verbose=0, return_dict=True)
        metrics.update(prefixed({"loss": scores["loss"]}, prefix))
        pairs = splits[name]
        sources = [config.task_prefix + s for s in pairs.sources]
        columns = {}
        for tag, sampler in samplers:
            # Python strings; ids past the tokenizer's vocabulary never come.
            predictions = generate_with(task, sources, sampler, length,
                                        batch_size=run.global_batch)
            columns[f"{tag}prediction"] = predictions
            metrics.update(prefixed(
                generation_scores(predictions, pairs.targets), prefix + tag
            ))
        if name == "validation":
            table = _predictions_csv(pairs, columns)
    return metrics, table


def _predictions_csv(pairs, columns):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["source", "target", *columns])
    for i, (source, target) in enumerate(zip(pairs.sources, pairs.targets)):
        writer.writerow([source, target, *(c[i] for c in columns.values())])
    return out.getvalue()


def seq2seq(config=None, *, overwrite=False, callbacks=None, **kwargs):
    """Fine-tunes a T5/BART model on (source, target) text pairs.

    Args:
        config: a `Seq2SeqConfig`, a dict or a JSON/YAML path.
        overwrite: replace another run's outputs. Defaults to `False`.
        callbacks: extra Keras callbacks. Defaults to `None`.
        **kwargs: config fields, overriding `config`.

    Returns:
        A `RecipeResult` whose `model` is the KerasHub task
        (`result.model.generate(...)`), with `metrics["val_bleu"]`,
        `"val_rouge1"`, `"val_rouge2"`, `"val_rougeL"`,
        `"val_exact_match"`, `"val_loss"` (and `val_beam_*` with
        `num_beams > 1`).

    Example:
    ```python
    result = kerasft.recipes.seq2seq(
        train="pairs.csv", backbone="t5_small_multi",
        task_prefix="translate English to German: ",
        source_length=64, target_length=64, epochs=3,
        output_dir="runs/translate")
    result.model.generate("translate English to German: Hello")
    ```
    """
    config = resolve_config(Seq2SeqConfig, config, **kwargs)
    run = Run(config, overwrite)
    if run.state == "complete":
        return run.completed_result()
    splits = _read_splits(run, config)  # bad data fails before any loading
    with run.strategy.scope():
        task, base = _generative.resolve_task(
            run, (config.source_length, config.target_length))
        preprocessor = task.preprocessor
        truncated = _truncation(run, preprocessor, splits, config)
        sources = {
            name: _encode(preprocessor, pairs, config.task_prefix)
            for name, pairs in splits.items()
        }
        _generative.enable_adapters(run, task, base)
        steps = config.epochs * -(-len(splits["train"]) // run.global_batch)
        optimizer, backbone = _generative.fine_tuning(run, task, steps)
        task.compile(optimizer=optimizer, sampler="greedy")
    train, datasets = _generative.batches(run, sources)
    run.log(
        f"Fine-tuning {type(task).__name__} on {len(splits['train'])} pairs, "
        f"{run.replicas} replica(s), precision {run.policy.name}."
    )
    history = _generative.fit(run, task, backbone, train,
                              datasets.get("validation"), callbacks)
    metrics, table = _evaluate(run, config, task, splits, datasets)
    metrics["truncated"] = truncated
    _generative.merge_adapters(run, task)
    info = {
        "task_prefix": config.task_prefix,
        "sequence_length": config.target_length,
        "source_length": config.source_length,
        "target_length": config.target_length,
    }
    files = {_generative.PREDICTIONS_FILE: table} if table is not None else {}
    return _generative.finish(run, task, base, history, metrics, info, files)
