"""Masks of a segmentation run: a palette PNG per image and a colour key.

For each readable image, the model's per-pixel class (argmax of its
logits at the model's input size, resized back to the original image with
nearest neighbour) is written as a palette PNG whose pixel values are the
class ids: `<csv stem>/<index>_<name>.png`. `<csv stem>/colour_key.csv`
maps each class id and name to its palette colour (matplotlib's `tab20`,
the colours of the run's `validation_masks.png`). The CSV has `input`,
`mask` (the PNG's path), `frac_<class>` (the fraction of the image's
pixels given that class) and `error`.

Example:
```python
run = kerasft.load("runs/shapes")
segmentation.predict(run, "new_photos/", "masks.csv")
```
"""

import csv
import os

import numpy as np

from kerasft.predictors import _inputs, _output

KEY_FILE = "colour_key.csv"


def palette(num_classes):
    """`[(r, g, b)]` per class id: matplotlib's `tab20`, cycled."""
    from matplotlib import colormaps

    colours = colormaps["tab20"](np.arange(num_classes) % 20)[:, :3]
    return [tuple(int(round(c * 255)) for c in colour) for colour in colours]


def predict(run, inputs, output, *, batch_size=32, top_k=None, verbose=1):
    """Segments images with a finished segmentation run.

    Args:
        run: the run, as `kerasft.load` returns it.
        inputs: a folder of images, a CSV with a `filename` column, or a
            file with one image path per line.
        output: the CSV file to write.
        batch_size: images per model call. Defaults to `32`.
        top_k: not used by segmentation; must be `None`.
        verbose: `1` shows a progress bar and lists unreadable inputs.
            Defaults to `1`.

    Returns:
        A `Predictions`; `files` holds the CSV, the colour key and the masks.
    """
    _output.check_options(top_k, batch_size)
    _output.refuse_top_k(top_k, "segmentation")
    paths = _inputs.image_paths(inputs)
    model = run.model
    height, width, channels = _inputs.image_input_size(model)
    num_classes = int(model.outputs[0].shape[-1])
    names = list(run.class_names or [str(c) for c in range(num_classes)])
    if len(names) != num_classes:
        raise ValueError(
            f"{run.directory!r}: labels.json names {len(names)} classes but "
            f"the model predicts {num_classes}."
        )
    colours = palette(num_classes)
    flat = [v for colour in colours for v in colour]
    folder = _output.files_folder(output)
    key = _write_key(os.path.join(folder, KEY_FILE), names, colours)
    batches, errors = _inputs.image_batches(paths, (height, width), channels,
                                            batch_size)
    rows, files = {}, [key]
    bar = _output.progress(len(paths), verbose)
    done = len(errors)
    for images, index, sizes in batches:
        logits = np.asarray(model(images.astype("float32"), training=False))
        for i, size, classes in zip(index.tolist(), sizes, logits.argmax(-1)):
            mask = _resized(classes.astype("uint8"), size)
            target = os.path.join(folder, f"{i:04d}_{_stem(paths[i])}.png")
            files.append(_output.save_png(target, mask, palette=flat))
            counts = np.bincount(mask.ravel(), minlength=num_classes)
            rows[i] = {"input": paths[i], "mask": target,
                       **{f"frac_{n}": round(float(c) / mask.size, 6)
                          for n, c in zip(names, counts)},
                       "error": ""}
        done += len(index)
        bar.update(done)
    for i, reason in errors.items():
        rows[i] = {"input": paths[i], "error": reason}
    columns = ["input", "mask", *(f"frac_{n}" for n in names), "error"]
    unreadable = [(p, errors[i]) for i, p in enumerate(paths) if i in errors]
    return _output.finish(output, [rows[i] for i in range(len(paths))],
                          unreadable, files, verbose, columns)


def _resized(mask, size):
    """`mask` resized to `size` (height, width) with nearest neighbour."""
    from PIL import Image

    height, width = int(size[0]), int(size[1])
    if mask.shape == (height, width):
        return mask
    return np.asarray(Image.fromarray(mask).resize((width, height),
                                                   Image.NEAREST))


def _stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def _write_key(path, names, colours):
    tmp = path + ".tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["class_id", "class", "red", "green", "blue"])
        for i, (name, colour) in enumerate(zip(names, colours)):
            writer.writerow([i, name, *colour])
    os.replace(tmp, path)
    return path
