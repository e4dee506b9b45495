"""`question_answering`: start/end logits for extractive QA (SQuAD style)."""

import keras

from kerasft.heads.head import Head
from kerasft.heads.text import as_text_features

START = "start_logits"
END = "end_logits"


@keras.saving.register_keras_serializable(package="kerasft")
class SpanLogits(keras.layers.Layer):
    """Splits `(batch, tokens, 2)` logits into start and end `(batch, tokens)`.

    Positions where `padding_mask` is 0 get a large negative logit, so
    neither the loss nor span decoding can pick padding.

    Args:
        **kwargs: standard layer arguments (`name`, `dtype`).

    Example:
    ```python
    start, end = SpanLogits()(keras.ops.ones((2, 5, 2)))
    ```
    """

    def call(self, logits, padding_mask=None):
        start = logits[..., 0]
        end = logits[..., 1]
        if padding_mask is not None:
            keep = keras.ops.cast(padding_mask, "bool")
            floor = keras.ops.full_like(start, -1e9)
            start = keras.ops.where(keep, start, floor)
            end = keras.ops.where(keep, end, floor)
        return start, end

    def compute_output_shape(self, logits_shape, padding_mask_shape=None):
        shape = tuple(logits_shape[:-1])
        return shape, shape


@keras.saving.register_keras_serializable(package="kerasft")
class QuestionAnsweringHead(Head):
    """Extractive QA head: one Dense(2) over `sequence_output` -> start/end.

    As Hugging Face's `BertForQuestionAnswering`: per-token start and end
    logits. Outputs a dict `{"start_logits": (batch, tokens), "end_logits":
    (batch, tokens)}` in float32; labels are the token indices of the
    answer's first and last token under the same keys. When the features
    dict also holds `"padding_mask"` (pass `{**backbone_outputs,
    "padding_mask": inputs["padding_mask"]}`), padding positions are masked.
    Decode spans with `kerasft.data.squad.decode_spans`.

    Args:
        dropout: dropout on `sequence_output` before the logits.
            Defaults to `0.0`.
        name: layer-name prefix. Defaults to `"head"`.

    Example:
    ```python
    backbone = kerasft.backbones.bert(folder, sequence_length=64)
    head = kerasft.heads.question_answering()
    model = kerasft.build_model(backbone, head)
    model.compile(optimizer=keras.optimizers.AdamW(3e-5), **head.compile_kwargs())
    ```
    """

    def __init__(self, dropout=0.0, name="head"):
        super().__init__(name=name)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(
                f"`dropout` must be in [0, 1). Received: dropout={dropout!r}"
            )
        self.dropout = dropout

    def call(self, features):
        features = as_text_features(features, "question_answering")
        if "sequence_output" not in features:
            raise ValueError(
                "`question_answering` needs per-token 'sequence_output'. "
                f"Received keys: {sorted(features)}"
            )
        x = features["sequence_output"]
        if self.dropout:
            x = keras.layers.Dropout(
                self.dropout, name=self._layer_name("dropout")
            )(x)
        logits = keras.layers.Dense(
            2, dtype="float32", name=self._layer_name("span")
        )(x)
        start, end = SpanLogits(dtype="float32", name=self._layer_name("logits"))(
            logits, padding_mask=features.get("padding_mask")
        )
        return {START: start, END: end}

    @property
    def loss(self):
        return {
            START: keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            END: keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        }

    @property
    def metrics(self):
        return {
            START: [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
            END: [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        }

    def get_config(self):
        return {"dropout": self.dropout, "name": self.name}


def question_answering(dropout=0.0, name="head"):
    """An extractive question answering head (`QuestionAnsweringHead`).

    Example:
    ```python
    head = kerasft.heads.question_answering()
    ```
    """
    return QuestionAnsweringHead(dropout=dropout, name=name)
