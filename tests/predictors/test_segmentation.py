"""Mask PNGs (class ids, original size), colour key and pixel fractions."""

import os

import numpy as np
import pytest
from PIL import Image

from kerasft import recipes
from kerasft.predictors import segmentation
from tests.predictors._load import assert_export_matches_predict, header, load, read_csv


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from kerasft.data.synthetic import shapes_segmentation
    from tests.recipes._segmentation_child import tiny_cnn

    images, masks = shapes_segmentation(16, 32, seed=0)
    out = tmp_path_factory.mktemp("seg") / "run"
    recipes.segmentation(
        train=(images, masks), backbone=tiny_cnn(), image_size=32,
        levels=(0, 1, 2), decoder_filters=8, mode="full", head_epochs=0,
        epochs=2, batch_size=8, learning_rate=3e-3, fine_tune_learning_rate=3e-3,
        class_names="background,square,disk", output_dir=str(out),
        precision="float32", strategy="default", verbose=0)
    new = tmp_path_factory.mktemp("new")
    test_images, _ = shapes_segmentation(3, 48, seed=1)
    for i, image in enumerate(test_images):  # 48x40: not the model's 32x32
        Image.fromarray(image[:40].astype("uint8")).save(new / f"{i}.png")
    (new / "broken.png").write_bytes(b"")
    return load(out, "segmentation"), new


def test_masks_are_model_argmax_at_original_size(run, tmp_path):
    import tensorflow as tf

    run, new = run
    out = tmp_path / "masks.csv"
    result = segmentation.predict(run, str(new), str(out), verbose=0)
    names = ["background", "square", "disk"]
    assert header(out) == ["input", "mask", *(f"frac_{n}" for n in names), "error"]
    rows = {os.path.basename(r["input"]): r for r in read_csv(out)}
    assert rows["broken.png"]["error"] == "unreadable image"
    assert rows["broken.png"]["mask"] == ""
    for i in range(3):
        row = rows[f"{i}.png"]
        original = np.asarray(Image.open(new / f"{i}.png").convert("RGB"), "float32")
        resized = np.round(tf.image.resize(original, (32, 32)).numpy())
        classes = run.model.predict(resized[None], verbose=0)[0].argmax(-1)
        expected = np.asarray(Image.fromarray(classes.astype("uint8")).resize(
            (48, 40), Image.NEAREST))
        mask = Image.open(row["mask"])
        assert mask.mode == "P" and mask.size == (48, 40)
        np.testing.assert_array_equal(np.asarray(mask), expected)
        fractions = [float(row[f"frac_{n}"]) for n in names]
        np.testing.assert_allclose(
            fractions, np.bincount(expected.ravel(), minlength=3) / expected.size,
            atol=1e-6)
        assert row["error"] == ""
    key = read_csv(tmp_path / "masks" / "colour_key.csv")
    assert [k["class"] for k in key] == names
    palette = Image.open(rows["0.png"]["mask"]).getpalette()[:9]
    assert palette == [int(k[c]) for k in key for c in ("red", "green", "blue")]
    assert len(set(map(tuple, np.reshape(palette, (3, 3))))) == 3  # distinct
    assert result.files[:2] == [str(out), str(tmp_path / "masks" / "colour_key.csv")]
    assert len(result.files) == 5 and len(result.unreadable) == 1


def test_export_saved_model_equals_model_predict(run, tmp_path):
    from kerasft.data.synthetic import shapes_segmentation

    run, _ = run
    images, _ = shapes_segmentation(3, 32, seed=2)
    served = assert_export_matches_predict(run.directory, images.astype("float32"),
                                           tmp_path / "saved", atol=1e-4)
    np.testing.assert_allclose(  # raw uint8 pixels too
        served.serve_uint8(images.astype("uint8")).numpy(),
        served.serve(images.astype("float32")).numpy(), atol=1e-5)


def test_kerasft_predict_command_writes_masks(run, tmp_path, capsys):
    from kerasft import cli

    run, new = run
    out = tmp_path / "cli.csv"
    assert cli.main(["predict", run.directory, str(new), "--output", str(out),
                     "--quiet"]) == 0
    assert "Wrote 4 rows" in capsys.readouterr().out
    assert sorted(os.listdir(tmp_path / "cli")) == [
        "0000_0.png", "0001_1.png", "0002_2.png", "colour_key.csv"]
    assert cli.main(["predict", run.directory, str(new), "--top-k", "2"]) == 2
    assert "`top_k` ranks classes" in capsys.readouterr().err
