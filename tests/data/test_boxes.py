"""Detection annotations: CSV, Pascal VOC and COCO into one representation,
the checks before training, and `box_dataset`'s padded batches."""

import csv
import json
import os

import numpy as np
import pytest

from kerasft import data
from tests.data import detection_shapes as shapes


@pytest.fixture(scope="module")
def items(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("shapes"))
    return root, shapes.make_images(root, 6, seed=3, size=64, min_side=10, max_side=20)


def _expected(items):
    _, listed = items
    return [([box for box, _ in objects], [shapes.CLASSES.index(n) for _, n in objects])
            for _, objects in listed]


def _same(annotations, items):
    assert annotations.class_names == shapes.CLASSES
    assert [os.path.basename(p) for p in annotations.paths] == [f for f, _ in items[1]]
    for (boxes, labels), got_boxes, got_labels in zip(
        _expected(items), annotations.boxes, annotations.labels
    ):
        np.testing.assert_allclose(got_boxes, np.reshape(boxes, (-1, 4)))
        np.testing.assert_array_equal(got_labels, labels)


def test_csv_voc_and_coco_read_the_same(items, tmp_path):
    root, listed = items
    from_csv = data.read_boxes(shapes.write_csv(root, listed))
    _same(from_csv, items)
    assert from_csv.max_boxes == max(len(o) for _, o in listed)
    from_coco = data.read_boxes(shapes.write_coco(root, listed, size=64),
                                image_dir=os.path.join(root, "images"))
    _same(from_coco, items)
    voc = str(tmp_path / "voc")
    os.makedirs(os.path.join(voc, "images"))
    for file, _ in listed:
        os.link(os.path.join(root, "images", file), os.path.join(voc, "images", file))
    _same(data.read_boxes(shapes.write_voc(voc, listed, size=64)), items)


def _csv(tmp_path, rows, image_size=(20, 30)):
    import keras

    keras.utils.save_img(str(tmp_path / "a.png"),
                         np.zeros((*image_size, 3), "uint8"))
    path = str(tmp_path / "boxes.csv")
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["filename", "xmin", "ymin", "xmax", "ymax", "label"])
        writer.writerows(rows)
    return path


@pytest.mark.parametrize(
    "row, message",
    [
        (["a.png", 5, 2, 3, 8, "cat"], "line 3: a box needs xmin < xmax"),
        (["a.png", 1, 9, 3, 8, "cat"], "line 3: a box needs xmin < xmax and ymin < ymax"),
        (["a.png", 1, 2, 31, 8, "cat"], "line 3: the box .* lies outside its image .*a.png"),
        (["a.png", -1, 2, 3, 8, "cat"], "line 3: the box .* outside"),
        (["a.png", 1, 2, 3, "x", "cat"], "line 3: box corners must be numbers"),
        (["missing.png", 1, 2, 3, 4, "cat"], "do not exist, e.g. .*missing.png"),
    ],
)
def test_bad_boxes_name_file_and_line(tmp_path, row, message):
    path = _csv(tmp_path, [["a.png", 1, 2, 3, 4, "cat"], row])
    with pytest.raises(ValueError, match=message):
        data.read_boxes(path)


def test_unknown_and_out_of_range_labels(tmp_path):
    path = _csv(tmp_path, [["a.png", 1, 2, 3, 4, "cat"], ["a.png", 1, 2, 3, 4, "cow"]])
    with pytest.raises(ValueError, match="line 3: label 'cow' is not among the classes"):
        data.read_boxes(path, class_names=["cat", "dog"])
    path = _csv(tmp_path, [["a.png", 1, 2, 3, 4, "0"], ["a.png", 1, 2, 3, 4, "5"]])
    with pytest.raises(ValueError, match="line 3: label id 5 is out of range for 2"):
        data.read_boxes(path, class_names=["cat", "dog"])
    assert data.read_boxes(path).class_names == tuple("012345")


def test_coco_errors_name_the_annotation(items):
    root, listed = items
    path = shapes.write_coco(root, listed, size=64, name="bad.json")
    with open(path) as f:
        coco = json.load(f)
    coco["annotations"][1]["bbox"] = [50, 50, 30, 10]  # 50 + 30 > 64
    with open(path, "w") as f:
        json.dump(coco, f)
    with pytest.raises(ValueError, match="annotation id 2: the box .* outside"):
        data.read_boxes(path, image_dir=os.path.join(root, "images"))
    coco["annotations"][1]["category_id"] = 9
    with open(path, "w") as f:
        json.dump(coco, f)
    with pytest.raises(ValueError, match="annotation id 2: category_id 9"):
        data.read_boxes(path, image_dir=os.path.join(root, "images"))


def test_box_dataset_pads_scales_and_keeps_static_shapes(items):
    root, listed = items
    annotations = data.read_boxes(shapes.write_csv(root, listed))
    ds = data.box_dataset(annotations, (32, 48), batch_size=4, max_boxes=5,
                          shuffle=False)
    assert ds.max_boxes == 5 and ds.num_samples == 6 and ds.steps_per_epoch == 2
    assert ds.image_sizes.tolist() == [[64, 64]] * 6
    images, targets = next(iter(ds))
    assert images.shape == (4, 32, 48, 3) and targets["boxes"].shape == (4, 5, 4)
    for i in range(4):
        n = len(annotations.boxes[i])
        np.testing.assert_allclose(
            targets["boxes"][i, :n], annotations.boxes[i] * np.array([48 / 64, 32 / 64] * 2),
            rtol=1e-6,
        )
        np.testing.assert_array_equal(targets["labels"][i, :n], annotations.labels[i])
        assert (targets["labels"][i, n:] == -1).numpy().all()
        assert (targets["boxes"][i, n:] == -1).numpy().all()
    with pytest.raises(ValueError, match="more than `max_boxes`=1"):
        data.box_dataset(annotations, 32, 4, max_boxes=1)


def test_box_dataset_augmentation_moves_boxes_and_replays_per_epoch(items):
    import tensorflow as tf

    root, listed = items
    annotations = data.read_boxes(shapes.write_csv(root, listed))
    epoch = tf.Variable(0, dtype="int64")
    ds = data.box_dataset(annotations, 64, batch_size=6, shuffle=False, seed=1,
                          epoch=epoch, augment={"horizontal_flip": True})
    plain = data.box_dataset(annotations, 64, batch_size=6, shuffle=False)
    (images, targets), = list(ds)
    (raw, raw_targets), = list(plain)
    flipped = [i for i in range(6)
               if not np.allclose(images[i], raw[i]) and np.allclose(images[i], raw[i, :, ::-1])]
    assert flipped and len(flipped) < 6
    for i in flipped:
        n = len(annotations.boxes[i])
        box = raw_targets["boxes"][i, :n].numpy()
        want = np.stack([64 - box[:, 2], box[:, 1], 64 - box[:, 0], box[:, 3]], 1)
        got = targets["boxes"][i].numpy()
        got = got[targets["labels"][i].numpy() >= 0]
        np.testing.assert_allclose(np.sort(got, 0), np.sort(want, 0), atol=1e-3)
    (again, _), = list(ds)  # same epoch: the same draw
    np.testing.assert_array_equal(again, images)
