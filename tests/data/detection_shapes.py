"""Synthetic detection data: coloured shapes on noise, with their boxes,
written as PNG files plus a CSV, Pascal VOC XML files or a COCO JSON."""

import csv
import json
import os

import numpy as np

CLASSES = ("circle", "square", "triangle")
_COLOURS = {"circle": (230, 40, 40), "square": (40, 200, 60), "triangle": (50, 80, 230)}


def draw(rng, size=96, max_objects=3, min_side=18, max_side=36):
    """One image `(size, size, 3)` uint8 and its objects `[(box, class)]`,
    boxes as absolute xyxy pixels that hold the shape exactly."""
    image = rng.integers(0, 60, (size, size, 3)).astype("uint8")
    objects, taken = [], np.zeros((size, size), bool)
    rows, cols = np.mgrid[0:size, 0:size]
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _ in range(20):  # place without overlap
            side = int(rng.integers(min_side, max_side + 1))
            x0, y0 = (int(v) for v in rng.integers(0, size - side, 2))
            if not taken[y0:y0 + side, x0:x0 + side].any():
                break
        else:
            continue
        name = CLASSES[int(rng.integers(len(CLASSES)))]
        r, c = rows - y0, cols - x0
        inside = (r >= 0) & (r < side) & (c >= 0) & (c < side)
        if name == "circle":
            half = (side - 1) / 2
            mask = inside & ((r - half) ** 2 + (c - half) ** 2 <= half**2 + 0.5)
        elif name == "square":
            mask = inside
        else:
            mask = inside & (np.abs(c - (side - 1) / 2) <= r / 2 + 0.5)
        image[mask] = _COLOURS[name]
        taken[y0:y0 + side, x0:x0 + side] = True
        ys, xs = np.nonzero(mask)
        box = [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]
        objects.append((box, name))
    return image, objects


def make_images(folder, count, seed=0, size=96, **kwargs):
    """Writes `count` PNGs into `folder/images`; returns
    `[(file name, objects)]`."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(folder, "images"), exist_ok=True)
    out = []
    for i in range(count):
        image, objects = draw(rng, size, **kwargs)
        name = f"img_{i:04d}.png"
        Image.fromarray(image).save(os.path.join(folder, "images", name))
        out.append((name, objects))
    return out


def write_csv(folder, items, name="boxes.csv"):
    path = os.path.join(folder, name)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["filename", "xmin", "ymin", "xmax", "ymax", "label"])
        for file, objects in items:
            for box, label in objects:
                writer.writerow([f"images/{file}", *box, label])
    return path


def write_voc(folder, items, size=96):
    os.makedirs(os.path.join(folder, "Annotations"), exist_ok=True)
    os.makedirs(os.path.join(folder, "JPEGImages"), exist_ok=True)
    for file, objects in items:
        os.replace(os.path.join(folder, "images", file),
                   os.path.join(folder, "JPEGImages", file))
        parts = [f"<annotation><filename>{file}</filename><size><width>{size}"
                 f"</width><height>{size}</height><depth>3</depth></size>"]
        for box, label in objects:
            parts.append(
                f"<object><name>{label}</name><bndbox><xmin>{box[0]}</xmin>"
                f"<ymin>{box[1]}</ymin><xmax>{box[2]}</xmax><ymax>{box[3]}"
                "</ymax></bndbox></object>"
            )
        parts.append("</annotation>")
        stem = os.path.splitext(file)[0]
        with open(os.path.join(folder, "Annotations", f"{stem}.xml"), "w") as f:
            f.write("".join(parts))
    return folder


def write_coco(folder, items, size=96, name="instances.json"):
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(CLASSES)]
    ids = {n: i + 1 for i, n in enumerate(CLASSES)}
    images, annotations = [], []
    for i, (file, objects) in enumerate(items, start=1):
        images.append({"id": i, "file_name": file, "width": size, "height": size})
        for box, label in objects:
            annotations.append({
                "id": len(annotations) + 1, "image_id": i, "category_id": ids[label],
                "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                "area": (box[2] - box[0]) * (box[3] - box[1]), "iscrowd": 0,
            })
    path = os.path.join(folder, name)
    with open(path, "w") as f:
        json.dump({"images": images, "annotations": annotations,
                   "categories": categories}, f)
    return path
