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
    "CausalLMConfig",
    "CurriculumConfig",
    "ImageBackboneConfig",
    "ImageCaptioningConfig",
    "FineTuningConfig",
    "HoldOutConfig",
    "ImageClassificationConfig",
    "MODES",
    "ObjectDetectionConfig",
    "QuestionAnsweringConfig",
    "Seq2SeqConfig",
    "SubsetConfig",
    "TextClassificationConfig",
    "TextConfig",
    "TransformerConfig",
    "TokenClassificationConfig",
    "SegmentationConfig",
    "VideoClassificationConfig",
    "ignored_options",
    "ignored_values",
]

MODES = ("feature_extraction", "partial", "progressive", "full")
# `augment` keys asking for MixUp / CutMix (timm's names): recipes whose
# labels are one class per image take them (`_classification.split_mixing`).
MIXING_KEYS = ("mixup_alpha", "cutmix_alpha")
# kerasft.optimizers.make_optimizer's (tests keep the two equal).
LR_SCHEDULES = ("constant", "linear", "cosine", "one_cycle")
DETECTION_KINDS = ("single", "retinanet")

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


# === Options several recipes share ===


def _training(help):
    """The `train` field (required) described by `help`."""
    return field(None, help, required=True)


def _same_forms(what):
    """A `validation` or `test` field: `what`, in the forms `train` takes."""
    return field(None, f"{what}, in the same forms as --train.")


@dataclasses.dataclass(frozen=True)
class CheckpointingConfig(RecipeConfig):
    """`gradient_checkpointing` for recipes whose model is `build_model`'s
    (`kerasft.remat`: each backbone group recomputes its activations)."""

    gradient_checkpointing: bool = field(
        False,
        "Recompute each backbone group's activations in the backward pass "
        "(kerasft.remat): less memory for about one more forward pass.",
    )


@dataclasses.dataclass(frozen=True)
class SubsetConfig(RecipeConfig):
    """`max_train_samples` / `max_eval_samples` (`kerasft.recipes._subsets`)."""

    max_train_samples: typing.Optional[int] = field(
        None,
        "Train on a subset of this many examples (stratified by label where "
        "examples have one), taken after validation_split; none: all.",
        check=1,
    )
    max_eval_samples: typing.Optional[int] = field(
        None,
        "Evaluate on subsets of this many validation and test examples "
        "(stratified like max_train_samples); none: all.",
        check=1,
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
        0.0, "Label smoothing in [0, 1) of the cross-entropy (or focal) loss.",
        check="fraction",
    )
    loss: str = field(
        "crossentropy",
        "Classification loss: crossentropy, or focal (Keras's "
        "CategoricalFocalCrossentropy, for imbalanced data).",
        choices=LOSSES,
    )

    def _validate(self):
        super()._validate()
        weight = self.class_weight
        if isinstance(weight, str) and weight.strip().startswith("{"):
            return  # JSON from the command line; parsed by the recipe
        if weight is not None and weight != "balanced" and not isinstance(weight, dict):
            raise ValueError(
                "`class_weight` must be None, 'balanced' or a dict {class: "
                f"weight}}. Received: class_weight={weight!r}"
            )
        bad = {k: v for k, v in (weight if isinstance(weight, dict) else {}).items()
               if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0}
        if bad:
            raise ValueError(
                f"`class_weight` values must be numbers >= 0. Received: {bad}"
            )


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


def _modes_that_fit(epochs, head_epochs, needed):
    """The sentence naming what trains in `epochs` epochs: another mode, or
    fewer `head_epochs` for this one."""
    offset = needed - head_epochs  # epochs this mode needs past the head's
    options = ["mode='feature_extraction'"]
    if offset == 2:  # progressive: partial and full need one epoch less
        if epochs >= head_epochs + 1:
            options.append("mode='partial' or mode='full'")
        elif epochs >= 1:
            options.append(
                f"mode='partial' or mode='full' with head_epochs={epochs - 1}"
            )
    if epochs - offset >= 0:
        options.append(f"head_epochs={epochs - offset} with this mode")
    return f"For epochs={epochs}, use " + ", or ".join(options) + "."


@dataclasses.dataclass(frozen=True)
class FineTuningConfig(RecipeConfig):
    """How the pretrained model trains, the same in every recipe: the mode's
    stages (`kerasft.recipes._stages`: what is frozen when, at which rate)
    and the run's one optimizer (`Run.optimizer`). Families override the
    defaults: image recipes open the backbone in stages, text and
    generative ones train everything from the first step."""

    mode: str = field(
        "progressive",
        "Fine-tuning strategy: feature_extraction (backbone frozen), partial "
        "(top --unfreeze-groups open after --head-epochs), progressive (top "
        "groups, then all) or full (all groups after --head-epochs).",
        choices=MODES,
    )
    head_epochs: int = field(
        2, "Epochs training the head alone before any backbone group opens.",
        check=0,
    )
    unfreeze_groups: int = field(
        2, "Backbone groups (from the top) opened by partial/progressive.",
        check=1,
    )
    fine_tune_learning_rate: typing.Optional[float] = field(
        1e-4,
        "Base learning rate once backbone groups train; none: learning_rate.",
        check="positive",
    )
    layer_decay: typing.Optional[float] = field(
        None,
        "Layer-wise learning-rate decay in (0, 1]: backbone group i from the "
        "top trains at rate x decay**i (kerasft.optimizers.LayerwiseLR).",
        check="decay",
    )
    weight_decay: float = field(
        0.0,
        "AdamW decoupled weight decay (never on biases or normalisation "
        "parameters, see --no-weight-decay); 0 gives Adam's update.",
        check="nonnegative",
    )
    lr_schedule: str = field(
        "constant",
        "Learning rate within each stage of --mode: constant, linear or "
        "cosine decay to 0, or one_cycle (fastai's: warm up, then anneal).",
        choices=LR_SCHEDULES,
    )
    warmup_ratio: float = field(
        0.0,
        "Fraction of each stage's steps spent warming the rate up linearly "
        "from 0 (Hugging Face Trainer's warmup_ratio).",
        check="fraction",
    )

    def _validate(self):
        super()._validate()
        if self.mode not in ("feature_extraction", "auto"):
            needed = self.head_epochs + (2 if self.mode == "progressive" else 1)
            if self.epochs < needed:
                raise ValueError(
                    f"mode={self.mode!r} with head_epochs={self.head_epochs} "
                    f"needs epochs >= {needed} so that backbone groups open. "
                    f"Received: epochs={self.epochs}. "
                    + _modes_that_fit(self.epochs, self.head_epochs, needed)
                )

    def backbone_learning_rate(self):
        """The base rate once backbone groups train."""
        if self.fine_tune_learning_rate is None:
            return self.learning_rate
        return self.fine_tune_learning_rate


@dataclasses.dataclass(frozen=True)
class HoldOutConfig(RecipeConfig):
    """`validation_split`: part of --train held out when --val is absent."""

    validation_split: float = field(
        0.1,
        "Fraction of --train held out for validation when --val is not "
        "given (stratified by label where examples have one); 0 trains on "
        "everything.",
        check="fraction",
    )


@dataclasses.dataclass(frozen=True)
class ImageBackboneConfig(FineTuningConfig, HoldOutConfig, SubsetConfig,
                          CheckpointingConfig):
    """Options of recipes fine-tuning an image backbone (shared)."""

    train: typing.Any = _training(
        "Training images: a folder with one sub-folder per class, a CSV of "
        "filename,label rows, or tfds:NAME[:SPLIT]. In Python also "
        "(images, labels) arrays or a tf.data.Dataset of (image, label)."
    )
    validation: typing.Any = _same_forms("Validation data")
    test: typing.Any = _same_forms("Test data")
    backbone: typing.Any = field(
        "efficientnetb0",
        "Backbone: a registry name (see kerasft.backbones.list_backbones), "
        "a saved .keras model, or in Python a kerasft Backbone.",
    )
    weights: typing.Optional[str] = field(
        "imagenet",
        "Backbone weights: imagenet, a weights file path, or none (random).",
    )
    image_size: int = field(
        224, "Image side in pixels (images are resized).", check=1
    )
    num_classes: typing.Optional[int] = field(
        None, "Number of classes; inferred from the training data if unset.",
        check=1,
    )
    dropout: float = field(
        0.2, "Dropout before each Dense layer of the head.", check="fraction"
    )
    train_batchnorm: bool = field(
        False, "Let BatchNorm layers of opened groups train (rarely wanted)."
    )

    # Why `augment` may not mix images (MIXING_KEYS); `None`: it may (labels
    # are one class per image).
    _no_mixing = ("this recipe: MixUp and CutMix blend the labels of whole "
                  "images, which its labels are not")

    def _validate(self):
        super()._validate()
        augment = getattr(self, "augment", None)
        augment = augment if isinstance(augment, dict) else {}
        mixing = [k for k in augment if "mix" in str(k).lower()]
        if mixing and self._no_mixing:
            raise ValueError(
                f"`augment` cannot mix images for {self._no_mixing} "
                f"({mixing[0]!r}). Remove MixUp/CutMix from `augment`. "
                f"Received: augment={augment!r}"
            )
        asked = [k for k in MIXING_KEYS if augment.get(k)]
        if len(asked) > 1:
            raise ValueError(
                "`augment` takes mixup_alpha or cutmix_alpha, not both (each "
                f"batch is mixed one way). Received: augment={augment!r}"
            )


@dataclasses.dataclass(frozen=True)
class ImageClassificationConfig(ImageBackboneConfig, CurriculumConfig,
                                ImbalanceConfig):
    """Options of the image classification recipes."""

    # "auto" (issue 25): `kerasft.advise` measures the data and the backbone
    # and chooses the mode, rates and epochs (kerasft/advisor/).
    mode: str = field(
        "progressive",
        "Fine-tuning strategy: feature_extraction, partial, progressive, "
        "full, or auto (measured and chosen by kerasft.advise; writes "
        "advice.json).",
        choices=MODES + ("auto",),
    )
    head_units: tuple = field(
        (), "Hidden Dense layer sizes of the head, e.g. 1024 or 512,128."
    )
    augment: typing.Optional[dict] = field(
        None,
        "ImageDataGenerator-style augmentation as JSON, e.g. "
        '\'{"rotation_range": 20, "horizontal_flip": true}\'; '
        "mixup_alpha or cutmix_alpha adds MixUp or CutMix of the training "
        "batches (soft labels).",
    )
    _no_mixing = None
    feature_cache: str = field(
        "auto",
        "feature_extraction without augmentation runs the frozen backbone "
        "once per split and trains the head on the features: auto (in "
        "memory, on disk in the run folder when larger than 2 GiB), memory, "
        "disk, or off (backbone every epoch).",
        choices=("auto", "memory", "disk", "off"),
    )


@dataclasses.dataclass(frozen=True)
class ObjectDetectionConfig(ImageBackboneConfig):
    """Options of the object detection recipe."""

    _no_mixing = "object detection: its labels are boxes, not one class per image"

    train: typing.Any = _training(
        "Training boxes: a CSV of filename,xmin,ymin,xmax,ymax,label rows "
        "(pixels; paths relative to the CSV), one row per image for "
        "kind=single; kind=retinanet takes any number of rows per image, "
        "a COCO .json file or a Pascal VOC folder."
    )
    validation: typing.Any = _same_forms("Validation boxes")
    test: typing.Any = _same_forms("Test boxes")
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
    kind: str = field(
        "single",
        "Detector: single (one box and class per image, the tutorial's "
        "head) or retinanet (any number of boxes per image: feature pyramid, "
        "anchors, focal loss, NMS; train/validation/test may then also be a "
        "COCO .json file or a Pascal VOC folder).",
        choices=DETECTION_KINDS,
    )
    augment: typing.Optional[dict] = field(
        None,
        "kind=retinanet: ImageDataGenerator-style augmentation as JSON; "
        "boxes move with the pixels, e.g. '{\"horizontal_flip\": true}'.",
    )
    max_boxes: typing.Optional[int] = field(
        None,
        "kind=retinanet: box rows per image (static shapes); none: the most "
        "any training image has.",
    )
    anchor_size: float = field(
        4.0,
        "kind=retinanet: anchors at pyramid level L have side "
        "anchor_size * 2**L pixels (4: 32 px at stride 8).",
    )
    max_level: int = field(
        7,
        "kind=retinanet: highest pyramid level; levels above the backbone's "
        "stride 32 (P5) are strided convs.",
    )
    fpn_filters: int = field(256, "kind=retinanet: channels of the feature pyramid.")
    head_filters: int = field(
        256, "kind=retinanet: channels of the box and class towers."
    )
    head_conv_layers: int = field(4, "kind=retinanet: 3x3 convs per tower.")

    def _validate(self):
        super()._validate()
        retinanet_only = ("augment", "max_boxes", "anchor_size", "max_level",
                          "fpn_filters", "head_filters", "head_conv_layers")
        single_only = ("conv_filters", "bbox_loss", "bbox_loss_weight")
        wrong = single_only if self.kind == "retinanet" else retinanet_only
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        changed = [n for n in wrong if getattr(self, n) != defaults[n]
                   and not (isinstance(defaults[n], tuple)
                            and tuple(getattr(self, n)) == defaults[n])]
        if changed:
            other = "single" if self.kind == "retinanet" else "retinanet"
            raise ValueError(
                f"{changed} only apply to kind={other!r}. Received them "
                f"with kind={self.kind!r}."
            )
        if self.kind == "retinanet" and self.image_size % 32:
            raise ValueError(
                "kind='retinanet' needs `image_size` to be a multiple of 32 "
                "(the pyramid's stride 32 level must tile the image). "
                f"Received: image_size={self.image_size}"
            )


SEGMENTATION_KINDS = ("unet", "deeplabv3plus")
SEGMENTATION_LOSSES = ("crossentropy", "crossentropy_dice")


@dataclasses.dataclass(frozen=True)
class SegmentationConfig(ImageBackboneConfig):
    """Options of the semantic segmentation recipe."""

    _no_mixing = ("segmentation: its labels are per-pixel masks (MixUp and "
                  "CutMix of masks are not implemented)")

    train: typing.Any = _training(
        "Training data: a folder holding images/ and masks/ (masks: palette "
        "or integer PNGs named like their image), or tfds:NAME[:SPLIT]. In "
        "Python also (image_dir, mask_dir) or (images, masks) arrays."
    )
    backbone: typing.Any = field(
        "mobilenetv2",
        "Backbone: a registry name, a saved .keras model, or in Python a "
        "kerasft Backbone; its feature pyramid feeds the decoder.",
    )
    image_size: int = field(
        128, "Image side in pixels (images bilinear, masks nearest)."
    )
    num_classes: typing.Optional[int] = field(
        None,
        "Number of classes (background included); inferred from the "
        "training masks (largest label + 1) if unset.",
    )
    kind: str = field(
        "unet",
        "Decoder: unet (upsampling with a skip from every level) or "
        "deeplabv3plus (ASPP on the deepest level + a low-level skip).",
        choices=SEGMENTATION_KINDS,
    )
    levels: tuple = field(
        (),
        "Feature-pyramid levels (level L = stride 2**L), e.g. 1,2,3,4,5; "
        "empty: unet 1-5 (those the backbone has), deeplabv3plus 2 and the "
        "deepest up to 5.",
    )
    decoder_filters: typing.Optional[int] = field(
        None, "Channels of the decoder convs; none: 64 unet, 256 deeplabv3plus."
    )
    loss: str = field(
        "crossentropy",
        "Loss: crossentropy, or crossentropy_dice (plus dice_weight x soft "
        "Dice).",
        choices=SEGMENTATION_LOSSES,
    )
    dice_weight: float = field(1.0, "Weight of the Dice term (crossentropy_dice).")
    ignore_index: typing.Optional[int] = field(
        255,
        "Mask label of pixels to ignore in the loss and metrics (VOC's 255); "
        "none: every label is a class.",
    )
    class_names: typing.Any = field(
        None,
        "Class names in id order, comma-separated (labels.json, metrics); "
        "none: the ids.",
    )
    augment: typing.Optional[dict] = field(
        None,
        "ImageDataGenerator-style augmentation as JSON; masks move with the "
        "pixels (nearest), uncovered mask pixels get ignore_index, e.g. "
        '\'{"horizontal_flip": true, "rotation_range": 15}\'.',
    )

    def _validate(self):
        super()._validate()
        if self.loss != "crossentropy_dice" and self.dice_weight != 1.0:
            raise ValueError(
                "`dice_weight` only applies with loss='crossentropy_dice'. "
                f"Received: dice_weight={self.dice_weight!r}, loss={self.loss!r}"
            )
        if not self.dice_weight > 0:
            raise ValueError(
                f"`dice_weight` must be > 0. Received: dice_weight={self.dice_weight!r}"
            )
        if any(isinstance(l, bool) or not isinstance(l, int) or l < 0
               for l in self.levels) or list(self.levels) != sorted(set(self.levels)):
            raise ValueError(
                "`levels` must be strictly increasing non-negative ints, e.g. "
                f"1,2,3,4,5. Received: levels={self.levels!r}"
            )
        if self.num_classes is not None and self.num_classes < 2:
            raise ValueError(
                "`num_classes` must be >= 2 (background counts as a class). "
                f"Received: num_classes={self.num_classes!r}"
            )
        names = self.class_name_list()
        if names is not None and self.num_classes is not None and (
            len(names) != self.num_classes
        ):
            raise ValueError(
                f"{len(names)} `class_names` but "
                f"num_classes={self.num_classes}. Pass one of them."
            )

    def class_name_list(self):
        """`class_names` as a list (split at commas), or `None`."""
        names = self.class_names
        if names is None:
            return None
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",") if n.strip()]
        return [str(n) for n in names] or None


@dataclasses.dataclass(frozen=True)
class VideoClassificationConfig(ImageBackboneConfig, CurriculumConfig,
                                ImbalanceConfig):
    """Options of the video classification recipe (`video_classification`)."""

    _no_mixing = None

    train: typing.Any = _training(
        "Training clips: a folder with one sub-folder per class holding "
        "video files (mp4, avi, webm, mkv) or folders of frame images."
    )
    validation: typing.Any = field(
        None, "Validation clips, a folder laid out as --train."
    )
    test: typing.Any = field(None, "Test clips, a folder laid out as --train.")
    backbone: typing.Any = field(
        "mobilenetv2",
        "Image backbone run on every frame: a registry name, a saved .keras "
        "model, or in Python a kerasft Backbone.",
    )
    image_size: int = field(112, "Frame side in pixels (frames are resized).")
    batch_size: int = field(8, "Clips per batch per replica.")
    frames: int = field(16, "Frames per clip.", check=1)
    sampling: str = field(
        "uniform",
        "Which frames: uniform (spread over the clip, chosen once) or "
        "random_consecutive (a random window every epoch).",
        choices=("uniform", "random_consecutive"),
    )
    temporal: str = field(
        "gru",
        "Temporal model over the frame features: gru, transformer, conv1d "
        "or mean (order-blind baseline).",
        choices=("gru", "transformer", "conv1d", "mean"),
    )
    temporal_units: int = field(128, "Width of the temporal model.")
    head_units: tuple = field(
        (), "Hidden Dense layer sizes after the temporal model, e.g. 256."
    )
    augment: typing.Optional[dict] = field(
        None,
        "ImageDataGenerator-style augmentation as JSON, one random transform "
        'per clip, e.g. \'{"horizontal_flip": true, "zoom_range": 0.1}\'; '
        "mixup_alpha or cutmix_alpha adds MixUp or CutMix of whole training "
        "clips (one weight, or one box in every frame).",
    )
    feature_cache: str = field(
        "auto",
        "feature_extraction with uniform sampling and no augmentation runs "
        "the frozen backbone once per split and trains the head on cached "
        "per-frame features: auto (memory, disk above 2 GiB), memory, disk, "
        "or off.",
        choices=("auto", "memory", "disk", "off"),
    )

    def _validate(self):
        super()._validate()
        from kerasft.recipes._curriculum import pacing_options

        if self.sampling != "uniform" and (
            pacing_options(self.curriculum) is not None
        ):
            raise ValueError(
                "`curriculum` ranks fixed clips, but random_consecutive "
                "sampling draws new frames every epoch: use "
                "sampling='uniform' with a curriculum. Received: "
                f"sampling={self.sampling!r}"
            )


@dataclasses.dataclass(frozen=True)
class ImageCaptioningConfig(ImageBackboneConfig):
    """Options of the image captioning recipe (`image_captioning`)."""

    _no_mixing = "captioning: a blend of two images has no caption"
    _recipe = "image_captioning"

    export: typing.Any = field(
        None, "Not supported: caption with `kerasft predict`.",
        refused="is not supported by {recipe} (captions come from a "
        "generation loop, not one model call)",
    )

    train: typing.Any = _training(
        "Training captions: a CSV of image,caption rows (several rows per "
        "image allowed) or a COCO captions JSON; image paths relative to "
        "--image-dir or the file's folder. In Python also a list of "
        "(image_path, caption) pairs."
    )
    validation: typing.Any = _same_forms("Validation captions")
    test: typing.Any = _same_forms("Test captions")
    num_classes: typing.Optional[int] = field(
        None, "Not used: the vocabulary sets the outputs.",
        refused="is not used by {recipe} (the vocabulary sets the outputs)",
    )
    image_dir: typing.Optional[str] = field(
        None, "Folder the image paths are relative to (default: the file's)."
    )
    image_column: str = field("image", "CSV column of image paths.")
    caption_column: str = field("caption", "CSV column of captions.")
    validation_split: float = field(
        0.1,
        "Fraction of the training images (with all their captions) held out "
        "for validation when --val is not given; 0 trains on everything.",
    )
    vocabulary: typing.Optional[str] = field(
        None,
        "A WordPiece vocabulary file (one token per line, starting [PAD], "
        "[UNK], [START], [END]); none: built from the training captions.",
    )
    vocabulary_size: int = field(
        5000, "Most WordPiece tokens when building the vocabulary.", check=8
    )
    max_length: int = field(
        24,
        "Decoder positions per caption, [START] included (longer captions "
        "are cut, counted).",
        check=2,
    )
    embed_dim: int = field(256, "Width of the Transformer decoder.", check=1)
    decoder_layers: int = field(2, "TransformerDecoder blocks.", check=1)
    num_heads: int = field(4, "Attention heads of each decoder block.", check=1)
    dropout: float = field(0.1, "Dropout inside the decoder blocks.")
    num_beams: int = field(
        3,
        "Evaluation decodes greedily, and with more than 1 also by beam "
        "search with this many beams (scores under val_beam_*).",
        check=1,
    )
    samples: int = field(
        16, "Images (with generated and reference captions) in captions.png.",
        check=0,
    )
    augment: typing.Optional[dict] = field(
        None,
        "ImageDataGenerator-style augmentation of the training images as "
        'JSON, e.g. \'{"horizontal_flip": true, "zoom_range": 0.1}\'.',
    )
    lora_rank: typing.Optional[int] = field(
        None,
        "LoRA rank for a transformer (ViT) image encoder: train low-rank "
        "adapters on its attention projections instead of its weights.",
        check=1,
    )

    def _validate(self):
        super()._validate()
        if self.embed_dim % self.num_heads:
            raise ValueError(
                "`embed_dim` must be a multiple of `num_heads`. Received: "
                f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"
            )
        self._validate_lora()

    def _validate_lora(self):
        if not self.lora_rank:
            return
        if self.mode != "full" or self.head_epochs:
            raise ValueError(
                "`lora_rank` trains the encoder's adapters with the decoder "
                "from the first step: use it with mode='full' and "
                f"head_epochs=0. Received: lora_rank={self.lora_rank}, "
                f"mode={self.mode!r}, head_epochs={self.head_epochs}"
            )
        if isinstance(self.backbone, str) and not self.backbone.endswith(".keras"):
            raise ValueError(
                f"`lora_rank` needs a transformer (ViT) image encoder, but "
                f"backbone={self.backbone!r} is a convnet without attention "
                "projections. Pass a ViT (kerasft.backbones.from_keras_hub("
                "keras_hub.models.ViTBackbone...)), or drop `lora_rank` and "
                "use mode='partial' to train fewer weights."
            )


# === Text recipes ===


@dataclasses.dataclass(frozen=True)
class TransformerConfig(FineTuningConfig, HoldOutConfig, SubsetConfig,
                        CheckpointingConfig):
    """The fine-tuning options of the text and generative recipes: the
    same `FineTuningConfig`, with every layer training from the first step
    by default (mode full, no head-only epochs), AdamW's weight decay, and
    LoRA adapters as the alternative to training the weights."""

    epochs: int = field(3, "Training epochs.")
    mode: str = field(
        "full",
        "Fine-tuning strategy: full (every layer trains), feature_extraction "
        "(model frozen, only the head trains), partial (top "
        "--unfreeze-groups transformer layers open after --head-epochs) or "
        "progressive (top groups, then all).",
        choices=MODES,
    )
    head_epochs: int = field(
        0, "Epochs training the head alone before any layer of the model opens."
    )
    fine_tune_learning_rate: typing.Optional[float] = field(
        None,
        "Base learning rate once the model's layers train (after "
        "--head-epochs); none: learning_rate.",
    )
    layer_decay: typing.Optional[float] = field(
        None,
        "Layer-wise learning-rate decay in (0, 1]: transformer layer i from "
        "the top trains at rate x decay**i (kerasft.optimizers.LayerwiseLR).",
    )
    weight_decay: float = field(
        0.01,
        "AdamW decoupled weight decay (never on biases or normalisation "
        "parameters, see --no-weight-decay).",
    )
    lora_rank: typing.Optional[int] = field(
        None,
        "LoRA rank: train low-rank adapters on the attention projections "
        "instead of the model's weights.",
        check=1,
    )

    def _validate(self):
        super()._validate()
        if self.lora_rank and (self.mode != "full" or self.head_epochs):
            raise ValueError(
                "`lora_rank` trains adapters in every layer from the first "
                "step: use it with mode='full' and head_epochs=0. Received: "
                f"lora_rank={self.lora_rank}, mode={self.mode!r}, "
                f"head_epochs={self.head_epochs}"
            )


@dataclasses.dataclass(frozen=True)
class TextConfig(TransformerConfig):
    """Options shared by the text recipes."""

    backbone: typing.Any = field(
        "bert_base_en_uncased",
        "Encoder: a KerasHub preset, hf://org/model, a local Hugging Face "
        "folder (config.json, model.safetensors, vocab.txt), or in Python a "
        "kerasft text Backbone.",
    )
    max_length: int = field(128, "Tokens per example (pad/truncate).", check=8)
    batch_size: int = field(16, "Batch size per replica.")
    learning_rate: float = field(
        2e-5, "Peak learning rate (head and top layer), before replica scaling."
    )
    dropout: float = field(
        0.1, "Dropout before the output layer.", check="fraction"
    )


@dataclasses.dataclass(frozen=True)
class TextClassificationConfig(TextConfig, CurriculumConfig, ImbalanceConfig):
    """Options of the text classification recipe."""

    train: typing.Any = _training(
        "Training CSV/TSV with text,label[,text_pair] columns; in Python "
        "also (texts, labels)."
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


@dataclasses.dataclass(frozen=True)
class QuestionAnsweringConfig(TextConfig):
    """Options of the question answering recipe."""

    train: typing.Any = _training("Training SQuAD-format JSON file.")
    validation: typing.Any = field(None, "Validation SQuAD-format JSON file.")
    test: typing.Any = field(None, "Test SQuAD-format JSON file.")
    max_length: int = field(384, "Tokens per question+context window.")
    doc_stride: typing.Optional[int] = field(
        128,
        "Tokens shared by consecutive windows when a context is longer than "
        "one window (Hugging Face run_qa's --doc_stride); none: one window "
        "per question, the rest of the context cut.",
    )
    max_answer_length: int = field(
        30, "Longest answer span in tokens.", check=1
    )
    n_best: int = field(
        20, "Candidate answers kept per question (nbest_predictions.json).",
        check=1,
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
class TokenClassificationConfig(TextConfig, CurriculumConfig, ImbalanceConfig):
    """Options of the token classification (NER) recipe."""

    train: typing.Any = _training(
        "Training sentences: a CoNLL-2003-style file (token ... tag per "
        "line, blank line between sentences) or JSON lines of "
        '{"tokens": [...], "tags": [...]}; in Python also (sentences, tags).'
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


# === Generative recipes (seq2seq, causal_lm) ===

_NO_HEAD = (
    "GPT-2, T5 and BART have no layer outside the pretrained model to train "
    "alone (their output layer is the token embedding's)"
)


@dataclasses.dataclass(frozen=True)
class GenerativeTrainingConfig(TransformerConfig):
    """The options `seq2seq` and `causal_lm` share: `TransformerConfig`'s,
    with warmup + linear decay by default, and LoRA adapters saved alone."""

    export: typing.Any = field(
        None, "Not supported: generate with `kerasft generate`.",
        refused="is not supported by {recipe} (generation loops do not "
        "export to SavedModel/TFLite here)",
    )
    # Nothing can train alone: no feature_extraction, no head-only epochs.
    mode: str = field(
        "full",
        "Fine-tuning strategy: full (every layer trains), partial (only the "
        "top --unfreeze-groups transformer layers train) or progressive (top "
        "groups, then all).",
        choices=MODES[1:],
    )
    head_epochs: int = field(
        0, "Not supported: there is no head.",
        refused=f"trains only a head first, and {_NO_HEAD}. Use head_epochs=0",
    )
    fine_tune_learning_rate: typing.Optional[float] = field(
        None,
        "Base learning rate of the model's layers, in place of "
        "learning_rate; none: learning_rate.",
    )
    lr_schedule: str = field(
        "linear",
        "Learning rate within each stage of --mode: linear (the default of "
        "T5/BART and GPT-2 fine-tuning scripts) or cosine decay to 0, "
        "one_cycle, or constant.",
        choices=LR_SCHEDULES,
    )
    warmup_ratio: float = field(
        0.1,
        "Fraction of each stage's steps warming the rate up linearly from 0.",
    )
    layer_decay: typing.Optional[float] = field(
        None,
        "Layer-wise learning-rate decay in (0, 1]: transformer layer i from "
        "the top (in seq2seq models the decoder layers above the encoder "
        "layers) trains at rate x decay**i.",
    )
    lora_rank: typing.Optional[int] = field(
        None,
        "LoRA rank: train low-rank adapters on the attention projections "
        "only (saved alone as lora.weights.h5).",
    )
    merge_lora: bool = field(
        False,
        "With --lora-rank: fold the adapters into the weights and write the "
        "whole model as model.keras.",
    )
    gradient_checkpointing: bool = field(
        False,
        "Recompute each transformer block's activations in the backward pass "
        "(same dropout masks, same gradients): less memory for about one "
        "more forward pass.",
    )

    def _validate(self):
        if str(self.mode).replace("-", "_") == "feature_extraction":
            raise ValueError(
                f"mode='feature_extraction' trains only a head, and {_NO_HEAD}. "
                "Use mode='partial' (the top `unfreeze_groups` transformer "
                "layers train) or lora_rank (adapters) for a light "
                "fine-tune. Received: mode='feature_extraction'"
            )
        super()._validate()
        if self.merge_lora and not self.lora_rank:
            raise ValueError(
                "`merge_lora` needs `lora_rank` (there are no adapters to "
                "merge). Received: merge_lora=True, lora_rank=None"
            )


# === Causal language modelling ===

SAMPLERS = ("greedy", "top_k", "top_p")


@dataclasses.dataclass(frozen=True)
class CausalLMConfig(GenerativeTrainingConfig):
    """Options of the causal language modelling recipe (`causal_lm`)."""

    _recipe = "causal_lm"

    train: typing.Any = _training(
        "Training corpus: a text file, a folder of .txt files (one document "
        "per file) or a CSV/TSV (one document per row of --text-column); in "
        "Python also a list of strings."
    )
    validation: typing.Any = _same_forms("Validation corpus")
    test: typing.Any = field(
        None,
        "Test corpus, in the same forms as --train, scored like validation "
        "(test_loss, test_perplexity).",
    )
    max_train_samples: typing.Optional[int] = field(
        None,
        "Train on a seeded random subset of this many packed windows, taken "
        "after validation_split; none: all.",
    )
    max_eval_samples: typing.Optional[int] = field(
        None,
        "Score subsets of this many validation and test windows; none: all.",
    )
    validation_split: float = field(
        0.1,
        "Fraction of the training tokens (the end of the corpus) held out "
        "for validation when --val is not given; 0 trains on everything.",
    )
    text_column: str = field("text", "CSV/TSV column holding the documents.")
    backbone: typing.Any = field(
        "gpt2_base_en",
        "Model: a KerasHub preset, hf://org/name, a local Hugging Face GPT-2 "
        "folder (config.json, model.safetensors, vocab.json, merges.txt) or "
        "KerasHub preset folder; in Python also a KerasHub CausalLM task.",
    )
    sequence_length: int = field(
        256, "Tokens per training window (at most the model's maximum).",
        check=1,
    )
    stride: typing.Optional[int] = field(
        None,
        "Tokens between the starts of consecutive windows, in [1, "
        "sequence_length]; smaller overlaps the windows (more context per "
        "token); none: sequence_length (no overlap).",
    )
    batch_size: int = field(8, "Windows per batch per replica.")
    learning_rate: float = field(
        5e-5, "Peak learning rate (AdamW), before replica scaling."
    )
    prompts: typing.Any = field(
        (),
        "Prompts to sample from after training, separated by '|' (written "
        "with their samples to samples.json); in Python a list of strings.",
    )
    sample_length: typing.Optional[int] = field(
        None,
        "Tokens per sample, prompt included (at most the model's maximum); "
        "none: sequence_length.",
        check=1,
    )
    sampler: str = field(
        "top_k", "How samples pick tokens: greedy, top_k or top_p.",
        choices=SAMPLERS,
    )
    top_k: int = field(
        50, "top_k sampling: tokens considered per step.", check=1
    )
    top_p: float = field(
        0.9, "top_p sampling: smallest set of tokens with this probability.",
        check="decay",
    )

    def _validate(self):
        super()._validate()
        stride = self.stride
        if stride is not None and (
            isinstance(stride, bool) or not isinstance(stride, int)
            or not 1 <= stride <= self.sequence_length
        ):
            raise ValueError(
                f"`stride` must be an integer in [1, sequence_length="
                f"{self.sequence_length}] or None. Received: stride={stride!r}"
            )
        prompt_list(self.prompts)  # raises on a bad value


def prompt_list(prompts):
    """`prompts` as a list of strings: `"a|b"` (the command line) or a
    list/tuple of strings; empty prompts are dropped."""
    if prompts is None:
        return []
    if isinstance(prompts, str):
        return [p for p in prompts.split("|") if p.strip()]
    if isinstance(prompts, (list, tuple)) and all(isinstance(p, str) for p in prompts):
        return [p for p in prompts if p.strip()]
    raise ValueError(
        "`prompts` must be a list of strings or one string of prompts "
        f"separated by '|'. Received: prompts={prompts!r}"
    )


# === Sequence to sequence ===


@dataclasses.dataclass(frozen=True)
class Seq2SeqConfig(GenerativeTrainingConfig):
    """Options of the sequence-to-sequence recipe (`seq2seq`)."""

    _recipe = "seq2seq"

    train: typing.Any = _training(
        "Training pairs: a CSV/TSV with --source-column and --target-column; "
        "in Python also a list of (source, target) pairs or a tf.data "
        "dataset of them."
    )
    validation: typing.Any = _same_forms("Validation pairs")
    test: typing.Any = _same_forms("Test pairs")
    source_column: str = field("source", "CSV/TSV column of the inputs.")
    target_column: str = field("target", "CSV/TSV column of the outputs.")
    backbone: typing.Any = field(
        "t5_small_multi",
        "Model: a KerasHub preset (T5, BART), hf://org/name, a local Hugging "
        "Face folder (config.json, model.safetensors + tokenizer files) or "
        "KerasHub preset folder; in Python also a KerasHub Seq2SeqLM task.",
    )
    task_prefix: str = field(
        "",
        "Text put before every source, as T5 was trained, e.g. 'translate "
        "English to German: '.",
    )
    source_length: int = field(
        128, "Encoder tokens per example (longer sources are cut, counted).",
        check=2,
    )
    target_length: int = field(
        64, "Decoder tokens per example (longer targets are cut, counted).",
        check=2,
    )
    batch_size: int = field(16, "Pairs per batch per replica.")
    learning_rate: float = field(
        3e-4, "Peak learning rate (AdamW), before replica scaling."
    )
    num_beams: int = field(
        1,
        "Evaluation decodes greedily, and with more than 1 also by beam "
        "search with this many beams (scores under val_beam_*).",
        check=1,
    )
    generation_length: typing.Optional[int] = field(
        None,
        "Most decoder tokens per generated prediction (start token "
        "included); none: target_length.",
        check=1,
    )

    def _validate(self):
        super()._validate()
        if not isinstance(self.task_prefix, str):
            raise ValueError(
                "`task_prefix` must be a string. Received: "
                f"task_prefix={self.task_prefix!r}"
            )
