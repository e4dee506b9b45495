"""JSON and CSV parse errors name the file and what it should hold: COCO
boxes, SQuAD, search spaces and config files."""

import os
import re
import subprocess
import sys

import pytest

from kerasft._json_file import load_json
from kerasft.data.boxes import read_box_csv, read_coco
from kerasft.data.squad import read_squad
from kerasft.recipes.config import load_config_file
from kerasft.tuning import read_search_space

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def empty(tmp_path):
    path = tmp_path / "empty.json"
    path.write_text("")
    return str(path)


def test_load_json_names_the_file_where_and_what_was_expected(tmp_path, empty):
    with pytest.raises(ValueError) as info:
        load_json(empty, "an object of things")
    assert str(info.value) == (
        f"{empty!r} is not valid JSON (Expecting value at line 1, column 1). "
        "Expected an object of things."
    )
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"a": "\xe9"}')
    with pytest.raises(ValueError, match=r"latin.json' is not UTF-8 text"):
        load_json(str(latin), "x")
    with pytest.raises(ValueError, match=r"Cannot read '.*missing.json' \(No such"):
        load_json(str(tmp_path / "missing.json"), "x")


@pytest.mark.parametrize("read, what", [
    (read_coco, "Expected a COCO detection file"),
    (read_squad, "Expected SQuAD JSON"),
    (read_search_space, "Expected a search space"),
    (load_config_file, "Expected an object of option names to values"),
])
def test_each_reader_names_file_and_expected_content(empty, read, what):
    with pytest.raises(ValueError) as info:
        read(empty)
    message = str(info.value)
    assert "empty.json" in message and "line 1, column 1" in message
    assert what in message


def test_wrong_json_shapes_say_what_was_expected(tmp_path):
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"holds a JSON list\. Expected a COCO"):
        read_coco(str(listed))
    with pytest.raises(ValueError, match=r"not SQuAD format\. Expected SQuAD"):
        read_squad(str(listed))
    with pytest.raises(ValueError, match=r"holds \[1, 2\]\. Expected a search"):
        read_search_space(str(listed))


def test_yaml_config_error_names_file_and_line(tmp_path):
    pytest.importorskip("yaml")
    path = tmp_path / "config.yaml"
    path.write_text("epochs: 3\nbatch_size: [1, 2\n")
    with pytest.raises(ValueError) as info:
        load_config_file(str(path))
    message = str(info.value)
    assert "config.yaml' is not valid YAML" in message and "line 3" in message
    assert "Expected a mapping of option names to values" in message


def test_box_csv_that_is_not_text_names_the_file_and_header(tmp_path):
    path = tmp_path / "boxes.csv"
    path.write_bytes(b"filename,xmin,ymin,xmax,ymax,label\n\xff\xfe,1,1,2,2,cat\n")
    with pytest.raises(ValueError, match=r"Cannot read '.*boxes.csv' as CSV text"):
        read_box_csv(str(path))


def test_cli_bad_coco_file_is_one_line_naming_it(tmp_path):
    path = tmp_path / "boxes.json"
    path.write_text("{not json")
    env = {**os.environ, "PYTHONPATH": ROOT}
    result = subprocess.run(
        [sys.executable, "-m", "kerasft.cli", "object-detection", "--kind",
         "retinanet", "--train", str(path), "--image-size", "64", "--epochs",
         "4", "--output", str(tmp_path / "run")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    lines = [l for l in result.stderr.splitlines()
             if l.strip() and not re.match(r"[IWEF]\d{4} ", l)]
    assert len(lines) == 1, result.stderr
    assert "boxes.json' is not valid JSON" in lines[0]
    assert "Expected a COCO detection file" in lines[0]
