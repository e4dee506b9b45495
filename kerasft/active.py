"""`kerasft.active`: which unlabelled examples to label next.

`select(model, pool, k, strategy)` ranks a pool of unlabelled inputs by the
model's predictions and returns the `k` indices to label next; `loop`
simulates labelling rounds on data whose labels are known, for several
strategies, and reports (and plots) test accuracy against the number of
labels.

Strategies:
- `"entropy"`: highest predictive entropy `-sum p log p`.
- `"margin"`: smallest gap between the two most probable classes.
- `"least_confidence"`: lowest top probability.
- `"random"`: uniform, seeded (the baseline).
- `"core_set"`: k-center greedy on the model's penultimate features (Sener
  & Savarese 2018): each pick is the pool point farthest from everything
  labelled or picked so far.

The scoring and the k-center selection are pure numpy functions
(`uncertainty`, `k_center_greedy`); `select` only runs the model.
"""

import numpy as np

STRATEGIES = ("entropy", "margin", "least_confidence", "random", "core_set")

__all__ = ["STRATEGIES", "select", "loop", "uncertainty", "k_center_greedy"]


def _check_strategy(strategy):
    if strategy not in STRATEGIES:
        raise ValueError(
            f"`strategy` must be one of {STRATEGIES}. "
            f"Received: strategy={strategy!r}"
        )


def uncertainty(probabilities, strategy="entropy"):
    """How uncertain each prediction is (higher = label it sooner).

    Args:
        probabilities: `(n, classes)` class probabilities (a single sigmoid
            column counts as two classes).
        strategy: `"entropy"`, `"margin"` or `"least_confidence"`.
            Defaults to `"entropy"`.

    Returns:
        `(n,)` float64 scores.
    """
    p = np.asarray(probabilities, np.float64)
    if p.ndim == 1 or p.shape[1] == 1:
        p = p.reshape(-1, 1)
        p = np.concatenate([1 - p, p], axis=1)
    if strategy == "entropy":
        return -np.sum(p * np.log(np.clip(p, 1e-12, 1.0)), axis=1)
    if strategy == "margin":
        top2 = np.sort(p, axis=1)[:, -2:]
        return -(top2[:, 1] - top2[:, 0])
    if strategy == "least_confidence":
        return 1.0 - p.max(axis=1)
    raise ValueError(
        "`uncertainty` scores 'entropy', 'margin' or 'least_confidence'. "
        f"Received: strategy={strategy!r}"
    )


def k_center_greedy(features, k, labeled=()):
    """`k` pool indices by k-center greedy selection.

    Each step picks the point whose distance to its nearest labelled or
    already-picked point is largest. With nothing labelled, the first pick
    is the point nearest the pool's mean.

    Args:
        features: `(n, d)` pool features.
        k: how many to pick.
        labeled: `(m, d)` features of the labelled set. Defaults to `()`.

    Returns:
        A list of `k` distinct indices.
    """
    x = np.asarray(features, np.float64).reshape(len(features), -1)
    labeled = np.asarray(labeled, np.float64).reshape(-1, x.shape[1])
    if len(labeled):
        nearest = np.full(len(x), np.inf)
        for start in range(0, len(labeled), 256):
            d = _sq_distances(x, labeled[start:start + 256])
            nearest = np.minimum(nearest, d.min(axis=1))
        picks = []
    else:
        first = int(np.argmin(((x - x.mean(0)) ** 2).sum(1)))
        picks = [first]
        nearest = _sq_distances(x, x[first:first + 1])[:, 0]
    while len(picks) < k:
        i = int(np.argmax(nearest))
        picks.append(i)
        nearest = np.minimum(nearest, _sq_distances(x, x[i:i + 1])[:, 0])
    return picks[:k]


def _sq_distances(a, b):
    return np.maximum(
        (a * a).sum(1)[:, None] - 2 * a @ b.T + (b * b).sum(1)[None, :], 0.0
    )


def _features(model, x, batch_size):
    """Penultimate-layer outputs of a functional model (else its outputs)."""
    import keras

    try:
        inner = keras.Model(model.inputs, model.layers[-2].output)
    except (AttributeError, ValueError, IndexError):
        inner = model
    return np.asarray(inner.predict(x, batch_size=batch_size, verbose=0))


def select(model, pool, k, strategy="entropy", labeled=None, seed=0,
           batch_size=256):
    """The indices of the `k` pool examples to label next.

    Args:
        model: a trained classifier returning probabilities.
        pool: the unlabelled inputs (an array, or a dict of arrays).
        k: how many to pick (at most `len(pool)`).
        strategy: one of `STRATEGIES`. Defaults to `"entropy"`.
        labeled: the inputs already labelled, for `"core_set"`.
            Defaults to `None`.
        seed: seed of `"random"`. Defaults to `0`.
        batch_size: prediction batch size. Defaults to `256`.

    Returns:
        A numpy array of `k` distinct indices into `pool`, most useful
        first.

    Example:
    ```python
    picks = kerasft.active.select(model, unlabelled_images, k=100)
    ```
    """
    _check_strategy(strategy)
    n = len(next(iter(pool.values()))) if isinstance(pool, dict) else len(pool)
    if not isinstance(k, (int, np.integer)) or not 0 < k <= n:
        raise ValueError(
            f"`k` must be an int in [1, len(pool)={n}]. Received: k={k!r}"
        )
    if strategy == "random":
        return np.random.default_rng(seed).permutation(n)[:k]
    if strategy == "core_set":
        known = () if labeled is None or not len(labeled) else _features(
            model, labeled, batch_size
        )
        picks = k_center_greedy(_features(model, pool, batch_size), k, known)
        return np.asarray(picks, np.int64)
    probs = np.asarray(model.predict(pool, batch_size=batch_size, verbose=0))
    scores = uncertainty(probs, strategy)
    # Stable order: ties go to the lower index.
    return np.argsort(-scores, kind="stable")[:k].astype(np.int64)


# === Simulated rounds ===


def loop(build_model, x, y, x_test, y_test, strategies=("entropy", "random"),
         initial=20, per_round=20, rounds=5, epochs=50, batch_size=32,
         seed=0, plot=None):
    """Simulates active-learning rounds on labelled data, per strategy.

    Every strategy starts from the same `initial` random labels. Each round
    trains the model from its initial weights and optimizer state
    (`build_model()` is called once) on the labels so far, records its test accuracy, and asks
    `select` for `per_round` more labels from the rest of `x`.

    Args:
        build_model: a function returning a new compiled Keras model.
        x, y: the pool and its (hidden) labels.
        x_test, y_test: held-out data for the accuracy.
        strategies: which strategies to compare. Defaults to
            `("entropy", "random")`.
        initial: labels before the first round. Defaults to `20`.
        per_round: labels added each round. Defaults to `20`.
        rounds: how many rounds add labels. Defaults to `5`.
        epochs: training epochs per round. Defaults to `50`.
        batch_size: training batch size. Defaults to `32`.
        seed: seeds the initial labels, training and `"random"`.
            Defaults to `0`.
        plot: a PNG path for accuracy against labels. Defaults to `None`.

    Returns:
        `{strategy: [(labels, test accuracy), ...]}`, `rounds + 1` points
        each.
    """
    import keras

    for s in strategies:
        _check_strategy(s)
    x, y = np.asarray(x), np.asarray(y)
    if initial + per_round * rounds > len(x):
        raise ValueError(
            f"`initial + per_round * rounds` ({initial + per_round * rounds}) "
            f"exceeds the pool ({len(x)} examples)."
        )
    start = np.random.default_rng(seed).permutation(len(x))[:initial]
    keras.utils.set_random_seed(seed)
    model = build_model()
    # One model, reset to its first weights each round: a fresh model would
    # retrace its train and predict functions every round (seconds each).
    optimizer = model.optimizer
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    weights = (model.get_weights(), [v.numpy() for v in optimizer.variables])
    curves = {}
    for strategy in strategies:
        chosen = list(start)
        curve = []
        for r in range(rounds + 1):
            keras.utils.set_random_seed(seed)
            _reset(model, weights)
            _fit(model, x[chosen], y[chosen], epochs, batch_size, seed)
            accuracy = _accuracy(model, x_test, y_test)
            curve.append((len(chosen), accuracy))
            if r == rounds:
                break
            rest = np.setdiff1d(np.arange(len(x)), chosen)
            picks = select(model, x[rest], per_round, strategy,
                           labeled=x[chosen], seed=seed + r)
            chosen += rest[picks].tolist()
        curves[strategy] = curve
    if plot:
        plot_curves(curves, plot)
    return curves


def _fit(model, x, y, epochs, batch_size, seed):
    """`epochs` shuffled passes as one Keras epoch: Keras's per-epoch
    overhead dominates on a few hundred examples."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed)
    model.fit(ds.repeat(epochs).batch(batch_size), epochs=1, shuffle=False,
              verbose=0)


def _reset(model, weights):
    """Back to the initial weights and optimizer state."""
    model_weights, optimizer_values = weights
    model.set_weights(model_weights)
    for variable, value in zip(model.optimizer.variables, optimizer_values):
        variable.assign(value)


def _accuracy(model, x, y):
    probs = np.asarray(model.predict(x, verbose=0))
    if probs.shape[-1] == 1:
        predicted = (probs[:, 0] > 0.5).astype(int)
    else:
        predicted = probs.argmax(-1)
    return float(np.mean(predicted == np.asarray(y).reshape(-1)))


def plot_curves(curves, path):
    """Writes test accuracy against labels, one line per strategy."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for strategy, curve in curves.items():
        labels, accuracy = zip(*curve)
        ax.plot(labels, accuracy, marker="o", label=strategy)
    ax.set_xlabel("labelled examples")
    ax.set_ylabel("test accuracy")
    ax.set_title("Active learning")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path
