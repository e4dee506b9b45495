"""A tiny BatchNorm-free image encoder for captioning recipe tests."""

import keras

from kerasft import backbones


def caption_backbone(size=32, seed=0, name="caption_cnn"):
    """Two strided convolutions: an 8x8 feature map (64 tokens) at 32 px."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255.0, name="c1_rescale")(inputs)
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same",
                            activation="relu", name="c1_conv")(x)
    x = keras.layers.Conv2D(64, 3, strides=2, padding="same",
                            activation="relu", name="c2_conv")(x)
    return backbones.from_model(
        keras.Model(inputs, x, name=name),
        groups={"c1": ["c1_rescale", "c1_conv"], "c2": ["c2_conv"]},
    )


def vit_backbone(size=32, seed=0):
    """A random two-block KerasHub ViT (8 px patches: 16 patch tokens and
    the class token), wrapped by `kerasft.backbones.from_keras_hub`."""
    import keras_hub

    keras.utils.set_random_seed(seed)
    vit = keras_hub.models.ViTBackbone(
        image_shape=(size, size, 3), patch_size=8, num_layers=2, num_heads=2,
        hidden_dim=16, mlp_dim=32,
    )
    return backbones.from_keras_hub(vit)
