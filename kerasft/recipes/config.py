"""Frozen dataclass configs shared by the recipe functions, CLI and scripts.

Every field carries its `help` text, so the CLI builds one `--flag` per field.
Configs round-trip through `to_dict`/`from_dict` and load from JSON or YAML
files; objects given in Python (data, a backbone) are `describe`d.
"""

import dataclasses
import hashlib
import os
import typing

from kerasft._io import FINGERPRINT_KEY  # `from_dict` ignores this key
from kerasft._json_file import load_json

__all__ = [
    "RecipeConfig",
    "data_fingerprint",
    "describe",
    "field",
    "load_config_file",
]

# Fields holding a run's data, fingerprinted beyond their path.
DATA_FIELDS = ("train", "validation", "test")
# Files up to this size are identified by a hash of their content.
_HASHED_FILE_BYTES = 64 * 2**20


def field(default, help, choices=None, cli=True, required=False, check=None,
          refused=None, refused_values=None):
    """A dataclass field with its CLI help text (and optional choices).

    `required` marks an option a run cannot do without (`--help` says
    "(required)"); the default stays `None` so that a `--config FILE` can
    supply it. `check` declares the values `RecipeConfig` accepts (see
    `check_value`): an int `n` (integers >= n), `"fraction"` ([0, 1)),
    `"decay"` ((0, 1]), `"positive"` (numbers > 0), `"nonnegative"` or
    `"string"`; a field whose default is `None` also takes `None`. `refused`
    says why the recipe cannot honour the option, continuing "`name` ..."
    (`{recipe}`: the recipe's name): it has no flag, and any value but the
    default is a `ValueError`. `refused_values` does the same for some
    values of a field with `choices` (`{value: why}`, continuing "name=value
    ..."): `--help` does not list them, and giving one is answered with why.
    """
    if refused_values:
        choices = _Choices(choices, refused_values)
    metadata = dict(help=help, choices=choices, cli=cli and not refused,
                    required=required, check=check, refused=refused,
                    refused_values=refused_values)
    return dataclasses.field(default=default, metadata=metadata)


class _Choices(tuple):
    """A field's accepted values whose `in` also holds its refused ones:
    argparse then passes a refused value on to the config, which says why
    it refuses it, while `--help` and "invalid choice" list only these."""

    def __new__(cls, accepted, refused):
        choices = super().__new__(cls, accepted)
        choices.refused = tuple(refused)
        return choices

    def __contains__(self, value):
        return value in self.refused or super().__contains__(value)


_RANGES = {
    "fraction": ("in [0, 1)", lambda v: is_number(v) and 0 <= v < 1),
    "decay": ("in (0, 1]", lambda v: is_number(v) and 0 < v <= 1),
    "positive": ("a positive number", lambda v: is_number(v) and v > 0),
    "nonnegative": ("a number >= 0", lambda v: is_number(v) and v >= 0),
    "string": ("a string", lambda v: isinstance(v, str)),
}


def is_number(value, kinds=(int, float)):
    """Whether `value` is an instance of `kinds` and not a bool."""
    return isinstance(value, kinds) and not isinstance(value, bool)


def check_value(name, value, check, optional=False):
    """Raises a `ValueError` naming `name` when `value` fails `check`
    (`field`'s `check`); `None` passes when `optional`."""
    if value is None and optional:
        return
    if isinstance(check, int):
        ok = is_number(value, int) and value >= check
        expected = ("a positive integer" if check == 1
                    else f"an integer >= {check}")
    else:
        expected, test = _RANGES[check]
        ok = test(value)
    if not ok:
        raise ValueError(
            f"`{name}` must be {expected}{' or None' if optional else ''}. "
            f"Received: {name}={value!r}"
        )


def describe(value):
    """Plain JSON data describing a config value, objects summarized: arrays
    by shape, dtype and a SHA-1 of their bytes (about a second per GB), a
    `tf.data.Dataset` only by its element spec (its content cannot be read
    without running it: pass `overwrite=True` after changing what it yields)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): describe(v) for k, v in value.items()}
    arrays = value if isinstance(value, tuple) and value else (value,)
    if all(hasattr(v, "shape") and hasattr(v, "dtype") for v in arrays):
        return {"arrays": [_array_summary(v) for v in arrays]}
    if isinstance(value, (list, tuple)):
        return [describe(v) for v in value]
    if hasattr(value, "extended") and hasattr(value, "num_replicas_in_sync"):
        return {"strategy": type(value).__name__}
    if hasattr(value, "element_spec"):
        return {"dataset": str(value.element_spec)}
    if hasattr(value, "groups") and hasattr(value, "model"):
        return {
            "backbone": value.name,
            "groups": list(value.group_names),
            "params": int(value.model.count_params()),
        }
    if hasattr(value, "get_config"):
        return {"object": type(value).__name__, "config": value.get_config()}
    if callable(value) and hasattr(value, "__qualname__"):
        # By name: a function's repr holds its address, new in every process
        # (a resumed run would not recognise its own folder).
        return {"function": f"{value.__module__}.{value.__qualname__}"}
    return {"object": repr(value)}


def normalised_value(name, value, choices=None):
    """One spelling for a `describe`d config value, so that equivalent runs
    have equal identities: a data field's value (or any string with a path
    separator) naming an existing path becomes its real absolute path
    (symlinks and `..` resolved); `"none"`/`"null"` in any case becomes
    `None` (as on the command line) unless `choices` lists `"none"`; a
    choice in another case becomes the choice.

    Args:
        name: the field's name.
        value: its described value (`describe`).
        choices: the field's allowed values, or `None`.
    """
    if not isinstance(value, str) or not value:
        return value
    if value.lower() in ("none", "null") and not (choices and "none" in choices):
        return None
    if choices and value not in choices and value.lower() in choices:
        return value.lower()
    looks_like_path = name in DATA_FIELDS or os.sep in value or (
        os.altsep is not None and os.altsep in value
    )
    if looks_like_path and not value.startswith("tfds:"):
        expanded = os.path.expanduser(value)
        if os.path.exists(expanded):
            return os.path.realpath(expanded)
    return value


def _array_summary(array):
    import numpy as np

    array = np.asarray(array)
    digest = hashlib.sha1(np.ascontiguousarray(array).tobytes()).hexdigest()
    return {
        "shape": list(array.shape),
        "dtype": str(array.dtype),
        "sha1": digest[:16],
    }


def data_fingerprint(value, exclude=None):
    """Plain JSON data identifying the data at a path, which the path alone
    does not: a folder by its files' names, sizes and modification times, a
    small file by a hash of its content (plus, for image CSVs, the sizes and
    times of the files it names), `tfds:NAME[:SPLIT]` by name and split. A
    run folder records it, so a run is not reused or resumed on changed data.

    Args:
        value: a config's data value; only paths and `tfds:` names are
            fingerprinted, other values give `None` (`describe` covers them).
        exclude: a folder to leave out (the run's own output folder, when it
            lies inside a data folder). Defaults to `None`.
    """
    if not isinstance(value, (str, os.PathLike)):
        return None
    value = os.fspath(value)
    if value.startswith("tfds:"):
        name, _, split = value[len("tfds:"):].partition(":")
        return {"tfds": name, "split": split or "train"}
    if os.path.isdir(value):
        return _folder_fingerprint(value, exclude)
    if os.path.isfile(value):
        return _file_fingerprint(value)
    return None


def _stat_entry(path, root):
    """`name, size, mtime` of a file (followed if a symlink), and its size;
    a dangling or looping symlink, which the readers skip, as `name, -`."""
    try:
        stat = os.stat(path)
    except OSError:
        return f"{os.path.relpath(path, root)}\t-", 0
    entry = f"{os.path.relpath(path, root)}\t{stat.st_size}\t{stat.st_mtime_ns}"
    return entry, stat.st_size


def _folder_fingerprint(root, exclude=None):
    exclude = os.path.abspath(exclude) if exclude else None
    entries, total, classes = [], 0, None
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(
            d for d in subdirs
            if not d.startswith(".")
            and os.path.abspath(os.path.join(directory, d)) != exclude
        )
        if classes is None:  # the top level's sub-folders
            classes = list(subdirs)
        for name in sorted(n for n in files if not n.startswith(".")):
            entry, size = _stat_entry(os.path.join(directory, name), root)
            entries.append(entry)
            total += size
    return {
        "folder": os.path.abspath(root),
        "classes": classes or [],
        "files": len(entries),
        "bytes": total,
        "sha1": _sha1("\n".join(entries)),
    }


def _file_fingerprint(path):
    size = os.path.getsize(path)
    out = {"file": os.path.abspath(path), "bytes": size}
    if size > _HASHED_FILE_BYTES:
        out["mtime_ns"] = os.stat(path).st_mtime_ns
        return out
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    out["sha1"] = digest.hexdigest()[:16]
    named = path.lower().endswith((".csv", ".tsv")) and _named_files(path)
    if named:
        out["named_files"] = named
    return out


def _named_files(csv_path):
    """Sizes and times of the image files a CSV's `filename` column names."""
    import csv

    root = os.path.dirname(os.path.abspath(csv_path))
    delimiter = "\t" if csv_path.lower().endswith(".tsv") else ","
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f, delimiter=delimiter)
            if "filename" not in (reader.fieldnames or ()):
                return None
            names = sorted({row["filename"] for row in reader if row.get("filename")})
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    entries = []
    for name in names:
        path = os.path.join(root, name)
        entries.append(
            _stat_entry(path, root)[0] if os.path.isfile(path) else f"{name}\t-"
        )
    return {"files": len(entries), "sha1": _sha1("\n".join(entries))}


def _sha1(text):
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def load_config_file(path):
    """Reads a JSON or YAML (`.yaml`/`.yml`, needs PyYAML) config file."""
    if not os.path.exists(path):
        raise ValueError(f"Config file {path!r} does not exist.")
    if not os.path.isfile(path):  # a folder, a FIFO (would block), a device
        raise ValueError(
            f"Config file {path!r} is not a regular file. Pass a JSON or "
            "YAML file."
        )
    if path.endswith((".yaml", ".yml")):
        data = _load_yaml(path)
    else:
        data = load_json(path, "an object of option names to values, e.g. "
                         '{"epochs": 3}; or name a .yaml file')
    if not isinstance(data, dict):
        raise ValueError(
            f"Config file {path!r} must hold a mapping of option names to "
            f"values. Received: {type(data).__name__}"
        )
    return data


def _load_yaml(path):
    try:
        import yaml
    except ImportError:
        raise ValueError(
            f"Reading {path!r} needs PyYAML (`pip install pyyaml`); or "
            "write the config as JSON."
        ) from None
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f.read())
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"Cannot read config file {path!r}: {e}.") from None
    except yaml.YAMLError as e:
        m = getattr(e, "problem_mark", None)  # where the parser stopped
        at = f" at line {m.line + 1}, column {m.column + 1}" if m else ""
        raise ValueError(
            f"Config file {path!r} is not valid YAML "
            f"({getattr(e, 'problem', None) or e}{at}). Expected a mapping "
            "of option names to values, e.g. 'epochs: 3'."
        ) from None


@dataclasses.dataclass(frozen=True)
class RecipeConfig:
    """Options every recipe shares. Subclasses add their task's options."""

    output_dir: str = field(
        "kerasft_run",
        "Folder for metrics.json, history.csv, model.keras, plots, "
        "TensorBoard logs, config.json and the resume backup.",
    )
    # Each recipe redeclares `train` with the forms its data takes.
    train: typing.Any = field(None, "Training data.", required=True)
    validation: typing.Any = field(
        None, "Validation data, in the same forms as --train."
    )
    test: typing.Any = field(None, "Test data, in the same forms as --train.")
    epochs: int = field(10, "Total training epochs (all stages).", check=1)
    batch_size: int = field(
        32,
        "Batch size per replica; the pipeline uses batch_size x replicas.",
        check=1,
    )
    learning_rate: float = field(
        1e-3,
        "Base learning rate (the head's; with no head the model's), before "
        "replica scaling.",
        check="positive",
    )
    lr_scaling: str = field(
        "linear",
        "How the learning rate grows with the replica count: linear "
        "(x replicas), sqrt (x sqrt(replicas)) or none.",
        choices=("linear", "sqrt", "none"),
    )
    strategy: str = field(
        "auto",
        "Distribution strategy: auto, tpu, mirrored, multiworker or default "
        "(in Python also a tf.distribute.Strategy).",
        choices=("auto", "tpu", "mirrored", "multiworker", "default"),
    )
    precision: str = field(
        "auto",
        "Keras dtype policy: auto (mixed_bfloat16 on TPU and bf16 CPUs, "
        "mixed_float16 on recent GPUs, else float32) or a policy name.",
        choices=("auto", "float32", "mixed_float16", "mixed_bfloat16"),
    )
    accumulation_steps: int = field(
        1,
        "Batches per optimizer update (kerasft.optimizers."
        "GradientAccumulator): the update of a batch accumulation_steps "
        "times larger, in the memory of one.",
        check=1,
    )
    no_weight_decay: str = field(
        "rank<=1",
        "Variables kept out of weight decay, comma-separated: rank<=1 "
        "(biases, BatchNorm/LayerNorm scales and offsets) and/or regexes on "
        "variable paths; none decays everything.",
    )
    early_stopping: typing.Optional[int] = field(
        None,
        "Stop after this many epochs without val_loss improvement and "
        "restore the best weights; none disables it.",
        check=1,
    )
    seed: int = field(0, "Random seed (weights, shuffling, dropout).")
    verbose: int = field(
        1,
        "0 quiet, 1 progress bars on a terminal (one line per epoch when "
        "output goes to a file or pipe), 2 one line per epoch plus "
        "TensorFlow's own start-up logs.",
        choices=(0, 1, 2),
    )
    export: typing.Any = field(
        None,
        "Also export the trained model next to model.keras: saved_model "
        "(model_saved_model/), tflite (model.tflite) or both, "
        "comma-separated; none: no export.",
    )

    def __post_init__(self):
        self._validate()

    def no_weight_decay_rules(self):
        """`no_weight_decay` as the tuple `kerasft.optimizers.AdamW` takes."""
        import re

        text = self.no_weight_decay
        if text is None or str(text).strip().lower() in ("", "none"):
            return ()
        if not isinstance(text, str):
            text = ",".join(text)
        rules = tuple(r.strip() for r in text.split(",") if r.strip())
        for rule in [r for r in rules if r != "rank<=1"]:
            try:
                re.compile(rule)
            except re.error as e:
                raise ValueError(
                    f"`no_weight_decay` holds an invalid regex {rule!r} "
                    f"({e}). Expected rank<=1 and/or regexes on variable "
                    "paths, comma-separated."
                ) from None
        return rules

    # === Validation ===

    _recipe = "this recipe"  # `{recipe}` in the `refused` errors

    def _validate(self):
        from kerasft.exporting import export_formats

        for f in dataclasses.fields(self):
            value, meta = getattr(self, f.name), f.metadata
            if meta["refused"] and value != f.default:
                why = meta["refused"].replace("{recipe}", self._recipe)
                raise ValueError(
                    f"`{f.name}` {why}. Received: {f.name}={value!r}"
                )
            choices = meta["choices"]
            if choices and isinstance(value, str) and value not in choices:
                # Subcommands are spelled with hyphens: accept them in choices.
                if value.replace("-", "_") not in choices:
                    raise ValueError(
                        f"`{f.name}` must be one of {tuple(choices)}. "
                        f"Received: {f.name}={value!r}"
                    )
                value = value.replace("-", "_")
                object.__setattr__(self, f.name, value)
            refused_values = meta["refused_values"] or {}
            if isinstance(value, str) and value in refused_values:
                raise ValueError(
                    f"{f.name}={value!r} {refused_values[value]}. "
                    f"Received: {f.name}={value!r}"
                )
            if meta["check"] is not None:
                args = typing.get_args(f.type)  # Optional[int]: (int, None)
                optional = f.default is None or type(None) in args
                check_value(f.name, value, meta["check"], optional=optional)
        export_formats(self.export)  # raises on an unknown format
        self.no_weight_decay_rules()  # raises on a bad regex

    # === Conversion ===

    def to_dict(self):
        """Plain JSON data (objects such as datasets summarized)."""
        return {
            f.name: describe(getattr(self, f.name))
            for f in dataclasses.fields(self)
        }

    def data_fingerprint(self):
        """`{field: data_fingerprint}` for the data fields given as paths."""
        out = {
            name: data_fingerprint(getattr(self, name), exclude=self.output_dir)
            for name in DATA_FIELDS
        }
        return {name: value for name, value in out.items() if value is not None}

    def identity(self):
        """What a run folder's `config.json` records: `to_dict()` plus the
        data fingerprints under `"data_fingerprint"`, with equivalent
        spellings made equal (`normalised_value`: `--train data` and
        `--train /abs/path/data` are one run)."""
        options = {
            f.name: normalised_value(
                f.name, describe(getattr(self, f.name)), f.metadata["choices"]
            )
            for f in dataclasses.fields(self)
        }
        return {**options, FINGERPRINT_KEY: self.data_fingerprint()}

    @classmethod
    def field_names(cls):
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, data):
        """Builds a config from a dict; unknown keys are an error."""
        if not isinstance(data, dict):
            raise TypeError(
                f"`{cls.__name__}.from_dict` needs a dict. Received: {data!r}"
            )
        data = {k: v for k, v in data.items() if k != FINGERPRINT_KEY}
        _check_keys(cls, data, ValueError)
        for f in dataclasses.fields(cls):
            if f.type is tuple and isinstance(data.get(f.name), list):
                data[f.name] = tuple(data[f.name])  # JSON lists back to tuples
        return cls(**data)

    @classmethod
    def from_file(cls, path, **overrides):
        """Loads a JSON/YAML config file; `overrides` win over the file."""
        return cls.from_dict({**load_config_file(path), **overrides})

    def replace(self, **changes):
        """A copy with some fields changed (validated again)."""
        _check_keys(type(self), changes, ValueError)
        return dataclasses.replace(self, **changes)


def resolve_config(config_class, config=None, **kwargs):
    """A recipe's config from a config object, dict, file path and/or kwargs
    (which override the values in `config`)."""
    if config is None:
        return config_class(**_check_keys(config_class, kwargs))
    if isinstance(config, (str, os.PathLike)):
        return config_class.from_file(os.fspath(config), **kwargs)
    if isinstance(config, dict):
        return config_class.from_dict({**config, **kwargs})
    if isinstance(config, RecipeConfig):
        extra = sorted(set(config.field_names()) - set(config_class.field_names()))
        if extra:
            raise TypeError(
                f"A {type(config).__name__} cannot configure this recipe "
                f"(it needs {config_class.__name__}; extra options {extra})."
            )
        data = {name: getattr(config, name) for name in config.field_names()}
        return config_class(**{**data, **_check_keys(config_class, kwargs)})
    raise TypeError(
        f"`config` must be a {config_class.__name__}, a dict or a path to a "
        f"JSON/YAML file. Received: config={config!r}"
    )


def _check_keys(config_class, kwargs, error=TypeError):
    """`kwargs`, or `error` naming the keys `config_class` does not have."""
    unknown = sorted(set(kwargs) - set(config_class.field_names()))
    if unknown:
        raise error(
            f"Unknown {config_class.__name__} option(s) {unknown}. Known "
            f"options: {config_class.field_names()}"
        )
    return kwargs
