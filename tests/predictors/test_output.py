"""The shared writing pieces: error column, atomic files, files folder."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from kerasft.predictors import _inputs, _output


def test_error_column_always_last_and_filled(tmp_path):
    path = tmp_path / "p.csv"
    _output.write_csv(path, [{"input": "a", "error": "bad"},
                             {"input": "b", "predicted": "x"}])
    assert path.read_text().splitlines() == [
        "input,predicted,error", "a,,bad", "b,x,"]
    _output.write_csv(path, [{"input": "c"}])
    assert path.read_text().splitlines() == ["input,error", "c,"]
    assert os.listdir(tmp_path) == ["p.csv"]  # no temporary file left


def test_a_failed_write_leaves_the_old_file_whole(tmp_path):
    path = tmp_path / "p.csv"
    _output.write_csv(path, [{"input": "old"}])
    with pytest.raises(ValueError):  # a key outside the given columns
        _output.write_csv(path, [{"input": "new", "other": 1}], ["input"])
    assert path.read_text().splitlines() == ["input,error", "old,"]
    assert os.listdir(tmp_path) == ["p.csv"]


def test_json_lines_palette_png_and_files_folder(tmp_path):
    rows = [{"input": "ä", "entities": [{"type": "LOC"}]}]
    _output.write_table(tmp_path / "e.jsonl", rows)
    assert [json.loads(l) for l in (tmp_path / "e.jsonl").read_text(
        encoding="utf-8").splitlines()] == rows
    folder = _output.files_folder(str(tmp_path / "masks.csv"))
    assert folder == str(tmp_path / "masks") and os.path.isdir(folder)
    mask = np.array([[0, 1], [2, 1]], np.uint8)
    path = _output.save_png(os.path.join(folder, "m.png"), mask,
                            palette=[0, 0, 0, 255, 0, 0, 0, 255, 0])
    image = Image.open(path)
    assert image.mode == "P"
    np.testing.assert_array_equal(np.asarray(image), mask)
    assert image.getpalette()[3:6] == [255, 0, 0]


def test_inputs_listing_and_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        _inputs.image_paths(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No image files"):
        _inputs.image_paths(str(tmp_path / "empty"))
    table = tmp_path / "t.csv"
    table.write_text("path,x\nsub/a.png,1\n/abs/b.png,2\n")
    assert _inputs.image_paths(str(table)) == [str(tmp_path / "sub" / "a.png"),
                                               "/abs/b.png"]
    with pytest.raises(ValueError, match="has no column 'text'"):
        _inputs.texts(str(table))
    with pytest.raises(ValueError, match="`top_k` must be a positive int"):
        _output.check_options(True, 32)
    with pytest.raises(ValueError, match="`batch_size` must be a positive int"):
        _output.check_options(None, 0)


def test_progress_bar_is_one_line_when_stdout_is_not_a_terminal(capsys):
    """Keras redraws its bar with backspaces and carriage returns even into a
    file; piped or logged, `kerasft predict` prints one line at the end."""
    from kerasft.predictors import _output

    bar = _output.progress(3, verbose=1)  # capsys: not a terminal
    for done in (1, 2, 3):
        bar.update(done)
    out = capsys.readouterr().out
    assert "\b" not in out and "\r" not in out and "\x1b" not in out
    assert out.count("\n") == 1 and "3/3" in out
