# %% [markdown]
# # Video action recognition (and image captioning)
#
# The tutorials' multimodal examples, done with kerasft's backbones, freezing and recipes.
#
# **Video.** The tutorial's "3D InceptionV3" cannot run: InceptionV3 is a 2-D network and
# rejects a `(16, 112, 112, 3)` clip. Here a 2-D image backbone runs on every frame and a
# temporal head (a GRU) models time. The clips are generated: a square moving left or right.
# Order matters: the average frame of a left-moving clip equals that of a right-moving one,
# so a frame-average head stays at chance while the GRU head learns the direction.

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

CLIPS_PER_CLASS = 12 if SMOKE else 60
FRAMES = 8
SIZE = 32
EPOCHS = 3 if SMOKE else 20

# %%
import json
import tempfile

import keras
import numpy as np
from PIL import Image

import kerasft

keras.utils.set_random_seed(0)
WORK = tempfile.mkdtemp()

# %% [markdown]
# ## Clips on disk
#
# One sub-folder per class; each clip a video file (mp4, avi, webm, mkv) or a folder of frame
# images, the UCF101 frame-dump layout used here. `kerasft.data.video_folder` reads either.

# %%
def moving_square(direction, seed):
    rng = np.random.RandomState(seed)
    clip = rng.randint(0, 40, (FRAMES, SIZE, SIZE, 3)).astype("uint8")
    row, colour = rng.randint(0, SIZE - 6), rng.randint(160, 256, 3)
    for t in range(FRAMES):
        x = t * (SIZE - 6) // (FRAMES - 1)
        x = x if direction == "right" else SIZE - 6 - x
        clip[t, row:row + 6, x:x + 6] = colour
    return clip


def write_split(root, count, offset):
    for c, direction in enumerate(("left", "right")):
        for i in range(count):
            folder = os.path.join(root, direction, f"clip_{i:03d}")
            os.makedirs(folder)
            for t, frame in enumerate(moving_square(direction, offset + 1000 * c + i)):
                Image.fromarray(frame).save(os.path.join(folder, f"frame_{t:04d}.png"))


write_split(os.path.join(WORK, "train"), CLIPS_PER_CLASS, 0)
write_split(os.path.join(WORK, "val"), CLIPS_PER_CLASS // 2, 50_000)

clips = kerasft.data.video_folder(os.path.join(WORK, "train"), frames=FRAMES,
                                  image_size=SIZE, batch_size=8, seed=0)
x, y = next(iter(clips))
print(x.shape, clips.class_names, clips.num_samples, clips.skipped_files)

# %% [markdown]
# ## A frame backbone
#
# Offline there are no ImageNet weights, so a tiny random convolutional network stands in for
# the pretrained backbone (with a Dense layer on the flattened map, so its features still say
# where the square is). With internet access use `backbone="mobilenetv2"` (or
# `"inceptionv3"`, the tutorial's choice) with `weights="imagenet"`.

# %%
def frame_backbone():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    h = keras.layers.Rescaling(1 / 255.0)(inputs)
    h = keras.layers.Conv2D(8, 5, strides=2, padding="same", activation="relu")(h)
    h = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(h)
    h = keras.layers.Dense(64, activation="relu")(keras.layers.Flatten()(h))
    return kerasft.backbones.from_model(keras.Model(inputs, h, name="frames_cnn"))

# %% [markdown]
# ## Order-aware head against the frame average
#
# Feature extraction: the frozen backbone runs once per split, the per-frame features are
# cached, and only the temporal head trains on them.

# %%
results = {}
for temporal in ("gru", "mean"):
    result = kerasft.recipes.video_classification(
        train=os.path.join(WORK, "train"), validation=os.path.join(WORK, "val"),
        backbone=frame_backbone(), frames=FRAMES, image_size=SIZE,
        mode="feature_extraction", temporal=temporal, temporal_units=32,
        epochs=EPOCHS, batch_size=16, learning_rate=3e-3, dropout=0.0,
        output_dir=os.path.join(WORK, temporal), verbose=0,
    )
    results[temporal] = result
    # Two classes: no top-5 accuracy (it would always be 1.0).
    print(f"{temporal:>4}: val accuracy {result.metrics['val_accuracy']:.3f}")

with open(os.path.join(WORK, "gru", "confusion_matrix.json")) as f:
    print("GRU confusion matrix (rows: true left/right):", json.load(f)["val"])

# %% [markdown]
# The run folder holds `metrics.json`, `confusion_matrix.png`, `history.csv` and
# `model.keras`, which takes clips `[batch, frames, height, width, 3]`:

# %%
model = keras.models.load_model(os.path.join(WORK, "gru", "model.keras"))
probabilities = model.predict(x, verbose=0)
print("predicted:", np.array(clips.class_names)[probabilities.argmax(-1)])
print("true:     ", np.array(clips.class_names)[y.numpy()])

# %% [markdown]
# ## Image captioning
#
# The tutorial's `TFVisionEncoderDecoderModel` (ViT + GPT-2) is gone from transformers 5.
# `kerasft.recipes.image_captioning` builds the same kind of model from Keras 3 parts: an
# image backbone as the encoder (its feature map flattened into tokens), KerasHub
# `TransformerDecoder` blocks cross-attending to them, a WordPiece vocabulary built from the
# captions, teacher forcing, then greedy and beam-search captions scored with BLEU-1..4,
# ROUGE-L and CIDEr-D.
#
# The images hold two coloured shapes, one above the other or side by side, with two
# captions each ("a red square above a blue circle", "a blue circle below a red square").
# Some pairs of objects never appear in training: the validation images show only those,
# so the scores measure whether the model composes colours, shapes and layouts.

# %%
CAP_COLOURS = {"red": (220, 40, 40), "green": (40, 190, 40), "blue": (40, 70, 230),
               "yellow": (230, 210, 40)}
CAP_OBJECTS = [(c, s) for c in CAP_COLOURS for s in ("square", "circle", "triangle")]
CAP_EPOCHS = 2 if SMOKE else 30


def draw(canvas, shape, colour, cy, cx, r=4):
    yy, xx = np.mgrid[:32, :32]
    if shape == "square":
        inside = (abs(yy - cy) <= r) & (abs(xx - cx) <= r)
    elif shape == "circle":
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    else:
        inside = (yy >= cy - r) & (yy <= cy + r) & (abs(xx - cx) <= (yy - cy + r) / 2)
    canvas[inside] = CAP_COLOURS[colour]


def scene(i, j, layout):
    canvas = np.full((32, 32, 3), 20, np.uint8)
    spots = ((8, 16), (24, 16)) if layout == "vertical" else ((16, 8), (16, 24))
    words = ("above", "below") if layout == "vertical" else ("left of", "right of")
    (ca, sa), (cb, sb) = CAP_OBJECTS[i], CAP_OBJECTS[j]
    draw(canvas, sa, ca, *spots[0])
    draw(canvas, sb, cb, *spots[1])
    a, b = f"{ca} {sa}", f"{cb} {sb}"
    return canvas, [f"a {a} {words[0]} a {b}", f"a {b} {words[1]} a {a}"]


def write_captions(split, held_out):
    os.makedirs(os.path.join(WORK, "captions", split), exist_ok=True)
    rows = [("image", "caption")]
    for i in range(len(CAP_OBJECTS)):
        for j in range(len(CAP_OBJECTS)):
            if i == j or ((3 * i + 5 * j) % 7 == 0) != held_out:
                continue
            if SMOKE and not held_out and (i + j) % 3:
                continue
            for layout in ("vertical", "horizontal"):
                image, captions = scene(i, j, layout)
                name = f"{split}/{i}_{j}_{layout}.png"
                Image.fromarray(image).save(os.path.join(WORK, "captions", name))
                rows += [(name, c) for c in captions]
    path = os.path.join(WORK, "captions", f"{split}.csv")
    with open(path, "w") as f:
        f.write("\n".join(",".join(r) for r in rows) + "\n")
    return path


caption_train = write_captions("train", held_out=False)
caption_val = write_captions("val", held_out=True)
print(open(caption_train).read().splitlines()[:3])

# %% [markdown]
# A small BatchNorm-free convolutional encoder stands in for a pretrained backbone offline;
# with weights use e.g. `backbone="efficientnetb0", image_size=224`. `mode="full"` trains the
# decoder alone for `head_epochs`, then the encoder too; `"progressive"` opens the encoder's
# groups from the top at `fine_tune_learning_rate`.

# %%
def caption_encoder():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    h = keras.layers.Rescaling(1 / 255.0, name="c1_rescale")(inputs)
    h = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="c1_conv")(h)
    h = keras.layers.Conv2D(64, 3, strides=2, padding="same", activation="relu", name="c2_conv")(h)
    return kerasft.backbones.from_model(keras.Model(inputs, h, name="caption_cnn"))


captioning = kerasft.recipes.image_captioning(
    train=caption_train, validation=caption_val, backbone=caption_encoder(), image_size=32,
    mode="full", head_epochs=1, epochs=CAP_EPOCHS, learning_rate=2e-3,
    fine_tune_learning_rate=2e-3, batch_size=32, max_length=10, embed_dim=64,
    decoder_layers=1, num_heads=2, dropout=0.0, num_beams=3, samples=8,
    output_dir=os.path.join(WORK, "captioning"), verbose=0,
)
for key in ("val_bleu1", "val_bleu4", "val_beam_bleu4", "val_rougeL", "val_cider"):
    print(f"{key}: {captioning.metrics[key]:.2f}")

# %% [markdown]
# `predictions.csv` lists each validation image with its references and the greedy and
# beam-search captions; `captions.png` shows them on the images. `load_captioner` reloads
# the model with its vocabulary for new images.

# %%
from IPython.display import Image as ShowImage, display

from kerasft.recipes.image_captioning import load_captioner

print(open(os.path.join(WORK, "captioning", "predictions.csv")).read().splitlines()[:4])
display(ShowImage(os.path.join(WORK, "captioning", "captions.png")))
captioner = load_captioner(os.path.join(WORK, "captioning"))
image, references = scene(0, 7, "vertical")
print("generated:", captioner.caption(image, num_beams=3)[0])
print("references:", references)
