"""LoRA adapters on any KerasHub model: enable, save alone, load, merge.

`enable_lora` turns on Keras's low-rank adapters (`Dense`/`EinsumDense`
`enable_lora`) through KerasHub's `Backbone.enable_lora`: the targeted
kernels freeze and gain trainable factors `lora_kernel_a (d_in x r)` and
`lora_kernel_b (r x d_out)`, so the layer computes with
`kernel + alpha / r * a @ b`. Only those factors train: the biases of the
adapted layers, which Keras leaves trainable, freeze too (unless
`train_bias=True`), so every recipe trains the same parameters. The
adapters alone are saved to a small `.weights.h5` file (`save_lora`) and
loaded back onto a fresh copy of the base model (`load_lora`);
`merge_lora` folds them into the kernels.
"""

import re

import h5py
import numpy as np

from kerasft import _keras_compat

__all__ = ["DEFAULT_TARGET", "enable_lora", "load_lora", "merge_lora", "save_lora"]

# Attention query and value projections: KerasHub's defaults
# (`Backbone.default_lora_layer_names`) plus T5's own layer names.
DEFAULT_TARGET = (
    "query_dense",
    "value_dense",
    "query",
    "value",
    "query_projector",
    "value_projector",
)
_FORMAT = "kerasft-lora-1"


def _hub_model(backbone):
    """The Keras model holding the adapters: a kerasft `Backbone`'s
    `.model`, a KerasHub `Task`'s `.backbone`, or the model itself."""
    model = getattr(backbone, "model", None)
    if model is not None and hasattr(backbone, "groups"):
        return model
    inner = getattr(backbone, "backbone", None)
    if inner is not None and hasattr(inner, "layers"):
        return inner
    if hasattr(backbone, "layers") and hasattr(backbone, "weights"):
        return backbone
    raise TypeError(
        "`backbone` must be a kerasft Backbone, a KerasHub Backbone or a "
        f"KerasHub Task. Received: backbone={type(backbone).__name__}"
    )


def _lora_layers(model):
    """LoRA-enabled layers of `model`, each once, in tracking order."""
    return [
        layer
        for layer in _keras_compat.all_layers(model)
        if getattr(layer, "lora_enabled", False)
    ]


def _count(variables):
    return int(sum(np.prod(v.shape, dtype=np.int64) for v in variables))


def _target_names(model, target):
    """Exact layer names matching the `target` patterns (`re.fullmatch`)."""
    if target is None:
        patterns = [re.escape(name) for name in DEFAULT_TARGET]
    elif isinstance(target, str):
        patterns = [target]
    elif isinstance(target, (list, tuple)) and all(
        isinstance(t, str) for t in target
    ):
        patterns = list(target)
    else:
        raise TypeError(
            "`target` must be None, a layer-name regex or a list of them. "
            f"Received: target={target!r}"
        )
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as e:
            raise ValueError(
                f"`target` pattern {pattern!r} is not a valid regex: {e}"
            ) from None
    candidates = sorted(
        {
            layer.name
            for layer in _keras_compat.all_layers(model)
            if layer is not model and layer.weights and hasattr(layer, "enable_lora")
        }
    )
    names = [n for n in candidates if any(c.fullmatch(n) for c in compiled)]
    if not names:
        raise ValueError(
            f"`target` matches no layer of {model.name!r} that supports "
            f"LoRA. Received: target={target!r}. Layers with `enable_lora`: "
            f"{candidates}"
        )
    return names


def enable_lora(backbone, rank, target=None, verbose=True, train_bias=False):
    """Adds trainable LoRA adapters; everything else in the backbone freezes.

    Through KerasHub's `Backbone.enable_lora`: every layer of the backbone
    freezes; each targeted `Dense`/`EinsumDense` gains trainable factors
    of rank `rank` next to its frozen kernel. Keras leaves the bias of an
    adapted layer trainable; here it freezes too unless `train_bias`, so
    only the adapters train. Layers of a task outside its backbone (a
    classifier's head) keep their trainability. Call it before `compile`.

    Args:
        backbone: a kerasft `Backbone`, a KerasHub `Backbone` or a KerasHub
            `Task` (its `.backbone` gets the adapters).
        rank: LoRA rank, a positive integer.
        target: layer-name regexes (full match) selecting the layers to
            adapt, e.g. `["query", "value", "attention_output"]`. Defaults
            to `None`: the attention query and value projections
            (`DEFAULT_TARGET`), as KerasHub does.
        verbose: print the parameter counts. Defaults to `True`.
        train_bias: also train the biases of the adapted layers (Keras's
            own LoRA behaviour). Defaults to `False`: adapters only.

    Returns:
        `(total_params, trainable_params)`: scalar parameters of the model
        passed (`backbone.model` for a kerasft `Backbone`), adapters
        included, and how many of them train.

    Example:

    ```python
    total, trainable = kerasft.backbones.enable_lora(backbone, rank=4)
    ```
    """
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(
            f"`rank` must be a positive integer. Received: rank={rank!r}"
        )
    model = _hub_model(backbone)
    counted = backbone if not hasattr(backbone, "groups") else model
    if _lora_layers(model):
        raise ValueError(
            f"LoRA is already enabled on {model.name!r}; it can be enabled "
            "once. Build a fresh model, or `merge_lora` first."
        )
    names = _target_names(model, target)
    if hasattr(model, "enable_lora") and hasattr(model, "save_lora_weights"):
        model.enable_lora(rank, target_layer_names=names)
    else:
        _enable_plain(model, rank, names)
    if not train_bias:
        for layer in _lora_layers(model):
            if getattr(layer, "bias", None) is not None:
                layer.bias.trainable = False
    total = _count(counted.weights)
    trainable = _count(counted.trainable_weights)
    if verbose:
        print(
            f"LoRA rank {rank} on {len(_lora_layers(model))} layers of "
            f"{model.name!r}: {trainable:,} of {total:,} parameters "
            f"trainable ({trainable / max(total, 1):.2%})"
        )
    return total, trainable


def _enable_plain(model, rank, names):
    """What KerasHub's `Backbone.enable_lora` does, for a plain Keras model."""
    wanted = set(names)
    layers = [l for l in _keras_compat.all_layers(model) if l is not model]
    for layer in layers:
        layer.trainable = False
    for layer in layers:
        if layer.name in wanted and layer.weights:
            layer.trainable = True
            layer.enable_lora(rank)


def save_lora(backbone, path):
    """Writes the LoRA adapters alone (no base weights) to `path`.

    The file holds each adapted layer's `lora_kernel_a`/`lora_kernel_b`
    and its bias, with the rank and the target layer names. The bias is
    always stored: it trains with `enable_lora(..., train_bias=True)`, and
    otherwise it is the base's own value, so loading it changes nothing
    (one file format for both, a few bytes per layer): a small file (a
    few MB for a base model of hundreds) that `load_lora` puts back on the base model. Layers outside
    the backbone (a classifier's head) are not in it.

    Args:
        backbone: a kerasft `Backbone`, a KerasHub `Backbone` or `Task`
            with LoRA enabled.
        path: file name ending in `.weights.h5` (e.g. `"lora.weights.h5"`).

    Example:

    ```python
    kerasft.backbones.save_lora(backbone, "lora.weights.h5")
    ```
    """
    path = _check_path(path)
    model = _hub_model(backbone)
    layers = _lora_layers(model)
    if not layers:
        raise ValueError(
            f"{model.name!r} has no LoRA adapters to save: call "
            "`kerasft.backbones.enable_lora` first."
        )
    ranks = {layer.lora_rank for layer in layers}
    if len(ranks) != 1:
        raise ValueError(f"LoRA layers of {model.name!r} have ranks {ranks}.")
    with h5py.File(path, "w") as f:
        f.attrs["format"] = _FORMAT
        f.attrs["rank"] = int(ranks.pop())
        f.attrs["target"] = sorted({layer.name for layer in layers})
        for i, layer in enumerate(layers):
            group = f.create_group(f"layers/{i}")
            group.attrs["path"] = layer.lora_kernel_a.path
            group.attrs["alpha"] = float(layer.lora_alpha)
            for name, variable in _adapter_variables(layer):
                group.create_dataset(name, data=np.asarray(variable))


def load_lora(backbone, path):
    """Loads adapters written by `save_lora` onto the same base model.

    If LoRA is not enabled yet, it is enabled with the file's rank and
    target layers (`enable_lora`, quietly); if it is, the rank and the
    adapted layers must match the file.

    Args:
        backbone: a kerasft `Backbone`, a KerasHub `Backbone` or `Task`
            of the architecture the adapters were trained on.
        path: a `.weights.h5` file written by `save_lora`.

    Example:

    ```python
    kerasft.backbones.load_lora(fresh_backbone, "lora.weights.h5")
    ```
    """
    path = _check_path(path)
    model = _hub_model(backbone)
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != _FORMAT:
            raise ValueError(
                f"{path!r} is not a kerasft LoRA file (written by "
                "`kerasft.backbones.save_lora`)."
            )
        rank = int(f.attrs["rank"])
        target = [re.escape(str(t)) for t in f.attrs["target"]]
        if not _lora_layers(model):
            enable_lora(backbone, rank, target=target, verbose=False)
        layers = _lora_layers(model)
        stored = f["layers"]
        if len(layers) != len(stored) or {l.lora_rank for l in layers} != {rank}:
            raise ValueError(
                f"{path!r} holds {len(stored)} adapters of rank {rank}; "
                f"{model.name!r} has {len(layers)} LoRA layers of rank "
                f"{sorted({l.lora_rank for l in layers})}. Load onto the base "
                "model the adapters were trained on."
            )
        for i, layer in enumerate(layers):
            group = stored[str(i)]
            for name, variable in _adapter_variables(layer):
                if name not in group:
                    raise ValueError(
                        f"{path!r} has no {name!r} for {group.attrs['path']!r}"
                        ": a different base model."
                    )
                value = group[name][()]
                if tuple(value.shape) != tuple(variable.shape):
                    raise ValueError(
                        f"Adapter {group.attrs['path']!r} in {path!r} has "
                        f"shape {value.shape}, but {variable.path!r} has "
                        f"{tuple(variable.shape)}: a different base model."
                    )
                variable.assign(value)


def merge_lora(backbone):
    """Folds the adapters into the kernels and turns LoRA off.

    Each adapted kernel becomes `kernel + alpha / rank * a @ b` (computed
    in the kernel's dtype) and the adapter variables are removed, so the
    model computes the same outputs as with the adapters and saves as a
    plain model (`model.save`, `save_to_preset`). Layers' `trainable` flags
    are left as they are; compile again before training the merged model.

    Args:
        backbone: a kerasft `Backbone`, a KerasHub `Backbone` or `Task`
            with LoRA enabled.

    Returns:
        The number of layers merged.

    Example:

    ```python
    kerasft.backbones.merge_lora(backbone)
    task.save("merged.keras")
    ```
    """
    model = _hub_model(backbone)
    layers = _lora_layers(model)
    if not layers:
        raise ValueError(
            f"{model.name!r} has no LoRA adapters to merge: call "
            "`kerasft.backbones.enable_lora` first."
        )
    for layer in layers:
        kernel = _keras_compat.lora_base_kernel(layer)
        a = np.asarray(layer.lora_kernel_a, dtype=np.float64)
        b = np.asarray(layer.lora_kernel_b, dtype=np.float64)
        delta = (layer.lora_alpha / layer.lora_rank) * np.matmul(a, b)
        merged = np.asarray(kernel, dtype=np.float64) + delta
        kernel.assign(merged.astype(kernel.dtype))
        # Functions traced before the merge (a compiled `predict`) still
        # add `a @ b`: zeroed, it adds nothing there.
        layer.lora_kernel_a.assign(np.zeros(layer.lora_kernel_a.shape))
        layer.lora_kernel_b.assign(np.zeros(layer.lora_kernel_b.shape))
        layer.lora_enabled = False
        layer.lora_rank = None
        layer.lora_alpha = None
        # Deleting a variable attribute untracks it (keras.layers.Layer).
        del layer.lora_kernel_a
        del layer.lora_kernel_b
    _keras_compat.forget_lora_layers(model)
    return len(layers)


def _adapter_variables(layer):
    """What `save_lora` stores for `layer`: the two factors, and the bias
    (trained with `train_bias=True`, else the base's value)."""
    out = [("lora_kernel_a", layer.lora_kernel_a), ("lora_kernel_b", layer.lora_kernel_b)]
    if getattr(layer, "bias", None) is not None:
        out.append(("bias", layer.bias))
    return out


def _check_path(path):
    path = str(path)
    if not path.endswith(".weights.h5"):
        raise ValueError(
            "`path` must end in `.weights.h5` (e.g. 'lora.weights.h5'). "
            f"Received: path={path!r}"
        )
    return path
