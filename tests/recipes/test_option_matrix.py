"""The optimizer options mean the same in every recipe: one factory.

Each recipe trains its tiny round-trip case (`tests/round_trip_data.py`)
from the command line with the same optimizer flags, and the optimizer
saved in its `model.keras` is `kerasft.optimizers.make_optimizer`'s for
those flags: `GradientAccumulator` (`--accumulation-steps`) around
`LayerwiseLR` (`--layer-decay`) around kerasft's `AdamW`
(`--weight-decay`, `--no-weight-decay`) with a warmup schedule
(`--lr-schedule`, `--warmup-ratio`). What each wrapper does is tested once,
in tests/optimizers/; the per-recipe tests (test_*_options.py) show the
options change training.
"""

import json
import os
import zipfile

import pytest

from kerasft.recipes import registry
from tests import round_trip_data as data

pytestmark = pytest.mark.slow

FLAGS = ["--mode", "full", "--accumulation-steps", "2",
         "--layer-decay", "0.5", "--weight-decay", "0.3",
         "--no-weight-decay", "rank<=1,embeddings", "--lr-schedule", "linear",
         "--warmup-ratio", "0.5"]
# The four tutorial commands are image_classification with a fixed mode.
CASES = [c for c in data.CASES if not registry.get(data.recipe_of(c)).fixed]


def _optimizer_of(model_path):
    with zipfile.ZipFile(model_path) as archive:
        config = json.loads(archive.read("config.json"))
    return config["compile_config"]["optimizer"]


def _unwrap(optimizer, class_name):
    assert optimizer["class_name"] == class_name, optimizer["class_name"]
    return optimizer["config"]


@pytest.mark.parametrize("case", CASES)
def test_every_recipe_builds_the_one_optimizer(case, tmp_path, monkeypatch):
    from kerasft import cli

    folder = tmp_path / case
    written = data.write_case(case, str(folder))
    monkeypatch.chdir(folder)
    # No head-only epochs (absent from the generative recipes' --help).
    head = [] if data.recipe_of(case) in ("seq2seq", "causal_lm") else [
        "--head-epochs", "0"]
    assert cli.main([*written.train, *FLAGS, *head]) == 0

    optimizer = _optimizer_of(os.path.join(data.RUN, "model.keras"))
    accumulator = _unwrap(optimizer, "GradientAccumulator")
    assert accumulator["steps"] == 2
    layerwise = _unwrap(accumulator["optimizer"], "LayerwiseLR")
    assert layerwise["layer_decay"] == 0.5
    adamw = _unwrap(layerwise["optimizer"], "AdamW")
    assert adamw["weight_decay"] == pytest.approx(0.3)
    assert list(adamw["no_weight_decay"]) == ["rank<=1", "embeddings"]
    rate = adamw["learning_rate"]
    assert isinstance(rate, dict), rate  # a schedule, not a constant
    assert rate["class_name"] == "WarmupSchedule", rate["class_name"]
