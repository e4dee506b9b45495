"""The tutorial's four fine-tuning strategies: `image_classification` with
its `mode` fixed (`kerasft.recipes._stages` says what each mode trains).
"""

from kerasft.recipes.config import resolve_config
from kerasft.recipes.image_classification import (
    ImageClassificationConfig,
    run_image_classification,
)

_DOC = """{summary}

{when}

Args:
    config: an `ImageClassificationConfig`, dict or JSON/YAML path.
    overwrite: replace another run's outputs. Defaults to `False`.
    callbacks: extra Keras callbacks. Defaults to `None`.
    **kwargs: config fields, overriding `config`.

Returns:
    A `RecipeResult`.

Example:
```python
result = kerasft.recipes.{name}(
    train="flowers/train", validation="flowers/val", {example})
```
"""


def _recipe(name, mode, summary, when, example):
    """`image_classification` with `mode` fixed, as the function `name`."""

    def recipe(config=None, *, overwrite=False, callbacks=None, **kwargs):
        if kwargs.get("mode", mode) != mode:
            raise ValueError(
                f"This recipe always uses mode={mode!r}. Received: "
                f"mode={kwargs['mode']!r}; call image_classification instead."
            )
        config = resolve_config(
            ImageClassificationConfig, config, **{**kwargs, "mode": mode}
        )
        return run_image_classification(config, overwrite, callbacks)

    recipe.__name__ = recipe.__qualname__ = name
    recipe.__doc__ = _DOC.format(
        summary=summary, when=when, name=name, example=example
    )
    return recipe


feature_extraction = _recipe(
    "feature_extraction", "feature_extraction",
    "Trains a new head on a frozen pretrained backbone.",
    "Use it first, and when the new data is small or close to ImageNet. The\n"
    "backbone never trains; BatchNorm keeps its statistics.",
    'epochs=5,\n    backbone="mobilenetv2", output_dir="runs/fe"',
)
partial_fine_tuning = _recipe(
    "partial_fine_tuning", "partial",
    "Head first, then the top `unfreeze_groups` backbone groups train.",
    "Use it with moderate data, or data unlike ImageNet in its fine details:\n"
    "the top (most task-specific) stages adapt, the generic lower ones stay.",
    'epochs=6,\n    head_epochs=2, unfreeze_groups=1, output_dir="runs/partial"',
)
progressive_fine_tuning = _recipe(
    "progressive_fine_tuning", "progressive",
    "Head, then the top groups, then everything, each at a lower rate.",
    "The tutorial's three stages (1e-3 head, then 1e-5, then 1e-6 by\n"
    "default scaled from `fine_tune_learning_rate`) inside one `fit`.",
    'epochs=8,\n    output_dir="runs/progressive"',
)
full_fine_tuning = _recipe(
    "full_fine_tuning", "full",
    "Head first (`head_epochs`), then every backbone group trains.",
    "Use it with plenty of data or data far from ImageNet; keep the rate low\n"
    "(`fine_tune_learning_rate`) and consider `layer_decay`.",
    'epochs=6,\n    head_epochs=1, layer_decay=0.8, output_dir="runs/full"',
)
