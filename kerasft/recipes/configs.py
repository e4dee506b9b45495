"""The recipes' config dataclasses, in a module that does not import TensorFlow.

`kerasft --help` and `kerasft <recipe> --help` build their flags from these
classes, so they answer without TensorFlow's start-up cost. Each recipe
module re-exports the class it runs.
"""

import dataclasses
from typing import Any, Optional

from kerasft.recipes.config import RecipeConfig, describe, field, is_number

__all__ = [
    "CausalLMConfig",
    "ClassificationConfig",
    "FineTuningConfig",
    "ImageBackboneConfig",
    "ImageCaptioningConfig",
    "ImageClassificationConfig",
    "MODES",
    "ObjectDetectionConfig",
    "QuestionAnsweringConfig",
    "SegmentationConfig",
    "Seq2SeqConfig",
    "TextClassificationConfig",
    "TextConfig",
    "TokenClassificationConfig",
    "TransformerConfig",
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

# `{mode: (options its run ignores, why, what to do instead)}`.
_IGNORED = {
    "feature_extraction": (
        ("head_epochs", "unfreeze_groups", "fine_tune_learning_rate",
         "layer_decay", "train_batchnorm"),
        "the backbone stays frozen in feature extraction",
        "use partial-fine-tuning, progressive-fine-tuning or full-fine-tuning "
        "(--mode partial/progressive/full) to train backbone groups",
    ),
    "full": (
        ("unfreeze_groups",),
        "full fine-tuning opens every group",
        "use partial-fine-tuning or progressive-fine-tuning to open only the "
        "top groups",
    ),
}


def ignored_options(config_class, values):
    """`{option: (why it is ignored, what to do instead)}` for the options
    that a run with `values` (a config's field values, the mode among them)
    would not use."""
    names, why, instead = _IGNORED.get(values.get("mode"), ((), None, None))
    fields = config_class.field_names()
    return {name: (why, instead) for name in names if name in fields}


def ignored_values(config):
    """`{option: reason}` for the options of `config` set away from their
    defaults that its run ignores (`ignored_options`)."""
    fields = config.__dataclass_fields__
    ignored = ignored_options(type(config), config.to_dict())
    return {
        name: why for name, (why, _) in ignored.items()
        if getattr(config, name) != fields[name].default
    }


# === Options several recipes share ===


def _training(help):
    """The `train` field (required) described by `help`."""
    return field(None, help, required=True)


def _default(config_class, name, default, **changes):
    """`config_class`'s field `name` with another default, and `changes` to
    its other `field` arguments (`help`, `check`, ...)."""
    metadata = config_class.__dataclass_fields__[name].metadata
    return field(default, **{**metadata, **changes})


@dataclasses.dataclass(frozen=True)
class ClassificationConfig(RecipeConfig):
    """Options of recipes whose examples have class labels."""

    class_weight: Any = field(
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
        choices=("crossentropy", "focal"),
    )
    curriculum: Any = field(
        None,
        "Curriculum learning (kerasft.callbacks.Curriculum): a pacing, "
        "linear, root or step, or JSON '{\"pacing\": \"root\", "
        "\"start_fraction\": 0.2, \"ramp_epochs\": 5}'; each epoch trains "
        "on the easiest fraction the pacing allows. Needs --difficulty. "
        "none: every example, every epoch.",
    )
    difficulty: Any = field(
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
        weight = self.class_weight
        if isinstance(weight, str) and weight.strip().startswith("{"):
            return  # JSON from the command line; parsed by the recipe
        if not isinstance(weight, dict):
            if weight in (None, "balanced"):
                return
            raise ValueError(
                "`class_weight` must be None, 'balanced' or a dict {class: "
                f"weight}}. Received: class_weight={weight!r}"
            )
        bad = {k: v for k, v in weight.items() if not is_number(v) or v < 0}
        if bad:
            raise ValueError(
                f"`class_weight` values must be numbers >= 0. Received: {bad}"
            )


def _is_int_in(value, low, high):
    """Whether `value` is an integer (not a bool) in [low, high)."""
    return is_number(value, int) and low <= value < high


def _check_lora(config, trains):
    """LoRA adapters (`lora_rank`) train from the first step, with what
    else `trains` says: refuses another mode or head-only epochs."""
    if config.lora_rank and (config.mode != "full" or config.head_epochs):
        raise ValueError(
            f"`lora_rank` trains {trains} from the first step: use it with "
            f"mode='full' and head_epochs=0. Received: lora_rank="
            f"{config.lora_rank}, mode={config.mode!r}, "
            f"head_epochs={config.head_epochs}"
        )


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
    if epochs >= offset:
        options.append(f"head_epochs={epochs - offset} with this mode")
    return f"For epochs={epochs}, use " + ", or ".join(options) + "."


@dataclasses.dataclass(frozen=True)
class FineTuningConfig(RecipeConfig):
    """How the pretrained model trains, the same in every recipe; families
    override the defaults (`kerasft.recipes._stages` runs the mode)."""

    gradient_checkpointing: bool = field(
        False,
        "Recompute each backbone group's activations in the backward pass "
        "(kerasft.remat): less memory for about one more forward pass.",
    )
    max_train_samples: Optional[int] = field(
        None,
        "Train on a subset of this many examples (stratified by label where "
        "examples have one), taken after validation_split; none: all.",
        check=1,
    )
    max_eval_samples: Optional[int] = field(
        None,
        "Evaluate on subsets of this many validation and test examples "
        "(stratified like max_train_samples); none: all.",
        check=1,
    )
    validation_split: float = field(
        0.1,
        "Fraction of --train held out for validation when --val is not "
        "given (stratified by label where examples have one); 0 trains on "
        "everything.",
        check="fraction",
    )
    # "auto" (issue 25): `kerasft.advise` measures the data and the backbone
    # and chooses the mode, rates and epochs (kerasft/advisor/recipe.py).
    mode: str = field(
        "progressive",
        "Fine-tuning strategy: feature_extraction (backbone frozen), partial "
        "(top --unfreeze-groups open after --head-epochs), progressive (top "
        "groups, then all), full (all groups after --head-epochs), or auto "
        "(measured and chosen by kerasft.advise; writes advice.json).",
        choices=MODES + ("auto",),
    )
    head_epochs: int = field(
        2, "Epochs training the head alone before any backbone group opens.",
        check=0,
    )
    unfreeze_groups: int = field(
        2, "Backbone groups (from the top) opened by partial/progressive.",
        check=1,
    )
    fine_tune_learning_rate: Optional[float] = field(
        1e-4,
        "Base learning rate once backbone groups train; none: learning_rate.",
        check="positive",
    )
    layer_decay: Optional[float] = field(
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
        rate = self.fine_tune_learning_rate
        return self.learning_rate if rate is None else rate


@dataclasses.dataclass(frozen=True)
class ImageBackboneConfig(FineTuningConfig):
    """Options of recipes fine-tuning an image backbone (shared)."""

    train: Any = _training(
        "Training images: a folder with one sub-folder per class, a CSV of "
        "filename,label rows, or tfds:NAME[:SPLIT]. In Python also "
        "(images, labels) arrays or a tf.data.Dataset of (image, label)."
    )
    backbone: Any = field(
        "efficientnetb0",
        "Backbone: a registry name (see kerasft.backbones.list_backbones), "
        "a saved .keras model, or in Python a kerasft Backbone.",
    )
    weights: Optional[str] = field(
        "imagenet",
        "Backbone weights: imagenet, a weights file path, or none (random).",
    )
    image_size: int = field(
        224, "Image side in pixels (images are resized).", check=1
    )
    num_classes: Optional[int] = field(
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
        if all(augment.get(k) for k in MIXING_KEYS):  # both asked
            raise ValueError(
                "`augment` takes mixup_alpha or cutmix_alpha, not both (each "
                f"batch is mixed one way). Received: augment={augment!r}"
            )


@dataclasses.dataclass(frozen=True)
class ImageClassificationConfig(ImageBackboneConfig, ClassificationConfig):
    """Options of the image classification recipes."""

    head_units: tuple = field(
        (), "Hidden Dense layer sizes of the head, e.g. 1024 or 512,128."
    )
    augment: Optional[dict] = field(
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

    train: Any = _training(
        "Training boxes: a CSV of filename,xmin,ymin,xmax,ymax,label rows "
        "(pixels; paths relative to the CSV), one row per image for "
        "kind=single; kind=retinanet takes any number of rows per image, "
        "a COCO .json file or a Pascal VOC folder."
    )
    backbone: object = _default(ImageBackboneConfig, "backbone", "mobilenetv2")
    mode: str = _default(ImageBackboneConfig, "mode", "feature_extraction")
    conv_filters: tuple = field(
        (256,), "Filters of the head's 3x3 conv layers, e.g. 256 or 256,128."
    )
    bbox_loss: str = field(
        "mse", "Box loss: mse or huber.", choices=("mse", "huber")
    )
    bbox_loss_weight: float = field(
        1.0, "Weight of the box loss against the class loss."
    )
    kind: str = field(
        "single",
        "Detector: single (one box and class per image, the tutorial's head) "
        "or retinanet (any number of boxes per image: feature pyramid, "
        "anchors, focal loss, NMS).",
        choices=("single", "retinanet"),
    )
    augment: Optional[dict] = field(
        None,
        "kind=retinanet: ImageDataGenerator-style augmentation as JSON; "
        "boxes move with the pixels, e.g. '{\"horizontal_flip\": true}'.",
    )
    max_boxes: Optional[int] = field(
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
    fpn_filters: int = field(
        256, "kind=retinanet: channels of the feature pyramid."
    )
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
        fields = self.__dataclass_fields__  # `describe`: (256,) == [256]
        changed = [n for n in wrong if describe(getattr(self, n))
                   != describe(fields[n].default)]
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


@dataclasses.dataclass(frozen=True)
class SegmentationConfig(ImageBackboneConfig):
    """Options of the semantic segmentation recipe."""

    _no_mixing = ("segmentation: its labels are per-pixel masks (MixUp and "
                  "CutMix of masks are not implemented)")

    train: Any = _training(
        "Training data: a folder holding images/ and masks/ (masks: palette "
        "or integer PNGs named like their image), or tfds:NAME[:SPLIT]. In "
        "Python also (image_dir, mask_dir) or (images, masks) arrays."
    )
    backbone: Any = _default(
        ImageBackboneConfig, "backbone", "mobilenetv2"
    )
    image_size: int = _default(
        ImageBackboneConfig,
        "image_size",
        128,
        help="Image side in pixels (images bilinear, masks nearest).",
    )
    num_classes: Optional[int] = field(
        None,
        "Number of classes (background included); inferred from the training "
        "masks (largest label + 1) if unset.",
        check=1,
    )
    kind: str = field(
        "unet",
        "Decoder: unet (upsampling with a skip from every level) or "
        "deeplabv3plus (ASPP on the deepest level + a low-level skip).",
        choices=("unet", "deeplabv3plus"),
    )
    levels: tuple = field(
        (),
        "Feature-pyramid levels (level L = stride 2**L), e.g. 1,2,3,4,5; "
        "empty: unet 1-5 (those the backbone has), deeplabv3plus 2 and the "
        "deepest up to 5.",
    )
    decoder_filters: Optional[int] = field(
        None, "Channels of the decoder convs; none: 64 unet, 256 deeplabv3plus."
    )
    loss: str = field(
        "crossentropy",
        "Loss: crossentropy, or crossentropy_dice (plus dice_weight x soft "
        "Dice).",
        choices=("crossentropy", "crossentropy_dice"),
    )
    dice_weight: float = field(
        1.0, "Weight of the Dice term (crossentropy_dice).", check="positive"
    )
    ignore_index: Optional[int] = field(
        255,
        "Mask label of pixels to ignore in the loss and metrics (VOC's 255); "
        "none: every label is a class.",
    )
    class_names: Any = field(
        None,
        "Class names in id order, comma-separated (labels.json, metrics); "
        "none: the ids.",
    )
    augment: Optional[dict] = field(
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
        levels = list(self.levels)
        ints = all(is_number(n, int) and n >= 0 for n in levels)
        if not ints or levels != sorted(set(levels)):
            raise ValueError(
                "`levels` must be strictly increasing non-negative ints, e.g. "
                f"1,2,3,4,5. Received: levels={self.levels!r}"
            )
        if self.num_classes is not None and self.num_classes < 2:
            raise ValueError(
                "`num_classes` must be >= 2 (background counts as a class). "
                f"Received: num_classes={self.num_classes!r}"
            )
        names, count = self.class_name_list(), self.num_classes
        if names is not None and count is not None and len(names) != count:
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
class VideoClassificationConfig(ImageBackboneConfig, ClassificationConfig):
    """Options of the video classification recipe (`video_classification`)."""

    _no_mixing = None

    train: Any = _training(
        "Training clips: a folder with one sub-folder per class holding "
        "video files (mp4, avi, webm, mkv) or folders of frame images."
    )
    backbone: Any = _default(
        ImageBackboneConfig, "backbone", "mobilenetv2"
    )
    image_size: int = _default(ImageBackboneConfig, "image_size", 112)
    batch_size: int = _default(RecipeConfig, "batch_size", 8)
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
    augment: Optional[dict] = field(
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

        paced = pacing_options(self.curriculum) is not None
        if self.sampling != "uniform" and paced:
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

    export: Any = field(
        None, "Not supported: caption with `kerasft predict`.",
        refused="is not supported by {recipe} (captions come from a "
        "generation loop, not one model call)",
    )
    train: Any = _training(
        "Training captions: a CSV of image,caption rows (several rows per "
        "image allowed) or a COCO captions JSON; image paths relative to "
        "--image-dir or the file's folder. In Python also a list of "
        "(image_path, caption) pairs."
    )
    num_classes: Optional[int] = field(
        None, "Not used: the vocabulary sets the outputs.",
        refused="is not used by {recipe} (the vocabulary sets the outputs)",
    )
    image_dir: Optional[str] = field(
        None, "Folder the image paths are relative to (default: the file's)."
    )
    image_column: str = field("image", "CSV column of image paths.")
    caption_column: str = field("caption", "CSV column of captions.")
    validation_split: float = field(
        0.1,
        "Fraction of the training images (with all their captions) held out "
        "for validation when --val is not given; 0 trains on everything.",
        check="fraction",
    )
    vocabulary: Optional[str] = field(
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
    dropout: float = field(
        0.1, "Dropout inside the decoder blocks.", check="fraction"
    )
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
    augment: Optional[dict] = field(
        None,
        "ImageDataGenerator-style augmentation of the training images as "
        'JSON, e.g. \'{"horizontal_flip": true, "zoom_range": 0.1}\'.',
    )
    lora_rank: Optional[int] = field(
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
        _check_lora(self, "the encoder's adapters with the decoder")
        backbone = self.backbone
        convnet = isinstance(backbone, str) and not backbone.endswith(".keras")
        if self.lora_rank and convnet:
            raise ValueError(
                f"`lora_rank` needs a transformer (ViT) image encoder, but "
                f"backbone={self.backbone!r} is a convnet without attention "
                "projections. Pass a ViT (kerasft.backbones.from_keras_hub("
                "keras_hub.models.ViTBackbone...)), or drop `lora_rank` and "
                "use mode='partial' to train fewer weights."
            )


# === Text recipes ===


@dataclasses.dataclass(frozen=True)
class TransformerConfig(FineTuningConfig):
    """`FineTuningConfig` for text and generative recipes: every layer
    trains from the first step by default, or LoRA adapters do."""

    epochs: int = _default(RecipeConfig, "epochs", 3)
    mode: str = _default(FineTuningConfig, "mode", "full")
    head_epochs: int = _default(FineTuningConfig, "head_epochs", 0)
    fine_tune_learning_rate: Optional[float] = _default(
        FineTuningConfig, "fine_tune_learning_rate", None
    )
    weight_decay: float = _default(FineTuningConfig, "weight_decay", 0.01)
    lora_rank: Optional[int] = field(
        None,
        "LoRA rank: train low-rank adapters on the attention projections "
        "instead of the model's weights.",
        check=1,
    )

    def _validate(self):
        super()._validate()
        _check_lora(self, "adapters in every layer")


@dataclasses.dataclass(frozen=True)
class TextConfig(TransformerConfig):
    """Options shared by the text recipes."""

    backbone: Any = field(
        "bert_base_en_uncased",
        "Encoder: a KerasHub preset, hf://org/model, a local Hugging Face "
        "folder (config.json, model.safetensors, vocab.txt), or in Python a "
        "kerasft text Backbone.",
    )
    max_length: int = field(128, "Tokens per example (pad/truncate).", check=8)
    batch_size: int = _default(RecipeConfig, "batch_size", 16)
    learning_rate: float = _default(RecipeConfig, "learning_rate", 2e-5)
    dropout: float = field(
        0.1, "Dropout before the output layer.", check="fraction"
    )


@dataclasses.dataclass(frozen=True)
class TextClassificationConfig(TextConfig, ClassificationConfig):
    """Options of the text classification recipe."""

    train: Any = _training(
        "Training CSV/TSV with text,label[,text_pair] columns; in Python "
        "also (texts, labels)."
    )
    text_column: str = field("text", "Column of the (first) text.")
    label_column: str = field("label", "Column of the label.")
    pair_column: Optional[str] = field(
        "auto",
        "Column of the second text of sentence pairs: auto uses text_pair "
        "when present; none reads no pairs.",
    )
    num_classes: Optional[int] = _default(
        ImageBackboneConfig, "num_classes", None
    )


@dataclasses.dataclass(frozen=True)
class QuestionAnsweringConfig(TextConfig):
    """Options of the question answering recipe."""

    train: Any = _training("Training SQuAD-format JSON file.")
    max_length: int = _default(
        TextConfig,
        "max_length",
        384,
        help="Tokens per question+context window.",
    )
    doc_stride: Optional[int] = field(
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
    learning_rate: float = _default(RecipeConfig, "learning_rate", 3e-5)

    def _validate(self):
        super()._validate()
        # The question takes at most half the window, so every window has
        # at least `room` context tokens; the overlap must leave a step.
        room = (self.max_length - 3) - (self.max_length - 3) // 2
        stride = self.doc_stride
        if stride is not None and not _is_int_in(stride, 0, room):
            raise ValueError(
                f"`doc_stride` must be an integer in [0, {room}) for "
                f"max_length={self.max_length} (or None for one window). "
                f"Received: doc_stride={stride!r}"
            )


@dataclasses.dataclass(frozen=True)
class TokenClassificationConfig(TextConfig, ClassificationConfig):
    """Options of the token classification (NER) recipe."""

    train: Any = _training(
        "Training sentences: a CoNLL-2003-style file (token ... tag per "
        "line, blank line between sentences) or JSON lines of "
        '{"tokens": [...], "tags": [...]}; in Python also (sentences, tags).'
    )
    labels: Any = field(
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
    learning_rate: float = _default(RecipeConfig, "learning_rate", 5e-5)


# === Generative recipes (seq2seq, causal_lm) ===

_NO_HEAD = (
    "GPT-2, T5 and BART have no layer outside the pretrained model to train "
    "alone (their output layer is the token embedding's)"
)


@dataclasses.dataclass(frozen=True)
class GenerativeTrainingConfig(TransformerConfig):
    """The options `seq2seq` and `causal_lm` share."""

    export: Any = field(
        None, "Not supported: generate with `kerasft generate`.",
        refused="is not supported by {recipe} (generation loops do not "
        "export to SavedModel/TFLite here)",
    )
    # Nothing can train alone: no feature_extraction, no head-only epochs.
    mode: str = field(
        "full",
        "Fine-tuning strategy: full (every layer trains), partial (only the "
        "top --unfreeze-groups transformer layers train), progressive (top "
        "groups, then all), or auto (chosen by kerasft.advise from the data "
        "size; writes advice.json).",
        choices=MODES[1:] + ("auto",),
        refused_values={"feature_extraction": (
            f"trains only a head, and {_NO_HEAD}. Use mode='partial' (the top "
            "`unfreeze_groups` transformer layers train) or `lora_rank` "
            "(adapters) for a light fine-tune"
        )},
    )
    head_epochs: int = field(
        0, "Not supported: there is no head.",
        refused=f"trains only a head first, and {_NO_HEAD}. Use head_epochs=0",
    )
    lr_schedule: str = _default(FineTuningConfig, "lr_schedule", "linear")
    warmup_ratio: float = _default(FineTuningConfig, "warmup_ratio", 0.1)
    layer_decay: Optional[float] = _default(
        FineTuningConfig,
        "layer_decay",
        None,
        help="Layer-wise learning-rate decay in (0, 1]: transformer layer i "
        "from the top (in seq2seq models the decoder layers above the encoder "
        "layers) trains at rate x decay**i.",
    )
    merge_lora: bool = field(
        False,
        "With --lora-rank: fold the adapters into the weights and write the "
        "whole model as model.keras (else the adapters are saved alone, as "
        "lora.weights.h5).",
    )

    def _validate(self):
        super()._validate()
        if self.merge_lora and not self.lora_rank:
            raise ValueError(
                "`merge_lora` needs `lora_rank` (there are no adapters to "
                "merge). Received: merge_lora=True, lora_rank=None"
            )


# === Causal language modelling ===


@dataclasses.dataclass(frozen=True)
class CausalLMConfig(GenerativeTrainingConfig):
    """Options of the causal language modelling recipe (`causal_lm`)."""

    _recipe = "causal_lm"

    train: Any = _training(
        "Training corpus: a text file, a folder of .txt files (one document "
        "per file) or a CSV/TSV (one document per row of --text-column); in "
        "Python also a list of strings."
    )
    validation_split: float = field(
        0.1,
        "Fraction of the training tokens (the end of the corpus) held out for "
        "validation when --val is not given; 0 trains on everything.",
        check="fraction",
    )
    text_column: str = field("text", "CSV/TSV column holding the documents.")
    learning_rate: float = _default(RecipeConfig, "learning_rate", 5e-5)
    backbone: Any = field(
        "gpt2_base_en",
        "Model: a KerasHub preset, hf://org/name, a local Hugging Face GPT-2 "
        "folder (config.json, model.safetensors, vocab.json, merges.txt) or "
        "KerasHub preset folder; in Python also a KerasHub CausalLM task.",
    )
    sequence_length: int = field(
        256, "Tokens per training window (at most the model's maximum).",
        check=1,
    )
    stride: Optional[int] = field(
        None,
        "Tokens between the starts of consecutive windows, in [1, "
        "sequence_length]; smaller overlaps the windows (more context per "
        "token); none: sequence_length (no overlap).",
    )
    batch_size: int = _default(RecipeConfig, "batch_size", 8)
    prompts: Any = field(
        (),
        "Prompts to sample from after training, separated by '|' (written "
        "with their samples to samples.json); in Python a list of strings.",
    )
    sample_length: Optional[int] = field(
        None,
        "Tokens per sample, prompt included (at most the model's maximum); "
        "none: sequence_length.",
        check=1,
    )
    sampler: str = field(
        "top_k",
        "How samples pick tokens: greedy, top_k or top_p.",
        choices=("greedy", "top_k", "top_p"),
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
        stride, last = self.stride, self.sequence_length
        if stride is not None and not _is_int_in(stride, 1, last + 1):
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

    train: Any = _training(
        "Training pairs: a CSV/TSV with --source-column and --target-column; "
        "in Python also a list of (source, target) pairs or a tf.data "
        "dataset of them."
    )
    source_column: str = field("source", "CSV/TSV column of the inputs.")
    target_column: str = field("target", "CSV/TSV column of the outputs.")
    backbone: Any = field(
        "t5_small_multi",
        "Model: a KerasHub preset (T5, BART), hf://org/name, a local Hugging "
        "Face folder (config.json, model.safetensors + tokenizer files) or "
        "KerasHub preset folder; in Python also a KerasHub Seq2SeqLM task.",
    )
    task_prefix: str = field(
        "",
        "Text put before every source, as T5 was trained, e.g. 'translate "
        "English to German: '.",
        check="string",
    )
    source_length: int = field(
        128, "Encoder tokens per example (longer sources are cut, counted).",
        check=2,
    )
    target_length: int = field(
        64, "Decoder tokens per example (longer targets are cut, counted).",
        check=2,
    )
    batch_size: int = _default(RecipeConfig, "batch_size", 16)
    learning_rate: float = _default(RecipeConfig, "learning_rate", 3e-4)
    num_beams: int = _default(ImageCaptioningConfig, "num_beams", 1)
    generation_length: Optional[int] = field(
        None,
        "Most decoder tokens per generated prediction (start token "
        "included); none: target_length.",
        check=1,
    )
