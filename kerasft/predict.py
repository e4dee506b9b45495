"""`kerasft predict`: batch inference with a finished run on new inputs.

`predict_to_csv(run_dir, inputs, output)` reads the run folder's
`model.keras` (and `labels.json`, `config.json`), predicts every input with
a progress bar, and writes one CSV row per input: `input`, `predicted`
(class name, or the value for a regression model), `score` (its
probability), `prob_<class>` for every class, and with `top_k` the columns
`top1_class, top1_prob, ...`. An input that cannot be read gets a row with
its `error` and no prediction; the run goes on and lists them at the end.

Inputs:
- a folder: every image file under it, recursively (image models), or
  every `.txt` file, one text each (text models);
- a CSV file: the column `filename` (or `path`, `image`) holds image paths,
  relative to the CSV's folder; text models read the run's `text_column`
  (default `text`);
- any other file: one image path, or one text, per line.

Images go through `kerasft.data.images.load_files`, the decoder the image
recipes trained with (same resize), so unreadable files are found the same
way. Text goes through the run's tokenizer (`kerasft.data.text.tokenize`).
"""

import csv
import dataclasses
import os
import sys

import numpy as np

_PATH_COLUMNS = ("filename", "path", "image", "file")


@dataclasses.dataclass
class Predictions:
    """What `predict_to_csv` wrote.

    Attributes:
        output: the CSV path.
        rows: one dict per input, as written.
        unreadable: `[(input, reason)]` for the inputs that were skipped.
    """

    output: str
    rows: list
    unreadable: list


def predict_to_csv(run_dir, inputs, output="predictions.csv", top_k=None,
                   batch_size=32, verbose=1):
    """Predicts `inputs` with a finished run and writes a CSV.

    Args:
        run_dir: a finished recipe run folder.
        inputs: a folder, a CSV file or a text file (see the module doc).
        output: the CSV file to write. Defaults to `"predictions.csv"`.
        top_k: also write the `k` most probable classes per row.
            Defaults to `None`.
        batch_size: inputs per model call. Defaults to `32`.
        verbose: `1` shows a progress bar and lists unreadable inputs.
            Defaults to `1`.

    Returns:
        A `Predictions`.
    """
    from kerasft._run_folder import load_run

    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"`top_k` must be a positive int. Received: top_k={top_k!r}")
    if not os.path.exists(inputs):
        raise ValueError(f"Input {inputs!r} does not exist.")
    run = load_run(run_dir)
    if _is_image_model(run.model):
        items = _image_inputs(inputs)
        outputs, errors = _predict_images(run.model, items, batch_size, verbose)
    else:
        items = _text_inputs(inputs, run.config)
        outputs, errors = _predict_texts(run, items, batch_size, verbose)
    rows = _rows(items, outputs, errors, run.class_names, top_k)
    _write_csv(output, rows)
    unreadable = [(item, errors[i]) for i, item in enumerate(items) if i in errors]
    if unreadable and verbose:
        print(f"{len(unreadable)} unreadable input(s), listed in the `error` "
              "column:", file=sys.stderr)
        for item, reason in unreadable:
            print(f"  {item}: {reason}", file=sys.stderr)
    return Predictions(os.fspath(output), rows, unreadable)


def _is_image_model(model):
    shape = model.inputs[0].shape
    return len(model.inputs) == 1 and len(shape) == 4


# === Reading inputs ===


def _image_inputs(inputs):
    from kerasft.data._listing import IMAGE_EXTENSIONS

    if os.path.isdir(inputs):
        found = []
        for root, dirs, files in os.walk(inputs):
            dirs.sort()
            found += [os.path.join(root, f) for f in sorted(files)
                      if f.lower().endswith(IMAGE_EXTENSIONS)]
        if not found:
            raise ValueError(f"No image files ({', '.join(IMAGE_EXTENSIONS)}) "
                             f"under {inputs!r}.")
        return found
    base = os.path.dirname(os.path.abspath(inputs))
    if inputs.lower().endswith(".csv"):
        column = _csv_column(inputs, _PATH_COLUMNS)
        values = _csv_values(inputs, column)
    else:
        values = _lines(inputs)
    return [v if os.path.isabs(v) else os.path.join(base, v) for v in values]


def _text_inputs(inputs, config):
    if os.path.isdir(inputs):
        paths = sorted(
            os.path.join(root, f)
            for root, _, files in os.walk(inputs) for f in files
            if f.lower().endswith(".txt")
        )
        texts = []
        for p in paths:
            with open(p, encoding="utf-8", errors="replace") as f:
                texts.append(f.read().strip())
        return texts
    if inputs.lower().endswith((".csv", ".tsv")):
        column = config.get("text_column") or "text"
        return _csv_values(inputs, _csv_column(inputs, (column,)))
    return _lines(inputs)


def _lines(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\r\n") for line in f if line.strip()]


def _csv_column(path, candidates):
    with open(path, newline="", encoding="utf-8") as f:
        header = next(csv.reader(f, delimiter=_delimiter(path)), [])
    for name in candidates:
        if name in header:
            return name
    raise ValueError(
        f"{path!r} has no column {' or '.join(map(repr, candidates))}. "
        f"Columns: {header}"
    )


def _csv_values(path, column):
    with open(path, newline="", encoding="utf-8") as f:
        return [row[column] for row in
                csv.DictReader(f, delimiter=_delimiter(path))]


def _delimiter(path):
    return "\t" if path.lower().endswith(".tsv") else ","


# === Predicting ===


def _progress(total, verbose):
    import keras

    return keras.utils.Progbar(total, verbose=1 if verbose else 0,
                               unit_name="input")


def _predict_images(model, paths, batch_size, verbose):
    """`(outputs by input index, {index: error})`."""
    import keras

    from kerasft.data.images import load_files

    height, width, channels = model.inputs[0].shape[1:]
    errors = {}
    if not paths:
        return {}, errors
    try:
        loaded = load_files(
            paths, np.arange(len(paths)), (height, width),
            channels=channels or 3, cache=True, where="the inputs",
        )
    except ValueError:  # every file unreadable
        return {}, {i: "unreadable image" for i in range(len(paths))}
    skipped = set(loaded.skipped)
    for i, p in enumerate(paths):
        if p in skipped:
            errors[i] = ("missing file" if not os.path.exists(p)
                         else "unreadable image")
    outputs = {}
    bar = _progress(len(paths), verbose)
    done = len(errors)
    for images, index, _ in loaded.dataset.batch(batch_size):
        images = keras.ops.cast(images, "float32")
        probs = np.asarray(model(images, training=False), np.float64)
        for i, p in zip(index.numpy().tolist(), probs):
            outputs[i] = p
        done += len(probs)
        bar.update(done)
    return outputs, errors


def _predict_texts(run, texts, batch_size, verbose):
    from kerasft import backbones
    from kerasft.data import text as text_data

    source = run.config.get("backbone")
    if not source:
        raise ValueError(
            f"{run.directory!r} has no `backbone` in config.json: kerasft "
            "cannot rebuild the tokenizer for a text model without it."
        )
    length = run.config.get("max_length")
    tokenizer = backbones.bert(source, sequence_length=length).tokenizer
    outputs = {}
    bar = _progress(len(texts), verbose)
    for start in range(0, len(texts), batch_size):
        chunk = texts[start:start + batch_size]
        tokens = text_data.tokenize(chunk, tokenizer, None, length)
        probs = np.asarray(run.model(tokens, training=False), np.float64)
        for offset, p in enumerate(probs):
            outputs[start + offset] = p
        bar.update(start + len(chunk))
    return outputs, {}


# === Rows ===


def _probabilities(output, class_names):
    """Class probabilities of one output, or `None` for a regression."""
    output = np.ravel(output)
    if output.size == 1:
        if class_names and len(class_names) == 2:  # one sigmoid unit
            return np.array([1 - output[0], output[0]])
        return None
    return output


def _rows(items, outputs, errors, class_names, top_k):
    rows = []
    for i, item in enumerate(items):
        row = {"input": item if len(str(item)) < 200 else str(item)[:197] + "..."}
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
        rows.append(row)
    return rows


def _write_csv(path, rows):
    columns = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    if "error" in columns:  # last, so the prediction columns line up
        columns = [c for c in columns if c != "error"] + ["error"]
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
