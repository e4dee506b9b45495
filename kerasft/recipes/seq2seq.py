"""`seq2seq`: fine-tune T5 or BART on (source, target) text pairs.

Truncated pairs are logged and counted (`metrics["truncated"]`); evaluation
generates greedily (and by beam search with `num_beams > 1`) and writes the
validation set's `predictions.csv`.
"""

import csv
import io

import keras
import keras_hub
import numpy as np

from kerasft.data.pairs import TextPairs, count_longer, read_pairs
from kerasft.data.pairs import token_lengths
from kerasft.recipes import _generative
from kerasft.recipes._runner import Run, prefixed
from kerasft.recipes._text_options import hold_out, subset_splits
from kerasft.recipes.config import resolve_config
from kerasft.recipes.configs import Seq2SeqConfig  # noqa: F401 (re-exported)

__all__ = ["Seq2SeqConfig", "seq2seq"]

_CHUNK = 1024


def _read_splits(run, config):
    """`{split: TextPairs}`, validation held out and subsets taken."""
    splits = _generative.read_splits(
        config, "a CSV/TSV of source,target pairs (or Python pairs)",
        lambda value: read_pairs(value, source_column=config.source_column,
                                 target_column=config.target_column))
    if "validation" not in splits and config.validation_split:
        splits["train"], splits["validation"] = hold_out(
            run, config, splits["train"], "pairs", TextPairs.take)
    return subset_splits(run, splits, "pairs", TextPairs.take)


def _truncation(run, preprocessor, splits, config):
    """Counts (and logs) the sources and targets longer than their room:
    the lengths less the special tokens packed around an empty text."""
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
    sources, targets = [prefix + s for s in pairs.sources], list(pairs.targets)
    parts = []
    for start in range(0, len(pairs), _CHUNK):
        chunk = slice(start, start + _CHUNK)
        texts = {"encoder_text": sources[chunk], "decoder_text": targets[chunk]}
        parts.append(preprocessor(texts))
    x, y, weight = keras.tree.map_structure(
        lambda *chunks: np.concatenate([np.asarray(c) for c in chunks]), *parts)
    return x, y, weight.astype("float32")


def _evaluate(run, config, task, splits, datasets):
    """Loss and generation scores per held-out split; `{file: text}` of the
    validation predictions."""
    from kerasft.evaluation.generation import generation_scores
    from kerasft.generation import generate_with

    metrics, files = {}, {}
    length = config.generation_length or config.target_length
    samplers = {"": "greedy"}
    if config.num_beams > 1:
        beam = keras_hub.samplers.BeamSampler(num_beams=config.num_beams)
        samplers["beam_"] = beam
    for name, prefix in (("validation", "val_"), ("test", "test_")):
        if name not in splits:
            continue
        with _generative.without_preprocessor(task):
            scores = task.evaluate(datasets[name], verbose=0, return_dict=True)
        metrics[prefix + "loss"] = float(scores["loss"])
        pairs = splits[name]
        sources = [config.task_prefix + s for s in pairs.sources]
        columns = {}
        for tag, sampler in samplers.items():
            # Python strings; ids past the tokenizer's vocabulary never come.
            predictions = generate_with(task, sources, sampler, length,
                                        batch_size=run.global_batch)
            columns[f"{tag}prediction"] = predictions
            scores = generation_scores(predictions, pairs.targets)
            metrics.update(prefixed(scores, prefix + tag))
        if name == "validation":
            files[_generative.PREDICTIONS_FILE] = _csv(pairs, columns)
    return metrics, files


def _csv(pairs, columns):
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
        examples = len(splits["train"])
        backbone = _generative.compile_task(
            run, task, base, examples, f"{examples} pairs")
    train, datasets = _generative.batches(run, sources)
    history = _generative.fit(run, task, backbone, train,
                              datasets.get("validation"), callbacks)
    metrics, files = _evaluate(run, config, task, splits, datasets)
    metrics["truncated"] = truncated
    _generative.merge_adapters(run, task)
    info = {name: getattr(config, name) for name in (
        "task_prefix", "source_length", "target_length")}
    info["sequence_length"] = config.target_length
    return _generative.finish(run, task, base, history, metrics, info, files)
