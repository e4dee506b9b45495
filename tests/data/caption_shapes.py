"""Synthetic captioning data: two coloured shapes and templated captions.

Each image holds two objects (colour + shape) either one above the other
or side by side, with two reference captions ("a red square above a blue
circle", "a blue circle below a red square"). `held_out` object pairs never
appear in training, so a model scored on them must compose what it saw.
"""

import csv
import json
import os

import numpy as np

COLOURS = {
    "red": (220, 40, 40), "green": (40, 190, 40),
    "blue": (40, 70, 230), "yellow": (230, 210, 40),
}
SHAPES = ("square", "circle", "triangle")
OBJECTS = [(c, s) for c in COLOURS for s in SHAPES]


def held_out(i, j):
    """Whether the ordered object pair (i, j) is a held-out combination."""
    return (3 * i + 5 * j) % 7 == 0


def _draw(canvas, shape, colour, cy, cx, r):
    size = canvas.shape[0]
    yy, xx = np.mgrid[:size, :size]
    if shape == "square":
        inside = (abs(yy - cy) <= r) & (abs(xx - cx) <= r)
    elif shape == "circle":
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    else:  # triangle, apex up
        inside = (yy >= cy - r) & (yy <= cy + r) & (
            abs(xx - cx) <= (yy - (cy - r)) / 2.0
        )
    canvas[inside] = COLOURS[colour]


def image_and_captions(i, j, layout, size=32, rng=None):
    """An image of objects `i` and `j` and its two captions."""
    rng = rng or np.random.default_rng(0)
    canvas = np.full((size, size, 3), 20, np.uint8)
    q, r = size // 4, max(3, size // 7)
    jitter = lambda: int(rng.integers(-1, 2))  # noqa: E731
    if layout == "vertical":
        spots = ((q + jitter(), 2 * q + jitter()), (3 * q + jitter(), 2 * q + jitter()))
        words = ("above", "below")
    else:
        spots = ((2 * q + jitter(), q + jitter()), (2 * q + jitter(), 3 * q + jitter()))
        words = ("left of", "right of")
    (ca, sa), (cb, sb) = OBJECTS[i], OBJECTS[j]
    _draw(canvas, sa, ca, *spots[0], r)
    _draw(canvas, sb, cb, *spots[1], r)
    a, b = f"{ca} {sa}", f"{cb} {sb}"
    return canvas, [f"a {a} {words[0]} a {b}", f"a {b} {words[1]} a {a}"]


def write_split(directory, split, per_pair=1, size=32, seed=0, fmt="csv"):
    """Writes `split` ("train": the seen pairs, "val": the held-out ones)
    as PNGs plus `split.csv` (image,caption) or `split.json` (COCO).
    Returns the annotation file's path."""
    from PIL import Image

    rng = np.random.default_rng(seed + (split == "val"))
    folder = os.path.join(directory, split)
    os.makedirs(folder, exist_ok=True)
    rows = []
    for i in range(len(OBJECTS)):
        for j in range(len(OBJECTS)):
            if i == j or held_out(i, j) != (split == "val"):
                continue
            for layout in ("vertical", "horizontal"):
                for k in range(per_pair):
                    image, captions = image_and_captions(i, j, layout, size, rng)
                    name = f"{split}/{i}_{j}_{layout[0]}{k}.png"
                    Image.fromarray(image).save(os.path.join(directory, name))
                    rows.extend((name, c) for c in captions)
    if fmt == "json":
        names = sorted({n for n, _ in rows})
        ids = {n: k for k, n in enumerate(names)}
        data = {
            "images": [{"id": ids[n], "file_name": n} for n in names],
            "annotations": [{"id": k, "image_id": ids[n], "caption": c}
                            for k, (n, c) in enumerate(rows)],
        }
        path = os.path.join(directory, f"{split}.json")
        with open(path, "w") as f:
            json.dump(data, f)
        return path
    path = os.path.join(directory, f"{split}.csv")
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "caption"])
        writer.writerows(rows)
    return path
