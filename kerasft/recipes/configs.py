"""The recipes' config dataclasses, in a module that does not import TensorFlow.

`kerasft --help` and `kerasft <recipe> --help` build their flags from these
classes, so they answer without TensorFlow's start-up cost. The recipe
modules (`image_classification`, `text_classification`, ...) re-export the
class they run, so `from kerasft.recipes.image_classification import
ImageClassificationConfig` keeps working.
"""

import dataclasses
import typing

from kerasft.recipes.config import RecipeConfig, field

__all__ = [
    "CurriculumConfig",
    "ImageBackboneConfig",
    "ImageClassificationConfig",
    "MODES",
    "ObjectDetectionConfig",
    "QuestionAnsweringConfig",
    "SubsetConfig",
    "TextClassificationConfig",
    "TextConfig",
    "TokenClassificationConfig",
    "ignored_options",
    "ignored_values",
]

MODES = ("feature_extraction", "partial", "progressive", "full")

# Options nothing trains with when the backbone stays frozen.
_FROZEN_BACKBONE_IGNORES = (
    "head_epochs",
    "unfreeze_groups",
    "fine_tune_learning_rate",
    "layer_decay",
    "train_batchnorm",
)


def ignored_options(config_class, values):
    """`{option: (why it is ignored, what to do instead)}` for the options
    that a run with `values` (a config's field values, the mode among them)
    would not use."""
    fields = set(config_class.field_names())
    reasons = {}
    mode = values.get("mode")
    if mode == "feature_extraction":
        for name in _FROZEN_BACKBONE_IGNORES:
            if name in fields:
                reasons[name] = (
                    "the backbone stays frozen in feature extraction",
                    "use partial-fine-tuning, progressive-fine-tuning or "
                    "full-fine-tuning (--mode partial/progressive/full) to "
                    "train backbone groups",
                )
    elif mode == "full" and "unfreeze_groups" in fields:
        reasons["unfreeze_groups"] = (
            "full fine-tuning opens every group",
            "use partial-fine-tuning or progressive-fine-tuning to open only "
            "the top groups",
        )
    if values.get("freeze_backbone") and "layer_decay" in fields:
        reasons["layer_decay"] = (
            "the encoder stays frozen (--freeze-backbone)",
            "drop --freeze-backbone to train the encoder",
        )
    return reasons


def ignored_values(config):
    """`{option: reason}` for the options of `config` set away from their
    defaults that its run ignores (`ignored_options`)."""
    out = {}
    for name, (reason, _) in ignored_options(type(config), config.to_dict()).items():
        f = next(f for f in dataclasses.fields(config) if f.name == name)
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if getattr(config, name) != default:
            out[name] = reason
    return out
LOSSES = ("crossentropy", "focal")


def check_imbalance_options(config):
    """Validates `class_weight`, `label_smoothing` and `loss`."""
    weight = config.class_weight
    if isinstance(weight, str) and weight.strip().startswith("{"):
        return  # JSON from the command line; parsed by the recipe
    if weight is not None and weight != "balanced" and not isinstance(weight, dict):
        raise ValueError(
            "`class_weight` must be None, 'balanced' or a dict {class: "
            f"weight}}. Received: class_weight={weight!r}"
        )
    if isinstance(weight, dict):
        bad = {k: v for k, v in weight.items()
               if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0}
        if bad:
            raise ValueError(
                "`class_weight` values must be numbers >= 0. Received: "
                f"{bad}"
            )
    smoothing = config.label_smoothing
    if isinstance(smoothing, bool) or not isinstance(smoothing, (int, float)) or not (
        0 <= smoothing < 1
    ):
        raise ValueError(
            "`label_smoothing` must be in [0, 1). Received: "
            f"label_smoothing={smoothing!r}"
        )


# === Options several recipes share ===


@dataclasses.dataclass(frozen=True)
class SubsetConfig(RecipeConfig):
    """`max_train_samples` / `max_eval_samples` (`kerasft.recipes._subsets`)."""

    max_train_samples: typing.Optional[int] = field(
        None,
        "Train on a subset of this many examples (stratified by label where "
        "examples have one), taken after validation_split; none: all.",
    )
    max_eval_samples: typing.Optional[int] = field(
        None,
        "Evaluate on subsets of this many validation and test examples "
        "(stratified like max_train_samples); none: all.",
    )

    def _validate(self):
        super()._validate()
        for name in ("max_train_samples", "max_eval_samples"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ValueError(
                    f"`{name}` must be a positive integer or None. "
                    f"Received: {name}={value!r}"
                )


@dataclasses.dataclass(frozen=True)
class ImbalanceConfig(RecipeConfig):
    """`class_weight`, `label_smoothing` and `loss` of classification recipes."""

    class_weight: typing.Any = field(
        None,
        "Class weights for imbalanced data: balanced (scikit-learn's "
        "compute_class_weight on the training labels) or JSON "
        "'{\"class\": weight, ...}' keyed by class name or id; none: equal.",
    )
    label_smoothing: float = field(
        0.0, "Label smoothing in [0, 1) of the cross-entropy (or focal) loss."
    )
    loss: str = field(
        "crossentropy",
        "Classification loss: crossentropy, or focal (Keras's "
        "CategoricalFocalCrossentropy, for imbalanced data).",
        choices=LOSSES,
    )

    def _validate(self):
        super()._validate()
        check_imbalance_options(self)


@dataclasses.dataclass(frozen=True)
class CurriculumConfig(RecipeConfig):
    """`curriculum` / `difficulty` (`kerasft.recipes._curriculum`)."""

    curriculum: typing.Any = field(
        None,
        "Curriculum learning (kerasft.callbacks.Curriculum): a pacing, "
        "linear, root or step, or JSON '{\"pacing\": \"root\", "
        "\"start_fraction\": 0.2, \"ramp_epochs\": 5}'; each epoch trains "
        "on the easiest fraction the pacing allows. Needs --difficulty. "
        "none: every example, every epoch.",
    )
    difficulty: typing.Any = field(
        None,
        "What ranks the training examples for --curriculum: a finished run "
        "folder or a .keras model whose per-example loss scores them "
        "(lower = easier); in Python also a function scores(inputs, labels) "
        "or one score per training example.",
    )

    def _validate(self):
        super()._validate()
        from kerasft.recipes._curriculum import check_options

        check_options(self.curriculum, self.difficulty)


# === Image recipes ===


@dataclasses.dataclass(frozen=True)
class ImageBackboneConfig(RecipeConfig):
    """Options of recipes fine-tuning an image backbone (shared)."""

    train: typing.Any = field(
        None,
        "Training images: a folder with one sub-folder per class, a CSV of "
        "filename,label rows, or tfds:NAME[:SPLIT]. In Python also "
        "(images, labels) arrays or a tf.data.Dataset of (image, label).",
        required=True,
    )
    validation: typing.Any = field(
        None, "Validation data, in the same forms as --train."
    )
    test: typing.Any = field(None, "Test data, in the same forms as --train.")
    backbone: typing.Any = field(
        "efficientnetb0",
        "Backbone: a registry name (see kerasft.backbones.list_backbones), "
        "a saved .keras model, or in Python a kerasft Backbone.",
    )
    weights: typing.Optional[str] = field(
        "imagenet",
        "Backbone weights: imagenet, a weights file path, or none (random).",
    )
    image_size: int = field(224, "Image side in pixels (images are resized).")
    num_classes: typing.Optional[int] = field(
        None, "Number of classes; inferred from the training data if unset."
    )
    mode: str = field(
        "progressive",
        "Fine-tuning strategy: feature_extraction, partial, progressive, full.",
        choices=MODES,
    )
    head_epochs: int = field(
        2, "Epochs training the head alone before any backbone group opens."
    )
    unfreeze_groups: int = field(
        2, "Backbone groups (from the top) opened by partial/progressive."
    )
    fine_tune_learning_rate: float = field(
        1e-4, "Base learning rate once backbone groups train."
    )
    layer_decay: typing.Optional[float] = field(
        None,
        "Layer-wise learning-rate decay in (0, 1]: backbone group i from the "
        "top trains at rate x decay**i (kerasft.optimizers.LayerwiseLR).",
    )
    dropout: float = field(0.2, "Dropout before each Dense layer of the head.")
    train_batchnorm: bool = field(
        False, "Let BatchNorm layers of opened groups train (rarely wanted)."
    )

    def _validate(self):
        super()._validate()
        if self.mode != "feature_extraction":
            needed = self.head_epochs + (2 if self.mode == "progressive" else 1)
            if self.epochs < needed:
                raise ValueError(
                    f"mode={self.mode!r} with head_epochs={self.head_epochs} "
                    f"needs epochs >= {needed} so that backbone groups open. "
                    f"Received: epochs={self.epochs}"
                )
        if not isinstance(self.image_size, int) or self.image_size < 1:
            raise ValueError(
                "`image_size` must be a positive integer. Received: "
                f"image_size={self.image_size!r}"
            )
        if self.num_classes is not None and (
            not isinstance(self.num_classes, int) or self.num_classes < 1
        ):
            raise ValueError(
                "`num_classes` must be a positive integer. Received: "
                f"num_classes={self.num_classes!r}"
            )
        if self.layer_decay is not None and not 0 < self.layer_decay <= 1:
            raise ValueError(
                "`layer_decay` must be in (0, 1]. Received: "
                f"layer_decay={self.layer_decay!r}"
            )


@dataclasses.dataclass(frozen=True)
class ImageClassificationConfig(ImageBackboneConfig, SubsetConfig,
                                CurriculumConfig, ImbalanceConfig):
    """Options of the image classification recipes."""

    validation_split: float = field(
        0.1,
        "Fraction of --train held out for validation when --val is not "
        "given and --train is a folder, a CSV or arrays (tfds and datasets "
        "cannot be split: pass --val); 0 trains on everything.",
    )
    head_units: tuple = field(
        (), "Hidden Dense layer sizes of the head, e.g. 1024 or 512,128."
    )
    augment: typing.Optional[dict] = field(
        None,
        "ImageDataGenerator-style augmentation as JSON, e.g. "
        '\'{"rotation_range": 20, "horizontal_flip": true}\'.',
    )
    feature_cache: str = field(
        "auto",
        "feature_extraction without augmentation runs the frozen backbone "
        "once per split and trains the head on the features: auto (in "
        "memory, on disk in the run folder when larger than 2 GiB), memory, "
        "disk, or off (backbone every epoch).",
        choices=("auto", "memory", "disk", "off"),
    )

    def _validate(self):
        super()._validate()
        if not 0 <= self.validation_split < 1:
            raise ValueError(
                "`validation_split` must be in [0, 1). Received: "
                f"validation_split={self.validation_split!r}"
            )


@dataclasses.dataclass(frozen=True)
class ObjectDetectionConfig(ImageBackboneConfig, SubsetConfig):
    """Options of the object detection recipe."""

    backbone: object = field(
        "mobilenetv2",
        "Backbone: a registry name, a saved .keras model, or in Python a "
        "kerasft Backbone.",
    )
    mode: str = field(
        "feature_extraction",
        "Fine-tuning strategy: feature_extraction, partial, progressive, full.",
        choices=MODES,
    )
    conv_filters: tuple = field(
        (256,), "Filters of the head's 3x3 conv layers, e.g. 256 or 256,128."
    )
    bbox_loss: str = field("mse", "Box loss: mse or huber.", choices=("mse", "huber"))
    bbox_loss_weight: float = field(
        1.0, "Weight of the box loss against the class loss."
    )


# === Text recipes ===


@dataclasses.dataclass(frozen=True)
class TextConfig(SubsetConfig):
    """Options shared by the text recipes."""

    backbone: typing.Any = field(
        "bert_base_en_uncased",
        "Encoder: a KerasHub preset, hf://org/model, a local Hugging Face "
        "folder (config.json, model.safetensors, vocab.txt), or in Python a "
        "kerasft text Backbone.",
    )
    max_length: int = field(128, "Tokens per example (pad/truncate).")
    epochs: int = field(3, "Training epochs.")
    batch_size: int = field(16, "Batch size per replica.")
    learning_rate: float = field(
        2e-5, "Peak learning rate (head and top layer), before replica scaling."
    )
    weight_decay: float = field(0.01, "AdamW decoupled weight decay.")
    layer_decay: typing.Optional[float] = field(
        None,
        "Layer-wise learning-rate decay in (0, 1]: transformer layer i from "
        "the top trains at rate x decay**i.",
    )
    dropout: float = field(0.1, "Dropout before the output layer.")
    lr_schedule: str = field(
        "constant",
        "Learning rate over training: constant, linear or cosine decay to 0 "
        "(Hugging Face Trainer's default is linear).",
        choices=("constant", "linear", "cosine"),
    )
    warmup_ratio: float = field(
        0.0,
        "Fraction of the training steps spent warming the rate up linearly "
        "from 0 (Trainer's warmup_ratio).",
    )

    def _validate(self):
        super()._validate()
        if isinstance(self.warmup_ratio, bool) or not isinstance(
            self.warmup_ratio, (int, float)
        ) or not 0 <= self.warmup_ratio < 1:
            raise ValueError(
                "`warmup_ratio` must be in [0, 1). Received: "
                f"warmup_ratio={self.warmup_ratio!r}"
            )
        if not isinstance(self.max_length, int) or self.max_length < 8:
            raise ValueError(
                "`max_length` must be an integer >= 8. Received: "
                f"max_length={self.max_length!r}"
            )
        if self.layer_decay is not None and not 0 < self.layer_decay <= 1:
            raise ValueError(
                "`layer_decay` must be in (0, 1]. Received: "
                f"layer_decay={self.layer_decay!r}"
            )


@dataclasses.dataclass(frozen=True)
class TextClassificationConfig(TextConfig, CurriculumConfig, ImbalanceConfig):
    """Options of the text classification recipe."""

    train: typing.Any = field(
        None,
        "Training CSV/TSV with text,label[,text_pair] columns; in Python "
        "also (texts, labels).",
        required=True,
    )
    validation: typing.Any = field(None, "Validation CSV/TSV (same columns).")
    test: typing.Any = field(None, "Test CSV/TSV (same columns).")
    text_column: str = field("text", "Column of the (first) text.")
    label_column: str = field("label", "Column of the label.")
    pair_column: typing.Optional[str] = field(
        "auto",
        "Column of the second text of sentence pairs: auto uses text_pair "
        "when present; none reads no pairs.",
    )
    num_classes: typing.Optional[int] = field(
        None, "Number of classes; inferred from the training labels if unset."
    )
    freeze_backbone: bool = field(
        False, "Train only the head (feature extraction)."
    )
    lora_rank: typing.Optional[int] = field(
        None, "LoRA rank: train low-rank adapters instead of the encoder."
    )
    validation_split: float = field(
        0.1,
        "Fraction of --train held out for validation (stratified by label) "
        "when --val is not given; 0 trains on everything.",
    )

    def _validate(self):
        super()._validate()
        if not 0 <= self.validation_split < 1:
            raise ValueError(
                "`validation_split` must be in [0, 1). Received: "
                f"validation_split={self.validation_split!r}"
            )


@dataclasses.dataclass(frozen=True)
class QuestionAnsweringConfig(TextConfig):
    """Options of the question answering recipe."""

    train: typing.Any = field(
        None, "Training SQuAD-format JSON file.", required=True
    )
    validation: typing.Any = field(None, "Validation SQuAD-format JSON file.")
    max_length: int = field(384, "Tokens per question+context window.")
    doc_stride: typing.Optional[int] = field(
        128,
        "Tokens shared by consecutive windows when a context is longer than "
        "one window (Hugging Face run_qa's --doc_stride); none: one window "
        "per question, the rest of the context cut.",
    )
    max_answer_length: int = field(30, "Longest answer span in tokens.")
    n_best: int = field(
        20, "Candidate answers kept per question (nbest_predictions.json)."
    )
    version_2_with_negative: bool = field(
        False,
        "SQuAD v2.0: questions may have no answer; predict none when the "
        "[CLS] score beats the best span by null_score_diff_threshold.",
    )
    null_score_diff_threshold: float = field(
        0.0,
        "SQuAD v2.0: predict no answer when null score - best span score "
        "exceeds this.",
    )
    learning_rate: float = field(3e-5, "Peak learning rate, before scaling.")

    def _validate(self):
        super()._validate()
        for name in ("max_answer_length", "n_best"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"`{name}` must be a positive integer. Received: "
                    f"{name}={value!r}"
                )
        # The question takes at most half the window, so every window has
        # at least `room` context tokens; the overlap must leave a step.
        room = (self.max_length - 3) - (self.max_length - 3) // 2
        stride = self.doc_stride
        if stride is not None and (
            isinstance(stride, bool) or not isinstance(stride, int)
            or not 0 <= stride < room
        ):
            raise ValueError(
                f"`doc_stride` must be an integer in [0, {room}) for "
                f"max_length={self.max_length} (or None for one window). "
                f"Received: doc_stride={stride!r}"
            )


@dataclasses.dataclass(frozen=True)
class TokenClassificationConfig(TextConfig):
    """Options of the token classification (NER) recipe."""

    train: typing.Any = field(
        None,
        "Training sentences: a CoNLL-2003-style file (token ... tag per "
        "line, blank line between sentences) or JSON lines of "
        '{"tokens": [...], "tags": [...]}; in Python also (sentences, tags).',
        required=True,
    )
    validation: typing.Any = field(None, "Validation sentences (same formats).")
    test: typing.Any = field(None, "Test sentences (same formats).")
    labels: typing.Any = field(
        None,
        "Tag set, comma-separated (e.g. O,B-PER,I-PER); defaults to the "
        "training tags ('O' first, then sorted).",
    )
    tag_column: int = field(
        -1, "CoNLL files: column of the tag (-1: the last, as CoNLL-2003)."
    )
    label_all_tokens: bool = field(
        False,
        "Train on every WordPiece of a word (B- becomes I- after the first) "
        "instead of only the first one.",
    )
    learning_rate: float = field(
        5e-5, "Peak learning rate (head and top layer), before replica scaling."
    )
    freeze_backbone: bool = field(
        False, "Train only the head (feature extraction)."
    )
    lora_rank: typing.Optional[int] = field(
        None, "LoRA rank: train low-rank adapters instead of the encoder."
    )
