# %% [markdown]
# # Dense vision: semantic segmentation (and detection)
#
# The tutorials' metrics table lists IoU, Dice and pixel accuracy; here they are computed for
# a real per-pixel task, on kerasft's backbones, freezing and recipes.
#
# **Segmentation.** A backbone's feature pyramid (its outputs at strides 2, 4, 8, ...) feeds a
# U-Net or DeepLabV3+ decoder that predicts a class for every pixel. The data is generated:
# squares and disks on a noisy background, with their masks written as palette PNGs, the
# Pascal VOC layout.

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

TRAIN_IMAGES = 48 if SMOKE else 320
SIZE = 64
EPOCHS = 2 if SMOKE else 15

# %%
import json
import tempfile

import keras
import numpy as np
from PIL import Image

import kerasft
from kerasft.data.synthetic import SHAPE_CLASSES, shapes_segmentation, write_segmentation_folder

keras.utils.set_random_seed(0)
WORK = tempfile.mkdtemp()

# %% [markdown]
# ## Images and masks on disk
#
# `images/0001.jpg` pairs with `masks/0001.png`. The masks are palette PNGs: they display in
# colour but store class ids as palette indices, which `kerasft.data.read_mask` returns
# (`tf.io.decode_png` would return the colours).

# %%
for split, count, seed in (("train", TRAIN_IMAGES, 0), ("val", TRAIN_IMAGES // 4, 1)):
    images, masks = shapes_segmentation(count, image_size=SIZE, seed=seed)
    write_segmentation_folder(os.path.join(WORK, split), images, masks)

mask_file = os.path.join(WORK, "train", "masks", "0000.png")
print(Image.open(mask_file).mode, np.unique(kerasft.data.read_mask(mask_file)), SHAPE_CLASSES)

# %% [markdown]
# Bad data is refused before anything trains: a mask of another size than its image, a mask
# folder missing files, labels out of range. Here one mask goes missing:

# %%
missing = os.path.join(WORK, "train", "masks", "0003.png")
os.rename(missing, missing + ".bak")
try:
    kerasft.data.segmentation_folder(os.path.join(WORK, "train", "images"),
                                     os.path.join(WORK, "train", "masks"), SIZE, 16)
except ValueError as error:
    print(error)
os.rename(missing + ".bak", missing)

# %% [markdown]
# ## A feature pyramid
#
# Level L is the backbone's output at stride 2**L, taken where one of its groups (stages)
# ends. Any registry backbone works; with ImageNet weights use e.g. `mobilenetv2`:

# %%
mobilenet = kerasft.backbones.get("mobilenetv2", weights=None, input_shape=(SIZE, SIZE, 3))
pyramid = kerasft.backbones.feature_pyramid(mobilenet, levels=(1, 2, 3, 4, 5))
print(pyramid.levels)
print({k: tuple(v.shape[1:]) for k, v in pyramid.model.output.items()})

# %% [markdown]
# Offline there are no ImageNet weights, and a random-init network with BatchNorm in inference
# mode gives degenerate features, so a small BatchNorm-free CNN stands in for the pretrained
# backbone. `from_model` groups it by its layer names; `feature_pyramid` finds its strides from
# the output shapes.

# %%
def small_cnn():
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1, name="stem_scale")(inputs)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="stem_conv")(x)
    for i, filters in enumerate((24, 32, 48), start=1):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu",
                                name=f"stage{i}_down")(x)
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu",
                                name=f"stage{i}_conv")(x)
    return kerasft.backbones.from_model(keras.Model(inputs, x, name="cnn"))


backbone = small_cnn()
print(backbone.group_names, kerasft.backbones.feature_pyramid(backbone, levels=(0, 1, 2, 3)).levels)

# %% [markdown]
# ## Train with the recipe
#
# U-Net decoder, cross-entropy + Dice, every group training (`mode="full"`); augmentation
# warps images and masks together (masks with nearest sampling; pixels from outside the
# image get `ignore_index`, 255, and count for nothing).

# %%
result = kerasft.recipes.segmentation(
    train=os.path.join(WORK, "train"), validation=os.path.join(WORK, "val"),
    backbone=backbone, image_size=SIZE, kind="unet", levels=(0, 1, 2, 3),
    decoder_filters=16, loss="crossentropy_dice", mode="full", head_epochs=0,
    epochs=EPOCHS, batch_size=16, learning_rate=3e-3, fine_tune_learning_rate=3e-3,
    dropout=0.0, augment={"horizontal_flip": True, "rotation_range": 10},
    class_names=",".join(SHAPE_CLASSES), output_dir=os.path.join(WORK, "run"), verbose=0,
)
metrics = result.metrics
print(json.dumps({k: metrics[k] for k in ("val_pixel_accuracy", "val_mean_iou",
                                          "val_mean_dice", "val_iou_per_class")}, indent=1))

# %% [markdown]
# The run folder holds `metrics.json`, `model.keras`, the training curves and
# `validation_masks.png`: validation images with their true and predicted masks overlaid.

# %%
from IPython.display import Image as Show, display

print(sorted(os.listdir(result.output_dir)))
display(Show(os.path.join(result.output_dir, "validation_masks.png"), width=420))

# %% [markdown]
# ## The metrics, by hand
#
# Every score comes from one pixel confusion matrix (rows: true class), summed over batches;
# `ignore_index` pixels are left out. Pixel accuracy is its trace over its sum, IoU per class
# `diag / (row + column - diag)`, Dice `2 diag / (row + column)`.

# %%
from kerasft import evaluation

images, masks = shapes_segmentation(16, image_size=SIZE, seed=2)
logits = result.model.predict(images, verbose=0)
confusion = evaluation.segmentation_confusion_matrix(masks, logits, num_classes=3)
print(confusion)
print(evaluation.segmentation_scores(confusion, class_names=SHAPE_CLASSES))

# %% [markdown]
# ## Detection: many boxes per image with RetinaNet
#
# `object_detection(kind="retinanet")` reads boxes from a CSV (one row per box), a COCO JSON
# file or a Pascal VOC folder, and trains KerasHub's RetinaNet parts (FPN, anchors, focal
# loss, non-max suppression) on the same kind of feature pyramid. The data: red squares and
# blue disks, a CSV row per object.

# %%
import csv

DET_IMAGES = 24 if SMOKE else 160
DET_SIZE = 64 if SMOKE else 96
DET_EPOCHS = 1 if SMOKE else 12


def write_boxes(folder, count, seed):
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    rows = [["filename", "xmin", "ymin", "xmax", "ymax", "label"]]
    r, c = np.mgrid[0:DET_SIZE, 0:DET_SIZE]
    for i in range(count):
        image = rng.integers(0, 60, (DET_SIZE, DET_SIZE, 3)).astype("uint8")
        for k in range(int(rng.integers(1, 3))):
            side = int(rng.integers(DET_SIZE // 5, DET_SIZE // 3))
            x0 = k * DET_SIZE // 2 + int(rng.integers(0, DET_SIZE // 2 - side))
            y0 = int(rng.integers(0, DET_SIZE - side))
            square = bool(rng.integers(2))
            inside = (r >= y0) & (r < y0 + side) & (c >= x0) & (c < x0 + side)
            if not square:
                half = (side - 1) / 2
                inside &= (r - y0 - half) ** 2 + (c - x0 - half) ** 2 <= half**2 + 0.5
            image[inside] = (230, 40, 40) if square else (40, 60, 230)
            ys, xs = np.nonzero(inside)
            rows.append([f"{i}.png", xs.min(), ys.min(), xs.max() + 1, ys.max() + 1,
                         "square" if square else "disk"])
        Image.fromarray(image).save(os.path.join(folder, f"{i}.png"))
    with open(os.path.join(folder, "boxes.csv"), "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return os.path.join(folder, "boxes.csv")


det_train = write_boxes(os.path.join(WORK, "det_train"), DET_IMAGES, seed=0)
det_val = write_boxes(os.path.join(WORK, "det_val"), DET_IMAGES // 4, seed=1)


def detection_cnn():
    inputs = keras.Input((DET_SIZE, DET_SIZE, 3))
    x = keras.layers.Rescaling(1 / 255.0, name="det_scale")(inputs)
    for i, filters in enumerate((16, 32, 48, 64, 64)):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu",
                                name=f"det{i}_conv")(x)
        x = keras.layers.MaxPooling2D(name=f"det{i}_pool")(x)
    return kerasft.backbones.from_model(keras.Model(inputs, x, name="detcnn"))


detection = kerasft.recipes.object_detection(
    train=det_train, validation=det_val, kind="retinanet", backbone=detection_cnn(),
    image_size=DET_SIZE, mode="full", head_epochs=0, epochs=DET_EPOCHS, batch_size=16,
    learning_rate=2e-3, anchor_size=2.0, max_level=5, fpn_filters=32, head_filters=32,
    head_conv_layers=1, augment={"horizontal_flip": True},
    output_dir=os.path.join(WORK, "det_run"), verbose=0,
)
print({k: round(v, 3) for k, v in detection.metrics.items()
       if k in ("val_map", "val_map50", "val_map75", "val_loss")})

# %% [markdown]
# `val_map` is COCO's mAP@[.5:.95] and `val_map50` its mAP@0.5, computed by
# `kerasft.evaluation.coco_metrics` (checked against `pycocotools` in the test suite). The run
# folder also holds `predictions.csv` (every detection, in the input CSV's format plus a
# score) and `validation_boxes.png`: true boxes in cyan, predictions in red.

# %%
with open(os.path.join(detection.output_dir, "predictions.csv")) as f:
    print("".join(f.readlines()[:6]))
display(Show(os.path.join(detection.output_dir, "validation_boxes.png"), width=480))
