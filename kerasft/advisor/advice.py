"""`Advice`: what `kerasft.advise` chose, from which measurements, and why."""

import dataclasses
import json
import math

# The recipe options an advice sets (`ImageClassificationConfig` fields).
FIELDS = (
    "mode",
    "unfreeze_groups",
    "head_epochs",
    "epochs",
    "learning_rate",
    "fine_tune_learning_rate",
    "layer_decay",
)
ADVICE_FILE = "advice.json"

# Which measurements each choice reads (for the printed table).
_MEASURED = {
    "mode": ("examples_per_class", "probe_accuracy", "group_shift"),
    "unfreeze_groups": ("num_groups",),
    "head_epochs": ("steps_per_epoch",),
    "epochs": ("steps_per_epoch",),
    "learning_rate": ("head_rate",),
    "fine_tune_learning_rate": ("head_rate",),
    "layer_decay": ("steps_per_epoch",),
}


def _show(value):
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if value is None:
        return "-"
    return str(value)


@dataclasses.dataclass(frozen=True)
class Advice:
    """The fine-tuning plan `kerasft.advise` chose, with its reasons.

    Attributes:
        choices: `{field: value}` for the recipe options in `FIELDS`.
        reasons: `{field: one sentence}`: the rule and the figures.
        measurements: the plain numbers the rules read (and what they
            cost: `measure_seconds`).
        overridden: fields the user set with `replace`.

    Example:
    ```python
    advice = kerasft.advise((x, y), backbone)
    print(advice)                      # measured -> chosen -> because
    advice = advice.replace(epochs=5)  # keep the rest
    kerasft.recipes.image_classification(
        backbone=backbone, train=(x, y), **advice.config_fields())
    ```
    """

    choices: dict
    reasons: dict
    measurements: dict
    overridden: tuple = ()

    def __getattr__(self, name):
        # Only reached for names that are not attributes: the choices.
        choices = self.__dict__.get("choices", {})
        if name in choices:
            return choices[name]
        raise AttributeError(f"'Advice' has no attribute {name!r}")

    def replace(self, **fields):
        """A copy with `fields` overridden by the user; the rest kept.

        Raises `ValueError` for a name that is not one of `FIELDS`.
        """
        unknown = sorted(set(fields) - set(FIELDS))
        if unknown:
            raise ValueError(
                f"`Advice.replace` sets only {list(FIELDS)}. Received: "
                f"{unknown}"
            )
        reasons = dict(self.reasons)
        for name in fields:
            reasons[name] = "set by the user"
        return Advice(
            {**self.choices, **fields}, reasons, self.measurements,
            tuple(dict.fromkeys([*self.overridden, *fields])),
        )

    def config_fields(self):
        """The recipe options to pass to `image_classification`."""
        fields = dict(self.choices)
        if fields.get("fine_tune_learning_rate") is None:
            fields.pop("fine_tune_learning_rate", None)
        return fields

    def to_dict(self):
        return {
            "choices": dict(self.choices),
            "reasons": dict(self.reasons),
            "measurements": _plain(self.measurements),
            "overridden": list(self.overridden),
        }

    @classmethod
    def from_dict(cls, data):
        return cls(dict(data["choices"]), dict(data["reasons"]),
                   dict(data["measurements"]), tuple(data.get("overridden", ())))

    def to_json(self, path):
        """Writes `to_dict()` as JSON to `path` (e.g. `run/advice.json`)."""
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=2, allow_nan=True)
        return path

    def table(self):
        """The "measured -> chosen -> because" table as text."""
        rows = [("choice", "measured", "chosen", "because")]
        for name in FIELDS:
            measured = ", ".join(
                f"{key}={_show(self.measurements.get(key))}"
                for key in _MEASURED[name] if key in self.measurements
            )
            rows.append((name, measured, _show(self.choices.get(name)),
                         self.reasons.get(name, "")))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = []
        for r in rows:
            lines.append("  ".join(r[i].ljust(widths[i]) for i in range(3))
                         + "  " + r[3])
        cost = self.measurements.get("measure_seconds")
        if cost is not None:
            lines.append(f"(measured in {cost:.1f} s)")
        return "\n".join(lines)

    def __str__(self):
        return self.table()


def _plain(value):
    """JSON-ready copy: numpy scalars/arrays to Python, NaN kept."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value
