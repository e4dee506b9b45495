"""`causal_lm`: adapt a GPT-2-family model to a domain corpus.

Documents are packed with the end-of-text separator into `sequence_length`
windows every `stride` tokens; the loss is averaged per scored token, so
`val_loss` is `log(val_perplexity)`. Continuations of `prompts` go in
`samples.json`.
"""

import json

import keras
import keras_hub
import numpy as np

from kerasft.data import corpus
from kerasft.recipes import _generative
from kerasft.recipes._runner import Run
from kerasft.recipes._text_options import subset_splits
from kerasft.recipes.config import resolve_config
from kerasft.recipes.configs import CausalLMConfig  # noqa: F401 (re-exported)
from kerasft.recipes.configs import prompt_list

__all__ = ["CausalLMConfig", "causal_lm"]

SAMPLES_FILE = _generative.SAMPLES_FILE


def token_ids(tokenizer, texts):
    """Token id lists of `texts` from a KerasHub tokenizer."""
    ids = tokenizer(list(texts))
    if hasattr(ids, "to_list"):  # tf.RaggedTensor
        ids = ids.to_list()
    elif hasattr(ids, "numpy"):
        ids = ids.numpy().tolist()
    return [list(map(int, row)) for row in ids]


def _pack(run, config, task, corpora):
    """`{split: PackedCorpus}`, validation held out and subsets taken."""
    tokenizer = task.preprocessor.tokenizer
    separator = getattr(tokenizer, "end_token_id", None)
    if separator is None:
        raise ValueError(
            f"The tokenizer of {type(task).__name__} has no end-of-text token "
            "to separate documents with."
        )
    pad = getattr(tokenizer, "pad_token_id", None)
    documents = {
        name: corpus.tokenize_documents(texts, lambda b: token_ids(tokenizer, b))
        for name, texts in corpora.items()
    }
    if "validation" not in documents and config.validation_split:
        documents["train"], documents["validation"] = corpus.split_documents(
            documents["train"], config.validation_split
        )
        run.log(
            f"Holding out the last {config.validation_split:.0%} of the "
            "training tokens for validation (validation_split="
            f"{config.validation_split})."
        )
    packed = {
        name: corpus.pack(
            docs, config.sequence_length, separator, stride=config.stride,
            pad_id=separator if pad is None else pad,
            score_each_token_once=name != "train",
        )
        for name, docs in documents.items()
    }
    subset_splits(run, packed, "windows", corpus.take_windows)
    for name, p in packed.items():
        run.log(
            f"{name}: {p.num_documents} document(s), {p.num_tokens:,} tokens "
            f"-> {p.num_windows:,} windows of {config.sequence_length} "
            f"(stride {p.stride}), {p.num_labels:,} tokens scored."
        )
    return packed


def _elements(packed):
    x = {"token_ids": packed.token_ids, "padding_mask": packed.padding_mask}
    return x, packed.labels, loss_weights(packed)


def loss_weights(packed):
    """The label mask scaled so that Keras's loss is the mean over scored
    tokens, the same number as `log(perplexity)`.

    Keras divides a batch's weighted loss sum by every label position,
    masked ones included (a padded last window, overlapping validation
    windows scoring only the tokens they add), and averages batches by
    their window count. Scaling the mask by `positions / scored tokens` of
    the split makes that the per-token mean over the whole split; the
    perplexity metric divides by the weights' sum, so it is unchanged.

    Args:
        packed: a `kerasft.data.corpus.PackedCorpus`.

    Returns:
        A float32 array shaped like `packed.label_mask`.
    """
    positions = packed.label_mask.size
    scale = positions / max(packed.num_labels, 1)
    return (packed.label_mask * np.float32(scale)).astype("float32")


def _check_lengths(task, config):
    """`sequence_length` and `sample_length` against the model's positions
    (a Python task has no checkpoint metadata for `load_task` to check)."""
    maximum = getattr(task.backbone, "max_sequence_length", None)
    for name, fix in (
        ("sequence_length", ". Use a shorter length; `stride` overlaps the "
         "windows for more context per token."),
        ("sample_length", ""),
    ):
        if maximum and (getattr(config, name) or 0) > maximum:
            raise ValueError(
                f"`{name}` must be at most the model's maximum of {maximum} "
                f"positions. Received: {name}={getattr(config, name)}{fix}"
            )


def _scores(task, dataset, packed, prefix):
    """`val_loss` (mean cross-entropy per scored token, in nats),
    `val_perplexity` (its exponential) and the split's counts."""
    with _generative.without_preprocessor(task):
        scores = task.evaluate(dataset, verbose=0, return_dict=True)
    perplexity = float(scores["perplexity"])
    return {
        f"{prefix}loss": float(np.log(perplexity)),
        f"{prefix}perplexity": perplexity,
        f"{prefix}tokens": packed.num_tokens,
        f"{prefix}windows": packed.num_windows,
    }


def causal_lm(config=None, *, overwrite=False, callbacks=None, **fields):
    """Fine-tunes a causal language model (GPT-2 family) on a text corpus.

    Args:
        config: a `CausalLMConfig`, a dict or a JSON/YAML path.
        overwrite: replace another run's outputs. Defaults to `False`.
        callbacks: extra Keras callbacks. Defaults to `None`.
        **fields: config fields, overriding `config`.

    Returns:
        A `RecipeResult` whose `model` is the KerasHub task
        (`result.model.generate(...)`), with `metrics["val_perplexity"]`,
        `"val_loss"`, `"train_tokens"`, `"train_windows"`, ... (and
        `"test_perplexity"`, `"test_loss"`, ... with a `test` corpus)

    Example:
    ```python
    result = kerasft.recipes.causal_lm(
        train="legal_corpus/", backbone="path/to/hf_gpt2_folder",
        sequence_length=512, stride=384, epochs=3,
        prompts=["The party of the first part"], output_dir="runs/legal")
    print(result.metrics["val_perplexity"])
    ```
    """
    config = resolve_config(CausalLMConfig, config, **fields)
    run = Run(config, overwrite)
    if run.state == "complete":
        return run.completed_result()
    corpora = _generative.read_splits(  # bad data fails before any loading
        config, "a text file, a folder of .txt files or a CSV/TSV column of "
        "documents", lambda value: corpus.read_corpus(value, config.text_column))
    with run.strategy.scope():
        task, base = _generative.resolve_task(run, config.sequence_length)
        _check_lengths(task, config)
        task.preprocessor.sequence_length = config.sequence_length
        packed = _pack(run, config, task, corpora)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        ppl = keras_hub.metrics.Perplexity(from_logits=True, name="perplexity")
        windows = packed["train"].num_windows
        what = f"{windows:,} windows"
        backbone = _generative.compile_task(
            run, task, base, windows, what, loss=loss, weighted_metrics=[ppl]
        )
    train, held_out = _generative.batches(
        run, {name: _elements(part) for name, part in packed.items()}
    )
    history = _generative.fit(run, task, backbone, train,
                              held_out.get("validation"), callbacks)
    metrics = {f"train_{count}": getattr(packed["train"], f"num_{count}")
               for count in ("tokens", "windows", "documents")}
    for name, prefix in (("validation", "val_"), ("test", "test_")):
        if name in held_out:
            metrics.update(_scores(task, held_out[name], packed[name], prefix))
    _generative.merge_adapters(run, task)
    prompts = prompt_list(config.prompts)
    files = {SAMPLES_FILE: _samples(task, prompts, config)} if prompts else {}
    info = {"task_prefix": "", "sequence_length": config.sequence_length}
    return _generative.finish(run, task, base, history, metrics, info, files)


def _samples(task, prompts, config):
    """`samples.json`'s text: a continuation of each of `prompts`."""
    from kerasft.generation import generate_with, make_sampler

    sampler = make_sampler(config.sampler, top_k=config.top_k,
                           top_p=config.top_p, seed=config.seed)
    length = config.sample_length or config.sequence_length
    samples = generate_with(task, prompts, sampler, length)
    data = {
        "sampler": config.sampler,
        "top_k": config.top_k if config.sampler == "top_k" else None,
        "top_p": config.top_p if config.sampler == "top_p" else None,
        "seed": config.seed,
        "max_length": length,
        "samples": [{"prompt": p, "text": s} for p, s in zip(prompts, samples)],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
