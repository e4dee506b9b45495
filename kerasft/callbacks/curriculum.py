"""`Curriculum`: train on the easiest examples first, then on everything."""

import keras
import numpy as np

from kerasft.callbacks import _pacing


class Curriculum(keras.callbacks.Callback):
    """Each epoch trains on the easiest fraction of the data its pacing allows.

    `Curriculum` makes the training dataset (`curriculum.dataset(x, y,
    batch_size)`) and, as a callback, picks each epoch's examples when the
    epoch begins: the easiest `pacing_fraction(epoch)` of them by `scores`,
    shuffled by `(seed, epoch)` and repeated to a fixed number of examples
    per epoch (so every epoch has the same number of steps). An epoch's
    examples depend only on the scores, the seed and the epoch number, so
    a run is deterministic and resumes (`initial_epoch`) exactly.

    Args:
        scores: one difficulty per example (lower = easier), e.g. from
            `kerasft.data.difficulty_scores(model, (x, y))`, or a function
            `scores(x, y)` returning them.
        pacing: `"linear"`, `"root"` or `"step"` (see
            `kerasft.callbacks._pacing.pacing_fraction`). Defaults to
            `"linear"`.
        start_fraction: the fraction of the data at epoch 0.
            Defaults to `0.2`.
        ramp_epochs: the first epoch that trains on every example.
            Defaults to `5`.
        seed: seeds the per-epoch shuffles. Defaults to `0`.
        examples_per_epoch: examples each epoch yields. Defaults to
            `None`: the number of examples.

    Example:
    ```python
    scores = kerasft.data.difficulty_scores(first_model, (x, y))
    curriculum = kerasft.callbacks.Curriculum(scores, pacing="root")
    model.fit(curriculum.dataset(x, y, batch_size=32), epochs=10,
              callbacks=[curriculum])
    ```
    """

    def __init__(self, scores, pacing="linear", start_fraction=0.2,
                 ramp_epochs=5, seed=0, examples_per_epoch=None):
        super().__init__()
        _pacing.check_pacing(pacing, start_fraction, ramp_epochs)
        if not (callable(scores) or np.ndim(scores) == 1):
            raise TypeError(
                "`scores` must be one difficulty per example (a 1-D array) "
                f"or a function scores(x, y). Received: {type(scores).__name__}"
            )
        self.scores = scores
        self.pacing = pacing
        self.start_fraction = start_fraction
        self.ramp_epochs = ramp_epochs
        self.seed = seed
        self.examples_per_epoch = examples_per_epoch
        self._order = None
        self._indices = None
        self.epoch = 0

    def fraction(self, epoch):
        """The fraction of the data, easiest first, that `epoch` trains on."""
        return _pacing.pacing_fraction(
            epoch, self.pacing, self.start_fraction, self.ramp_epochs
        )

    def indices(self, epoch):
        """The example indices epoch `epoch` trains on, in order."""
        if self._order is None:
            raise ValueError(
                "Call `curriculum.dataset(x, y, batch_size)` first: it reads "
                "the examples the scores rank."
            )
        return _pacing.epoch_indices(
            self._order, self.fraction(epoch), self.seed, epoch,
            self.examples_per_epoch or len(self._order),
        )

    def dataset(self, x, y, batch_size=32):
        """A batched `tf.data.Dataset` whose examples follow the curriculum.

        Args:
            x: inputs (an array, or a dict of arrays), held in memory.
            y: targets.
            batch_size: batch size. Defaults to `32`.
        """
        import tensorflow as tf

        return self.examples(x, y).batch(batch_size).prefetch(tf.data.AUTOTUNE)

    def examples(self, x, y):
        """The unbatched `tf.data.Dataset` of `dataset` (batch it yourself,
        as the recipes do with their global batch)."""
        import tensorflow as tf

        n = len(next(iter(x.values()))) if isinstance(x, dict) else len(x)
        scores = self.scores(x, y) if callable(self.scores) else self.scores
        scores = np.asarray(scores).reshape(-1)
        if len(scores) != n:
            raise ValueError(
                f"`scores` has {len(scores)} values for {n} examples: give "
                "one difficulty per example."
            )
        self._order = _pacing.easiest_first(scores)
        first = self.indices(self.epoch)
        self._indices = tf.Variable(first, trainable=False, name="curriculum")
        # Read the indices when an epoch's iteration starts (after
        # `on_epoch_begin` has set them).
        picks = tf.data.Dataset.from_tensors(0).flat_map(
            lambda _: tf.data.Dataset.from_tensor_slices(
                self._indices.read_value()
            )
        ).apply(tf.data.experimental.assert_cardinality(len(first)))
        return picks.map(_Lookup(x, y), num_parallel_calls=tf.data.AUTOTUNE)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        if self._indices is not None:
            self._indices.assign(self.indices(epoch))


class _Lookup:
    """Example `i` of in-memory `(x, y)` data, inside a `tf.data` map."""

    def __init__(self, x, y):
        import tensorflow as tf

        self.tensors = tf.nest.map_structure(tf.convert_to_tensor, (x, y))

    def __call__(self, i):
        import tensorflow as tf

        return tf.nest.map_structure(lambda t: tf.gather(t, i), self.tensors)
