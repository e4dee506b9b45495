"""`load_task(source, kind)`: a generative KerasHub task from any source.

The seq2seq and causal LM recipes and `kerasft generate` build their model
here. Sources:
- a KerasHub preset name (`"gpt2_base_en"`, `"t5_small_multi"`) or a
  `kaggle://` handle (downloads, for users online);
- an `hf://org/name` handle (downloads; safetensors only);
- a local Hugging Face folder (`config.json`, `model.safetensors` or sharded
  safetensors, tokenizer files): T5 / Flan-T5 / mT5 go through kerasft's
  converter (`kerasft.backbones.t5_checkpoint`), GPT-2, BART and the other
  families KerasHub converts through KerasHub's own converters;
- a local KerasHub preset folder (written by `task.save_to_preset(folder)`);
- in Python, a KerasHub `Seq2SeqLM` / `CausalLM` task (returned as is) or a
  KerasHub backbone (wrapped into its task with a preprocessor).

Pickle checkpoints (`pytorch_model.bin`, `*.pt`, ...) run code when they are
unpickled: a folder that holds only those is refused before anything in it
is read.
"""

import json
import os
import re

from kerasft import _keras_compat
from kerasft.backbones import _download, t5_checkpoint

KINDS = ("seq2seq", "causal_lm")
_FEATURE = "kerasft.backbones.load_task (hf:// and KerasHub preset sources)"
_PICKLES = re.compile(r".*\.(bin|pt|pth|ckpt|pkl|pickle)$")
_SAFETENSORS = ("model.safetensors", "model.safetensors.index.json")
_T5_TYPES = ("t5", "mt5")
# Hugging Face `model_type` -> kind, for the families kerasft knows.
_KIND_OF = {"t5": "seq2seq", "mt5": "seq2seq", "bart": "seq2seq",
            "gpt2": "causal_lm"}
_DEFAULT_T5_LENGTH = 512
_NO_LIMIT = 1_000_000  # transformers writes 1e30 for "no maximum".


def load_task(source, kind, sequence_length=None, tokenizer=None):
    """A KerasHub generative task, with its preprocessor, from `source`.

    Args:
        source: a KerasHub preset name or `kaggle://` handle, an
            `hf://org/name` handle, a local folder (Hugging Face layout, or a
            KerasHub preset saved with `task.save_to_preset`), a KerasHub
            `Seq2SeqLM`/`CausalLM` task or a KerasHub backbone.
        kind: `"seq2seq"` (T5, BART, ...) or `"causal_lm"` (GPT-2, ...).
        sequence_length: optional int, the preprocessor's sequence length
            (for seq2seq both the source and the target length), or for
            seq2seq a `(source_length, target_length)` pair. It may not
            exceed the model's maximum (GPT-2's `n_positions`, BART's
            `max_position_embeddings`, T5's tokenizer `model_max_length`).
            Defaults to the preset's length, capped at that maximum (512
            for T5 folders).
        tokenizer: optional KerasHub tokenizer or preprocessor, needed only
            when `source` is a backbone or a task without a preprocessor.

    Returns:
        A `keras_hub.models.Seq2SeqLM` or `keras_hub.models.CausalLM` whose
        `preprocessor` is set.

    Raises:
        ValueError: unknown preset, missing folder, pickle-only weights, a
            model of the other kind, or a `sequence_length` above the
            model's maximum; all raised before any training.

    Example:

    ```python
    task = kerasft.backbones.load_task("path/to/flan-t5-small", "seq2seq",
                                       sequence_length=(256, 64))
    task = kerasft.backbones.load_task("hf://openai-community/gpt2",
                                       "causal_lm", sequence_length=512)
    ```
    """
    if kind not in KINDS:
        raise ValueError(f"`kind` must be one of {KINDS}. Received: kind={kind!r}")
    lengths = _lengths(sequence_length, kind)
    keras_hub = _keras_hub()
    if isinstance(source, keras_hub.models.Task):
        return _finish(source, kind, lengths, None, tokenizer, source)
    if isinstance(source, keras_hub.models.Backbone):
        task_cls = _task_class(type(source), kind, keras_hub)
        task = task_cls(backbone=source, preprocessor=None)
        return _finish(task, kind, lengths, None, tokenizer, source)
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str) or not source:
        raise TypeError(
            "`source` must be a preset name, an 'hf://' handle, a folder path, "
            f"or a KerasHub task or backbone. Received: source={source!r}"
        )
    if os.path.isdir(source):
        task, max_length = _from_folder(source, kind, lengths, keras_hub)
    elif source.startswith("hf://"):
        task, max_length = _from_hf_handle(source, kind, lengths, keras_hub)
    elif "://" in source:
        task, max_length = _download.from_preset(_base_class(kind, keras_hub),
                                                 source), None
    elif os.path.exists(source) or "/" in source or os.sep in source:
        raise ValueError(
            f"`source` {source!r} is not a folder. Pass a folder holding a "
            "Hugging Face checkpoint (config.json + model.safetensors) or a "
            "KerasHub preset (task.save_to_preset), a preset name or an "
            "'hf://' handle."
        )
    else:
        task, max_length = _from_preset_name(source, kind, keras_hub), None
    return _finish(task, kind, lengths, max_length, tokenizer, source)


# === Sources ===


def _from_folder(folder, kind, lengths, keras_hub):
    files = sorted(os.listdir(folder))
    if "config.json" not in files:
        raise ValueError(
            f"{folder!r} has no config.json: it is neither a Hugging Face "
            "checkpoint (config.json, model.safetensors, tokenizer files) nor "
            f"a KerasHub preset folder (task.save_to_preset). Found: {files}"
        )
    safetensors = any(f in files for f in _SAFETENSORS)
    pickles = [f for f in files if _PICKLES.match(f)]
    if pickles and not safetensors:
        raise ValueError(
            f"{folder!r} holds only pickle weights {pickles}; kerasft reads "
            "safetensors only (unpickling a checkpoint can run arbitrary "
            "code) and has read nothing from it. Convert it to safetensors "
            "once, in an environment you trust: `transformers.AutoModel"
            "ForSeq2SeqLM` (or `AutoModelForCausalLM`)`.from_pretrained(folder)"
            ".save_pretrained(folder, safe_serialization=True)` writes "
            "model.safetensors."
        )
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    if "model_type" not in config:  # KerasHub preset folder.
        _check_preset_kind(folder, config, kind, keras_hub)
        max_length = config.get("config", {}).get("max_sequence_length")
        _check_lengths(lengths, max_length)
        return _base_class(kind, keras_hub).from_preset(folder), max_length
    if not safetensors:
        raise ValueError(
            f"{folder!r} has a Hugging Face config.json but no "
            f"model.safetensors (or sharded safetensors). Found: {files}"
        )
    model_type = config["model_type"]
    _check_kind(folder, model_type, kind)
    max_length = _hf_max_length(config, _local_json(folder, "tokenizer_config.json"))
    _check_lengths(lengths, max_length)
    if model_type in _T5_TYPES:
        files = t5_checkpoint.local_t5_files(folder)
        return _t5_task(files, lengths, max_length), max_length
    _check_converter_keys(folder, config)
    task = _base_class(kind, keras_hub).from_preset(folder)
    return _follow_folder(task, folder), max_length


def _from_hf_handle(handle, kind, lengths, keras_hub):
    config = _keras_compat.preset_load_json(handle, "config.json", _FEATURE)
    if "model_type" not in config:  # A KerasHub preset hosted on the Hub.
        max_length = config.get("config", {}).get("max_sequence_length")
        _check_lengths(lengths, max_length)
        return _base_class(kind, keras_hub).from_preset(handle), max_length
    model_type = config["model_type"]
    _check_kind(handle, model_type, kind)
    tokenizer_config = None
    if _keras_compat.preset_file_exists(handle, "tokenizer_config.json", _FEATURE):
        tokenizer_config = _keras_compat.preset_load_json(
            handle, "tokenizer_config.json", _FEATURE
        )
    max_length = _hf_max_length(config, tokenizer_config)
    _check_lengths(lengths, max_length)
    if _keras_compat.preset_file_exists(handle, _SAFETENSORS[1], _FEATURE):
        index = _keras_compat.preset_load_json(handle, _SAFETENSORS[1], _FEATURE)
        shards = sorted(set(index["weight_map"].values()))
    elif _keras_compat.preset_file_exists(handle, _SAFETENSORS[0], _FEATURE):
        shards = [_SAFETENSORS[0]]
    else:
        raise ValueError(
            f"{handle!r} has no model.safetensors; kerasft reads safetensors "
            "only (pickle checkpoints can run arbitrary code when loaded). "
            "Use a revision of the repository with safetensors weights."
        )
    if model_type not in _T5_TYPES:
        _check_converter_keys(handle, config)
        task = _base_class(kind, keras_hub).from_preset(handle)
        return _follow_folder(task, handle), max_length

    def get(name):
        return _keras_compat.preset_get_file(handle, name, _FEATURE)

    files = {
        "config": get("config.json"),
        "weights": [get(s) for s in shards],
        "spiece": get("spiece.model"),
    }
    for key, name in (
        ("tokenizer_config", "tokenizer_config.json"),
        ("added_tokens", "added_tokens.json"),
        ("special_tokens_map", "special_tokens_map.json"),
    ):
        if _keras_compat.preset_file_exists(handle, name, _FEATURE):
            files[key] = get(name)
    return _t5_task(files, lengths, max_length), max_length


def _follow_folder(task, source):
    # The folder's Hugging Face tokenizer exactly (GPT-2, BART): ids, special
    # tokens and offset trimming.
    from kerasft.backbones import _byte_level_bpe

    if task.preprocessor is None:
        return task
    preprocessor = _byte_level_bpe.exact_preprocessor(task.preprocessor, source, _FEATURE)
    return type(task)(backbone=task.backbone, preprocessor=preprocessor)


def _from_preset_name(name, kind, keras_hub):
    base = _base_class(kind, keras_hub)
    if name not in base.presets:
        known = sorted(base.presets)
        raise ValueError(
            f"`source` {name!r} is not a folder, nor a KerasHub {kind} preset. "
            f"Known presets include {known[:8]} ({len(known)} in all, "
            f"`keras_hub.models.{base.__name__}.presets`); or pass a local "
            "folder or an 'hf://org/name' handle."
        )
    return _download.from_preset(base, name)


def _t5_task(files, lengths, max_length):
    default = min(_DEFAULT_T5_LENGTH, max_length or _DEFAULT_T5_LENGTH)
    source_length, target_length = lengths or (default, default)
    return t5_checkpoint.load_t5_task(
        files,
        encoder_sequence_length=source_length,
        decoder_sequence_length=target_length,
    )


# === Checks ===


def _finish(task, kind, lengths, max_length, tokenizer, source):
    keras_hub = _keras_hub()
    is_seq2seq = isinstance(task, keras_hub.models.Seq2SeqLM)
    if not isinstance(task, keras_hub.models.CausalLM):
        raise ValueError(
            f"`source` {_describe(source)} is a {type(task).__name__}, not a "
            "generative model. Pass a KerasHub Seq2SeqLM or CausalLM task."
        )
    if (kind == "seq2seq") != is_seq2seq:
        other = "seq2seq" if is_seq2seq else "causal_lm"
        raise ValueError(
            f"`source` {_describe(source)} is a {type(task).__name__}, a "
            f"{other} model. Received: kind={kind!r}; use kind={other!r}."
        )
    if tokenizer is not None:
        task = type(task)(
            backbone=task.backbone,
            preprocessor=_preprocessor(tokenizer, type(task), keras_hub),
        )
    if task.preprocessor is None:
        raise ValueError(
            f"`source` {_describe(source)} has no preprocessor (tokenizer): "
            "pass `tokenizer=` (a KerasHub tokenizer or preprocessor) or a "
            "task built with its preprocessor."
        )
    max_length = max_length or getattr(task.backbone, "max_sequence_length", None)
    _check_lengths(lengths, max_length)
    preprocessor = task.preprocessor
    if is_seq2seq:
        current = (preprocessor.encoder_sequence_length,
                   preprocessor.decoder_sequence_length)
    else:
        current = (preprocessor.sequence_length,)
    new = lengths or tuple(
        min(n, max_length) if max_length and n else n for n in current
    )
    if is_seq2seq:
        preprocessor.encoder_sequence_length = new[0]
        preprocessor.decoder_sequence_length = new[1]
    else:
        preprocessor.sequence_length = new[0]
    return task


def _lengths(sequence_length, kind):
    """`sequence_length` as a tuple: (n,) causal, (source, target) seq2seq."""
    if sequence_length is None:
        return None
    values = sequence_length
    if isinstance(values, int):
        values = (values,) if kind == "causal_lm" else (values, values)
    values = tuple(values) if isinstance(values, (tuple, list)) else (values,)
    size = 1 if kind == "causal_lm" else 2
    if len(values) != size or not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values
    ):
        raise ValueError(
            "`sequence_length` must be a positive int"
            + (" or a (source_length, target_length) pair of them"
               if kind == "seq2seq" else "")
            + f". Received: sequence_length={sequence_length!r}"
        )
    return values


def _check_lengths(lengths, max_length):
    if not lengths or not max_length:
        return
    names = (("sequence_length",) if len(lengths) == 1
             else ("source_length", "target_length"))
    for name, length in zip(names, lengths):
        if length > max_length:
            raise ValueError(
                f"`{name}` must be at most the model's maximum of "
                f"{max_length} positions. Received: {name}={length}. Use a "
                "shorter length (the causal LM recipe packs long documents "
                "into windows with a stride)."
            )


def _check_kind(source, model_type, kind):
    expected = _KIND_OF.get(model_type)
    if expected is not None and expected != kind:
        raise ValueError(
            f"`source` {source!r} is a {model_type} checkpoint, a {expected} "
            f"model. Received: kind={kind!r}; use kind={expected!r}."
        )


def _check_converter_keys(source, config):
    """Refuses configs KerasHub's converters would read wrongly or crash on.

    KerasHub's GPT-2 converter assumes `n_inner = 4 * n_embd`, the tanh
    GELU and plain scaled attention; its BART converter reads
    `num_hidden_layers`, which the Hub's configs hold but transformers 5 no
    longer writes.
    """
    if config["model_type"] == "gpt2":
        n_inner = config.get("n_inner")
        different = {
            key: config.get(key)
            for key, ok in (
                ("n_inner", n_inner in (None, 4 * config.get("n_embd", 0))),
                ("activation_function", config.get("activation_function", "gelu_new")
                 in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")),
                ("scale_attn_weights", config.get("scale_attn_weights", True)),
                ("scale_attn_by_inverse_layer_idx",
                 not config.get("scale_attn_by_inverse_layer_idx", False)),
                ("reorder_and_upcast_attn",
                 not config.get("reorder_and_upcast_attn", False)),
            )
            if not ok
        }
        if different:
            raise ValueError(
                f"The GPT-2 config of {source!r} has {different}, which "
                "KerasHub's GPT2Backbone cannot express (it has n_inner = "
                "4 * n_embd, the tanh GELU and plain scaled attention)."
            )
    if config["model_type"] == "bart" and "num_hidden_layers" not in config:
        raise ValueError(
            f"The config.json of {source!r} has no `num_hidden_layers`, which "
            "KerasHub's BART converter needs (transformers 5 stopped writing "
            "it). Add `\"num_hidden_layers\": "
            f"{config.get('encoder_layers')}` (the value of encoder_layers)."
        )


def _check_preset_kind(source, config, kind, keras_hub):
    """Refuses a KerasHub preset whose backbone has only tasks of the other
    kind (KerasHub's own error does not say which kind it is)."""
    name = str(config.get("registered_name", "")).split(">")[-1]
    backbone_cls = getattr(keras_hub.models, name, None)
    if not isinstance(backbone_cls, type):
        return
    other = "causal_lm" if kind == "seq2seq" else "seq2seq"
    if _find_task_class(backbone_cls, kind, keras_hub) is None and (
        _find_task_class(backbone_cls, other, keras_hub) is not None
    ):
        raise ValueError(
            f"`source` {source!r} is a KerasHub {name} preset, a {other} "
            f"model. Received: kind={kind!r}; use kind={other!r}."
        )


def _hf_max_length(config, tokenizer_config):
    """The longest input a Hugging Face checkpoint accepts, or None."""
    for key in ("n_positions", "max_position_embeddings"):
        if config.get(key):
            return int(config[key])
    length = (tokenizer_config or {}).get("model_max_length")
    return int(length) if length and length < _NO_LIMIT else None


# === Helpers ===


def _keras_hub():
    try:
        import keras_hub
    except ImportError as e:  # pragma: no cover - keras-hub is required
        raise ImportError("load_task needs KerasHub: pip install keras-hub") from e
    return keras_hub


def _base_class(kind, keras_hub):
    if kind == "seq2seq":
        return keras_hub.models.Seq2SeqLM
    return keras_hub.models.CausalLM


def _find_task_class(backbone_cls, kind, keras_hub):
    """The KerasHub task class of `kind` built on `backbone_cls`, or None."""
    base = _base_class(kind, keras_hub)
    seq2seq = keras_hub.models.Seq2SeqLM
    for value in vars(keras_hub.models).values():
        if (
            isinstance(value, type)
            and issubclass(value, base)
            and getattr(value, "backbone_cls", None) is backbone_cls
            and (kind == "seq2seq" or not issubclass(value, seq2seq))
        ):
            return value
    return None


def _task_class(backbone_cls, kind, keras_hub):
    task_cls = _find_task_class(backbone_cls, kind, keras_hub)
    if task_cls is not None:
        return task_cls
    raise ValueError(
        f"KerasHub has no {kind} task for a {backbone_cls.__name__}. Pass a "
        "backbone of a generative model (GPT2Backbone, T5Backbone, "
        "BartBackbone, ...) with the matching `kind`."
    )


def _preprocessor(tokenizer, task_cls, keras_hub):
    if isinstance(tokenizer, keras_hub.models.Preprocessor):
        return tokenizer
    if not isinstance(tokenizer, keras_hub.tokenizers.Tokenizer):
        raise TypeError(
            "`tokenizer` must be a KerasHub tokenizer or preprocessor. "
            f"Received: tokenizer={tokenizer!r}"
        )
    return task_cls.preprocessor_cls(tokenizer=tokenizer)


def _local_json(folder, name):
    path = os.path.join(folder, name)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _describe(source):
    return repr(source) if isinstance(source, str) else type(source).__name__
