"""`rand_augment`: Keras's RandAugment set up for `[0, 255]` image batches."""

import keras


def rand_augment(num_ops=2, factor=0.5, seed=None, **kwargs):
    """`keras.layers.RandAugment` for raw `[0, 255]` images, as an option.

    A pass-through so pipelines can choose RandAugment instead of (or after)
    `ImageAugmentation`: `kerasft.data.image_folder(..., augment="randaugment")`
    uses it with its defaults. Run it in `tf.data` on float32 images.

    Args:
        num_ops: number of random operations per image. Defaults to `2`.
        factor: strength in `[0, 1]`. Defaults to `0.5`.
        seed: integer seed. Defaults to `None`.
        **kwargs: any other `keras.layers.RandAugment` argument.

    Example:
    ```python
    layer = rand_augment(num_ops=2, factor=0.5, seed=0)
    out = layer(np.random.uniform(0, 255, (2, 32, 32, 3)).astype("float32"))
    ```
    """
    kwargs.setdefault("value_range", (0, 255))
    return keras.layers.RandAugment(
        num_ops=num_ops, factor=factor, seed=seed, **kwargs
    )
