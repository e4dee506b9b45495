"""The one registry of kerasft's recipes.

Everything that lists or dispatches on recipes reads it (CLI, `kerasft.load`,
`predict`, `tune`, the docs' option table). Pieces are `"module:attribute"`
strings imported when used, so the registry imports neither TensorFlow nor
Keras: `kerasft --help` stays fast and no import cycle runs through it.

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
    "validation": ["--val", "--validation"]
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
        short: its column title in the option table (recipes that fix
            nothing).
    """

    name: str
    function: str
    config: str
    help: str
    task: str
    predictor: str
    fixed: dict = dataclasses.field(default_factory=dict)
    generative: bool = False
    short: str = ""

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


def _family(name, short, config, predictor, help, generative=False):
    """A recipe named like its module, writing its own run-folder format."""
    return Recipe(name, f"kerasft.recipes.{name}:{name}", config, help,
                  task=name, predictor="kerasft.predictors." + predictor,
                  generative=generative, short=short)


# The tutorial's four strategies: image classification with `mode` fixed
# (the name less "_fine_tuning").
_TUTORIAL = {
    "feature_extraction": "Train a new head on a frozen image backbone.",
    "partial_fine_tuning": "Head first, then the top backbone groups.",
    "progressive_fine_tuning": (
        "Head, then top groups, then everything, at lower rates."
    ),
    "full_fine_tuning": "Head first, then every backbone group.",
}
_IMAGE = _family(
    "image_classification",
    "image",
    "ImageClassificationConfig",
    "classification:predict_images",
    "Fine-tune an image backbone (EfficientNetB0 by default).",
)

RECIPES = {
    r.name: r
    for r in (
        _IMAGE,
        *(
            dataclasses.replace(
                _IMAGE,
                name=name,
                help=help,
                fixed={"mode": name.removesuffix("_fine_tuning")},
                function="kerasft.recipes.fine_tuning:" + name,
            )
            for name, help in _TUTORIAL.items()
        ),
        _family(
            "object_detection",
            "detection",
            "ObjectDetectionConfig",
            "detection:predict",
            "One box + class per image (MobileNetV2 + detection head), or "
            "--kind retinanet: many boxes per image from CSV, COCO or VOC.",
        ),
        _family(
            "segmentation",
            "segmentation",
            "SegmentationConfig",
            "segmentation:predict",
            "Per-pixel classes: a backbone's feature pyramid + U-Net or "
            "DeepLabV3+ decoder, from images/ + masks/ folders.",
        ),
        _family(
            "text_classification",
            "text",
            "TextClassificationConfig",
            "classification:predict_texts",
            "Fine-tune a BERT-family encoder on a CSV of text,label.",
        ),
        _family(
            "question_answering",
            "QA",
            "QuestionAnsweringConfig",
            "question_answering:predict",
            "Extractive QA on SQuAD-format JSON with a BERT-family encoder.",
        ),
        _family(
            "token_classification",
            "NER",
            "TokenClassificationConfig",
            "tokens:predict",
            "NER / word tagging on CoNLL or JSON-lines data with a "
            "BERT-family encoder.",
        ),
        _family(
            "video_classification",
            "video",
            "VideoClassificationConfig",
            "classification:predict_videos",
            "Video clips: an image backbone per frame + a temporal head (GRU).",
        ),
        _family(
            "image_captioning",
            "captioning",
            "ImageCaptioningConfig",
            "captioning:predict",
            "Image captioning: an image backbone encoder + a Transformer "
            "decoder, from image,caption CSV or COCO captions JSON.",
        ),
        _family(
            "seq2seq",
            "seq2seq",
            "Seq2SeqConfig",
            "generative:predict",
            "Translation / summarization: fine-tune T5 or BART on "
            "source,target pairs.",
            generative=True,
        ),
        _family(
            "causal_lm",
            "causal LM",
            "CausalLMConfig",
            "generative:predict",
            "Domain adaptation of a GPT-2-family model on a text corpus.",
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
        f"Unknown recipe {name!r}. Known recipes: {', '.join(RECIPES)}." +
        (f" Did you mean {close[0]!r}?" if close else ""))


def of_function(function):
    """The `Recipe` whose function is `function`, or `None`."""
    target = f"{function.__module__}:{function.__name__}"
    return next((r for r in RECIPES.values() if r.function == target), None)


def task_of_config(config):
    """The run-folder format (`Recipe.task`) of a recipe config object."""
    name = type(config).__name__
    for recipe in RECIPES.values():
        if recipe.config == name and not recipe.fixed:
            return recipe.task
    raise ValueError(f"No recipe takes a {name}. Recipe configs: "
                     f"{sorted({r.config for r in RECIPES.values()})}.")


def predictor(name):
    """The `kerasft predict` function of recipe (or task) `name`."""
    return get(name).load_predictor()


# === The option table of docs/recipes.md ===


def option_table():
    """The markdown table of which recipe takes which option, made from the
    config classes (`docs/recipes.md` holds it; a test keeps it current).

    Rows are the options two or more recipe families share; each family's
    own options follow the table, one line each. The four tutorial recipes
    take `image_classification`'s options with `mode` fixed.
    """
    families = [r for r in RECIPES.values() if not r.fixed]
    fields = {
        r.name: [
            f.name for f in dataclasses.fields(r.config_class())
            if f.metadata.get("cli", True)
        ]
        for r in families
    }
    every = [name for r in families for name in fields[r.name]]
    shared = [name for name in dict.fromkeys(every) if every.count(name) >= 2]
    header = "| option | " + " | ".join(r.short for r in families) + " |"
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
