"""Object-detection annotations: CSV, Pascal VOC XML and COCO JSON.

Every reader returns one `BoxAnnotations`: per image its file path, its
boxes as absolute `xyxy` pixels of the original image and its integer
labels, plus the class names. Everything is checked before any training:
missing image files, boxes with `xmax < xmin` or `ymax < ymin`, boxes
outside their image, unknown labels and label ids out of range all raise
a `ValueError` naming the file and row. No TensorFlow here; the
`tf.data` pipeline over the result is `kerasft.data.box_dataset`.
"""

import csv
import dataclasses
import os
import xml.etree.ElementTree as ET

import numpy as np

__all__ = ["BoxAnnotations", "read_boxes", "read_box_csv", "read_coco", "read_voc"]

CSV_COLUMNS = ("filename", "xmin", "ymin", "xmax", "ymax", "label")
_CORNERS = CSV_COLUMNS[1:5]


@dataclasses.dataclass(frozen=True)
class BoxAnnotations:
    """Images with their boxes and labels.

    Attributes:
        paths: image files, one per image.
        boxes: per image a `(n, 4)` float32 array, absolute `xyxy` pixels.
        labels: per image a `(n,)` int32 array of class ids.
        class_names: the class names, in id order.
    """

    paths: tuple
    boxes: tuple
    labels: tuple
    class_names: tuple

    def __len__(self):
        return len(self.paths)

    @property
    def max_boxes(self):
        """The largest number of boxes in one image."""
        return max((len(b) for b in self.boxes), default=0)

    def class_counts(self):
        """Boxes per class, `(num_classes,)`."""
        labels = np.concatenate([*self.labels, np.zeros(0, "int32")])
        return np.bincount(labels, minlength=len(self.class_names))

    def subset(self, indices):
        """The images at `indices`, same classes."""
        pick = lambda values: tuple(values[i] for i in indices)  # noqa: E731
        return BoxAnnotations(pick(self.paths), pick(self.boxes),
                              pick(self.labels), self.class_names)


def read_boxes(source, class_names=None, image_dir=None):
    """Reads a CSV file, a Pascal VOC folder or a COCO JSON file.

    Args:
        source: a `.csv` (`filename,xmin,ymin,xmax,ymax,label`, one row
            per box), a `.json` (COCO) or a folder of VOC `.xml` files
            (or holding `Annotations/`).
        class_names: class names in id order, to map names to the ids of
            another split. Defaults to `None` (sorted names found).
        image_dir: where COCO/VOC image files are. Defaults to `None`
            (next to the annotations, see each reader).

    Returns:
        A `BoxAnnotations`.

    Example:
    ```python
    train = kerasft.data.read_boxes("shapes/train.csv")
    val = kerasft.data.read_boxes("shapes/val.csv", train.class_names)
    ```
    """
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            "Detection data must be a CSV file, a COCO .json file or a "
            f"Pascal VOC folder. Received: {type(source).__name__}"
        )
    source = os.fspath(source)
    if os.path.isdir(source):
        return read_voc(source, class_names, image_dir)
    if source.lower().endswith(".json"):
        return read_coco(source, class_names, image_dir)
    if source.lower().endswith(".csv"):
        return read_box_csv(source, class_names)
    raise ValueError(
        "Detection data must be a .csv file, a COCO .json file or a Pascal "
        f"VOC folder. Received: {source!r}"
    )


def read_box_csv(path, class_names=None):
    """Reads `filename,xmin,ymin,xmax,ymax,label` rows (pixels; file names
    relative to the CSV's folder); rows of one file make one image. A row
    with empty corners and label is an image without objects."""
    if not os.path.exists(path):
        raise ValueError(f"CSV file {path!r} does not exist.")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(
                    f"CSV file {path!r} has no column(s) {missing}. Its columns: "
                    f"{reader.fieldnames}. Expected the header "
                    f"{','.join(CSV_COLUMNS)}."
                )
            rows = list(reader)
    except (csv.Error, UnicodeDecodeError) as e:
        raise ValueError(
            f"Cannot read {path!r} as CSV text ({e}). Expected rows of "
            f"{','.join(CSV_COLUMNS)} under that header."
        ) from None
    if not rows:
        raise ValueError(f"CSV file {path!r} has no rows.")
    root = os.path.dirname(os.path.abspath(path))
    images = {}  # path -> [(box, label, where)]
    for line, row in enumerate(rows, start=2):
        file = os.path.join(root, row["filename"])
        objects = images.setdefault(file, [])
        values = [row[k].strip() for k in _CORNERS]
        if not any(values) and not row["label"].strip():
            continue
        try:
            box = [float(v) for v in values]
        except ValueError:
            raise ValueError(
                f"{path!r} line {line}: box corners must be numbers. "
                f"Received: {values}"
            ) from None
        objects.append((box, row["label"].strip(), f"{path!r} line {line}"))
    return _annotations(images, class_names, {}, source=path)


def read_voc(folder, class_names=None, image_dir=None):
    """Reads Pascal VOC XML files: `folder/Annotations/*.xml` (images in
    `folder/JPEGImages/`) or `folder/*.xml` (images next to them), unless
    `image_dir` says where. Coordinates are taken as written."""
    xml_dir = os.path.join(folder, "Annotations")
    if not os.path.isdir(xml_dir):
        xml_dir = folder
    files = sorted(f for f in os.listdir(xml_dir) if f.lower().endswith(".xml"))
    if not files:
        raise ValueError(f"Pascal VOC folder {folder!r} holds no .xml files.")
    if image_dir is None:
        jpeg = os.path.join(folder, "JPEGImages")
        image_dir = jpeg if os.path.isdir(jpeg) else xml_dir
    images, sizes = {}, {}
    for name in files:
        xml = os.path.join(xml_dir, name)
        try:
            root = ET.parse(xml).getroot()
        except ET.ParseError as e:
            raise ValueError(f"{xml!r} is not valid XML: {e}") from None
        file = os.path.join(image_dir, root.findtext("filename", "").strip())
        size = root.find("size")
        if size is not None and size.findtext("width"):
            sizes[file] = (float(size.findtext("width")), float(size.findtext("height")))
        objects = images.setdefault(file, [])
        for i, obj in enumerate(root.iter("object")):
            where = f"{xml!r} object {i}"
            box = obj.find("bndbox")
            try:
                corners = [float(box.findtext(k)) for k in _CORNERS]
            except (AttributeError, TypeError, ValueError):
                raise ValueError(
                    f"{where}: needs a <bndbox> with numeric "
                    "<xmin>, <ymin>, <xmax>, <ymax>."
                ) from None
            objects.append((corners, obj.findtext("name", "").strip(), where))
    return _annotations(images, class_names, sizes, source=folder)


_COCO_EXPECTED = (
    "a COCO detection file: an object with 'images' (id, file_name), "
    "'annotations' (image_id, category_id, bbox [x, y, w, h]) and "
    "'categories' (id, name)"
)


def read_coco(path, class_names=None, image_dir=None):
    """Reads a COCO JSON file (`images`, `annotations` with `bbox` as
    `[x, y, w, h]`, `categories`); image files are `image_dir/file_name`,
    by default next to the JSON file (or in its `images/` folder).
    Crowd annotations (`iscrowd: 1`) are left out."""
    from kerasft._json_file import load_json

    data = load_json(path, _COCO_EXPECTED)
    if not isinstance(data, dict):
        raise ValueError(
            f"COCO file {path!r} holds a JSON {type(data).__name__}. "
            f"Expected {_COCO_EXPECTED}."
        )
    missing = [k for k in ("images", "annotations", "categories") if k not in data]
    if missing:
        raise ValueError(
            f"COCO file {path!r} has no {missing} entries. Expected "
            f"{_COCO_EXPECTED}."
        )
    root = os.path.dirname(os.path.abspath(path))
    if image_dir is None:
        image_dir = os.path.join(root, "images")
        if not os.path.isdir(image_dir):
            image_dir = root
    categories = {c["id"]: c["name"] for c in data["categories"]}
    images, sizes, by_id = {}, {}, {}
    for image in data["images"]:
        file = os.path.join(image_dir, image["file_name"])
        by_id[image["id"]] = file
        images[file] = []
        if "width" in image and "height" in image:
            sizes[file] = (float(image["width"]), float(image["height"]))
    if class_names is None:
        class_names = [categories[k] for k in sorted(categories)]
    for ann in data["annotations"]:
        where = f"{path!r} annotation id {ann.get('id')}"
        if ann.get("iscrowd"):
            continue
        if ann.get("image_id") not in by_id:
            raise ValueError(f"{where}: image_id {ann.get('image_id')!r} is "
                             "not among the file's images.")
        if ann.get("category_id") not in categories:
            raise ValueError(f"{where}: category_id {ann.get('category_id')!r} "
                             f"is not among the categories {sorted(categories)}.")
        x, y, w, h = (float(v) for v in ann["bbox"])
        images[by_id[ann["image_id"]]].append(
            ([x, y, x + w, y + h], categories[ann["category_id"]], where)
        )
    return _annotations(images, class_names, sizes, source=path)


def _annotations(images, class_names, sizes, source):
    """Checks `{file: [(box, label, where)]}` and builds the result.
    Files that cannot be opened are kept: the decoding pass of
    `box_dataset` skips and lists them, as for every image source."""
    missing = [f for f in images if not os.path.exists(f)]
    if missing:
        raise ValueError(
            f"{len(missing)} image file(s) named in {source!r} do not exist, "
            f"e.g. {missing[0]!r}."
        )
    names = _class_names(images, class_names)
    lookup = {n: i for i, n in enumerate(names)}
    paths, boxes, labels = [], [], []
    for file, objects in images.items():
        size = sizes.get(file) or _image_size(file)
        ids = []
        for box, label, where in objects:
            _check_box(box, size, file, where)
            ids.append(_label_id(label, lookup, names, where))
        paths.append(file)
        boxes.append(np.asarray([b for b, _, _ in objects], "float32").reshape(-1, 4))
        labels.append(np.asarray(ids, "int32"))
    return BoxAnnotations(tuple(paths), tuple(boxes), tuple(labels), tuple(names))


def _class_names(images, class_names):
    if class_names is not None:
        return tuple(str(n) for n in class_names)
    found = {label for objects in images.values() for _, label, _ in objects}
    if found and all(label.lstrip("-").isdigit() for label in found):
        return tuple(str(i) for i in range(max(int(v) for v in found) + 1))
    return tuple(sorted(found))


def _label_id(label, lookup, names, where):
    if label in lookup:
        return lookup[label]
    if label.lstrip("-").isdigit():
        if 0 <= int(label) < len(names):
            return int(label)
        raise ValueError(
            f"{where}: label id {label} is out of range for {len(names)} "
            f"classes (0..{len(names) - 1}): {list(names)}."
        )
    raise ValueError(
        f"{where}: label {label!r} is not among the classes {list(names)}."
    )


def _check_box(box, size, file, where):
    xmin, ymin, xmax, ymax = box
    if not (xmax > xmin and ymax > ymin):
        raise ValueError(
            f"{where}: a box needs xmin < xmax and ymin < ymax. Received: "
            f"xmin={xmin}, ymin={ymin}, xmax={xmax}, ymax={ymax} for {file!r}."
        )
    if size is None:
        return  # unreadable: the decoding pass skips and lists the file
    width, height = size
    if xmin < 0 or ymin < 0 or xmax > width or ymax > height:
        raise ValueError(
            f"{where}: the box {box} lies outside its image {file!r} "
            f"({width:g}x{height:g} pixels, width x height); corners are "
            "absolute pixels."
        )


def _image_size(file):
    """`(width, height)` from the image header (no full decode), or
    `None` for a file PIL cannot open."""
    from PIL import Image

    try:
        with Image.open(file) as image:
            return float(image.size[0]), float(image.size[1])
    except OSError:
        return None
