"""Glue shared by the generative recipes (`seq2seq`, `causal_lm`): the
KerasHub task, LoRA, mode and optimizer, gradient checkpointing and the run
folder (`generative.json` with `model.keras`, or unmerged `lora.weights.h5`
and, for a Python task, `base_preset/`)."""

import contextlib
import json
import os
import shutil
import tempfile
import warnings

import keras

from kerasft import _io
from kerasft import backbones
from kerasft.recipes import _stages

GENERATIVE_FILE = "generative.json"
LORA_FILE = "lora.weights.h5"
BASE_PRESET_DIR = "base_preset"
PREDICTIONS_FILE = "predictions.csv"
SAMPLES_FILE = "samples.json"


def read_splits(config, needed, read):
    """`{split: read(value)}` for the config's `train`, `validation` and
    `test` that are set; `train` must be (`needed` says what it takes)."""
    if config.train is None:
        raise ValueError(f"`train` is required: {needed}.")
    return {name: read(getattr(config, name))
            for name in ("train", "validation", "test")
            if getattr(config, name) is not None}


def batches(run, elements):
    """`(training batches, {held-out split: batches})` of `{split: elements}`,
    the training split shuffled by `(seed, epoch)`."""
    from kerasft.recipes import _data

    sources = {name: _data.Source(elements=e) for name, e in elements.items()}
    train = run.batched(run.shuffled(sources.pop("train")))
    return train, {name: run.batched(s.dataset) for name, s in sources.items()}


def resolve_task(run, lengths):
    """`(task, base)`: the config's `backbone` in the run's policy (call it
    in `run.strategy.scope()`), its preprocessor at `lengths` (a
    `(source, target)` pair for seq2seq); `base` is the source string for
    `load_task`, or `None` for a KerasHub task (rebuilt, left untouched)."""
    import keras_hub

    source = base = run.config.backbone
    if isinstance(source, keras_hub.models.Task):
        base = None
    elif isinstance(source, (str, os.PathLike)):
        source = base = os.fspath(source)
    else:
        raise TypeError(
            "`backbone` must be a KerasHub preset name, an hf:// handle, a "
            "local folder or (in Python) a KerasHub task. Received: "
            f"backbone={source!r}"
        )
    task = backbones.load_task(source, run.recipe, sequence_length=lengths)
    return (_copy(task) if base is None else task), base


def _copy(task, dtype=None):
    """`task` rebuilt in the current scope (under `dtype` or the policy)."""
    backbone = task.backbone
    config = backbone.get_config()
    config.pop("dtype", None)
    if dtype is not None:
        config["dtype"] = dtype
    copy = type(backbone).from_config(config)
    copy.set_weights(backbone.get_weights())
    return type(task)(backbone=copy, preprocessor=task.preprocessor)


@contextlib.contextmanager
def without_preprocessor(task):
    """Detaches `task.preprocessor` (KerasHub's documented way to feed
    token ids to `fit`/`evaluate`) and attaches it again afterwards."""
    preprocessor = task.preprocessor
    task.preprocessor = None
    try:
        yield task
    finally:
        task.preprocessor = preprocessor


def compile_task(run, task, base, examples, what, **compile_args):
    """LoRA of rank `lora_rank` when asked (unmerged adapters on a Python
    task, `base` `None`, need the base saved first), `fine_tuning` over
    `examples` per epoch, `task.compile`; logs `what` trains. Returns
    `fine_tuning`'s backbone."""
    rank = run.config.lora_rank
    if rank:
        if not run.config.merge_lora and base is None:
            save_base_preset(run, task)
        total, trainable = backbones.enable_lora(task, rank, verbose=False)
        run.log(
            f"LoRA rank {rank}: {trainable:,} of {total:,} parameters train "
            f"({100.0 * trainable / max(total, 1):.2f}%)."
        )
    if run.config.mode == "auto":
        from kerasft.advisor.recipe import follow_advice

        # No class per example and no BatchNorm: the size decides.
        follow_advice(run, backbones.from_keras_hub(task), None,
                      num_examples=examples)
    steps = run.config.epochs * -(-examples // run.global_batch)
    optimizer, backbone = fine_tuning(run, task, steps)
    task.compile(optimizer=optimizer, sampler="greedy", **compile_args)
    run.log(
        f"Fine-tuning {type(task).__name__} on {what}, {run.replicas} "
        f"replica(s), precision {run.policy.name}."
    )
    return backbone


def fine_tuning(run, task, total_steps):
    """`(optimizer, backbone)`: the mode's first stage frozen on `task` and
    the run's optimizer (in the strategy scope, after LoRA); `backbone` is
    `from_keras_hub(task)` when the mode, `layer_decay` or
    `gradient_checkpointing` needs the groups, else `None`."""
    config = run.config
    staged = _stages.is_staged(config)
    decay = config.layer_decay is not None
    backbone = backbones.from_keras_hub(task) if (
        staged or decay or config.gradient_checkpointing) else None
    if staged:
        _stages.freeze_first_stage(task, backbone, config)
    groups = backbone if decay else None
    return _stages.optimizer(run, config, groups, total_steps), backbone


def fit(run, task, backbone, train, validation, callbacks):
    """`run.fit` of `task` on token ids (preprocessor detached) with
    `gradient_checkpointing` and the mode's unfreezing."""
    callbacks = list(callbacks or [])
    if backbone is not None:
        callbacks = _stages.with_unfreeze(run, run.config, backbone, callbacks)
    with without_preprocessor(task), rematerialized(
        backbone, run.config.gradient_checkpointing
    ):
        return run.fit(task, train, validation, callbacks)


def blocks(backbone):
    """The layers of `backbone`'s non-embedding groups named like
    `..._layer_3` (its transformer blocks)."""
    import re

    names = {
        name for group in backbone.groups if group.name != "embeddings"
        for name in group.layers if re.search(r"(?:layer|block)_\d+$", name)
    }
    return [layer for layer in backbone.model.layers if layer.name in names]


@contextlib.contextmanager
def rematerialized(backbone, enabled=True):
    """Runs each transformer block of `backbone` under `keras.remat`
    (gradient checkpointing) inside the block, as it was outside.

    Not `keras.RematScope`: it cannot reach a task loaded before, and its
    `tf.recompute_grad` takes no keyword arguments in graph mode (KerasHub
    blocks take masks as keywords). So each block's `call` is replaced, on
    the instance, by one passing the float tensors positionally; the dropout
    seed states are restored before recomputing, so gradients are unchanged.

    Args:
        backbone: a `kerasft.backbones.Backbone` from `from_keras_hub`.
        enabled: `False` does nothing (for a `with` on a flag).
    """
    patched = [] if not enabled or backbone is None else blocks(backbone)
    before = [layer.__dict__.get("call") for layer in patched]
    for layer in patched:
        layer.call = _remat_call(layer)
    try:
        yield patched
    finally:
        for layer, call in zip(patched, before):
            if call is None:
                del layer.call
            else:
                layer.call = call


def _seed_generators(layer):
    from kerasft import _keras_compat

    found = [generator for sublayer in _keras_compat.all_layers(layer)
             for generator in _keras_compat.seed_generators(sublayer)]
    return list({id(g): g for g in found}.values())


def _remat_call(layer):
    call = layer.call
    generators = _seed_generators(layer)

    def rematerialized_call(*args, **kwargs):
        structure = (list(args), kwargs)
        values = keras.tree.flatten(structure)
        # Float tensors (nested ones too) go in positionally, so gradients
        # flow to them; masks, ids, flags and the seed states are closed over.
        floating = [
            keras.ops.is_tensor(v)
            and "float" in keras.backend.standardize_dtype(v.dtype)
            for v in values
        ]
        tensors = [v for v, f in zip(values, floating) if f]
        # `* 1` copies (convert_to_tensor hands a tf.Variable back as is).
        states = [g.state.value * 1 for g in generators]

        def inner(*given):
            for generator, state in zip(generators, states):
                generator.state.assign(state)
            given = iter(given)
            full = [next(given) if f else v for v, f in zip(values, floating)]
            call_args, call_kwargs = keras.tree.pack_sequence_as(structure, full)
            return call(*call_args, **call_kwargs)

        return keras.remat(inner)(*tensors)

    return rematerialized_call


def save_base_preset(run, task):
    """`task.save_to_preset(run.dir/base_preset)` once, atomically, in
    float32: KerasHub 0.32 cannot load a preset saved under a mixed policy
    ("Invalid dtype: mixed_bfloat16"), whose variables are float32 anyway."""
    path = os.path.join(run.dir, BASE_PRESET_DIR)
    if os.path.isdir(path) or not run.chief:
        return
    os.makedirs(run.dir, exist_ok=True)
    for name in os.listdir(run.dir):  # left by a run killed while saving
        if name.startswith(f".{BASE_PRESET_DIR}."):
            shutil.rmtree(os.path.join(run.dir, name), ignore_errors=True)
    tmp = tempfile.mkdtemp(prefix=f".{BASE_PRESET_DIR}.", dir=run.dir)
    try:
        float32 = task.backbone.dtype_policy.name == "float32"
        (task if float32 else _copy(task, "float32")).save_to_preset(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp)


def merge_adapters(run, task):
    """Folds the LoRA adapters into the kernels when `merge_lora` asks."""
    if run.config.lora_rank and run.config.merge_lora:
        backbones.merge_lora(task)


def finish(run, task, base, history, metrics, info, files):
    """`Run.finish` writing `generative.json` (`kind`, `base`, `lora_rank`,
    `merged`, `info`), `lora.weights.h5` instead of `model.keras` for
    unmerged adapters, the curves and `files` (`{name: text}`)."""
    from kerasft.recipes._classification import write_curves

    config = run.config
    info = {
        "kind": run.recipe, "base": base, "lora_rank": config.lora_rank,
        "merged": bool(config.lora_rank and config.merge_lora), **info,
    }

    def save_adapters(directory):
        with _io.atomic_path(os.path.join(directory, LORA_FILE)) as tmp:
            backbones.save_lora(task, tmp)

    def write_files(directory):
        write_curves(history, directory)
        for name, text in files.items():
            _io.write_text(os.path.join(directory, name), text)

    extra = {GENERATIVE_FILE: info}
    save = None if info["merged"] or not info["lora_rank"] else save_adapters
    return run.finish(task, history, metrics, write_files, extra, save=save)


def load_finished_task(directory, compile=True):
    """The trained task of a finished generative run folder: `model.keras`,
    or the base (`base`, or `base_preset/`) with `lora.weights.h5` loaded
    onto it; the preprocessor's sequence lengths are the run's.

    Args:
        directory: the run folder.

    Returns:
        `(task, info)`: the KerasHub task and `generative.json`'s content.
    """
    path = os.path.join(directory, GENERATIVE_FILE)
    if not os.path.isfile(path):
        raise ValueError(
            f"{directory!r} is not a finished seq2seq/causal_lm run: it has "
            f"no {GENERATIVE_FILE}."
        )
    with open(path) as f:
        info = json.load(f)
    model_path = os.path.join(directory, _io.MODEL_FILE)
    if os.path.isfile(model_path):
        with warnings.catch_warnings():
            # KerasHub's default optimizer, not the saved one: restored below.
            warnings.filterwarnings(
                "ignore", message="Skipping variable loading for optimizer"
            )
            task = keras.saving.load_model(model_path, compile=False)
        if compile:
            _compile_as_saved(task, model_path)
    else:
        base = info.get("base") or os.path.join(directory, BASE_PRESET_DIR)
        task = backbones.load_task(base, info["kind"])
        backbones.load_lora(task, os.path.join(directory, LORA_FILE))
    preprocessor = task.preprocessor
    if info.get("kind") == "seq2seq":
        preprocessor.encoder_sequence_length = info["source_length"]
        preprocessor.decoder_sequence_length = info["target_length"]
    elif info.get("sequence_length"):
        preprocessor.sequence_length = info["sequence_length"]
    return task, info


def _compile_as_saved(task, model_path):
    """Compiles `task` as it was saved, optimizer state included: KerasHub
    tasks override `compile` without `compile_from_config`, so `load_model`
    leaves KerasHub's default optimizer and skips the saved one."""
    import zipfile

    with zipfile.ZipFile(model_path) as archive:
        config = json.loads(archive.read("config.json")).get("compile_config")
        if not config:
            return
        compiled = keras.saving.deserialize_keras_object(config)
        if getattr(task, "sampler", None) is not None:
            compiled["sampler"] = task.sampler
        task.compile(**compiled)
        task.optimizer.build(task.trainable_variables)
        with tempfile.TemporaryDirectory() as folder:
            task.load_weights(archive.extract("model.weights.h5", folder))
