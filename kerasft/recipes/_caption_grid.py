"""`captions.png`: a grid of images with generated and reference captions."""

import textwrap

import numpy as np

_COLUMNS = 4


def plot_caption_grid(images, references, predictions, path, samples=16):
    """Saves the first `samples` images of a `CaptionImages` with their
    generated caption (`predictions`, one per image) and first reference
    caption (`references`, a list per image) as the PNG `path`; returns it.
    """
    from matplotlib.figure import Figure

    count = min(samples, len(predictions))
    pictures = [np.asarray(image) for image, _ in images.dataset.take(count)]
    rows = max(1, -(-count // _COLUMNS))
    columns = min(_COLUMNS, max(count, 1))
    figure = Figure(figsize=(3.2 * columns, 4.2 * rows))
    for i, picture in enumerate(pictures):
        axes = figure.add_subplot(rows, columns, i + 1)
        axes.imshow(picture, interpolation="nearest")
        axes.set_axis_off()
        generated = textwrap.fill(predictions[i] or "(empty)", 34)
        reference = textwrap.fill(references[i][0], 34)
        axes.set_title(f"{generated}\nref: {reference}", fontsize=7)
    figure.suptitle("Generated captions (top) and a reference (ref)")
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=80)
    return path
