"""`token_classification`: per-token tag logits (NER) over `sequence_output`."""

import keras

from kerasft.heads.head import Head
from kerasft.heads.head import validate_positive_int
from kerasft.heads.text import as_text_features

IGNORE_INDEX = -100


@keras.saving.register_keras_serializable(package="kerasft")
class TokenAccuracy(keras.metrics.Metric):
    """Accuracy of per-token argmax predictions, skipping `ignore_index` labels.

    `SparseCategoricalAccuracy` would count the ignored positions (special
    tokens, padding, non-first word pieces) as tokens.

    Args:
        ignore_index: label of positions left out. Defaults to `-100`.
        name: metric name. Defaults to `"token_accuracy"`.
        dtype: metric dtype. Defaults to `None`.

    Example:
    ```python
    m = TokenAccuracy()
    m.update_state([[1, -100]], [[[0.0, 1.0], [1.0, 0.0]]])
    float(m.result())  # 1.0
    ```
    """

    def __init__(self, ignore_index=IGNORE_INDEX, name="token_accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.ignore_index = ignore_index
        self.correct = self.add_variable((), "zeros", name="correct")
        self.count = self.add_variable((), "zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = keras.ops.cast(y_true, "int32")
        if len(y_true.shape) == len(y_pred.shape):
            y_true = keras.ops.squeeze(y_true, -1)
        keep = keras.ops.cast(keras.ops.not_equal(y_true, self.ignore_index), self.dtype)
        if sample_weight is not None:
            weight = keras.ops.cast(sample_weight, self.dtype)
            while len(weight.shape) < len(keep.shape):
                weight = keras.ops.expand_dims(weight, -1)
            keep = keep * weight
        predicted = keras.ops.cast(keras.ops.argmax(y_pred, axis=-1), "int32")
        hit = keras.ops.cast(keras.ops.equal(predicted, y_true), self.dtype)
        self.correct.assign_add(keras.ops.sum(hit * keep))
        self.count.assign_add(keras.ops.sum(keep))

    def result(self):
        return keras.ops.divide_no_nan(self.correct, self.count)

    def reset_state(self):
        self.correct.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        return {"ignore_index": self.ignore_index, "name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="kerasft")
class TokenCrossentropy(keras.losses.Loss):
    """Per-token cross-entropy over the scored tokens, with tag weights,
    label smoothing or focal modulation.

    For logits `(batch, tokens, num_labels)` and tag ids `(batch, tokens)`;
    tokens labelled `ignore_index` score 0 and leave the mean, as
    `SparseCategoricalCrossentropy(from_logits=True, ignore_class=...)`
    does (which this equals with no option set). Each token's loss is
    `-sum_k q_k * log p_k` over the target distribution `q` (one-hot, or
    `(1 - label_smoothing) * one_hot + label_smoothing / num_labels`); with
    `focal=True` each term is scaled by `alpha * (1 - p_k) ** gamma`, as
    `keras.losses.CategoricalFocalCrossentropy`; then it is multiplied by
    `class_weight[gold tag]`. The default reduction is the mean over the
    scored tokens of the batch (tag weights scale the tokens, as Keras's
    `class_weight` scales examples); `reduction=None` gives the per-token
    losses, 0 on ignored positions.

    Args:
        class_weight: one weight per tag id (a list), or `None` for 1.0.
            Defaults to `None`.
        label_smoothing: in `[0, 1)`. Defaults to `0.0`.
        focal: focal loss instead of cross-entropy. Defaults to `False`.
        alpha: focal weighting factor. Defaults to `0.25`.
        gamma: focal focusing exponent, `>= 0`. Defaults to `2.0`.
        ignore_index: tag id of positions without a loss. Defaults to `-100`.
        reduction: a Keras loss reduction. Defaults to
            `"sum_over_batch_size"`.
        name: loss name. Defaults to `"token_crossentropy"`.
        dtype: the loss dtype. Defaults to `None`.

    Example:
    ```python
    loss = TokenCrossentropy(class_weight=[0.2, 3.0, 3.0], label_smoothing=0.1)
    loss([[1, -100]], [[[0.0, 2.0, 0.0], [1.0, 0.0, 0.0]]])
    ```
    """

    def __init__(
        self,
        class_weight=None,
        label_smoothing=0.0,
        focal=False,
        alpha=0.25,
        gamma=2.0,
        ignore_index=IGNORE_INDEX,
        reduction="sum_over_batch_size",
        name="token_crossentropy",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if isinstance(label_smoothing, bool) or not 0.0 <= label_smoothing < 1.0:
            raise ValueError(
                "`label_smoothing` must be in [0, 1). Received: "
                f"label_smoothing={label_smoothing!r}"
            )
        if gamma < 0:
            raise ValueError(f"`gamma` must be >= 0. Received: gamma={gamma!r}")
        if class_weight is not None:
            class_weight = [float(w) for w in class_weight]
            if not class_weight or min(class_weight) < 0:
                raise ValueError(
                    "`class_weight` must be one weight >= 0 per tag id. "
                    f"Received: class_weight={class_weight!r}"
                )
        self.class_weight = class_weight
        self.label_smoothing = float(label_smoothing)
        self.focal = bool(focal)
        self.alpha = float(alpha)
        self.gamma = float(gamma)
        self.ignore_index = int(ignore_index)

    def call(self, y_true, y_pred):
        ops = keras.ops
        y_pred = ops.cast(y_pred, "float32")
        y_true = ops.cast(y_true, "int32")
        if len(y_true.shape) == len(y_pred.shape):
            y_true = ops.squeeze(y_true, -1)
        num_labels = y_pred.shape[-1]
        valid = ops.not_equal(y_true, self.ignore_index)
        ids = ops.where(valid, y_true, 0)
        log_p = ops.log_softmax(y_pred, axis=-1)
        target = ops.one_hot(ids, num_labels, dtype="float32")
        if self.label_smoothing:
            target = (target * (1.0 - self.label_smoothing)
                      + self.label_smoothing / num_labels)
        terms = -target * log_p
        if self.focal:
            terms = terms * self.alpha * ops.power(1.0 - ops.exp(log_p), self.gamma)
        losses = ops.sum(terms, axis=-1)
        if self.class_weight is not None:
            weights = ops.convert_to_tensor(self.class_weight, "float32")
            losses = losses * ops.take(weights, ids)
        mask = ops.cast(valid, "float32")
        losses = losses * mask
        if self.reduction in ("sum_over_batch_size", "mean"):
            # The reduction divides by every position: scale by
            # positions / scored tokens, so it is the mean over scored ones.
            total = ops.cast(ops.prod(ops.shape(mask)), "float32")
            losses = losses * ops.divide_no_nan(total, ops.sum(mask))
        return losses

    def get_config(self):
        return {
            **super().get_config(),
            "class_weight": self.class_weight,
            "label_smoothing": self.label_smoothing,
            "focal": self.focal,
            "alpha": self.alpha,
            "gamma": self.gamma,
            "ignore_index": self.ignore_index,
        }


@keras.saving.register_keras_serializable(package="kerasft")
class TokenClassificationHead(Head):
    """Per-token classifier: dropout -> Dense(num_labels) over `sequence_output`.

    As Hugging Face's `BertForTokenClassification`: logits `(batch, tokens,
    num_labels)` in float32 (also under mixed precision). Labels are tag ids
    per token; positions labelled `ignore_index` (special tokens, padding,
    non-first word pieces: see `kerasft.data.conll.token_features`) are left
    out of the loss (`SparseCategoricalCrossentropy(ignore_class=...)`) and
    of the `token_accuracy` metric.

    Args:
        num_labels: number of tags (e.g. 9 for CoNLL-2003's IOB2 set).
        dropout: dropout on `sequence_output`, as BERT's classifier.
            Defaults to `0.1`.
        ignore_index: label of positions without a loss. Defaults to `-100`.
        class_weight: one loss weight per tag id (a list), e.g. from
            `kerasft.data.class_weights.from_labels` on the training tags;
            `None` weighs every tag 1.0. Defaults to `None`.
        label_smoothing: label smoothing of the per-token loss, in
            `[0, 1)`. Defaults to `0.0`.
        loss: `"crossentropy"` or `"focal"` (`TokenCrossentropy(focal=True)`).
            Defaults to `"crossentropy"`.
        name: layer-name prefix. Defaults to `"head"`.

    Example:
    ```python
    backbone = kerasft.backbones.bert(folder, sequence_length=64)
    head = kerasft.heads.token_classification(9)
    model = kerasft.build_model(backbone, head)
    model.compile(optimizer=keras.optimizers.AdamW(5e-5), **head.compile_kwargs())
    ```
    """

    def __init__(self, num_labels, dropout=0.1, ignore_index=IGNORE_INDEX,
                 class_weight=None, label_smoothing=0.0, loss="crossentropy",
                 name="head"):
        super().__init__(name=name)
        validate_positive_int(num_labels, "num_labels")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(
                f"`dropout` must be in [0, 1). Received: dropout={dropout!r}"
            )
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int) or (
            0 <= ignore_index < num_labels
        ):
            raise ValueError(
                "`ignore_index` must be an integer outside [0, num_labels). "
                f"Received: ignore_index={ignore_index!r}"
            )
        if loss not in ("crossentropy", "focal"):
            raise ValueError(
                "`loss` must be 'crossentropy' or 'focal'. Received: "
                f"loss={loss!r}"
            )
        if class_weight is not None and len(class_weight) != num_labels:
            raise ValueError(
                f"`class_weight` must hold one weight per tag ({num_labels}). "
                f"Received: {len(class_weight)} weights"
            )
        self.num_labels = num_labels
        self.dropout = dropout
        self.ignore_index = ignore_index
        self.class_weight = None if class_weight is None else [
            float(w) for w in class_weight]
        self.label_smoothing = float(label_smoothing)
        self.loss_name = loss
        self.loss  # noqa: B018 (TokenCrossentropy validates its options now)

    def call(self, features):
        features = as_text_features(features, "token_classification")
        if "sequence_output" not in features:
            raise ValueError(
                "`token_classification` needs per-token 'sequence_output'. "
                f"Received keys: {sorted(features)}"
            )
        x = features["sequence_output"]
        if self.dropout:
            x = keras.layers.Dropout(self.dropout, name=self._layer_name("dropout"))(x)
        return keras.layers.Dense(
            self.num_labels, dtype="float32", name=self._layer_name("output")
        )(x)

    @property
    def loss(self):
        if (self.class_weight is None and not self.label_smoothing
                and self.loss_name == "crossentropy"):
            return keras.losses.SparseCategoricalCrossentropy(
                from_logits=True, ignore_class=self.ignore_index
            )
        return TokenCrossentropy(
            class_weight=self.class_weight,
            label_smoothing=self.label_smoothing,
            focal=self.loss_name == "focal",
            ignore_index=self.ignore_index,
        )

    @property
    def metrics(self):
        return [TokenAccuracy(self.ignore_index)]

    def get_config(self):
        return {
            "num_labels": self.num_labels,
            "dropout": self.dropout,
            "ignore_index": self.ignore_index,
            "class_weight": self.class_weight,
            "label_smoothing": self.label_smoothing,
            "loss": self.loss_name,
            "name": self.name,
        }


def token_classification(num_labels, dropout=0.1, ignore_index=IGNORE_INDEX,
                         class_weight=None, label_smoothing=0.0,
                         loss="crossentropy", name="head"):
    """A token classification (NER) head (`TokenClassificationHead`).

    Example:
    ```python
    head = kerasft.heads.token_classification(9)  # CoNLL-2003 IOB2 tags
    ```
    """
    return TokenClassificationHead(
        num_labels, dropout=dropout, ignore_index=ignore_index,
        class_weight=class_weight, label_smoothing=label_smoothing, loss=loss,
        name=name,
    )
