"""`seq2seq`: fine-tune T5 or BART on (source, target) text pairs.

Translation and summarization, as the `TFAutoModelForSeq2SeqLM` tutorials
did, on KerasHub's `T5Seq2SeqLM` / `BartSeq2SeqLM`. Pairs come from a
CSV/TSV (`source_column`, `target_column`), Python pairs or a dataset
(`kerasft.data.read_pairs`, checked before anything loads). Sources get
`task_prefix` ("translate English to German: ") and are tokenized once;
sources and targets longer than `source_length` / `target_length` tokens
are cut, and how many were cut is logged and recorded in `metrics.json`
(`"truncated"`). AdamW with warmup and linear decay, optionally layer-wise
rate decay or LoRA; `mode` partial/progressive opens the top transformer
layers (decoder layers above encoder layers) by stages; gradient
checkpointing recomputes each block (`kerasft.recipes._generative`).

Evaluation reports the validation (and test) loss, then generates for each
source, greedily and, with `num_beams > 1`, by beam search (never an id
past the tokenizer's vocabulary: T5 checkpoints have more output ids than
SentencePiece pieces; `kerasft.generation.limit_vocabulary`), and scores the
outputs with corpus BLEU (sacreBLEU's), ROUGE-1/2/L and exact match
(`kerasft.evaluation.generation`). `predictions.csv` holds
`source,target,prediction` (plus `beam_prediction`) for the validation set.
"""

import csv
import io

import numpy as np

from kerasft.recipes import _generative
from kerasft.recipes._runner import Run
from kerasft.recipes.config import resolve_config
from kerasft.recipes.configs import Seq2SeqConfig  # noqa: F401 (re-exported)

__all__ = ["Seq2SeqConfig", "seq2seq"]

_CHUNK = 1024
_SPLITS = ("train", "validation", "test")


def _read_splits(run, config):
    """`{split: TextPairs}` (validation held out of train when asked),
    subset by `max_train_samples` / `max_eval_samples`."""
    from kerasft.data.pairs import read_pairs
    from kerasft.recipes._text_options import subset_splits

    if config.train is None:
        raise ValueError(
            "`train` is required: a CSV/TSV of source,target pairs (or "
            "Python pairs)."
        )
    columns = dict(source_column=config.source_column,
                   target_column=config.target_column)
    splits = {
        name: read_pairs(getattr(config, name), **columns)
        for name in _SPLITS if getattr(config, name) is not None
    }
    if "validation" not in splits and config.validation_split:
        from kerasft.data._split import holdout_indices

        train = splits["train"]
        rest, held = holdout_indices(
            np.full(len(train), np.nan), config.validation_split, config.seed
        )
        splits["train"], splits["validation"] = train.take(rest), train.take(held)
        run.log(
            f"Holding out {len(held)} of {len(train)} training pairs for "
            f"validation (validation_split={config.validation_split})."
        )
    return subset_splits(run, splits, "pairs", lambda part, keep: part.take(keep))


def _rooms(preprocessor):
    """Tokens of text that fit `(encoder, decoder)`: the lengths minus the
    special tokens the preprocessor packs around an empty text."""
    x, _, _ = preprocessor({"encoder_text": [""], "decoder_text": [""]})
    encoder_specials = int(np.sum(np.asarray(x["encoder_padding_mask"])))
    decoder_specials = int(np.sum(np.asarray(x["decoder_padding_mask"])))
    return (
        preprocessor.encoder_sequence_length - encoder_specials,
        preprocessor.decoder_sequence_length + 1 - decoder_specials,
    )


def _truncation(run, preprocessor, splits, config):
    """Counts (and logs) the sources and targets longer than their room."""
    from kerasft.data.pairs import count_longer, token_lengths

    source_room, target_room = _rooms(preprocessor)
    report = {}
    for name, pairs in splits.items():
        sources = [config.task_prefix + s for s in pairs.sources]
        cut_sources, longest_source = count_longer(
            token_lengths(preprocessor.tokenizer, sources), source_room
        )
        cut_targets, longest_target = count_longer(
            token_lengths(preprocessor.tokenizer, pairs.targets), target_room
        )
        report[name] = {
            "pairs": len(pairs), "sources": cut_sources, "targets": cut_targets,
            "longest_source": longest_source, "longest_target": longest_target,
        }
        for what, cut, longest, flag, length in (
            ("sources", cut_sources, longest_source, "source_length",
             config.source_length),
            ("targets", cut_targets, longest_target, "target_length",
             config.target_length),
        ):
            if cut:
                run.notice(
                    f"Truncation: {cut} of {len(pairs)} {name} {what} are "
                    f"longer than {flag}={length} allows (longest: {longest} "
                    f"tokens + special tokens); their ends are cut."
                )
    return report


def _encode(preprocessor, pairs, prefix):
    """`(x, y, sample_weight)` numpy arrays of the packed token ids."""
    parts = []
    for start in range(0, len(pairs), _CHUNK):
        x, y, weight = preprocessor({
            "encoder_text": [prefix + s for s in pairs.sources[start:start + _CHUNK]],
            "decoder_text": list(pairs.targets[start:start + _CHUNK]),
        })
        parts.append((
            {k: np.asarray(v) for k, v in x.items()},
            np.asarray(y),
            np.asarray(weight).astype("float32"),
        ))
    x = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
    return (x, np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]))


def _evaluate(run, config, task, splits, datasets):
    """Loss, then generation scores per held-out split; the validation
    predictions as CSV text (or `None`)."""
    import keras_hub

    from kerasft.evaluation.generation import generation_scores
    from kerasft.generation import generate_with
    from kerasft.recipes._runner import prefixed

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
            run, config.backbone, "seq2seq",
            sequence_length=(config.source_length, config.target_length),
        )
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
    from kerasft.recipes import _data

    datasets = {
        name: run.batched(_data.Source(elements=elements).dataset)
        for name, elements in sources.items() if name != "train"
    }
    train = run.batched(run.shuffled(_data.Source(elements=sources["train"])))
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
