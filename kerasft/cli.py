"""The `kerasft` console script: `demo` and one subcommand per recipe.

Each recipe subcommand has one `--flag` per field of the recipe's config
dataclass (so `--help` documents every option), `--config FILE` (JSON, or
YAML with PyYAML) whose values the flags override, and `--overwrite`.
`recipes/*.py` scripts call `main` with their subcommand.

Example:
    kerasft --version
    kerasft demo --output kerasft_demo_output
    kerasft image-classification --train data/train --val data/val \\
        --backbone efficientnetb0 --epochs 10 --output runs/flowers
"""

import argparse
import dataclasses
import json
import os
import sys
import typing

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from kerasft._version import __version__  # noqa: E402

# Flag names that differ from the field names (the spelling first).
_FLAG_NAMES = {
    "output_dir": ["--output", "--output-dir"],
    "validation": ["--val", "--validation"],
}


def _recipes():
    """`{subcommand: (function, config class, one-line help)}`, lazily."""
    from kerasft import recipes

    return {
        "image-classification": (
            recipes.image_classification,
            recipes.ImageClassificationConfig,
            "Fine-tune an image backbone (EfficientNetB0 by default).",
        ),
        "feature-extraction": (
            recipes.feature_extraction,
            recipes.ImageClassificationConfig,
            "Train a new head on a frozen image backbone.",
        ),
        "partial-fine-tuning": (
            recipes.partial_fine_tuning,
            recipes.ImageClassificationConfig,
            "Head first, then the top backbone groups.",
        ),
        "progressive-fine-tuning": (
            recipes.progressive_fine_tuning,
            recipes.ImageClassificationConfig,
            "Head, then top groups, then everything, at lower rates.",
        ),
        "full-fine-tuning": (
            recipes.full_fine_tuning,
            recipes.ImageClassificationConfig,
            "Head first, then every backbone group.",
        ),
        "object-detection": (
            recipes.object_detection,
            recipes.ObjectDetectionConfig,
            "One box + class per image (MobileNetV2 + detection head).",
        ),
        "text-classification": (
            recipes.text_classification,
            recipes.TextClassificationConfig,
            "Fine-tune a BERT-family encoder on a CSV of text,label.",
        ),
        "question-answering": (
            recipes.question_answering,
            recipes.QuestionAnsweringConfig,
            "Extractive QA on SQuAD-format JSON with a BERT-family encoder.",
        ),
    }


# Options the tutorial recipes fix themselves (no flag for them).
_FIXED_VALUES = {
    "feature-extraction": {"mode": "feature_extraction"},
    "partial-fine-tuning": {"mode": "partial"},
    "progressive-fine-tuning": {"mode": "progressive"},
    "full-fine-tuning": {"mode": "full"},
}
_FIXED = {command: tuple(values) for command, values in _FIXED_VALUES.items()}


# === Config fields -> flags ===


def _optional(hint):
    if typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return hint, False


def _parse_none(convert):
    def parse(text):
        if text.lower() in ("none", "null"):
            return None
        return convert(text)

    parse.__name__ = getattr(convert, "__name__", "value")
    return parse


def _int_tuple(text):
    text = text.strip()
    if not text or text.lower() == "none":
        return ()
    return tuple(int(v) for v in text.replace(" ", "").split(",") if v)


def _json_dict(text):
    if text.lower() in ("none", "null"):
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not JSON: {e}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object {...}")
    return value


def _json_value(text):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _add_field(parser, f, hint):
    names = _FLAG_NAMES.get(f.name, ["--" + f.name.replace("_", "-")])
    base, optional = _optional(hint)
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    help_text = f"{f.metadata.get('help', '')} (default: {default!r})"
    kwargs = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text}
    choices = f.metadata.get("choices")
    if base is bool:
        parser.add_argument(*names, action=argparse.BooleanOptionalAction, **kwargs)
        return
    if base is tuple:
        convert, metavar = _int_tuple, "N[,N...]"
    elif base is dict:
        convert, metavar = _json_dict, "JSON"
    elif typing.get_origin(base) is dict:
        convert, metavar = _json_dict, "JSON"
    elif base in (int, float, str):
        convert, metavar = base, None
    else:  # typing.Any: paths/names on the command line
        convert, metavar = str, None
    if optional:
        convert = _parse_none(convert)
    if choices:
        kwargs["choices"] = choices
    if metavar:
        kwargs["metavar"] = metavar
    parser.add_argument(*names, type=convert, **kwargs)


def add_config_arguments(parser, config_class, fixed=()):
    """Adds one flag per config field (except `fixed`) to `parser`."""
    hints = typing.get_type_hints(config_class)
    for f in dataclasses.fields(config_class):
        if f.name in fixed or not f.metadata.get("cli", True):
            continue
        _add_field(parser, f, hints[f.name])
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="JSON or YAML file of options; flags given here override it.",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="Replace a previous, different run in the output folder "
        "(a run with the same options resumes without it).",
    )


def config_from_args(config_class, args, fixed=None):
    """The config: `--config` file values, then the flags given, then the
    values the subcommand fixes (`fixed`, a dict)."""
    from kerasft.recipes.config import load_config_file

    data = load_config_file(args.config) if args.config else {}
    fixed = dict(fixed or {})
    for name in config_class.field_names():
        if name not in fixed and hasattr(args, name):
            data[name] = getattr(args, name)
    data.update(fixed)
    return config_class.from_dict(data)


# === Parser ===


def build_parser():
    """The `kerasft` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="kerasft",
        description="Correct, fast fine-tuning of pretrained models with "
        "Keras 3. Every recipe writes metrics.json, history.csv, "
        "model.keras, plots and TensorBoard logs into --output.",
    )
    parser.add_argument(
        "--version", action="version", version=f"kerasft {__version__}"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="A real fine-tuning run that works offline (a few minutes).",
        description="Pretrain a small CNN on sklearn digits 0-4, fine-tune "
        "it with kerasft on digits 5-9 with a few labels per class, and "
        "compare with the same network trained from scratch. --task text "
        "fine-tunes the MiniLM BERT on afinn word ratings.",
    )
    demo.add_argument(
        "--task", choices=("image", "text"), default="image",
        help="Which demo to run (default: 'image').",
    )
    demo.add_argument(
        "--output", default=None, metavar="DIR",
        help="Output folder (default: ./kerasft_demo_output, "
        "./kerasft_demo_text_output for --task text).",
    )
    demo.add_argument(
        "--smoke", action="store_true",
        help="Tiny settings that finish in seconds (for tests).",
    )
    demo.add_argument(
        "--overwrite", action="store_true",
        help="Replace the outputs of a previous, different demo run.",
    )

    for command, (_, config_class, help_text) in _recipes().items():
        p = sub.add_parser(command, help=help_text, description=help_text)
        add_config_arguments(p, config_class, _FIXED.get(command, ()))
    return parser


def _print_result(result):
    print(f"Outputs written to {os.path.abspath(result.output_dir)}")
    for key, value in sorted(result.metrics.items()):
        if isinstance(value, float):
            print(f"  {key}: {value:.4f}")


def main(argv=None):
    """Runs the `kerasft` command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        if args.command == "demo":
            from kerasft.recipes import demo

            demo.run_demo(
                task=args.task,
                output_dir=args.output,
                smoke=args.smoke,
                overwrite=args.overwrite,
            )
            return 0
        function, config_class, _ = _recipes()[args.command]
        config = config_from_args(
            config_class, args, _FIXED_VALUES.get(args.command)
        )
        result = function(config, overwrite=args.overwrite)
    except (ValueError, TypeError, NotImplementedError) as e:
        if os.environ.get("KERASFT_DEBUG"):
            raise
        print(f"kerasft {args.command}: error: {e}", file=sys.stderr)
        return 2
    _print_result(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
