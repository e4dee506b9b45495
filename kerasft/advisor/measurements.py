"""The cheap measurements `kerasft.advise` decides from.

Each function returns plain numbers (for `kerasft.advisor._rules`):

- `data_figures`: labelled examples per class, imbalance, image size
  against the backbone's native size;
- `measure_features`: one frozen pass over images or token inputs: per
  backbone group, how far the target data's activation statistics at the
  group's output BatchNorm layer lie from the moving mean/variance the
  checkpoint carries (the pretraining data's own), or, without BatchNorm,
  each group's pooled output (tokens averaged over the real ones);
- `group_probes`: per group, linear-probe accuracy of its pooled features
  (for LayerNorm/transformer backbones, which carry no statistics);
- `linear_probe`: cross-validated logistic-regression accuracy on the
  frozen final features;
- `head_sweep`: one full-batch `kerasft.callbacks.lr_find` sweep of a
  softmax head on the cached frozen features (about a second: the
  backbone does not run). The sweep of the opened model that earlier
  versions ran is gone: it cost most of the measurements and its noisy
  suggestion only capped the fine-tune rate.
"""


import keras
import numpy as np


def data_figures(labels, num_classes, image_shape, native_shape):
    """`{examples_per_class, median_per_class, imbalance, size_ratio}`.

    `examples_per_class` is the smallest class's count (the class a
    strategy must not overfit); `imbalance` largest over smallest count;
    `size_ratio` the image side over the backbone's native side (`None`
    when the backbone takes any size).
    """
    counts = np.bincount(np.asarray(labels, "int64"), minlength=num_classes)
    smallest = int(counts.min())
    side = image_shape[0] if image_shape else None
    native = native_shape[0] if native_shape else None
    return {
        "num_classes": int(num_classes),
        "class_counts": [int(c) for c in counts],
        "examples_per_class": smallest,
        "median_per_class": float(np.median(counts)),
        "imbalance": float(counts.max() / max(1, smallest)),
        "image_size": int(side) if side else None,
        "native_size": int(native) if native else None,
        "size_ratio": float(side / native) if side and native else None,
    }


def _is_batchnorm(layer):
    return isinstance(layer, keras.layers.BatchNormalization)


def output_batchnorms(backbone):
    """`{group name: BatchNormalization layer}`: the last BatchNorm of
    each group holding one (the statistics its output is normalized
    with)."""
    found = {}
    for group in backbone.groups:
        for name in group.layers:
            layer = backbone.model.get_layer(name)
            if _is_batchnorm(layer):
                found[group.name] = layer
    return found


def _preprocessed(backbone, x):
    if isinstance(x, dict):  # token inputs: the model takes them as they are
        return {k: np.asarray(v) for k, v in x.items()}
    x = np.asarray(x, "float32")
    if backbone.preprocess is None or backbone.preprocess_mode in (None, "none"):
        return x
    return np.asarray(backbone.preprocess(x.copy()), "float32")


def num_examples(x):
    """Examples in `x`: an array, or a dict of arrays (token inputs)."""
    return len(next(iter(x.values()))) if isinstance(x, dict) else len(x)


def take(x, index):
    """`x[index]` for an array or each array of a dict."""
    if isinstance(x, dict):
        return {k: v[index] for k, v in x.items()}
    return x[index]


def _batches(model, x, batch_size):
    """Yields `(batch mask or None, model's outputs as a list)` batch by
    batch; the mask is the token inputs' `padding_mask`."""
    for start in range(0, num_examples(x), batch_size):
        batch = take(x, slice(start, start + batch_size))
        out = model(batch, training=False)
        mask = batch.get("padding_mask") if isinstance(batch, dict) else None
        yield mask, [keras.ops.convert_to_numpy(o) for o in (
            out if isinstance(out, (list, tuple)) else [out]
        )]


def _pooled(value, mask=None):
    """Mean over every axis but the first and the last (space, time), over
    the real tokens only when a `(batch, tokens)` padding `mask` is given."""
    value = np.asarray(value, "float32")
    if value.ndim == 3 and mask is not None and mask.shape == value.shape[:2]:
        weights = np.asarray(mask, "float32")[..., None]
        return (value * weights).sum(1) / np.maximum(weights.sum(1), 1.0)
    if value.ndim > 2:
        value = value.mean(axis=tuple(range(1, value.ndim - 1)))
    return value


def _final_output(model):
    """The backbone's final features: a text encoder's `pooled_output`
    when it has one, else its `sequence_output` (pooled over tokens); a
    feature pyramid's top level."""
    output = model.output
    if isinstance(output, dict):
        return output.get("pooled_output", output.get("sequence_output"))
    if isinstance(output, (list, tuple)):  # a feature pyramid: the top level
        return output[-1]
    return output


def frechet_shift(mean, var, moving_mean, moving_var):
    """Per-channel Frechet distance of N(mean, var) to the checkpoint's
    N(moving_mean, moving_var), in units of the checkpoint's variance:
    `((m - m0)**2 + (s - s0)**2) / s0**2` (0: the same statistics)."""
    moving_var = np.maximum(np.asarray(moving_var, "float64"), 1e-3 * (
        float(np.mean(moving_var)) + 1e-12))
    s, s0 = np.sqrt(np.maximum(var, 0)), np.sqrt(moving_var)
    return ((np.asarray(mean) - moving_mean) ** 2 + (s - s0) ** 2) / moving_var


def measure_features(backbone, x, batch_size=64, per_group="auto"):
    """One pass of the frozen backbone over `x`.

    `x` is an array of inputs, or the dict of token inputs a text
    backbone takes (`kerasft.data.text.tokenize`): token features are
    averaged over the real tokens (`padding_mask`).

    Returns `(final_features, shift_kind, per_group)`: the pooled final
    features; `"batchnorm"` with the mean standardized Frechet distance per
    group (groups without BatchNorm get `None`), or `"probe"` with each
    group's pooled output (for `group_probes`).
    """
    x = _preprocessed(backbone, x)
    bns = output_batchnorms(backbone)
    kind = per_group if per_group != "auto" else ("batchnorm" if bns else "probe")
    if kind == "batchnorm":
        names = list(bns)
        tensors = [bns[n].input for n in names]
    else:
        names = backbone.group_names
        tensors = [backbone.model.get_layer(g.layers[-1]).output
                   for g in backbone.groups]
    inputs = backbone.model.input  # a dict for token inputs
    if isinstance(inputs, (list, tuple)) and len(inputs) == 1:
        inputs = inputs[0]
    model = keras.Model(inputs, [*tensors, _final_output(backbone.model)])
    sums = [None] * len(names)
    pooled = [[] for _ in names]
    final = []
    for mask, outputs in _batches(model, x, batch_size):
        final.append(_pooled(outputs[-1], mask))
        for i, value in enumerate(outputs[:-1]):
            if kind == "batchnorm":
                flat = value.reshape(-1, value.shape[-1]).astype("float64")
                part = np.stack([flat.sum(0), (flat ** 2).sum(0),
                                 np.full(flat.shape[1], len(flat))])
                sums[i] = part if sums[i] is None else sums[i] + part
            else:
                pooled[i].append(_pooled(value, mask))
    final = np.concatenate(final)
    if kind == "probe":
        return final, kind, {n: np.concatenate(p) for n, p in zip(names, pooled)}
    shift = {}
    for name, total in zip(names, sums):
        mean = total[0] / total[2]
        var = total[1] / total[2] - mean ** 2
        layer = bns[name]
        d = frechet_shift(
            mean, var,
            keras.ops.convert_to_numpy(layer.moving_mean),
            keras.ops.convert_to_numpy(layer.moving_variance),
        )
        shift[name] = float(np.mean(d))
    return final, kind, {g: shift.get(g) for g in backbone.group_names}


def linear_probe(features, labels, folds=5, seed=0):
    """Cross-validated accuracy of a logistic regression on `features`.

    Standardized features, `StratifiedKFold` with `min(folds, smallest
    class count)` folds (at least 2).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    labels = np.asarray(labels)
    smallest = int(np.bincount(labels).min() if len(labels) else 0)
    if smallest < 2:
        raise ValueError(
            "The linear probe needs at least 2 labelled examples of every "
            f"class. Received a class with {smallest}."
        )
    from threadpoolctl import threadpool_limits

    k = max(2, min(folds, smallest))
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))
    cv = StratifiedKFold(k, shuffle=True, random_state=seed)
    # One BLAS thread: beside TensorFlow's threads, more only contend
    # (measured 5 s -> 0.2 s for 50 examples on 2 cores).
    with threadpool_limits(1):
        scores = cross_val_score(probe, features, labels, cv=cv)
    return float(np.mean(scores))


def group_probes(pooled, labels, seed=0):
    """`{group: linear-probe accuracy}` of each group's pooled output."""
    return {name: linear_probe(f, labels, seed=seed) for name, f in pooled.items()}


def head_sweep(features, labels, num_classes, steps=40):
    """`{"head_rate_min_loss", "head_rate_steepest"}` of one `lr_find`.

    A softmax layer on the cached pooled `features` (the head on the frozen
    backbone with BatchNorm in inference mode) is swept from 1e-5 to 1 over
    `steps` full-batch steps (every measured example at each step, so the
    loss is not batch noise and needs no smoothing; a 32-example sweep put
    its lowest loss anywhere from 1e-5 to 1 on the same data): the rate
    where the loss is lowest, and the rate where it falls fastest
    (`LRFinderResult.suggestion`); NaN where the sweep recorded no finite
    loss.

    Example:
    ```python
    rates = head_sweep(features, labels, num_classes=5)
    rates["head_rate_min_loss"]
    ```
    """
    features = np.asarray(features, "float32")
    head = keras.Sequential([
        keras.Input(features.shape[1:]),
        keras.layers.Dense(num_classes, activation="softmax"),
    ])
    result = _sweep(head, (features, np.asarray(labels)), len(features),
                    steps, smoothing=0.0)
    losses = np.asarray(result.losses, "float64")
    finite = np.isfinite(losses)
    min_loss = float("nan")
    if finite.any():
        rates = np.asarray(result.learning_rates, "float64")[finite]
        min_loss = float(rates[int(np.argmin(losses[finite]))])
    return {"head_rate_min_loss": min_loss,
            "head_rate_steepest": float(result.suggestion)}


def _sweep(model, arrays, batch_size, steps, smoothing):
    from kerasft.callbacks import lr_find

    # No XLA: a sweep of a few dozen steps does not repay compiling.
    model.compile(
        keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
        jit_compile=False,
    )
    result = lr_find(model, _repeat(arrays, batch_size), min_lr=1e-5,
                     max_lr=1.0, steps=steps, smoothing=smoothing)
    return result


def _repeat(arrays, batch_size):
    import tensorflow as tf

    x, y = arrays
    return (tf.data.Dataset.from_tensor_slices((x, y))
            .shuffle(len(x), seed=0).repeat().batch(batch_size))
