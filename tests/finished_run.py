"""A finished tiny image-classification run folder (for export/predict)."""

from kerasft import recipes
from tests.recipes.tiny import tiny_backbone, tiny_images


def finished_run(directory, epochs=4, **options):
    """Trains the tiny CNN on coloured 16x16 images; returns
    `(run folder, (x_test, y_test))`."""
    x, y = tiny_images(96, seed=0)
    x_test, y_test = tiny_images(60, seed=1)
    recipes.full_fine_tuning(
        train=(x, y), backbone=tiny_backbone(), epochs=epochs, head_epochs=1,
        learning_rate=1e-2, fine_tune_learning_rate=1e-3,
        output_dir=str(directory), batch_size=16, precision="float32",
        strategy="default", verbose=0, **options,
    )
    return str(directory), (x_test, y_test)
