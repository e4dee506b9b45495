"""`kerasft predict`: batch inference on folders, CSV and text files."""

import csv
import os

import numpy as np
import pytest
from PIL import Image

from kerasft import cli
from kerasft.predict import predict_to_csv
from tests.finished_run import finished_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    directory, (x, y) = finished_run(tmp_path_factory.mktemp("run") / "run")
    images = tmp_path_factory.mktemp("images")
    (images / "sub").mkdir()
    for i in range(6):
        folder = images / "sub" if i % 2 else images
        Image.fromarray(np.round(x[i]).astype("uint8")).save(folder / f"{i}.png")
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (images / "empty.jpg").write_bytes(b"")
    return directory, images, y[:6]


def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_folder_rows_probabilities_top_k_and_unreadable(run, tmp_path):
    directory, images, y = run
    out = tmp_path / "p.csv"
    result = predict_to_csv(directory, str(images), str(out), top_k=2, verbose=0)
    rows = _read(out)
    assert len(rows) == 8  # one per input, the unreadable ones included
    bad = {os.path.basename(r["input"]): r["error"] for r in rows if r["error"]}
    assert set(bad) == {"broken.png", "empty.jpg"}
    assert len(result.unreadable) == 2
    good = [r for r in rows if not r["error"]]
    for row in good:
        probs = [float(row[f"prob_{c}"]) for c in ("0", "1", "2")]
        assert abs(sum(probs) - 1) < 1e-4
        assert row["predicted"] == row["top1_class"]
        assert float(row["top1_prob"]) >= float(row["top2_prob"])
    # The tiny run learned the colours: predictions match the labels.
    by_name = {os.path.basename(r["input"]): r["predicted"] for r in good}
    assert [by_name[f"{i}.png"] for i in range(6)] == [str(v) for v in y]


def test_csv_and_text_file_inputs_via_cli(run, tmp_path, capsys):
    directory, images, _ = run
    listing = tmp_path / "list.csv"
    listing.write_text(f"filename\n{images}/0.png\nmissing.png\n")
    out = tmp_path / "c.csv"
    assert cli.main(["predict", directory, str(listing), "--output", str(out),
                     "--quiet"]) == 0
    rows = _read(out)
    assert [r["error"] for r in rows] == ["", "missing file"]
    lines = tmp_path / "list.txt"
    lines.write_text(f"{images}/2.png\n{images}/sub/1.png\n")
    out = tmp_path / "t.csv"
    assert cli.main(["predict", directory, str(lines), "--output", str(out),
                     "--quiet"]) == 0
    assert len(_read(out)) == 2
    assert "Wrote 2 rows" in capsys.readouterr().out


def test_export_cli_and_missing_run_folder(run, tmp_path, capsys):
    directory, images, _ = run
    target = tmp_path / "m.tflite"
    assert cli.main(["export", directory, "--format", "tflite",
                     "--output", str(target)]) == 0
    assert target.stat().st_size > 0
    assert cli.main(["export", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["predict", str(tmp_path / "nope"), str(images)]) == 2


def test_text_run_predicts_texts_and_exports_a_string_signature(tmp_path):
    from kerasft import recipes
    from tests.fixtures.tiny_hf import make_tiny_folder

    folder, _ = make_tiny_folder(str(tmp_path / "bert"))
    texts = [f"{w} {'good' if i % 2 else 'bad'} film" for i, w in
             enumerate(["a", "the", "one", "my"] * 6)]
    labels = ["pos" if i % 2 else "neg" for i in range(len(texts))]
    run_dir = str(tmp_path / "run")
    recipes.text_classification(
        train=(texts, labels), validation=(texts, labels), backbone=folder,
        epochs=1, batch_size=8, max_length=8, output_dir=run_dir,
        precision="float32", strategy="default", verbose=0)
    lines = tmp_path / "new.txt"
    lines.write_text("a good film\nthe bad film\n")
    result = predict_to_csv(run_dir, str(lines), str(tmp_path / "p.csv"),
                            top_k=1, verbose=0)
    assert [r["input"] for r in result.rows] == ["a good film", "the bad film"]
    for row in result.rows:
        assert row["predicted"] in ("neg", "pos")
        assert abs(row["prob_neg"] + row["prob_pos"] - 1) < 1e-5
    table = tmp_path / "new.csv"
    table.write_text("text\nmy good film\n")
    assert len(predict_to_csv(run_dir, str(table), str(tmp_path / "q.csv"),
                              verbose=0).rows) == 1
    # The SavedModel of a text run takes strings (serve_text) and token ids.
    import keras
    import tensorflow as tf

    from kerasft import backbones
    from kerasft.data import tokenize
    from kerasft.exporting import export

    path = export(run_dir, str(tmp_path / "text_saved_model"))
    served = tf.saved_model.load(path)
    model = keras.models.load_model(os.path.join(run_dir, "model.keras"))
    new = ["a good film", "the bad film", "my film"]
    tokens = tokenize(new, backbones.bert(folder, sequence_length=8).tokenizer,
                      sequence_length=8)
    expected = model.predict(tokens, verbose=0)
    np.testing.assert_allclose(served.serve_text(tf.constant(new)).numpy(),
                               expected, atol=1e-5)
    np.testing.assert_allclose(served.serve(tokens).numpy(), expected, atol=1e-5)


def test_every_recipe_has_a_predictor_with_the_one_signature():
    import inspect

    from kerasft.recipes import registry

    for name in registry.names():
        predictor = registry.predictor(name)
        parameters = inspect.signature(predictor).parameters
        assert list(parameters) == ["run", "inputs", "output", "batch_size",
                                    "top_k", "verbose"], name
        assert {k: parameters[k].default for k in ("batch_size", "top_k", "verbose")} \
            == {"batch_size": 32, "top_k": None, "verbose": 1}, name
        assert all(parameters[k].kind is inspect.Parameter.KEYWORD_ONLY
                   for k in ("batch_size", "top_k", "verbose")), name


def test_predict_dispatches_on_the_runs_recipe(tmp_path, monkeypatch):
    import types

    from kerasft import loading
    from kerasft.predictors import segmentation

    calls = []
    run = types.SimpleNamespace(recipe="segmentation")
    monkeypatch.setattr(loading, "load", lambda directory: run)
    monkeypatch.setattr(segmentation, "predict",
                        lambda *args, **kwargs: calls.append((args, kwargs)))
    predict_to_csv("some/run", str(tmp_path), str(tmp_path / "m.csv"),
                   batch_size=4, verbose=0)
    assert calls == [((run, str(tmp_path), str(tmp_path / "m.csv")),
                      {"batch_size": 4, "top_k": None, "verbose": 0})]
    with pytest.raises(ValueError, match="Input .* does not exist"):
        predict_to_csv("some/run", str(tmp_path / "nope"))
