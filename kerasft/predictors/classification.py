"""Classes of images, texts and video clips: one CSV row per input.

Columns: `input`, `predicted` (class name, or the value for a regression
model), `score` (its probability), `prob_<class>` for every class, with
`top_k` also `top1_class, top1_prob, ...`, and `error` (always there,
empty when the input was read; an unreadable input gets its reason and no
prediction, and the run goes on).

Example:
```python
run = kerasft.load("runs/flowers")
predict_images(run, "new_photos/", "predictions.csv", top_k=3)
```
"""

import numpy as np

from kerasft.predictors import _inputs, _output


def predict_images(run, inputs, output, *, batch_size=32, top_k=None, verbose=1):
    """Classifies images with a finished image classification run.

    Args:
        run: the run, as `kerasft.load` returns it.
        inputs: a folder of images, a CSV with a `filename` column, or a
            file with one image path per line.
        output: the CSV file to write.
        batch_size: images per model call. Defaults to `32`.
        top_k: also write the `k` most probable classes. Defaults to `None`.
        verbose: `1` shows a progress bar and lists unreadable inputs.
            Defaults to `1`.

    Returns:
        A `Predictions`.
    """
    _output.check_options(top_k, batch_size)
    paths = _inputs.image_paths(inputs)
    model = run.model
    height, width, channels = _inputs.image_input_size(model)
    batches, errors = _inputs.image_batches(paths, (height, width), channels,
                                            batch_size)
    outputs = {}
    bar = _output.progress(len(paths), verbose)
    done = len(errors)
    for images, index, _ in batches:
        probs = np.asarray(model(images.astype("float32"), training=False),
                           np.float64)
        outputs.update(zip(index.tolist(), probs))
        done += len(probs)
        bar.update(done)
    return _finish(run, paths, outputs, errors, output, top_k, verbose)


def predict_texts(run, inputs, output, *, batch_size=32, top_k=None, verbose=1):
    """Classifies texts with a finished text classification run.

    The texts go through the run's tokenizer (its `config.json` backbone
    and `max_length`, `kerasft.data.text.tokenize`).

    Args:
        run: the run, as `kerasft.load` returns it.
        inputs: a folder of `.txt` files, a CSV with the run's
            `text_column` (default `text`), or a file with one text a line.
        output: the CSV file to write.
        batch_size: texts per model call. Defaults to `32`.
        top_k: also write the `k` most probable classes. Defaults to `None`.
        verbose: `1` shows a progress bar. Defaults to `1`.

    Returns:
        A `Predictions`.
    """
    from kerasft.data import text as text_data

    _output.check_options(top_k, batch_size)
    texts = _inputs.texts(inputs, run.config.get("text_column") or "text")
    length = run.config.get("max_length")
    tokenizer = text_tokenizer(run, length)
    outputs = {}
    bar = _output.progress(len(texts), verbose)
    for start in range(0, len(texts), batch_size):
        chunk = texts[start:start + batch_size]
        tokens = text_data.tokenize(chunk, tokenizer, None, length)
        probs = np.asarray(run.model(tokens, training=False), np.float64)
        outputs.update(zip(range(start, start + len(chunk)), probs))
        bar.update(start + len(chunk))
    return _finish(run, texts, outputs, {}, output, top_k, verbose)


def predict_videos(run, inputs, output, *, batch_size=32, top_k=None, verbose=1):
    """Classifies video clips with a finished video classification run.

    Each clip is decoded to the run's frame count, spread uniformly over it
    (`kerasft.data` video decoding, the frames resized to the model's
    side); a clip that cannot be decoded gets its reason in `error`.

    Args:
        run: the run, as `kerasft.load` returns it.
        inputs: a folder of clips (video files, or folders of frames; a
            folder of frames alone is one clip), a CSV with a `filename`
            column, or a file with one clip path per line.
        output: the CSV file to write.
        batch_size: clips per model call. Defaults to `32`.
        top_k: also write the `k` most probable classes. Defaults to `None`.
        verbose: `1` shows a progress bar and lists unreadable inputs.
            Defaults to `1`.

    Returns:
        A `Predictions`.
    """
    from kerasft.data import _video_decode

    _output.check_options(top_k, batch_size)
    clips = _inputs.clip_paths(inputs)
    model = run.model
    shape = model.inputs[0].shape
    if len(shape) != 5:
        raise ValueError(
            f"{run.directory!r} does not hold a video model: its input shape "
            f"is {tuple(shape)}, not (batch, frames, height, width, channels)."
        )
    frames, height, width = int(shape[1]), int(shape[2]), int(shape[3])
    outputs, errors = {}, {}
    bar = _output.progress(len(clips), verbose)
    pending = []

    def flush():
        batch = np.stack([clip for _, clip in pending]).astype("float32")
        probs = np.asarray(model(batch, training=False), np.float64)
        outputs.update(zip([i for i, _ in pending], probs))
        pending.clear()

    for i, path in enumerate(clips):
        try:
            clip, _ = _video_decode.decode_clip(path, frames, (height, width),
                                                "uniform")
            pending.append((i, clip))
        except (OSError, ValueError, RuntimeError) as e:  # a bad clip, reported
            errors[i] = f"unreadable clip: {e}"[:200]
        if len(pending) == batch_size:
            flush()
        bar.update(i + 1)
    if pending:
        flush()
    return _finish(run, clips, outputs, errors, output, top_k, verbose)


def text_tokenizer(run, length):
    """The run's KerasHub text preprocessor (from config.json's backbone)."""
    from kerasft import backbones

    source = run.config.get("backbone")
    if not isinstance(source, str) or not source:
        raise ValueError(
            f"{run.directory!r} has no `backbone` path or preset in "
            "config.json: kerasft cannot rebuild the tokenizer of a text "
            "model without it. Train with `backbone=` a preset name or a "
            "Hugging Face folder."
        )
    return backbones.bert(source, sequence_length=length).tokenizer


# === Rows ===


def _finish(run, items, outputs, errors, output, top_k, verbose):
    rows = class_rows(items, outputs, errors, run.class_names, top_k)
    unreadable = [(item, errors[i]) for i, item in enumerate(items) if i in errors]
    return _output.finish(output, rows, unreadable, [], verbose)


def _probabilities(output, class_names):
    """Class probabilities of one output, or `None` for a regression."""
    output = np.ravel(output)
    if output.size == 1:
        if class_names and len(class_names) == 2:  # one sigmoid unit
            return np.array([1 - output[0], output[0]])
        return None
    return output


def class_rows(items, outputs, errors, class_names, top_k):
    """One row dict per input from model outputs (`{index: probabilities}`)
    and `errors` (`{index: reason}`)."""
    rows = []
    for i, item in enumerate(items):
        row = {"input": _output.shown(item)}
        if i in errors:
            row["error"] = errors[i]
            rows.append(row)
            continue
        probs = _probabilities(outputs[i], class_names)
        if probs is None:
            row["predicted"] = float(np.ravel(outputs[i])[0])
            rows.append(row)
            continue
        names = class_names or [str(c) for c in range(len(probs))]
        best = int(np.argmax(probs))
        row["predicted"] = names[best]
        row["score"] = float(probs[best])
        for name, p in zip(names, probs):
            row[f"prob_{name}"] = float(p)
        if top_k:
            for rank, c in enumerate(np.argsort(-probs)[:top_k], start=1):
                row[f"top{rank}_class"] = names[c]
                row[f"top{rank}_prob"] = float(probs[c])
        row["error"] = ""
        rows.append(row)
    return rows
