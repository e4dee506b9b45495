"""The `kerasft` console script: `demo` and one subcommand per recipe.

Each recipe subcommand has one `--flag` per field of the recipe's config
dataclass that the subcommand uses (so `--help` documents every option and
nothing else), `--config FILE` (JSON, or YAML with PyYAML) whose values the
flags override, and `--overwrite`. `recipes/*.py` scripts call `main` with
their subcommand.

`kerasft --help` and `kerasft <recipe> --help` answer without importing
TensorFlow: the configs live in `kerasft.recipes.configs`, and a recipe
module loads only when it runs. TensorFlow's C++ start-up lines are hidden
unless `--verbose 2`.

Example:
    kerasft --version
    kerasft demo --output kerasft_demo_output
    kerasft image-classification --train data/train --val data/val \\
        --backbone efficientnetb0 --epochs 10 --output runs/flowers
"""

import argparse
import dataclasses
import difflib
import json
import os
import re
import sys
import typing

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from kerasft import _tool_commands  # noqa: E402 (export/predict/tune)
from kerasft import generation as _generation  # noqa: E402 (generate)
from kerasft.advisor import command as _advise  # noqa: E402 (advise)
from kerasft._version import __version__  # noqa: E402
from kerasft.recipes import registry as _registry  # noqa: E402
from kerasft.recipes.configs import ignored_options  # noqa: E402

# Flag names that differ from the field names (the registry's).
_FLAG_NAMES = _registry.FLAG_NAMES
# Names that other layers use for a config field, in their messages.
_ALIASES = {"sequence_length": "max_length", "output": "output_dir",
            "source": "backbone"}

# The recipe subcommands, from the one registry.
_COMMANDS = _registry.COMMANDS


# === Config fields -> flags ===


flag = _registry.flag


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


def _choice(text):
    """Choices are spelled with underscores; hyphens work too."""
    return text.replace("-", "_")


_choice.__name__ = "choice"


def _add_field(parser, f, hint, hidden=False):
    names = _FLAG_NAMES.get(f.name, ["--" + f.name.replace("_", "-")])
    base, optional = _optional(hint)
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    if f.metadata.get("required"):
        help_text = f"{f.metadata.get('help', '')} (required)"
    else:
        help_text = f"{f.metadata.get('help', '')} (default: {default!r})"
    kwargs = {
        "dest": f.name,
        "default": argparse.SUPPRESS,
        "help": argparse.SUPPRESS if hidden else help_text,
    }
    choices = f.metadata.get("choices")
    if base is bool:
        parser.add_argument(*names, action=argparse.BooleanOptionalAction, **kwargs)
        return
    if base is tuple:
        convert, metavar = _int_tuple, "N[,N...]"
    elif base is dict or typing.get_origin(base) is dict:
        convert, metavar = _json_dict, "JSON"
    elif base in (int, float):
        convert, metavar = base, None
    elif choices:
        convert, metavar = _choice, None
    else:  # str, typing.Any: paths/names on the command line
        convert, metavar = str, None
    if optional:
        convert = _parse_none(convert)
    if choices:
        kwargs["choices"] = choices
    if metavar:
        kwargs["metavar"] = metavar
    parser.add_argument(*names, type=convert, **kwargs)


def add_config_arguments(parser, config_class, fixed=()):
    """Adds one flag per config field (except `fixed`) to `parser`.

    Fields that the fixed values make useless (the backbone options of
    `feature-extraction`) still parse, so that giving one is answered
    with why it does nothing, but `--help` does not list them.
    """
    hints = typing.get_type_hints(config_class)
    ignored = ignored_options(config_class, dict(fixed or {}))
    for f in dataclasses.fields(config_class):
        if f.name in (fixed or ()) or not f.metadata.get("cli", True):
            continue
        _add_field(parser, f, hints[f.name], hidden=f.name in ignored)
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="JSON or YAML file of options; flags given here override it.",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="Replace a previous run in the output folder: another config, "
        "or the same config on changed data (a run with the same options "
        "and data resumes, or is reused once complete, without it).",
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


class _Parser(argparse.ArgumentParser):
    """Unknown flags are reported by the subcommand they were given to,
    with its usage and the closest known flag."""

    def parse_args(self, args=None, namespace=None):
        args, extras = self.parse_known_args(args, namespace)
        if extras:
            parser = self
            command = getattr(args, "command", None)
            if command:
                parser = _subparsers(self)[command]
            parser.error(_unrecognized(parser, extras, _COMMANDS.get(command)))
        return args


class _Subparser(argparse.ArgumentParser):
    """A subcommand: an error is one line naming the subcommand, and where
    to see its options, not the whole usage (a recipe has 40 flags)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n"
                     f"(`{self.prog} --help` lists the options.)\n")


def _unrecognized(parser, extras, recipe=None):
    """The error for `extras`: why the recipe refuses a flag it has no
    option for (a `refused` config field), else the closest known flag."""
    message = f"unrecognized arguments: {' '.join(extras)}"
    refused = {} if recipe is None else {
        flag(f.name): f for f in dataclasses.fields(recipe.config_class())
        if f.metadata.get("refused")
    }
    known = [s for a in parser._actions for s in a.option_strings]
    for extra in extras:
        f = refused.get(extra.split("=")[0])
        if f is not None:
            why = f.metadata["refused"].replace("{recipe}", recipe.name)
            return f"{message} (not an option here: `{f.name}` {why})"
        if extra.startswith("--"):
            close = difflib.get_close_matches(extra.split("=")[0], known, n=1)
            if close:
                return f"{message} (did you mean {close[0]}?)"
    return message


def _subparsers(parser):
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


def _command_in(argv):
    """The subcommand named in `argv` (the first word not an option)."""
    for word in argv:
        if not word.startswith("-"):
            known = word in _COMMANDS or word in _tool_commands.COMMANDS
            known = known or word in ("generate", "advise")
            return word if known or word == "demo" else None
    return None


def build_parser(commands=None):
    """The `kerasft` argument parser.

    Args:
        commands: the recipe subcommands whose flags to add (each needs its
            config class). Defaults to `None`, meaning all of them.
    """
    parser = _Parser(
        prog="kerasft",
        description="Correct, fast fine-tuning of pretrained models with "
        "Keras 3. Every recipe writes metrics.json, history.csv, "
        "model.keras, plots and TensorBoard logs into --output.",
    )
    parser.add_argument(
        "--version", action="version", version=f"kerasft {__version__}"
    )
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_Subparser
    )

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

    _tool_commands.add_parsers(sub)
    _generation.add_parser(sub)
    advise = sub.add_parser(
        "advise", help="Measure data against a backbone and choose the "
        "fine-tuning strategy, rates and epochs (mode='auto').",
        description=_advise.DESCRIPTION,
    )
    _advise.add_arguments(advise)
    for command, entry in _COMMANDS.items():
        p = sub.add_parser(command, help=entry.help, description=entry.help)
        if commands is None or command in commands:
            add_config_arguments(p, entry.config_class(), entry.fixed)
    return parser


# === Checks before the run ===


def _check_options(parser, config_class, args, config):
    """Refuses flags the run would ignore; names ignored file options."""
    ignored = ignored_options(config_class, config.to_dict())
    given = [name for name in ignored if hasattr(args, name)]
    if given:
        flags = " and ".join(flag(name) for name in given)
        reason, instead = ignored[given[0]]
        parser.error(
            f"{flags} {'does' if len(given) == 1 else 'do'} nothing here: "
            f"{reason}. Drop {'it' if len(given) == 1 else 'them'}, or "
            f"{instead}."
        )
    # Ignored options from a --config FILE get a one-line note from the run.
    if "train" in config_class.field_names() and config.train is None:
        parser.error(
            "the following arguments are required: --train "
            "(or `train` in --config FILE)"
        )
    for name in ("train", "validation", "test"):
        path = getattr(config, name, None)
        if isinstance(path, str) and os.path.isfile(path) and not os.path.getsize(path):
            parser.error(f"{flag(name)} {path!r} is empty (0 bytes).")


def cli_message(message, config_class=None):
    """`message` with Python argument names replaced by their flags.

    Recipes name the Python arguments (`` `max_length` ``,
    `overwrite=True`); under the command line the user typed flags. A
    field without a flag (`cli=False`) keeps its name: only a --config
    FILE can set it.
    """
    names = {
        f.name for f in dataclasses.fields(config_class)
        if f.metadata.get("cli", True)
    } if config_class else set()
    names |= {"overwrite", "config"}

    def field_of(word):
        if word in names:
            return word
        word = _ALIASES.get(word)
        return word if word in names else None

    def backticked(match):
        name = field_of(match.group(1))
        return f"`{flag(name)}`" if name else match.group(0)

    def assignment(match):
        name, value = field_of(match.group(1)), match.group(2)
        if name is None:
            return match.group(0)
        if value == "True":
            return flag(name)
        if value == "False":
            return "--no-" + flag(name)[2:]
        return f"{flag(name)} {value}"

    message = re.sub(r"overwrite=True \(--overwrite\)", "--overwrite", message)
    message = re.sub(r"`(\w+)=?`", backticked, message)
    # `config=` in Keras's own messages is Keras's argument, not --config.
    message = re.sub(r"\b(?!config=)(\w+)=(\S+)", assignment, message)
    # A flag the lower layer already named once: "`--flag` (--flag)".
    return re.sub(r"(`?)(--[\w-]+)\1 \(\2\)", r"\1\2\1", message)


# === Console ===


def quiet_tensorflow(verbose=1):
    """Imports TensorFlow without its C++ start-up lines unless `verbose` is 2.

    TensorFlow's libraries log through absl before anything can configure
    it (`TF_CPP_MIN_LOG_LEVEL` does not reach those lines, and two of its
    libraries print each of them), so the import runs with the process's
    stderr sent to a file. That file is dropped, or with `verbose=2`
    replayed with each line once; it is replayed whole if the import fails.
    `TF_CPP_MIN_LOG_LEVEL=3` (unless set already, or `verbose=2`) then hides
    later C++ messages such as the `cuInit` error on machines without a
    GPU, and TensorFlow's Python logger shows errors only.
    """
    if "tensorflow" in sys.modules:
        return
    if verbose < 2:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        if verbose >= 2:
            captured.seek(0)
            sys.stderr.write(_once(captured.read().decode(errors="replace")))
            sys.stderr.flush()
            return
    tf.get_logger().setLevel("ERROR")
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # absl comes with TensorFlow; nothing to quiet
        pass


def _once(text):
    """`text` without lines repeating an earlier one (absl lines compared
    after their time and thread prefix)."""
    seen, kept = set(), []
    for line in text.splitlines(keepends=True):
        key = re.sub(r"^[IWEF]\d{4} [\d:.]+\s+\d+ ", "", line)
        if key not in seen:
            seen.add(key)
            kept.append(line)
    return "".join(kept)


def _verbose(args):
    if hasattr(args, "verbose"):
        return args.verbose
    if getattr(args, "config", None):
        from kerasft.recipes.config import load_config_file

        return load_config_file(args.config).get("verbose", 1)
    return 1


def _print_result(result):
    print(f"Outputs written to {os.path.abspath(result.output_dir)}")
    for key, value in sorted(result.metrics.items()):
        if isinstance(value, float):
            print(f"  {key}: {value:.4f}")


def main(argv=None):
    """Runs the `kerasft` command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _command_in(argv)
    parser = build_parser(commands=[command] if command else [])
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    subparser = _subparsers(parser)[args.command]
    config_class = None
    from kerasft import _io

    token = _io.CLI_FLAGS.set(flag)
    try:
        if args.command == "demo":
            quiet_tensorflow()
            from kerasft.recipes import demo

            demo.run_demo(
                task=args.task,
                output_dir=args.output,
                smoke=args.smoke,
                overwrite=args.overwrite,
            )
            return 0
        if args.command == "generate":
            quiet_tensorflow()
            return _generation.run_command(args)
        if args.command == "advise":
            quiet_tensorflow()
            return _advise.run(args)
        if args.command in _tool_commands.COMMANDS:
            quiet_tensorflow()
            return _tool_commands.run(args)
        entry = _COMMANDS[args.command]
        config_class = entry.config_class()
        config = config_from_args(config_class, args, entry.fixed)
        _check_options(subparser, config_class, args, config)
        quiet_tensorflow(_verbose(args))
        result = entry.load_function()(config, overwrite=args.overwrite)
    except (ValueError, TypeError, NotImplementedError) as e:
        if os.environ.get("KERASFT_DEBUG"):
            raise
        message = cli_message(str(e), config_class)
        print(f"kerasft {args.command}: error: {message}", file=sys.stderr)
        return 2
    finally:
        _io.CLI_FLAGS.reset(token)
    _print_result(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
