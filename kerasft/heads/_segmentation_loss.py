"""`SegmentationLoss`: per-pixel cross-entropy with `ignore_index`, + Dice."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kerasft")
class SegmentationLoss(keras.losses.Loss):
    """Cross-entropy over pixels, optionally plus soft Dice, on logits.

    Pixels labelled `ignore_index` (the Pascal VOC border value 255)
    contribute nothing to either term. Per image, the cross-entropy is the
    mean over its labelled pixels; the Dice term is `1 - mean over classes
    of (2 |P n Y| + 1) / (|P| + |Y| + 1)` with `P` the softmax probabilities
    and `Y` the one-hot labels on labelled pixels (the `+ 1` keeps classes
    absent from an image at a Dice of 1 when none is predicted). The loss
    of an image is `crossentropy + dice_weight * dice`.

    Args:
        num_classes: number of classes (the logits' last axis).
        dice_weight: weight of the Dice term; `0.0` is plain
            cross-entropy. Defaults to `0.0`.
        ignore_index: label of pixels to ignore, or `None`. Defaults to
            `255`.
        name: loss name. Defaults to `"segmentation_loss"`.
        **kwargs: `reduction` and `dtype`, as for any Keras loss.

    Example:

    >>> import numpy as np
    >>> loss = SegmentationLoss(2)
    >>> labels = np.array([[[0, 255]]])
    >>> logits = np.array([[[[0.0, 0.0], [5.0, -5.0]]]], "float32")
    >>> round(float(loss(labels, logits)), 4)  # log(2): the 255 pixel is out
    0.6931
    """

    def __init__(
        self,
        num_classes,
        dice_weight=0.0,
        ignore_index=255,
        name="segmentation_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or (
            num_classes < 2
        ):
            raise ValueError(
                "`num_classes` must be an integer >= 2 (background counts "
                f"as a class). Received: num_classes={num_classes!r}"
            )
        if not isinstance(dice_weight, (int, float)) or dice_weight < 0:
            raise ValueError(
                "`dice_weight` must be a number >= 0. "
                f"Received: dice_weight={dice_weight!r}"
            )
        check_ignore_index(ignore_index, num_classes)
        self.num_classes = num_classes
        self.dice_weight = float(dice_weight)
        self.ignore_index = ignore_index

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        if len(y_true.shape) == len(y_pred.shape):
            y_true = ops.squeeze(y_true, axis=-1)
        labels = ops.cast(y_true, "int32")
        if self.ignore_index is None:
            valid = ops.ones_like(labels, dtype="float32")
        else:
            valid = ops.cast(ops.not_equal(labels, self.ignore_index), "float32")
        labels = ops.where(valid > 0, labels, ops.zeros_like(labels))
        pixel_axes = tuple(range(1, len(labels.shape)))
        count = ops.maximum(ops.sum(valid, axis=pixel_axes), 1.0)
        ce = keras.losses.sparse_categorical_crossentropy(
            labels, y_pred, from_logits=True
        )
        loss = ops.sum(ce * valid, axis=pixel_axes) / count
        if self.dice_weight:
            loss = loss + self.dice_weight * self._dice(labels, y_pred, valid)
        return loss

    def _dice(self, labels, logits, valid):
        probs = ops.softmax(logits, axis=-1) * valid[..., None]
        onehot = ops.one_hot(labels, self.num_classes) * valid[..., None]
        axes = tuple(range(1, len(labels.shape)))
        intersection = ops.sum(probs * onehot, axis=axes)
        total = ops.sum(probs, axis=axes) + ops.sum(onehot, axis=axes)
        dice = (2.0 * intersection + 1.0) / (total + 1.0)
        return 1.0 - ops.mean(dice, axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "dice_weight": self.dice_weight,
                "ignore_index": self.ignore_index,
            }
        )
        return config


def check_ignore_index(ignore_index, num_classes):
    """`ValueError` unless `ignore_index` is `None` or an int label outside
    `[0, num_classes)`."""
    if ignore_index is None:
        return
    if (
        isinstance(ignore_index, bool)
        or not isinstance(ignore_index, int)
        or 0 <= ignore_index < num_classes
    ):
        raise ValueError(
            "`ignore_index` must be None or an integer label outside the "
            f"classes [0, {num_classes}), e.g. 255. "
            f"Received: ignore_index={ignore_index!r}"
        )
