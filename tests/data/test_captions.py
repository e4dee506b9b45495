"""`kerasft.data.captions`: reading, checking and batching captioned images."""

import csv
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from kerasft.data.captions import (
    caption_batches,
    image_batches,
    load_caption_images,
    read_captions,
    readable_images,
)
from tests.data.caption_shapes import image_and_captions


def _write(tmp_path, n=3):
    """`n` PNG images under images/ and a CSV with two captions each."""
    from PIL import Image

    os.makedirs(tmp_path / "images", exist_ok=True)
    rows = []
    for i in range(n):
        image, captions = image_and_captions(i, i + 1, "vertical")
        Image.fromarray(image).save(tmp_path / "images" / f"{i}.png")
        rows += [(f"images/{i}.png", c) for c in captions]
    path = tmp_path / "captions.csv"
    _csv(path, ["image", "caption"], rows)
    return str(path), rows


def _csv(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def test_csv_groups_captions_by_image_relative_to_its_folder(tmp_path):
    path, rows = _write(tmp_path)
    table = read_captions(path)
    assert len(table) == 3 and table.num_captions == 6
    assert table.image_paths[0] == os.path.join(str(tmp_path), "images/0.png")
    assert table.captions[1] == (rows[2][1], rows[3][1])
    assert table.take([2]).captions == (table.captions[2],)


def test_coco_json_reads_like_the_csv_and_image_dir_moves_the_root(tmp_path):
    path, rows = _write(tmp_path)
    names = sorted({n for n, _ in rows})
    coco = {
        "images": [{"id": 10 + k, "file_name": os.path.basename(n)}
                   for k, n in enumerate(names)],
        "annotations": [{"id": k, "image_id": 10 + names.index(n), "caption": c}
                        for k, (n, c) in enumerate(rows)],
    }
    json_path = tmp_path / "coco.json"
    json_path.write_text(json.dumps(coco))
    from_json = read_captions(str(json_path), image_dir=str(tmp_path / "images"))
    assert from_json.image_paths == read_captions(path).image_paths
    assert from_json.captions == read_captions(path).captions
    coco["annotations"].append({"id": 99, "image_id": 5, "caption": "x"})
    json_path.write_text(json.dumps(coco))
    with pytest.raises(ValueError, match="image_id=5"):
        read_captions(str(json_path), image_dir=str(tmp_path / "images"))


def test_missing_images_are_counted_and_named_before_decoding(tmp_path):
    path, rows = _write(tmp_path)
    _csv(path, ["image", "caption"],
         rows + [(f"gone/{k}.png", "a cat") for k in range(7)])
    with pytest.raises(ValueError) as error:
        read_captions(path)
    message = str(error.value)
    assert "7 of 10 image file(s)" in message and "gone/0.png" in message
    assert "gone/6.png" not in message  # a few named, not all


def test_missing_column_names_the_columns_found(tmp_path):
    path = tmp_path / "bad.csv"
    _csv(path, ["filename", "text"], [("a.png", "a cat")])
    with pytest.raises(ValueError, match=r"no column\(s\) \['image', 'caption'\]"
                       r".*\['filename', 'text'\]"):
        read_captions(str(path))


def test_empty_caption_names_its_line(tmp_path):
    path, rows = _write(tmp_path)
    _csv(path, ["image", "caption"], rows[:2] + [(rows[2][0], "  ")])
    with pytest.raises(ValueError, match="line 4"):
        read_captions(path)


def test_batches_shift_tokens_weight_padding_and_repeat_per_epoch(tmp_path):
    path, _ = _write(tmp_path, n=6)
    images = load_caption_images(read_captions(path), (16, 16))
    # Image i has captions [2, 10+i, 3, 0] and [2, 20+i, 3, 0].
    ids = [np.array([[2, 10 + i, 3, 0], [2, 20 + i, 3, 0]]) for i in range(6)]
    epoch = tf.Variable(0, dtype="int64")
    ds = caption_batches(images, ids, 4, seed=1, epoch=epoch)
    x, y, w = next(iter(ds))
    assert x["image"].shape == (4, 16, 16, 3) and x["image"].dtype == tf.float32
    np.testing.assert_array_equal(x["tokens"][:, 0], [2, 2, 2, 2])
    np.testing.assert_array_equal(y[:, 1:], [[3, 0]] * 4)
    np.testing.assert_array_equal(w, [[1, 1, 0]] * 4)

    def epoch_tokens(e):
        epoch.assign(e)
        return np.concatenate([b[0]["tokens"][:, 1].numpy() for b in ds])

    first = epoch_tokens(0)
    np.testing.assert_array_equal(epoch_tokens(0), first)  # same epoch, same data
    assert sorted(first % 10) == list(range(6))  # every image once
    later = [epoch_tokens(e) for e in range(1, 6)]
    assert any(not np.array_equal(t, first) for t in later)
    chosen = np.concatenate([first, *later]) // 10
    assert {1, 2} <= set(chosen.tolist())  # both captions get drawn
    fixed = caption_batches(images, ids, 4, shuffle=False, captions="first")
    tokens = np.concatenate([b[0]["tokens"][:, 1].numpy() for b in fixed])
    np.testing.assert_array_equal(tokens, 10 + np.arange(6))
    assert sum(b.shape[0] for b in image_batches(images, 4)) == 6


def test_readable_images_leaves_out_and_names_unreadable_files(tmp_path, caplog):
    path, _ = _write(tmp_path, n=3)
    with open(tmp_path / "images" / "1.png", "wb") as f:
        f.write(b"not a png")
    table = read_captions(path)
    with caplog.at_level("WARNING", logger="kerasft.data"):
        kept, skipped = readable_images(table)
    assert skipped == (table.image_paths[1],)
    assert kept.image_paths == (table.image_paths[0], table.image_paths[2])
    assert kept.captions == (table.captions[0], table.captions[2])
    assert "Skipped 1 unreadable image file(s)" in caplog.text
    for name in ("0.png", "2.png"):
        with open(tmp_path / "images" / name, "wb") as f:
            f.write(b"")
    with pytest.raises(ValueError, match="all 3 files were unreadable"):
        readable_images(read_captions(path))
