"""The one recipe registry: everything that lists recipes reads it."""

import os

import pytest

from kerasft import cli
from kerasft import recipes
from kerasft.recipes import registry

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_docs_option_table_is_current():
    with open(os.path.join(ROOT, "docs", "recipes.md"), encoding="utf-8") as f:
        page = f.read()
    start = page.index("<!-- option-table:start -->\n") + len(
        "<!-- option-table:start -->\n")
    end = page.index("<!-- option-table:end -->")
    assert page[start:end] == registry.option_table(), (
        "docs/recipes.md's option table is stale: replace it with "
        "kerasft.recipes.registry.option_table()")


def test_cli_python_and_tune_read_the_registry():
    assert set(cli._COMMANDS) == {r.command for r in registry.RECIPES.values()}
    for name, recipe in registry.RECIPES.items():
        function = getattr(recipes, name)
        assert registry.of_function(function) is recipe
        assert name in recipes.__all__
    from kerasft.tuning import resolve_recipe

    _, config_class, fixed = resolve_recipe("partial-fine-tuning")
    assert config_class.__name__ == "ImageClassificationConfig"
    assert fixed == {"mode": "partial"}


def test_every_recipe_has_a_predictor_and_task():
    tasks = {r.task for r in registry.RECIPES.values()}
    assert tasks <= set(registry.RECIPES)
    for recipe in registry.RECIPES.values():
        assert callable(recipe.load_predictor()), recipe.name


def test_unknown_recipe_names_the_closest():
    with pytest.raises(ValueError, match="Did you mean 'segmentation'"):
        registry.get("segmentaton")


def test_run_records_its_recipe_from_the_config_class():
    from kerasft.recipes.configs import ImageClassificationConfig
    from kerasft.recipes.configs import Seq2SeqConfig

    assert registry.task_of_config(
        ImageClassificationConfig(train="x", mode="partial")) == "image_classification"
    assert registry.task_of_config(Seq2SeqConfig(train="x")) == "seq2seq"
