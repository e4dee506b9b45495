"""The one registry of kerasft's recipes.

Everything that lists or dispatches on recipes reads it: the `kerasft`
subcommands, `kerasft.recipes.<name>`, `kerasft.load` (which reader and
which task a run folder holds), `kerasft predict`, `kerasft export`,
`kerasft generate` and `kerasft tune`, and the option table of
`docs/recipes.md`. It imports neither TensorFlow nor Keras, and nothing
of kerasft but the TensorFlow-free configs, so `kerasft --help` stays fast
and no import cycle can run through it.

Each entry names its pieces as `"module:attribute"` strings, imported only
when used.

Example:
```python
from kerasft.recipes import registry

spec = registry.get("image-classification")
spec.command, spec.task, spec.config_class().__name__
# ('image-classification', 'image_classification', 'ImageClassificationConfig')
```
"""

import dataclasses
import difflib
import importlib

_CONFIGS = "kerasft.recipes.configs"

# Command-line flags spelled apart from their config field (first: the
# spelling `--help` shows).
FLAG_NAMES = {
    "output_dir": ["--output", "--output-dir"],
    "validation": ["--val", "--validation"],
}


def flag(name):
    """The command-line flag of config field `name`."""
    return FLAG_NAMES.get(name, ["--" + name.replace("_", "-")])[0]


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One recipe: where its pieces live and what it fixes.

    Attributes:
        name: the Python name (`kerasft.recipes.<name>`); the CLI
            subcommand is the same with hyphens.
        function: `"module:function"` of the recipe function.
        config: the config class name in `kerasft.recipes.configs`.
        help: one line for `kerasft --help`.
        fixed: config values the recipe fixes (the tutorial recipes fix
            `mode`).
        task: the run-folder format it writes, read by `kerasft.load`:
            the name of the recipe that owns the format (the four tutorial
            recipes write `image_classification` runs).
        predictor: `"module:function"` that `kerasft predict` calls.
        generative: whether `kerasft generate` reads its runs (and
            `kerasft export` refuses them).
    """

    name: str
    function: str
    config: str
    help: str
    task: str
    predictor: str
    fixed: dict = dataclasses.field(default_factory=dict)
    generative: bool = False

    @property
    def command(self):
        """The CLI subcommand."""
        return self.name.replace("_", "-")

    def config_class(self):
        return getattr(importlib.import_module(_CONFIGS), self.config)

    def load_function(self):
        return _attribute(self.function)

    def load_predictor(self):
        return _attribute(self.predictor)


def _attribute(target):
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


_P = "kerasft.predictors."
_IMAGE = dict(
    config="ImageClassificationConfig",
    task="image_classification",
    predictor=_P + "classification:predict_images",
)
# The tutorial's four strategies: image classification with `mode` fixed.
_TUTORIAL = {
    "feature_extraction": (
        "feature_extraction", "Train a new head on a frozen image backbone."),
    "partial_fine_tuning": (
        "partial", "Head first, then the top backbone groups."),
    "progressive_fine_tuning": (
        "progressive",
        "Head, then top groups, then everything, at lower rates."),
    "full_fine_tuning": ("full", "Head first, then every backbone group."),
}

RECIPES = {
    r.name: r
    for r in (
        Recipe(
            "image_classification",
            "kerasft.recipes.image_classification:image_classification",
            help="Fine-tune an image backbone (EfficientNetB0 by default).",
            **_IMAGE,
        ),
        *(
            Recipe(name, "kerasft.recipes.fine_tuning:" + name, help=help,
                   fixed={"mode": mode}, **_IMAGE)
            for name, (mode, help) in _TUTORIAL.items()
        ),
        Recipe(
            "object_detection",
            "kerasft.recipes.object_detection:object_detection",
            "ObjectDetectionConfig",
            "One box + class per image (MobileNetV2 + detection head), or "
            "--kind retinanet: many boxes per image from CSV, COCO or VOC.",
            task="object_detection",
            predictor=_P + "detection:predict",
        ),
        Recipe(
            "segmentation",
            "kerasft.recipes.segmentation:segmentation",
            "SegmentationConfig",
            "Per-pixel classes: a backbone's feature pyramid + U-Net or "
            "DeepLabV3+ decoder, from images/ + masks/ folders.",
            task="segmentation",
            predictor=_P + "segmentation:predict",
        ),
        Recipe(
            "text_classification",
            "kerasft.recipes.text_classification:text_classification",
            "TextClassificationConfig",
            "Fine-tune a BERT-family encoder on a CSV of text,label.",
            task="text_classification",
            predictor=_P + "classification:predict_texts",
        ),
        Recipe(
            "question_answering",
            "kerasft.recipes.question_answering:question_answering",
            "QuestionAnsweringConfig",
            "Extractive QA on SQuAD-format JSON with a BERT-family encoder.",
            task="question_answering",
            predictor=_P + "question_answering:predict",
        ),
        Recipe(
            "token_classification",
            "kerasft.recipes.token_classification:token_classification",
            "TokenClassificationConfig",
            "NER / word tagging on CoNLL or JSON-lines data with a "
            "BERT-family encoder.",
            task="token_classification",
            predictor=_P + "tokens:predict",
        ),
        Recipe(
            "video_classification",
            "kerasft.recipes.video_classification:video_classification",
            "VideoClassificationConfig",
            "Video clips: an image backbone per frame + a temporal head (GRU).",
            task="video_classification",
            predictor=_P + "classification:predict_videos",
        ),
        Recipe(
            "image_captioning",
            "kerasft.recipes.image_captioning:image_captioning",
            "ImageCaptioningConfig",
            "Image captioning: an image backbone encoder + a Transformer "
            "decoder, from image,caption CSV or COCO captions JSON.",
            task="image_captioning",
            predictor=_P + "captioning:predict",
        ),
        Recipe(
            "seq2seq",
            "kerasft.recipes.seq2seq:seq2seq",
            "Seq2SeqConfig",
            "Translation / summarization: fine-tune T5 or BART on "
            "source,target pairs.",
            task="seq2seq",
            predictor=_P + "generative:predict",
            generative=True,
        ),
        Recipe(
            "causal_lm",
            "kerasft.recipes.causal_lm:causal_lm",
            "CausalLMConfig",
            "Domain adaptation of a GPT-2-family model on a text corpus.",
            task="causal_lm",
            predictor=_P + "generative:predict",
            generative=True,
        ),
    )
}

COMMANDS = {r.command: r for r in RECIPES.values()}


def names():
    """The recipe names, in registry order."""
    return list(RECIPES)


def get(name):
    """The `Recipe` called `name` (`"image_classification"` or the CLI's
    `"image-classification"`).

    Raises:
        ValueError: no recipe has that name; the message lists them and
            the closest.
    """
    key = str(name).replace("-", "_")
    if key in RECIPES:
        return RECIPES[key]
    close = difflib.get_close_matches(key, list(RECIPES), n=1)
    raise ValueError(
        f"Unknown recipe {name!r}. Known recipes: {', '.join(RECIPES)}."
        + (f" Did you mean {close[0]!r}?" if close else "")
    )


def of_function(function):
    """The `Recipe` whose function is `function`, or `None`."""
    target = f"{function.__module__}:{function.__name__}"
    for recipe in RECIPES.values():
        if recipe.function == target:
            return recipe
    return None


def task_of_config(config):
    """The run-folder format (`Recipe.task`) of a recipe config object."""
    name = type(config).__name__
    for recipe in RECIPES.values():
        if recipe.config == name and not recipe.fixed:
            return recipe.task
    raise ValueError(
        f"No recipe takes a {name}. Recipe configs: "
        f"{sorted({r.config for r in RECIPES.values()})}."
    )


def predictor(name):
    """The `kerasft predict` function of recipe (or task) `name`."""
    return get(name).load_predictor()


# === The option table of docs/recipes.md ===

_SHORT = {
    "image_classification": "image",
    "object_detection": "detection",
    "segmentation": "segmentation",
    "video_classification": "video",
    "image_captioning": "captioning",
    "text_classification": "text",
    "question_answering": "QA",
    "token_classification": "NER",
    "seq2seq": "seq2seq",
    "causal_lm": "causal LM",
}


def option_table():
    """The markdown table of which recipe takes which option, made from the
    config classes (`docs/recipes.md` holds it; a test keeps it current).

    Rows are the options two or more recipe families share; each family's
    own options follow the table, one line each. The four tutorial recipes
    take `image_classification`'s options with `mode` fixed.
    """
    families = [r for r in RECIPES.values() if not r.fixed]
    fields = {r.name: _cli_fields(r.config_class()) for r in families}
    shared = []
    for r in families:
        for name in fields[r.name]:
            users = sum(name in f for f in fields.values())
            if users >= 2 and name not in shared:
                shared.append(name)
    header = "| option | " + " | ".join(_SHORT[r.name] for r in families) + " |"
    lines = [header, "|---" * (len(families) + 1) + "|"]
    for name in shared:
        cells = ["✓" if name in fields[r.name] else "" for r in families]
        lines.append(f"| `{flag(name)}` | " + " | ".join(cells) + " |")
    lines.append("")
    for r in families:
        own = [n for n in fields[r.name] if n not in shared]
        flags = ", ".join(f"`{flag(n)}`" for n in own)
        lines.append(f"- `{r.command}` also: {flags or 'nothing else'}.")
    return "\n".join(lines) + "\n"


def _cli_fields(config_class):
    return [f.name for f in dataclasses.fields(config_class)
            if f.metadata.get("cli", True)]
