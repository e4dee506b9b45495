"""Glue shared by the generative recipes (`seq2seq`, `causal_lm`).

- `resolve_task`: the KerasHub task a run trains, from the config's
  `backbone` (a preset, `hf://` handle, local folder or a Python task, read
  by `kerasft.backbones.load_task`), built inside the run's strategy scope
  under its precision policy. A task given as a Python object is rebuilt
  there from its config and weights (the object itself is left untouched).
- `fine_tuning`: the mode (`kerasft.recipes._stages`: feature_extraction,
  partial, progressive, full with `head_epochs`) over the groups of
  `kerasft.backbones.from_keras_hub(task)` and the run's optimizer (AdamW,
  `lr_schedule` with warmup, `layer_decay`; the configs refuse head-only
  stages: GPT-2, T5 and BART have no weight outside their backbone);
  `fit` adds the mode's `ProgressiveUnfreeze`.
- `rematerialized`: `gradient_checkpointing` on the task's transformer
  blocks during `fit`.
- `enable_adapters`: `lora_rank` through `kerasft.backbones.enable_lora`.
- `without_preprocessor`: `fit`/`evaluate` on token ids the recipe made
  once, instead of KerasHub mapping the preprocessor over every epoch.
- The run folder (`finish`, through `Run.finish`; read back by
  `load_finished_task`, `kerasft.load` and `kerasft generate`):
  `generative.json`; `model.keras` (the whole task with its preprocessor)
  unless LoRA adapters stay unmerged, then `lora.weights.h5` (adapters
  only) and, when the base was a Python object, `base_preset/`
  (`task.save_to_preset`, written once before any adapter exists, in
  float32 whatever the run's precision, so that KerasHub loads it back).
  `--overwrite` removes these files with the others (`_io.RUN_OUTPUTS`).
"""

import contextlib
import json
import warnings
import os
import shutil
import tempfile

import keras

from kerasft import _io

GENERATIVE_FILE = "generative.json"
LORA_FILE = "lora.weights.h5"
BASE_PRESET_DIR = "base_preset"
PREDICTIONS_FILE = "predictions.csv"
SAMPLES_FILE = "samples.json"


# === The model ===


def resolve_task(run, source, kind, sequence_length=None):
    """The task to train, its variables in the run's strategy and policy.

    Call it inside `run.strategy.scope()`.

    Args:
        run: the `Run`.
        source: the config's `backbone`: a source string for `load_task`,
            or a KerasHub task (rebuilt from its config and weights).
        kind: `"seq2seq"` or `"causal_lm"`.
        sequence_length: the preprocessor's length(s), checked against
            the model's maximum by `load_task` (for seq2seq a
            `(source_length, target_length)` pair).

    Returns:
        `(task, base)`: `base` is the source string, or `None` for a
        Python object.
    """
    import keras_hub

    from kerasft import backbones

    if isinstance(source, keras_hub.models.Task):
        checked = backbones.load_task(source, kind, sequence_length=sequence_length)
        return _copy(checked), None
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            "`backbone` must be a KerasHub preset name, an hf:// handle, a "
            "local folder or (in Python) a KerasHub task. Received: "
            f"backbone={source!r}"
        )
    source = os.fspath(source)
    return backbones.load_task(source, kind, sequence_length=sequence_length), source


def _copy(task, dtype=None):
    """A copy of `task` made in the current scope: the backbone from its
    config (under `dtype`, or the current policy when `None`) and weights;
    the same preprocessor object."""
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


def enable_adapters(run, task, base):
    """LoRA of rank `lora_rank` on `task` (`kerasft.backbones.enable_lora`),
    when the config asks: only the adapters train. Logs the trainable share.
    Adapters that stay unmerged on a task given as a Python object (`base`
    is `None`) need the base saved first (`save_base_preset`)."""
    from kerasft import backbones

    rank = run.config.lora_rank
    if not rank:
        return
    if not run.config.merge_lora and base is None:
        save_base_preset(run, task)
    total, trainable = backbones.enable_lora(task, rank, verbose=False)
    run.log(
        f"LoRA rank {rank}: {trainable:,} of {total:,} parameters train "
        f"({100.0 * trainable / max(total, 1):.2f}%)."
    )


# === Mode and optimizer ===


def needs_groups(config):
    """Whether the run needs the backbone groups (`from_keras_hub`): a
    staged mode, `layer_decay` or gradient checkpointing."""
    from kerasft.recipes import _stages

    return (
        _stages.is_staged(config) or config.layer_decay is not None
        or config.gradient_checkpointing
    )


def fine_tuning(run, task, total_steps):
    """`(optimizer, backbone)`: the mode's first stage frozen on `task`
    (`kerasft.recipes._stages`) and the run's optimizer at its rate.

    Call it inside `run.strategy.scope()`, after any LoRA adapters exist.
    `backbone` is `kerasft.backbones.from_keras_hub(task)` when the mode,
    `layer_decay` or `gradient_checkpointing` needs the groups, else
    `None` (mode full with head_epochs=0 and no layer decay: everything
    trains from the first step, as before the modes existed).
    """
    from kerasft.backbones import from_keras_hub
    from kerasft.recipes import _stages

    config = run.config
    backbone = from_keras_hub(task) if needs_groups(config) else None
    if _stages.is_staged(config):
        _stages.freeze_first_stage(task, backbone, config)
    groups = backbone if config.layer_decay is not None else None
    return _stages.optimizer(run, config, groups, total_steps), backbone


def fit(run, task, backbone, train, validation, callbacks):
    """`run.fit` of `task` on token ids (its preprocessor detached), with
    `gradient_checkpointing`, the mode's `ProgressiveUnfreeze` (over
    `backbone`, when `fine_tuning` gave one) before the user's callbacks.
    Returns the history."""
    from kerasft.recipes import _stages

    callbacks = list(callbacks or [])
    if backbone is not None:
        callbacks = _stages.with_unfreeze(run, run.config, backbone, callbacks)
    with without_preprocessor(task), rematerialized(
        backbone, run.config.gradient_checkpointing
    ):
        return run.fit(task, train, validation, callbacks)


# === Gradient checkpointing ===

BLOCK_PATTERN = r"(?:layer|block)_\d+$"


def blocks(backbone):
    """The transformer blocks of `backbone` (a `from_keras_hub` Backbone):
    the layers of its non-embedding groups named like `..._layer_3`."""
    import re

    names = {
        name for group in backbone.groups if group.name != "embeddings"
        for name in group.layers if re.search(BLOCK_PATTERN, name)
    }
    return [layer for layer in backbone.model.layers if layer.name in names]


@contextlib.contextmanager
def rematerialized(backbone, enabled=True):
    """Runs each transformer block of `backbone` under `keras.remat`
    (gradient checkpointing) inside the block, as it was outside.

    Only each block's inputs are kept for the backward pass; its inner
    activations are recomputed. Why not `keras.RematScope`: it marks
    operations as they are created, so it cannot reach a task loaded
    before, and its `tf.recompute_grad` takes no keyword arguments in
    graph mode (KerasHub blocks take their masks and caches as keywords).
    So each block's `call` is replaced, on the instance, by one that passes
    the float tensors among its arguments (nested ones too) positionally
    and closes over the rest (masks, ids, flags). It also snapshots the
    state of every dropout seed generator in the block and restores it at
    the start of the recomputation, so the recomputed dropout masks are the
    forward pass's (gradients equal those without checkpointing). Nothing
    is saved: each block's `call` is put back on exit.

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

    found = [v for v in vars(layer).values()
             if isinstance(v, keras.random.SeedGenerator)]
    for sublayer in _keras_compat.sublayers(layer):
        found.extend(_seed_generators(sublayer))
    return list({id(g): g for g in found}.values())


def _is_float_tensor(value):
    return keras.ops.is_tensor(value) and "float" in str(
        keras.backend.standardize_dtype(value.dtype)
    )


def _remat_call(layer):
    call = layer.call
    generators = _seed_generators(layer)

    def rematerialized_call(*args, **kwargs):
        structure = (list(args), kwargs)
        values = keras.tree.flatten(structure)
        # Float tensors (nested ones too) go in positionally, so gradients
        # flow to them; masks, ids, flags and the seed states are closed over.
        floating = [_is_float_tensor(v) for v in values]
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


# === Run folder ===


def save_base_preset(run, task):
    """`task.save_to_preset(run.dir/base_preset)` in float32, once (a
    resumed run finds it), through a temporary folder renamed when complete.

    Creates the run folder if needed (a new run has none yet). A task
    computing under another dtype policy is saved from a float32 copy:
    KerasHub 0.32 cannot load a preset saved under a mixed policy
    ("Invalid dtype: mixed_bfloat16"); the variables of a mixed policy
    are float32 already, so nothing is lost.
    """
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
        from kerasft import backbones

        backbones.merge_lora(task)


def finish(run, task, base, history, metrics, info, files=None):
    """`Run.finish` with the generative files: `generative.json` (`kind`,
    `base`, `lora_rank`, `merged` and `info`), the model as `model.keras`
    or, for adapters left unmerged, `lora.weights.h5` alone, and `files`
    (`{file name: text}`, e.g. `predictions.csv`) beside the training curves.

    Returns:
        A `RecipeResult`.
    """
    from kerasft.recipes._classification import write_curves

    config = run.config
    info = {
        "kind": run.recipe, "base": base, "lora_rank": config.lora_rank,
        "merged": bool(config.lora_rank and config.merge_lora), **info,
    }

    def save_adapters(directory):
        from kerasft import backbones

        with _io.atomic_path(os.path.join(directory, LORA_FILE)) as tmp:
            backbones.save_lora(task, tmp)

    def write_files(directory):
        write_curves(history, directory)
        for name, text in (files or {}).items():
            _io.write_text(os.path.join(directory, name), text)

    unmerged = info["lora_rank"] and not info["merged"]
    return run.finish(task, history, metrics, plot=write_files,
                      extra_json={GENERATIVE_FILE: info},
                      save=save_adapters if unmerged else None)


def load_finished_task(directory, compile=True):
    """The trained task of a finished generative run folder.

    `model.keras` when the run wrote one; otherwise the base
    (`generative.json`'s `base`, or `base_preset/`) through `load_task`
    with the adapters of `lora.weights.h5` loaded onto it. The
    preprocessor's sequence lengths are the run's.

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
    import kerasft.optimizers  # noqa: F401 (registers the saved optimizer)
    from kerasft import backbones

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
    set_lengths(task, info)
    return task, info


def _compile_as_saved(task, model_path):
    """Compiles `task` as it was saved, optimizer state included.

    KerasHub tasks override `compile` without `compile_from_config`, so
    `keras.saving.load_model` leaves them with KerasHub's default, unbuilt
    optimizer (it warns and skips the saved one). Here the saved compile
    config is deserialized and passed to the task's own `compile` (keeping
    its sampler), the optimizer is built, and `model.weights.h5` (which
    holds the optimizer's variables) is loaded again.
    """
    import tempfile
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


def set_lengths(task, info):
    """The preprocessor's lengths from `generative.json` (`source_length`
    and `target_length` for seq2seq, `sequence_length` otherwise)."""
    preprocessor = task.preprocessor
    if info.get("kind") == "seq2seq":
        preprocessor.encoder_sequence_length = info["source_length"]
        preprocessor.decoder_sequence_length = info["target_length"]
    elif info.get("sequence_length"):
        preprocessor.sequence_length = info["sequence_length"]
