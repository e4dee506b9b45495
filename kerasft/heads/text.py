"""`text_classification`: the classifier head for BERT-family backbones."""

import keras

from kerasft.heads.classification import ClassificationHead


def as_text_features(features, head):
    """A text backbone's output as a dict with `"sequence_output"`.

    BERT returns `{"sequence_output", "pooled_output"}`; DistilBERT and
    RoBERTa return the `(batch, tokens, hidden)` sequence itself.
    """
    if isinstance(features, dict):
        if "sequence_output" not in features and "pooled_output" not in features:
            raise ValueError(
                f"`{head}` needs 'sequence_output' or 'pooled_output'. "
                f"Received keys: {sorted(features)}"
            )
        return features
    if len(getattr(features, "shape", ())) == 3:
        return {"sequence_output": features}
    raise TypeError(
        f"`{head}` expects a text backbone's output: a dict with "
        "'sequence_output'/'pooled_output' or a (batch, tokens, hidden) "
        f"tensor. Received: {features!r}"
    )


@keras.saving.register_keras_serializable(package="kerasft")
class TextClassificationHead(ClassificationHead):
    """Sentence (pair) classifier on a KerasHub text backbone's outputs.

    Uses `pooled_output` when the backbone has a pooler (BERT), else the
    first token (`[CLS]`/`<s>`) of `sequence_output` (DistilBERT, RoBERTa,
    whose backbones return the sequence tensor itself);
    then dropout and the float32 output layer. Binary tasks (`num_classes=1`
    or `binary=True`) get one sigmoid unit and binary crossentropy, as in
    the `TFBertModel` tutorials; otherwise a softmax with sparse (or
    categorical) crossentropy.

    Args:
        num_classes: number of classes; `1` means binary (one sigmoid).
        dropout: dropout before the output layer, as BERT's classifier.
            Defaults to `0.1`.
        hidden_units: sizes of extra hidden Dense layers. Defaults to `()`.
        binary: one sigmoid unit; needs `num_classes` 1 or 2.
            Defaults to `False`.
        label_mode: `"int"` or `"categorical"` labels for softmax heads.
            Defaults to `"int"`.
        activation: hidden activation. Defaults to `"gelu"`.
        name: layer-name prefix. Defaults to `"head"`.

    Example:
    ```python
    backbone = kerasft.backbones.bert(folder, sequence_length=32)
    head = kerasft.heads.text_classification(1)
    model = kerasft.build_model(backbone, head)
    model.compile(optimizer=keras.optimizers.AdamW(2e-5), **head.compile_kwargs())
    ```
    """

    def __init__(
        self,
        num_classes,
        dropout=0.1,
        hidden_units=(),
        binary=False,
        label_mode="int",
        activation="gelu",
        name="head",
    ):
        super().__init__(
            num_classes,
            hidden_units=hidden_units,
            dropout=dropout,
            activation=activation,
            binary=binary,
            label_mode=label_mode,
            name=name,
        )

    def call(self, features):
        return super().call(as_text_features(features, "text_classification"))

    def get_config(self):
        return {
            "num_classes": self.num_classes,
            "dropout": self.dropout,
            "hidden_units": self.hidden_units,
            "binary": self.binary,
            "label_mode": self.label_mode,
            "activation": self.activation,
            "name": self.name,
        }


def text_classification(
    num_classes,
    dropout=0.1,
    hidden_units=(),
    binary=False,
    label_mode="int",
    activation="gelu",
    name="head",
):
    """A text classification head (`TextClassificationHead`).

    Example:
    ```python
    head = kerasft.heads.text_classification(3)  # 3-way softmax
    ```
    """
    return TextClassificationHead(
        num_classes,
        dropout=dropout,
        hidden_units=hidden_units,
        binary=binary,
        label_mode=label_mode,
        activation=activation,
        name=name,
    )
