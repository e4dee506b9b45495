"""The tutorial's four fine-tuning strategies, as correct code.

Each is `image_classification` with its `mode` fixed. What the tutorial's
snippets got wrong and these do right: the backbone's own preprocessing is
inside the model (no `/255` for EfficientNet), BatchNorm stays in inference
mode when layers unfreeze, unfreezing happens inside one `fit` without a
recompile that resets the optimizer, the head is trained before the
backbone opens (a random head's large gradients would wreck the pretrained
features), and the run is resumable and distributed.
"""

from kerasft.recipes.config import resolve_config
from kerasft.recipes.image_classification import (
    ImageClassificationConfig,
    run_image_classification,
)


def _with_mode(mode, config, kwargs):
    if kwargs.get("mode", mode) != mode:
        raise ValueError(
            f"This recipe always uses mode={mode!r}. Received: "
            f"mode={kwargs['mode']!r}; call image_classification instead."
        )
    return resolve_config(
        ImageClassificationConfig, config, **{**kwargs, "mode": mode}
    )


def feature_extraction(config=None, *, overwrite=False, callbacks=None, **kwargs):
    """Trains a new head on a frozen pretrained backbone.

    Use it first, and when the new data is small or close to ImageNet. The
    backbone never trains; BatchNorm keeps its statistics.

    Args:
        config: an `ImageClassificationConfig`, dict or JSON/YAML path.
        overwrite: replace another run's outputs. Defaults to `False`.
        callbacks: extra Keras callbacks. Defaults to `None`.
        **kwargs: config fields, overriding `config`.

    Returns:
        A `RecipeResult`.

    Example:
    ```python
    result = kerasft.recipes.feature_extraction(
        train="flowers/train", validation="flowers/val", epochs=5,
        backbone="mobilenetv2", output_dir="runs/fe")
    ```
    """
    config = _with_mode("feature_extraction", config, kwargs)
    return run_image_classification(config, overwrite, callbacks)


def partial_fine_tuning(config=None, *, overwrite=False, callbacks=None, **kwargs):
    """Head first, then the top `unfreeze_groups` backbone groups train.

    Use it with moderate data, or data unlike ImageNet in its fine details:
    the top (most task-specific) stages adapt, the generic lower ones stay.

    Args:
        config: an `ImageClassificationConfig`, dict or JSON/YAML path.
        overwrite: replace another run's outputs. Defaults to `False`.
        callbacks: extra Keras callbacks. Defaults to `None`.
        **kwargs: config fields, overriding `config`.

    Returns:
        A `RecipeResult`.

    Example:
    ```python
    result = kerasft.recipes.partial_fine_tuning(
        train="flowers/train", validation="flowers/val", epochs=6,
        head_epochs=2, unfreeze_groups=1, output_dir="runs/partial")
    ```
    """
    config = _with_mode("partial", config, kwargs)
    return run_image_classification(config, overwrite, callbacks)


def progressive_fine_tuning(config=None, *, overwrite=False, callbacks=None, **kwargs):
    """Head, then the top groups, then everything, each at a lower rate.

    The tutorial's three stages (1e-3 head, then 1e-5, then 1e-6 by
    default scaled from `fine_tune_learning_rate`) inside one `fit`.

    Args:
        config: an `ImageClassificationConfig`, dict or JSON/YAML path.
        overwrite: replace another run's outputs. Defaults to `False`.
        callbacks: extra Keras callbacks. Defaults to `None`.
        **kwargs: config fields, overriding `config`.

    Returns:
        A `RecipeResult`.

    Example:
    ```python
    result = kerasft.recipes.progressive_fine_tuning(
        train="flowers/train", validation="flowers/val", epochs=8,
        output_dir="runs/progressive")
    ```
    """
    config = _with_mode("progressive", config, kwargs)
    return run_image_classification(config, overwrite, callbacks)


def full_fine_tuning(config=None, *, overwrite=False, callbacks=None, **kwargs):
    """Head first (`head_epochs`), then every backbone group trains.

    Use it with plenty of data or data far from ImageNet; keep the rate low
    (`fine_tune_learning_rate`) and consider `layer_decay`.

    Args:
        config: an `ImageClassificationConfig`, dict or JSON/YAML path.
        overwrite: replace another run's outputs. Defaults to `False`.
        callbacks: extra Keras callbacks. Defaults to `None`.
        **kwargs: config fields, overriding `config`.

    Returns:
        A `RecipeResult`.

    Example:
    ```python
    result = kerasft.recipes.full_fine_tuning(
        train="flowers/train", validation="flowers/val", epochs=6,
        head_epochs=1, layer_decay=0.8, output_dir="runs/full")
    ```
    """
    config = _with_mode("full", config, kwargs)
    return run_image_classification(config, overwrite, callbacks)
