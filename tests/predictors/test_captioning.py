"""Captions CSV: the run's generator on each image, no special tokens."""

import os

import numpy as np
import pytest
from PIL import Image

from kerasft import recipes
from kerasft.predictors import captioning
from tests.predictors._load import header, load, read_csv


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from tests.data import caption_shapes
    from tests.recipes.caption_tiny import caption_backbone

    root = str(tmp_path_factory.mktemp("captions"))
    train = caption_shapes.write_split(root, "val")  # the small split: 36 images
    out = tmp_path_factory.mktemp("cap") / "run"
    recipes.image_captioning(
        train=train, backbone=caption_backbone(), image_size=32, epochs=3,
        mode="feature_extraction", learning_rate=3e-3, batch_size=16,
        max_length=10, embed_dim=16, decoder_layers=1, num_heads=2,
        num_beams=1, samples=2, strategy="default", precision="float32",
        verbose=0, output_dir=str(out))
    return load(out, "image_captioning"), os.path.join(root, "val")


@pytest.mark.slow
def test_captions_equal_the_generator_and_have_no_special_tokens(run, tmp_path):
    run, folder = run
    names = sorted(os.listdir(folder))[:5]
    listing = tmp_path / "images.csv"
    listing.write_text("filename\n" + "".join(f"{folder}/{n}\n" for n in names)
                       + "missing.png\n")
    out = tmp_path / "captions.csv"
    result = captioning.predict(run, str(listing), str(out), batch_size=2,
                                verbose=0)
    assert header(out) == ["input", "caption", "error"]
    rows = read_csv(out)
    assert len(rows) == 6 and rows[5]["error"] == "missing file"
    images = np.stack([np.asarray(Image.open(os.path.join(folder, n)))
                       for n in names])
    assert [r["caption"] for r in rows[:5]] == run.model.caption(images)
    for row in rows[:5]:
        assert row["caption"].strip() and row["error"] == ""
        assert "[START]" not in row["caption"] and "[END]" not in row["caption"]
    assert result.unreadable == [(str(tmp_path / "missing.png"), "missing file")]


@pytest.mark.slow
def test_export_is_refused_naming_kerasft_predict(run, tmp_path, capsys):
    from kerasft.exporting import export

    run, _ = run
    with pytest.raises(ValueError, match=r"image_captioning run .* no serving "
                       r"signature; caption images with `kerasft predict"):
        export(run.directory, str(tmp_path / "saved"))
    assert not (tmp_path / "saved").exists()
    from kerasft import cli

    assert cli.main(["export", run.directory, "--output", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "kerasft predict" in err[0], err
