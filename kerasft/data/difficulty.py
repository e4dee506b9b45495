"""`difficulty_scores`: how hard each example is for a first model."""

import numpy as np


def difficulty_scores(model, data, loss=None, batch_size=256):
    """Per-example loss of `model` on `data`: a curriculum's difficulty.

    Train a first model (or take a pretrained one), score the training set
    with it, and give the scores to `kerasft.callbacks.Curriculum`: lower
    loss = easier example.

    Args:
        model: a Keras model (compiled, or with `loss` given).
        data: `(x, y)` arrays, or a batched `tf.data.Dataset` of `(x, y)`
            in a fixed order.
        loss: a Keras loss (name, function or `keras.losses.Loss`).
            Defaults to `None`: the model's compiled loss.
        batch_size: prediction batch size for arrays. Defaults to `256`.

    Returns:
        A float64 numpy array, one score per example, in data order.

    Example:
    ```python
    scores = kerasft.data.difficulty_scores(first_model, (x, y))
    ```
    """
    import keras

    loss = loss if loss is not None else getattr(model, "loss", None)
    if loss is None:
        raise ValueError(
            "`difficulty_scores` needs a loss: compile the model, or pass "
            "`loss=` (e.g. 'sparse_categorical_crossentropy')."
        )
    per_example = _unreduced(keras.losses.get(loss))
    if isinstance(data, tuple) and len(data) == 2:
        batches = _array_batches(*data, batch_size)
    else:
        batches = iter(data)
    scores = []
    for x, y in batches:
        predicted = model(x, training=False)
        values = keras.ops.convert_to_numpy(per_example(y, predicted))
        scores.append(np.asarray(values, np.float64).reshape(len(values), -1).mean(1))
    return np.concatenate(scores) if scores else np.zeros(0)


def _unreduced(loss):
    import keras

    if isinstance(loss, keras.losses.Loss):
        config = {**loss.get_config(), "reduction": None}
        return type(loss).from_config(config)
    return loss  # Keras's loss functions return one value per example


def _array_batches(x, y, batch_size):
    n = len(next(iter(x.values()))) if isinstance(x, dict) else len(x)
    for start in range(0, n, batch_size):
        end = start + batch_size
        if isinstance(x, dict):
            xb = {k: v[start:end] for k, v in x.items()}
        else:
            xb = x[start:end]
        yield xb, y[start:end]
