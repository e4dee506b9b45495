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
        name: layer-name prefix. Defaults to `"head"`.

    Example:
    ```python
    backbone = kerasft.backbones.bert(folder, sequence_length=64)
    head = kerasft.heads.token_classification(9)
    model = kerasft.build_model(backbone, head)
    model.compile(optimizer=keras.optimizers.AdamW(5e-5), **head.compile_kwargs())
    ```
    """

    def __init__(self, num_labels, dropout=0.1, ignore_index=IGNORE_INDEX, name="head"):
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
        self.num_labels = num_labels
        self.dropout = dropout
        self.ignore_index = ignore_index

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
        return keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, ignore_class=self.ignore_index
        )

    @property
    def metrics(self):
        return [TokenAccuracy(self.ignore_index)]

    def get_config(self):
        return {
            "num_labels": self.num_labels,
            "dropout": self.dropout,
            "ignore_index": self.ignore_index,
            "name": self.name,
        }


def token_classification(num_labels, dropout=0.1, ignore_index=IGNORE_INDEX, name="head"):
    """A token classification (NER) head (`TokenClassificationHead`).

    Example:
    ```python
    head = kerasft.heads.token_classification(9)  # CoNLL-2003 IOB2 tags
    ```
    """
    return TokenClassificationHead(
        num_labels, dropout=dropout, ignore_index=ignore_index, name=name
    )
