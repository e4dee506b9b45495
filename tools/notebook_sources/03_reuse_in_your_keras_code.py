# %% [markdown]
# # Keep your Keras code, add three kerasft pieces
#
# You already have a model and a `model.fit` loop that fine-tune a pretrained network the way
# the tutorials do: freeze the base, train the head, unfreeze, recompile at a lower rate, train
# again. This notebook keeps that code and changes only three things:
#
# 1. `kerasft.augment.ImageAugmentation` in the `tf.data` pipeline, with the
#    `ImageDataGenerator` arguments you already use;
# 2. `kerasft.optimizers.LayerwiseLR` around your optimizer: smaller steps for deeper layers;
# 3. `kerasft.callbacks.ProgressiveUnfreeze` in `callbacks=[...]`: the base opens from the top,
#    stage by stage, inside one `fit`, without a recompile.
#
# No `build_model`, no recipes: your model stays your model. The data are the handwritten digits
# that scikit-learn ships, so everything runs offline.

# %%
import sys

# kerasft is not on PyPI (a package published there under that name would not
# be this project). In Colab, set KERASFT to where to install it from: the
# project's repository ("git+https://<host>/<owner>/kerasft.git") or a wheel you
# built with `python -m build` and uploaded ("/content/kerasft-<version>-py3-none-any.whl").
# Elsewhere install it first (`pip install -e .` in a checkout); this cell then does nothing.
KERASFT = ""

if "google.colab" in sys.modules:
    import pathlib

    if not KERASFT:
        raise ValueError(
            "Set KERASFT in the first cell to the kerasft repository "
            "(git+https://...) or the path of a kerasft wheel: kerasft is not on PyPI."
        )
    _url = KERASFT if "://" in KERASFT else pathlib.Path(KERASFT).resolve().as_uri()
    %pip install -q "kerasft @ {_url}"

# %%
import os

SMOKE = os.environ.get("SMOKE") == "1"

IMAGE_SIZE = 32 if SMOKE else 96
SAMPLES = 320 if SMOKE else None  # None: all 1797 digits
BATCH_SIZE = 32
EPOCHS_HEAD = 1 if SMOKE else 4
EPOCHS_FINE = 1 if SMOKE else 6
WEIGHTS = None if SMOKE else "imagenet"

# %%
import keras
import numpy as np
import tensorflow as tf
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import kerasft

keras.utils.set_random_seed(0)

# %% [markdown]
# ## The data you already have
#
# 8x8 grey digits, scaled to RGB images of `IMAGE_SIZE` pixels in [0, 255], split in train and
# validation sets, as `tf.data` pipelines.

# %%
digits = load_digits()
images = np.repeat(digits.images[..., None] * (255.0 / 16.0), 3, axis=-1).astype("float32")
labels = digits.target
if SAMPLES:
    images, labels = images[:SAMPLES], labels[:SAMPLES]
x_train, x_val, y_train, y_val = train_test_split(
    images, labels, test_size=0.25, random_state=0, stratify=labels
)


def to_dataset(x, y, shuffle):
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        ds = ds.shuffle(len(x), seed=0)
    ds = ds.batch(BATCH_SIZE)
    return ds.map(lambda x, y: (tf.image.resize(x, (IMAGE_SIZE, IMAGE_SIZE)), y))


train_ds = to_dataset(x_train, y_train, shuffle=True).cache()
val_ds = to_dataset(x_val, y_val, shuffle=False).cache()

# %% [markdown]
# ## The model you already have
#
# A MobileNetV2 base (pretrained on ImageNet when online), its own preprocessing, a pooled
# dense head. The base is called with `training=False`, as the Keras guide recommends, so its
# BatchNorm layers run in inference mode.

# %%
def make_model():
    base = keras.applications.MobileNetV2(
        input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3), alpha=0.35, include_top=False, weights=WEIGHTS
    )
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)  # MobileNetV2 wants [-1, 1]
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(10, activation="softmax")(x)
    return base, keras.Model(inputs, outputs)


def accuracy(model):
    return model.evaluate(val_ds, verbose=0, return_dict=True)["accuracy"]

# %% [markdown]
# ## Before: the tutorial's two-phase loop
#
# Freeze, fit, unfreeze, recompile, fit again. It runs, but: the optimizer state is thrown
# away at the recompile; the whole base opens at once, every layer at the same rate; there is
# no augmentation, because `ImageDataGenerator` is gone from Keras 3; and once
# `base.trainable = True`, its BatchNorm layers train and normalize with batch statistics,
# although the base was called with `training=False` (the outer `fit` still reaches the nested
# model, keras#20285), which damages pretrained features at small batch sizes.

# %%
base, model = make_model()
base.trainable = False
model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(train_ds, validation_data=val_ds, epochs=EPOCHS_HEAD, verbose=2)
base.trainable = True
model.compile(keras.optimizers.Adam(1e-5), "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(train_ds, validation_data=val_ds, epochs=EPOCHS_FINE, verbose=2)
before = accuracy(model)
print(f"validation accuracy, plain loop: {before:.3f}")

# %% [markdown]
# ## After: the same model and the same `fit`, plus three pieces
#
# **1. Augmentation** with `ImageDataGenerator`'s keyword arguments, mapped over the training
# pipeline only. It runs on float32 in `tf.data`, so it never turns XLA off for the model and
# never sees a bfloat16 tensor.

# %%
augment = kerasft.augment.ImageAugmentation(
    rotation_range=10, width_shift_range=0.1, height_shift_range=0.1, zoom_range=0.1, seed=0
)
train_aug = train_ds.map(
    lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE
).prefetch(tf.data.AUTOTUNE)

# %% [markdown]
# **2. Groups for your base.** `kerasft.backbones.from_model` wraps the model you already have
# (nothing is copied or rebuilt) and groups its layers by depth, so the next two pieces can
# address "the top two blocks" by name. It recognises `keras.applications` families and uses
# their own stages/blocks; for an architecture of your own it derives groups from the layer
# names (see its docstring), or you pass `groups=` yourself.

# %%
base, model = make_model()
backbone = kerasft.backbones.from_model(base)
print(len(backbone.groups), "groups:", backbone.group_names)

# %% [markdown]
# **3. One optimizer with layer-wise rates**: the head at the base rate, each backbone group
# below it 0.7 times the rate of the group above. `groups=backbone` tells `LayerwiseLR` which
# variables belong to which group (models made by `kerasft.build_model` carry that already).
#
# **4. Progressive unfreezing in the same `fit`**: head only for the first epochs, then the top
# groups, then everything. No recompile: the optimizer is prepared for all the variables that
# will ever train and keeps its state across stages; BatchNorm layers stay frozen, so their
# statistics stay put.

# %%
optimizer = kerasft.optimizers.LayerwiseLR(
    keras.optimizers.Adam(1e-3), layer_decay=0.7, groups=backbone
)
model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
# epoch -> number of top backbone groups that train
schedule = {0: 0, 1: "all"} if SMOKE else {0: 0, EPOCHS_HEAD: 2, EPOCHS_HEAD + 2: "all"}
unfreeze = kerasft.callbacks.ProgressiveUnfreeze(backbone, schedule)
model.fit(
    train_aug,
    validation_data=val_ds,
    epochs=EPOCHS_HEAD + EPOCHS_FINE,
    callbacks=[unfreeze],
    verbose=2,
)
after = accuracy(model)
print(f"validation accuracy, plain loop: {before:.3f} | with the three pieces: {after:.3f}")

# %% [markdown]
# With ImageNet weights (`SMOKE` unset, online) the second run usually ends higher; in smoke
# mode the weights are random and the numbers only show that the code runs.
#
# The model is still an ordinary Keras model: save it and load it back as usual, without
# `custom_objects`. The optimizer is saved with it: `LayerwiseLR`, its wrapped Adam and the
# per-group rates.

# %%
model.save("digits_model.keras")
reloaded = keras.models.load_model("digits_model.keras")
print(type(reloaded.optimizer).__name__, "| accuracy after reload:", round(accuracy(reloaded), 3))
