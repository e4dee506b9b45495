"""Hugging Face T5 / Flan-T5 checkpoints as KerasHub `T5Seq2SeqLM` tasks.

KerasHub 0.32 has T5 presets but no Hugging Face converter. This module
reads a Hugging Face folder (`config.json`, `model.safetensors` or sharded
safetensors, `spiece.model`) and builds `keras_hub.models.T5Backbone`,
`T5Tokenizer`, `T5Seq2SeqLMPreprocessor` and `T5Seq2SeqLM` from it. Every
Hugging Face tensor is mapped to exactly one KerasHub variable; an unmapped
tensor, a missing tensor or a wrong shape is an error naming it.

What KerasHub's T5 cannot express, and how it is handled:
- The LM head. Hugging Face scales the decoder output by `d_model ** -0.5`
  when `scale_decoder_outputs` (written by transformers 5) or, in older
  configs, `tie_word_embeddings` is true (original T5), and its `lm_head` is
  the embedding unless the file holds a different `lm_head.weight` (T5 v1.1,
  Flan-T5, mT5). KerasHub scales exactly when the head is tied. A tied and
  scaled head maps to `tie_embedding_weights=True`; any other combination
  maps to an untied head whose weights are `lm_head` (or a copy of the
  embedding), times `d_model ** -0.5` when Hugging Face scales. The logits
  are identical; the one difference is that a tied-but-unscaled head is no
  longer shared with the embedding during fine-tuning.
- The activation. Hugging Face's "gated-gelu" uses the tanh approximation
  of GELU (`gelu_new`), which Keras has no string for: it is the registered
  activation `gelu_approximate` here, so saved models reload.
- The relative attention bucket count and maximum distance are fixed in
  KerasHub (32 and 128, Hugging Face's defaults); other values, and
  different encoder/decoder depths, are refused.
"""

import json
import os

import keras
import numpy as np

_ACTIVATIONS = {
    "relu": "relu",
    "gelu": "gelu",
    "silu": "silu",
    "swish": "silu",
}
_TANH_GELU = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")
_IGNORED = (
    # transformers drops it on load too (`_keys_to_ignore_on_load_unexpected`).
    "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight",
)
_TIED_COPIES = (
    "encoder.embed_tokens.weight",
    "decoder.embed_tokens.weight",
)


@keras.saving.register_keras_serializable(package="kerasft")
def gelu_approximate(x):
    """GELU with the tanh approximation (Hugging Face's `gelu_new`)."""
    return keras.activations.gelu(x, approximate=True)


def t5_backbone_config(hf_config):
    """`keras_hub.models.T5Backbone` arguments for a Hugging Face T5 config.

    Args:
        hf_config: dict, the checkpoint's `config.json`.

    Returns:
        A dict of `T5Backbone` keyword arguments, without
        `tie_embedding_weights` (which depends on the weights, see
        `load_t5_backbone`).

    Raises:
        ValueError: the config uses something KerasHub's T5 cannot express.
    """
    model_type = hf_config.get("model_type")
    if model_type not in ("t5", "mt5"):
        raise ValueError(
            "`hf_config` must be a T5 / Flan-T5 / mT5 config (model_type 't5' "
            f"or 'mt5'). Received: model_type={model_type!r}"
        )
    layers = hf_config["num_layers"]
    decoder_layers = hf_config.get("num_decoder_layers") or layers
    buckets = hf_config.get("relative_attention_num_buckets", 32)
    distance = hf_config.get("relative_attention_max_distance", 128)
    if decoder_layers != layers or (buckets, distance) != (32, 128):
        raise ValueError(
            "KerasHub's T5Backbone needs as many decoder as encoder layers and "
            "relative_attention_num_buckets=32, relative_attention_max_distance"
            f"=128. Received: num_layers={layers}, num_decoder_layers="
            f"{decoder_layers}, relative_attention_num_buckets={buckets}, "
            f"relative_attention_max_distance={distance}"
        )
    return {
        "vocabulary_size": hf_config["vocab_size"],
        "num_layers": layers,
        "num_heads": hf_config["num_heads"],
        "hidden_dim": hf_config["d_model"],
        "intermediate_dim": hf_config["d_ff"],
        "key_value_dim": hf_config["d_kv"],
        "dropout": hf_config.get("dropout_rate", 0.1),
        "activation": _activation(hf_config),
        "use_gated_activation": _feed_forward(hf_config)[0],
        "layer_norm_epsilon": hf_config.get("layer_norm_epsilon", 1e-6),
    }


def hf_weight_shapes(hf_config):
    """`{tensor name: shape}` of the weights a Hugging Face T5 file must hold.

    `lm_head.weight` (untied head) and the tied copies
    `encoder/decoder.embed_tokens.weight` are optional and not listed.
    """
    gated = _feed_forward(hf_config)[0]
    d, ff = hf_config["d_model"], hf_config["d_ff"]
    heads = hf_config["num_heads"]
    inner = heads * hf_config["d_kv"]
    shapes = {"shared.weight": (hf_config["vocab_size"], d)}
    for stack in ("encoder", "decoder"):
        for i in range(hf_config["num_layers"]):
            prefix = f"{stack}.block.{i}.layer."
            blocks = ["SelfAttention"]
            if stack == "decoder":
                blocks.append("EncDecAttention")
            for index, name in enumerate(blocks):
                base = f"{prefix}{index}.{name}."
                for hf in ("q", "k", "v"):
                    shapes[base + hf + ".weight"] = (inner, d)
                shapes[base + "o.weight"] = (d, inner)
                if i == 0 and name == "SelfAttention":
                    shapes[base + "relative_attention_bias.weight"] = (32, heads)
                shapes[f"{prefix}{index}.layer_norm.weight"] = (d,)
            ff_prefix = f"{prefix}{len(blocks)}."
            for wi in ("wi_0", "wi_1") if gated else ("wi",):
                shapes[f"{ff_prefix}DenseReluDense.{wi}.weight"] = (ff, d)
            shapes[f"{ff_prefix}DenseReluDense.wo.weight"] = (d, ff)
            shapes[f"{ff_prefix}layer_norm.weight"] = (d,)
        shapes[f"{stack}.final_layer_norm.weight"] = (d,)
    return shapes


def check_t5_weights(hf_config, tensors):
    """Raises `ValueError` naming every missing, unmapped or misshapen tensor.

    Runs before any KerasHub model is built.
    """
    shapes = hf_weight_shapes(hf_config)
    shapes["lm_head.weight"] = shapes["shared.weight"]
    for key in _TIED_COPIES:
        shapes[key] = shapes["shared.weight"]
    optional = ("lm_head.weight",) + _TIED_COPIES
    missing_keys = sorted(k for k in shapes if k not in tensors and k not in optional)
    unmapped = sorted(k for k in tensors if k not in shapes and k not in _IGNORED)
    wrong = sorted(
        f"{k}: {tuple(np.shape(v))} instead of {shapes[k]}"
        for k, v in tensors.items()
        if k in shapes and tuple(np.shape(v)) != shapes[k]
    )
    problems = []
    if missing_keys:
        problems.append(
            f"missing tensors {missing_keys} (the weights do not match the "
            "config: gated vs. plain feed-forward, layer count)"
        )
    if unmapped:
        problems.append(
            f"tensors {unmapped} have no place in KerasHub's T5Backbone (not "
            "a plain T5 / Flan-T5 / mT5 model)"
        )
    if wrong:
        problems.append(f"shapes that do not match config.json: {wrong}")
    if problems:
        raise ValueError(
            "The T5 checkpoint cannot be converted: " + "; ".join(problems)
        )


def load_t5_backbone(hf_config, tensors, dtype=None):
    """A `T5Backbone` holding the Hugging Face weights `tensors`.

    Args:
        hf_config: dict, the checkpoint's `config.json`.
        tensors: dict of Hugging Face tensor name -> numpy array (not
            modified).
        dtype: optional dtype policy for the backbone.

    Returns:
        The `keras_hub.models.T5Backbone`; every variable is set from
        exactly one Hugging Face tensor.

    Raises:
        ValueError: a tensor is missing, unmapped or has the wrong shape, or
            a tied copy of the embedding differs from it.
    """
    import keras_hub

    config = t5_backbone_config(hf_config)
    check_t5_weights(hf_config, tensors)
    shared = tensors["shared.weight"]
    for key in _TIED_COPIES:
        if key in tensors and not np.array_equal(tensors[key], shared):
            raise ValueError(
                f"Hugging Face tensor {key!r} differs from 'shared.weight'; "
                "T5 ties them. The checkpoint is inconsistent."
            )
    head = tensors.get("lm_head.weight")
    tied_head = head is None or np.array_equal(head, shared)
    tied = tied_head and _scales_decoder_output(hf_config)
    backbone = keras_hub.models.T5Backbone(
        **config, tie_embedding_weights=tied, dtype=dtype
    )
    assigned = set()
    for key, variable, transpose in variable_map(backbone):
        value = np.asarray(tensors[key])
        variable.assign((value.T if transpose else value).astype(variable.dtype))
        assigned.add(id(variable))
    if not tied:
        scale = _hidden_scale(hf_config) if _scales_decoder_output(hf_config) else 1.0
        head_variable = backbone.token_embedding.reverse_embeddings
        weights = shared if head is None else head
        head_variable.assign((weights.T * scale).astype(head_variable.dtype))
        assigned.add(id(head_variable))
    unset = [v.path for v in backbone.weights if id(v) not in assigned]
    if unset:
        raise ValueError(f"KerasHub variables {unset} got no Hugging Face tensor.")
    return backbone


def variable_map(backbone):
    """`(Hugging Face name, KerasHub variable, transpose)` for every weight
    of a `T5Backbone` but the untied LM head. Hugging Face `Linear` weights
    are `(out, in)`, Keras `Dense` kernels `(in, out)`: those transpose."""
    pairs = [("shared.weight", backbone.token_embedding.embeddings, False)]
    stacks = (
        ("encoder", backbone.encoder_transformer_layers, backbone.encoder_layer_norm),
        ("decoder", backbone.decoder_transformer_layers, backbone.decoder_layer_norm),
    )
    for stack, layers, final_norm in stacks:
        for i, layer in enumerate(layers):
            pairs += _layer_map(f"{stack}.block.{i}.layer.", layer)
        pairs.append((f"{stack}.final_layer_norm.weight", final_norm.weight, False))
    return pairs


def _layer_map(prefix, layer):
    blocks = [("SelfAttention", layer.self_attention, layer.self_attention_layer_norm)]
    if layer.is_decoder:
        blocks.append(
            ("EncDecAttention", layer.cross_attention, layer.cross_attention_layer_norm)
        )
    pairs = []
    for index, (name, attention, norm) in enumerate(blocks):
        base = f"{prefix}{index}.{name}."
        for hf, projector in (
            ("q", attention.query_projector),
            ("k", attention.key_projector),
            ("v", attention.value_projector),
            ("o", attention.output_projector),
        ):
            pairs.append((base + hf + ".weight", projector.kernel, True))
        if attention.use_relative_attention_bias:
            pairs.append(
                (base + "relative_attention_bias.weight",
                 attention.relative_attention_bias, False)
            )
        pairs.append((f"{prefix}{index}.layer_norm.weight", norm.weight, False))
    ff = f"{prefix}{len(blocks)}."
    dense = ff + "DenseReluDense."
    if layer.use_gated_activation:
        # transformers: act(wi_0(x)) * wi_1(x); KerasHub: input_projector
        # (which holds the activation) * gate_projector.
        pairs.append((dense + "wi_0.weight", layer.input_projector.kernel, True))
        pairs.append((dense + "wi_1.weight", layer.gate_projector.kernel, True))
    else:
        pairs.append((dense + "wi.weight", layer.input_projector.kernel, True))
    pairs.append((dense + "wo.weight", layer.output_projector.kernel, True))
    pairs.append((ff + "layer_norm.weight", layer.layer_norm.weight, False))
    return pairs


def load_t5_task(files, encoder_sequence_length=512,
                 decoder_sequence_length=512, dtype=None):
    """A `keras_hub.models.T5Seq2SeqLM`, with its preprocessor, from files.

    Args:
        files: dict with the local paths `"config"` (`config.json`),
            `"weights"` (a list of `.safetensors` paths) and `"spiece"`
            (`spiece.model`), and optionally `"tokenizer_config"`,
            `"added_tokens"` and `"special_tokens_map"` (see
            `t5_tokenizer`).
        encoder_sequence_length: int, the preprocessor's source length.
        decoder_sequence_length: int, the preprocessor's target length.
        dtype: optional dtype policy for the backbone.

    Returns:
        The `T5Seq2SeqLM`, whose logits match Hugging Face's
        `T5ForConditionalGeneration` on the same checkpoint.

    Example:

    ```python
    task = load_t5_task({
        "config": "flan/config.json",
        "weights": ["flan/model.safetensors"],
        "spiece": "flan/spiece.model",
    })
    task.generate("translate English to German: Hello")
    ```
    """
    import keras_hub

    with open(files["config"], encoding="utf-8") as f:
        hf_config = json.load(f)
    t5_backbone_config(hf_config)  # Refuse unsupported configs before reading.
    tensors = {}
    for path in files["weights"]:
        tensors.update(read_safetensors(path))
    backbone = load_t5_backbone(hf_config, tensors, dtype=dtype)
    tokenizer = t5_tokenizer(files, hf_config["vocab_size"])
    preprocessor = keras_hub.models.T5Seq2SeqLMPreprocessor(
        tokenizer=tokenizer,
        encoder_sequence_length=encoder_sequence_length,
        decoder_sequence_length=decoder_sequence_length,
    )
    return keras_hub.models.T5Seq2SeqLM(
        backbone=backbone, preprocessor=preprocessor
    )


def t5_tokenizer(files, model_vocabulary_size):
    """T5's tokenizer, with Hugging Face's `<extra_id_N>` sentinels.

    `tokenizer_config.json`'s `extra_ids` (Hugging Face's default: 100)
    sentinels follow the SentencePiece pieces, `<extra_id_0>` last.
    `added_tokens.json` and `special_tokens_map.json`, when present, must
    agree: sentinels at those ids, `</s>`/`<pad>`/`<unk>` as the special
    tokens. Other added tokens are refused, not ignored.

    Args:
        files: the `load_t5_task` files dict.
        model_vocabulary_size: `config.json`'s `vocab_size` (rows of the
            model's embedding); the tokenizer's ids must fit in it.

    Returns:
        A `T5SentinelTokenizer` (a KerasHub `T5Tokenizer`).

    Example:
    ```python
    tokenizer = t5_tokenizer(local_t5_files("flan-t5-small"), 32128)
    tokenizer("The <extra_id_0> walks in <extra_id_1> park")
    ```
    """
    from kerasft.backbones._t5_tokenizer import sentinel_tokenizer_class

    config = _optional_json(files.get("tokenizer_config")) or {}
    extra_ids = config.get("extra_ids", 100)
    tokenizer = sentinel_tokenizer_class()(
        proto=files["spiece"], extra_ids=extra_ids
    )
    if tokenizer.vocabulary_size() > model_vocabulary_size:
        raise ValueError(
            f"The tokenizer has {tokenizer.piece_count()} SentencePiece "
            f"pieces + extra_ids={extra_ids} sentinels = "
            f"{tokenizer.vocabulary_size()} ids, more than the model's "
            f"vocab_size={model_vocabulary_size} (config.json). Set "
            "`extra_ids` in tokenizer_config.json to the number of sentinels "
            "the checkpoint was trained with."
        )
    _check_added_tokens(tokenizer, files.get("added_tokens"))
    _check_special_tokens(tokenizer, files.get("special_tokens_map"))
    return tokenizer


def _optional_json(path):
    if path is None or not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _check_added_tokens(tokenizer, path):
    added = _optional_json(path)
    if not added:
        return
    wrong = {
        token: index
        for token, index in added.items()
        if tokenizer.token_to_id(token) != index
        or not token.startswith("<extra_id_")
    }
    if wrong:
        raise ValueError(
            f"{path!r} adds tokens kerasft's T5 tokenizer does not have at "
            f"those ids: {dict(sorted(wrong.items())[:5])}. Only the "
            f"<extra_id_N> sentinels ({tokenizer.extra_ids}, "
            "`tokenizer_config.json`'s `extra_ids`) are supported."
        )


def _check_special_tokens(tokenizer, path):
    special = _optional_json(path)
    if not special:
        return

    def content(token):
        return token["content"] if isinstance(token, dict) else token

    expected = {"eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
    for key, token in expected.items():
        if key in special and content(special[key]) != token:
            raise ValueError(
                f"{path!r} sets {key}={content(special[key])!r}; kerasft's T5 "
                f"tokenizer uses {token!r} (T5's SentencePiece special)."
            )
    extra = [content(t) for t in special.get("additional_special_tokens", [])]
    unknown = [
        t for t in extra
        if not (t.startswith("<extra_id_") and tokenizer.token_to_id(t) >= tokenizer.piece_count())
    ]
    if unknown:
        raise ValueError(
            f"{path!r} lists additional special tokens that are not "
            f"sentinels of this tokenizer: {unknown[:5]}. Only <extra_id_N> "
            f"with N < extra_ids={tokenizer.extra_ids} are supported."
        )


def _hidden_scale(hf_config):
    """The `d_model ** -0.5` factor Hugging Face applies before the head."""
    return hf_config["d_model"] ** -0.5


# === safetensors ===

_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1", "U8": "u1",
    "BOOL": "?",
}


def read_safetensors(path):
    """All tensors of a `.safetensors` file as numpy arrays (BF16 -> float32).

    A plain reader of the format (8-byte header size, JSON header, raw
    little-endian data); it never unpickles anything.
    """
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(size))
    header.pop("__metadata__", None)
    data = np.memmap(path, dtype="u1", mode="r", offset=8 + size) if header else b""
    tensors = {}
    for name, info in header.items():
        if info["dtype"] not in _DTYPES:
            raise ValueError(
                f"Tensor {name!r} of {path!r} has dtype {info['dtype']}, "
                f"which kerasft cannot read. Supported: {sorted(_DTYPES)}"
            )
        start, end = info["data_offsets"]
        array = np.array(data[start:end]).view(_DTYPES[info["dtype"]])
        if info["dtype"] == "BF16":
            array = (array.astype("<u4") << 16).view("<f4")
        tensors[name] = array.reshape(info["shape"])
    del data
    return tensors


# === Helpers ===


def _feed_forward(hf_config):
    """(gated, activation name) as transformers reads `feed_forward_proj`."""
    proj = hf_config.get("feed_forward_proj", "relu")
    parts = proj.split("-")
    if len(parts) > 2 or (len(parts) == 2 and parts[0] != "gated"):
        raise ValueError(
            "`feed_forward_proj` must be 'ACT' or 'gated-ACT'. "
            f"Received: feed_forward_proj={proj!r}"
        )
    act = "gelu_new" if proj == "gated-gelu" else parts[-1]
    return len(parts) == 2, act


def _activation(hf_config):
    act = _feed_forward(hf_config)[1]
    if act in _TANH_GELU:
        return gelu_approximate
    if act not in _ACTIVATIONS:
        raise ValueError(
            "kerasft's T5 converter supports the feed-forward activations "
            f"{sorted(_ACTIVATIONS) + list(_TANH_GELU)}. Received: "
            f"feed_forward_proj={hf_config.get('feed_forward_proj')!r}"
        )
    return _ACTIVATIONS[act]


def _scales_decoder_output(hf_config):
    scale = hf_config.get("scale_decoder_outputs")
    if scale is None:
        scale = hf_config.get("tie_word_embeddings", True)
    return bool(scale)


def local_t5_files(folder):
    """The `load_t5_task` files of a local Hugging Face folder."""
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index, encoding="utf-8") as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        weights = [os.path.join(folder, s) for s in shards]
    else:
        weights = [os.path.join(folder, "model.safetensors")]
    spiece = os.path.join(folder, "spiece.model")
    if not os.path.exists(spiece):
        raise ValueError(
            f"{folder!r} has no spiece.model, the SentencePiece model T5's "
            "tokenizer needs. Copy it from the original checkpoint (the "
            f"fast tokenizer.json alone is not enough). Found: "
            f"{sorted(os.listdir(folder))}"
        )
    files = {
        "config": os.path.join(folder, "config.json"),
        "weights": weights,
        "spiece": spiece,
    }
    for key, name in (
        ("tokenizer_config", "tokenizer_config.json"),
        ("added_tokens", "added_tokens.json"),
        ("special_tokens_map", "special_tokens_map.json"),
    ):
        if os.path.exists(os.path.join(folder, name)):
            files[key] = os.path.join(folder, name)
    return files
