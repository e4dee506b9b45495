"""Classes of images, texts and clips: CSV rows equal `model.predict`."""

import os

import numpy as np
import pytest
from PIL import Image

from kerasft.predictors import classification
from tests.finished_run import finished_run
from tests.predictors._load import assert_export_matches_predict, header, load, read_csv

FAST = dict(precision="float32", strategy="default", verbose=0)


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    directory, (x, y) = finished_run(tmp_path_factory.mktemp("img") / "run")
    images = tmp_path_factory.mktemp("images")
    for i in range(4):
        Image.fromarray(np.round(x[i]).astype("uint8")).save(images / f"{i}.png")
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    pixels = np.round(x[:4]).astype("float32")
    return load(directory, "image_classification"), images, pixels


def test_images_rows_equal_model_predict_and_error_column(image_run, tmp_path):
    run, images, pixels = image_run
    out = tmp_path / "p.csv"
    result = classification.predict_images(run, str(images), str(out), top_k=2,
                                           verbose=0)
    names = run.class_names
    assert header(out) == ["input", "predicted", "score",
                           *(f"prob_{n}" for n in names), "top1_class",
                           "top1_prob", "top2_class", "top2_prob", "error"]
    rows = {os.path.basename(r["input"]): r for r in read_csv(out)}
    assert rows["broken.png"]["error"] == "unreadable image"
    assert rows["broken.png"]["predicted"] == ""
    expected = run.model.predict(pixels, verbose=0)
    for i in range(4):
        row = rows[f"{i}.png"]
        assert row["error"] == ""
        got = [float(row[f"prob_{n}"]) for n in names]
        np.testing.assert_allclose(got, expected[i], atol=1e-5)
        assert row["predicted"] == names[int(expected[i].argmax())]
        assert row["top1_class"] == row["predicted"]
    assert result.unreadable == [(str(images / "broken.png"), "unreadable image")]
    assert result.files == [str(out)]
    # Written atomically: nothing but the CSV is left in its folder.
    assert os.listdir(tmp_path) == ["p.csv"]


def test_error_column_present_when_every_input_reads(image_run, tmp_path):
    run, images, _ = image_run
    listing = tmp_path / "list.txt"
    listing.write_text(f"{images}/0.png\n{images}/1.png\n")
    out = tmp_path / "ok.csv"
    classification.predict_images(run, str(listing), str(out), verbose=0)
    assert header(out)[-1] == "error"
    assert [r["error"] for r in read_csv(out)] == ["", ""]
    with pytest.raises(ValueError, match="`top_k` must be a positive int"):
        classification.predict_images(run, str(listing), str(out), top_k=0)


@pytest.mark.slow
def test_texts_rows_equal_model_predict(tmp_path):
    from kerasft import backbones, recipes
    from kerasft.data import tokenize
    from tests.fixtures.tiny_hf import make_tiny_folder

    folder, _ = make_tiny_folder(str(tmp_path / "bert"))
    texts = [f"{w} {'good' if i % 2 else 'bad'} film" for i, w in
             enumerate(["a", "the", "one", "my"] * 4)]
    labels = ["pos" if i % 2 else "neg" for i in range(len(texts))]
    recipes.text_classification(
        train=(texts, labels), backbone=folder, epochs=1, batch_size=8,
        max_length=8, output_dir=str(tmp_path / "run"), **FAST)
    run = load(tmp_path / "run", "text_classification")
    table = tmp_path / "new.csv"
    table.write_text("text,other\na good film,x\nthe bad film,y\nmy film,z\n")
    result = classification.predict_texts(run, str(table), str(tmp_path / "t.csv"),
                                          verbose=0)
    new = ["a good film", "the bad film", "my film"]
    assert [r["input"] for r in result.rows] == new
    tokens = tokenize(new, backbones.bert(folder, sequence_length=8).tokenizer,
                      sequence_length=8)
    expected = run.model.predict(tokens, verbose=0)
    rows = read_csv(tmp_path / "t.csv")
    got = [[float(r["prob_neg"]), float(r["prob_pos"])] for r in rows]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert [r["error"] for r in rows] == ["", "", ""]


def test_videos_rows_equal_model_predict_and_bad_clip_reported(tmp_path):
    from kerasft import recipes
    from kerasft.data._video_decode import decode_clip
    from tests.data import videos
    from tests.recipes.video_tiny import frame_backbone

    clips = videos.clip_folder(str(tmp_path / "clips"), per_class=3, frames=4,
                               size=16)
    recipes.video_classification(
        train=clips, backbone=frame_backbone(size=16), frames=4, image_size=16,
        epochs=1, batch_size=4, mode="feature_extraction", temporal="mean",
        output_dir=str(tmp_path / "run"), **FAST)
    run = load(tmp_path / "run", "video_classification")
    out = tmp_path / "v.csv"
    result = classification.predict_videos(run, clips, str(out), batch_size=4,
                                           verbose=0)
    paths = [r["input"] for r in result.rows]
    assert len(paths) == 6 and all(os.path.isdir(p) for p in paths)
    decoded = np.stack([decode_clip(p, 4, (16, 16), "uniform")[0] for p in paths])
    expected = run.model.predict(decoded.astype("float32"), verbose=0)
    rows = read_csv(out)
    got = [[float(r["prob_left"]), float(r["prob_right"])] for r in rows]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    listing = tmp_path / "clips.txt"
    listing.write_text(f"{paths[0]}\n{tmp_path}/missing.mp4\n")
    result = classification.predict_videos(run, str(listing),
                                           str(tmp_path / "w.csv"), verbose=0)
    errors = [r["error"] for r in read_csv(tmp_path / "w.csv")]
    assert errors[0] == "" and errors[1].startswith("unreadable clip")
    assert len(result.unreadable) == 1
    # Export: clips in, float32 and uint8 frames alike.
    served = assert_export_matches_predict(run.directory, decoded.astype("float32"),
                                           tmp_path / "saved")
    np.testing.assert_allclose(served.serve_uint8(decoded).numpy(), expected,
                               atol=1e-5)
