# %% [markdown]
# # Fine-tuning an image model, step by step
#
# The transfer-learning tutorials teach three stages: train a new head on a frozen
# pretrained backbone (*feature extraction*), then open the top of the backbone (*partial
# fine-tuning*), then open more of it, little by little, at a lower learning rate
# (*progressive fine-tuning*). This notebook does the three with kerasft on `tf_flowers`, and
# shows at each step the pitfall the plain-Keras version falls into.
#
# Without internet (or with `SMOKE=1`, as the test suite runs it) the notebook uses a small
# local fallback dataset: five classes of images written to a folder from the handwritten
# digits that scikit-learn ships, and a backbone with random weights. The code is the same.

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

# %% [markdown]
# ## Settings
#
# `SMOKE=1` (an environment variable) shrinks everything so the whole notebook runs in a
# minute or two on a laptop CPU; the test suite runs it that way. Leave it unset in Colab.

# %%
import os

SMOKE = os.environ.get("SMOKE") == "1"

BACKBONE = "mobilenetv2"
IMAGE_SIZE = 32 if SMOKE else 160
BATCH_SIZE = 16 if SMOKE else 32
EPOCHS_HEAD = 1 if SMOKE else 5
EPOCHS_PARTIAL = 1 if SMOKE else 5
EPOCHS_PROGRESSIVE = 2 if SMOKE else 9
OUTPUT_DIR = "runs/01_image_fine_tuning"

# %%
import pathlib

import keras
import numpy as np
import tensorflow as tf

import kerasft

keras.utils.set_random_seed(0)
print("kerasft", kerasft.__version__, "| keras", keras.__version__, "| tensorflow", tf.__version__)

# %% [markdown]
# ## 1. Data
#
# The augmentation takes `ImageDataGenerator`'s keyword arguments, with the same meaning and
# units. The pipelines decode each image once, cache the decoded images, and apply the
# augmentation after the cache, in `tf.data`, on float32 images, to the training split only.
#
# **Pitfall avoided:** `ImageDataGenerator.flow_from_directory` decodes every JPEG again each
# epoch and is gone from `keras.preprocessing` in Keras 3. Augmentation layers inside the model
# turn XLA off for the whole model and fail on bfloat16 inputs; in `tf.data` they do neither.

# %%
augment = kerasft.augment.ImageAugmentation(
    rotation_range=20,
    width_shift_range=0.2,
    height_shift_range=0.2,
    shear_range=0.2,
    zoom_range=0.2,
    horizontal_flip=True,
    fill_mode="nearest",
    seed=0,
)

# %% [markdown]
# Online, `tf_flowers` comes from TensorFlow Datasets through `kerasft.data.tfds`. Offline,
# five digit classes are written to a class-per-folder directory, the layout your own photos
# will have, and read with `kerasft.data.image_folder`.

# %%
def write_digits(root, classes=5, per_class=None):
    """Digits 0..classes-1 from scikit-learn as 32x32 RGB PNGs in root/<class>/."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    for c in range(classes):
        folder = root / f"digit_{c}"
        folder.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(digits.images[digits.target == c][:per_class]):
            pixels = np.kron(image * (255.0 / 16.0), np.ones((4, 4)))
            rgb = np.repeat(pixels[..., None], 3, axis=-1).astype("uint8")
            keras.utils.save_img(folder / f"{i}.png", rgb)


def load_data():
    size = (IMAGE_SIZE, IMAGE_SIZE)
    if not SMOKE:
        try:
            train = kerasft.data.tfds(
                "tf_flowers", "train[:80%]", size, BATCH_SIZE, augment=augment, seed=0
            )
            val = kerasft.data.tfds("tf_flowers", "train[80%:]", size, BATCH_SIZE, shuffle=False)
            return train, val, "tf_flowers"
        except Exception as error:  # no internet: the local fallback
            print("tf_flowers unavailable:", type(error).__name__, error)
    folder = pathlib.Path("data/digits")
    if not folder.exists():
        write_digits(folder, per_class=40 if SMOKE else None)
    train, val = kerasft.data.image_folder(
        folder, size, BATCH_SIZE, augment=augment, validation_split=0.2, subset="both", seed=0
    )
    return train, val, "digits"


train, val, dataset_name = load_data()
train_ds, val_ds, class_names = train, val, train.class_names
num_classes = len(class_names)
print(dataset_name, class_names)
print(train.num_samples, "training and", val.num_samples, "validation images")

# %% [markdown]
# ## 2. Backbone and head
#
# `kerasft.backbones.get` returns the Keras application without its top, the preprocessing
# that family expects, and its layers grouped by depth (MobileNetV2: `block_1` ... `block_16`
# and the ends). `build_model` puts that preprocessing *inside* the model, so the model (and
# the file you export) takes raw [0, 255] pixels.
#
# **Pitfall avoided:** dividing by 255 for a network that wants [-1, 1] (MobileNetV2) or
# caffe BGR means (ResNet50), or twice, silently ruins accuracy.

# %%
weights = None if SMOKE or dataset_name == "digits" else "imagenet"
backbone = kerasft.backbones.get(BACKBONE, weights=weights, input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
head = kerasft.heads.classification(num_classes, dropout=0.2)
model = kerasft.build_model(backbone, head)
print(backbone)
print(f"{len(backbone.groups)} groups:", backbone.group_names[:3], "...", backbone.group_names[-3:])

# %% [markdown]
# ## 3. Feature extraction: the head trains, the backbone is frozen
#
# **Pitfall avoided:** `base.trainable = False` plus a BatchNormalization layer that later
# trains in batch-statistics mode wrecks pretrained features. `kerasft.freeze` sets every
# layer one by one, and keeps BatchNorm layers frozen and in inference mode in every strategy.

# %%
plan = kerasft.freeze(model, backbone, "full_freeze")
print(plan.strategy, "| trainable parameters:", plan.trainable_params)
model.compile(optimizer=keras.optimizers.Adam(1e-3), **head.compile_kwargs())
history_head = model.fit(train_ds, validation_data=val_ds, epochs=EPOCHS_HEAD, verbose=2)

# %% [markdown]
# ## 4. Partial fine-tuning: the top groups train too, at a lower rate
#
# The top two groups open. `LayerwiseLR` gives the backbone a rate 10x lower than the head's in
# one optimizer (the tutorial's `Adam(learning_rate={'dense': 1e-3, 'resnet50': 1e-5})`, which
# Keras does not accept).
#
# **Pitfall avoided:** in Keras a `trainable` change takes effect only after `compile`, so we
# compile again here, on purpose.

# %%
plan = kerasft.freeze(model, backbone, "partial", n=2)
print("training groups:", plan.trainable_groups)
optimizer = kerasft.optimizers.LayerwiseLR(
    keras.optimizers.Adam(1e-4), learning_rates={"backbone": 1e-5}
)
model.compile(optimizer=optimizer, **head.compile_kwargs())
history_partial = model.fit(train_ds, validation_data=val_ds, epochs=EPOCHS_PARTIAL, verbose=2)

# %% [markdown]
# ## 5. Progressive fine-tuning: more groups open, epoch by epoch, in one `fit`
#
# `ProgressiveUnfreeze` maps an epoch to the number of backbone groups that train, counted
# from the top. It prepares the optimizer for every variable that will ever train, so the
# stages keep the optimizer's state and step; frozen groups cost no gradient computation;
# BatchNorm statistics do not move. `layer_decay` gives deeper groups smaller rates.
#
# **Pitfall avoided:** changing `layer.trainable` inside a callback and recompiling crashes in
# Keras 3 ("This optimizer can only be called for the variables it was originally built with").

# %%
# epoch -> number of top backbone groups that train
schedule = {0: 2, 1: "all"} if SMOKE else {0: 2, 3: 6, 6: "all"}
kerasft.freeze(model, backbone, "progressive")
optimizer = kerasft.optimizers.LayerwiseLR(keras.optimizers.Adam(1e-4), layer_decay=0.8)
model.compile(optimizer=optimizer, **head.compile_kwargs())
unfreeze = kerasft.callbacks.ProgressiveUnfreeze(backbone, schedule)
history_progressive = model.fit(
    train_ds, validation_data=val_ds, epochs=EPOCHS_PROGRESSIVE, callbacks=[unfreeze], verbose=2
)

# %% [markdown]
# ## 6. Training curves and confusion matrix
#
# The three stages' histories, end to end, then the metrics and the confusion matrix on the
# validation split. `kerasft.evaluation` writes the plots as PNG files (for reports and
# scripts); the notebook shows them.

# %%
from IPython.display import Image, display

os.makedirs(OUTPUT_DIR, exist_ok=True)
histories = {"head": history_head, "partial": history_partial, "progressive": history_progressive}
curves = {
    key: sum((h.history[key] for h in histories.values()), []) for key in history_head.history
}
stage_ends = np.cumsum([len(h.epoch) for h in histories.values()])
print("stages end after epochs", dict(zip(histories, stage_ends.tolist())))
display(Image(kerasft.evaluation.plot_history(curves, f"{OUTPUT_DIR}/curves.png")))

# %%
y_true, y_pred = kerasft.evaluation.collect_predictions(model, val_ds)
metrics = kerasft.evaluation.compute_metrics(y_true, y_pred, task="classification")
print({name: round(value, 3) for name, value in metrics.items()})
kerasft.evaluation.plot_confusion_matrix(y_true, y_pred, class_names, f"{OUTPUT_DIR}/confusion.png")
display(Image(f"{OUTPUT_DIR}/confusion.png"))

# %% [markdown]
# ## 7. Save, reload, predict
#
# The `.keras` file holds the preprocessing, the backbone and the head: it takes raw pixels
# and loads without `custom_objects`.

# %%
path = os.path.join(OUTPUT_DIR, "model.keras")
model.save(path)
reloaded = keras.models.load_model(path)

images, labels = next(iter(val_ds))
probabilities = reloaded.predict(images, verbose=0)
np.testing.assert_allclose(probabilities, model.predict(images, verbose=0), atol=1e-5)
for label, p in list(zip(labels.numpy(), probabilities))[:5]:
    true, predicted = class_names[int(label)], class_names[int(p.argmax())]
    print(f"true {true:>12}  predicted {predicted:>12}  p={p.max():.2f}")

# %% [markdown]
# ## Next
#
# - The three stages in one call, resumable, with `metrics.json`, `history.csv`,
#   `model.keras` and plots written to a folder: `kerasft.recipes.progressive_fine_tuning`
#   (notebook 04 runs it), or from a terminal `kerasft progressive-fine-tuning --help`.
# - Your own Keras model instead of `build_model`: notebook 03.
# - Multi-GPU and TPU: notebook 04.
