"""Recipes: the kerasft pieces composed for one task, distributed and resumable.

Every recipe takes a frozen dataclass config (or a dict, a JSON/YAML path,
or keyword arguments), runs inside `strategy.scope()` under the chosen
precision policy, writes `config.json`, `metrics.json`, `history.csv`,
`model.keras`, plots and TensorBoard logs into `output_dir` (atomically),
resumes an interrupted run started again with the same config, and returns
a `RecipeResult` with `.model`, `.history`, `.metrics` and `.output_dir`.

The configs live in `kerasft.recipes.configs`, which does not import
TensorFlow; the recipe functions load theirs on first use.
"""

import importlib as _importlib
import sys as _sys
import types as _types

from kerasft.recipes import configs as _configs
from kerasft.recipes import registry as _registry
from kerasft.recipes.config import RecipeConfig

# The recipes' config classes (TensorFlow-free), as the registry names them.
_CONFIGS = sorted({recipe.config for recipe in _registry.RECIPES.values()})
globals().update({name: getattr(_configs, name) for name in _CONFIGS})

# Public name -> the module defining it (imported on first access); the
# recipes come from the one registry.
_LAZY = {
    "RecipeResult": "kerasft.recipes._runner",
    **{name: r.function.split(":")[0] for name, r in _registry.RECIPES.items()},
}

__all__ = sorted(["RecipeConfig", *_CONFIGS, *_LAZY])


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(
            f"module 'kerasft.recipes' has no attribute {name!r}"
        )
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


class _RecipesPackage(_types.ModuleType):
    """Keeps `kerasft.recipes.image_classification` (and the other recipes
    named like their module) the function: importing the submodule of the
    same name would otherwise rebind the package attribute to the module."""

    def __setattr__(self, name, value):
        if name in _LAZY and isinstance(value, _types.ModuleType):
            return
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _RecipesPackage


def __dir__():
    return sorted(set(__all__) | set(globals()))
