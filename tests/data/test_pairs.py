"""`kerasft.data.pairs`: reading and checking (source, target) pairs."""

import numpy as np
import pytest
import tensorflow as tf

from kerasft.data import TextPairs, read_pairs
from kerasft.data.pairs import count_longer, token_lengths


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_reads_csv_tsv_and_custom_columns(tmp_path):
    csv_path = _write(tmp_path / "p.csv", 'source,target\n"one, two",12\nthree,3\n')
    pairs = read_pairs(csv_path)
    assert pairs.sources == ["one, two", "three"] and pairs.targets == ["12", "3"]
    tsv_path = _write(tmp_path / "p.tsv", "en\tde\nhello\thallo\n")
    pairs = read_pairs(tsv_path, source_column="en", target_column="de")
    assert pairs == TextPairs(["hello"], ["hallo"])


def test_missing_column_is_named_with_the_columns_found(tmp_path):
    path = _write(tmp_path / "p.csv", "text,summary\na,b\n")
    with pytest.raises(ValueError) as error:
        read_pairs(path)
    message = str(error.value)
    assert "no column 'source'" in message and "source_column" in message
    assert "['text', 'summary']" in message
    with pytest.raises(ValueError, match="no column 'target'.*target_column"):
        read_pairs(path, source_column="text")


def test_empty_target_names_its_row_and_line(tmp_path):
    path = _write(tmp_path / "p.csv", "source,target\na,1\nb,2\nc,\n")
    with pytest.raises(ValueError, match=r"Row 3 \(line 4 of the file\).*empty target"):
        read_pairs(path)
    with pytest.raises(ValueError, match="Row 2 .*empty source"):
        read_pairs([("a", "1"), ("  ", "2")])


def test_empty_file_header_only_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="is empty"):
        read_pairs(_write(tmp_path / "empty.csv", ""))
    with pytest.raises(ValueError, match="header but no rows"):
        read_pairs(_write(tmp_path / "header.csv", "source,target\n"))
    with pytest.raises(ValueError, match="does not exist"):
        read_pairs(str(tmp_path / "nope.csv"))
    with pytest.raises(ValueError, match="holds no pairs"):
        read_pairs([])


def test_python_pairs_and_datasets():
    assert read_pairs([("a", "1"), ["b", "2"]]).targets == ["1", "2"]
    with pytest.raises(ValueError, match=r"\(source, target\) tuples.*index 1"):
        read_pairs([("a", "1"), ("b",)])
    with pytest.raises(TypeError, match="must be a string"):
        read_pairs([("a", 1)])
    tuples = tf.data.Dataset.from_tensor_slices((["a", "b"], ["1", "2"]))
    assert read_pairs(tuples) == TextPairs(["a", "b"], ["1", "2"])
    dicts = tf.data.Dataset.from_tensor_slices({"en": ["a"], "de": ["x"]})
    assert read_pairs(dicts, source_column="en", target_column="de").targets == ["x"]
    with pytest.raises(ValueError, match="no key 'source'"):
        read_pairs(dicts)
    with pytest.raises(TypeError, match="CSV/TSV path"):
        read_pairs(42)


def test_take_keeps_alignment():
    pairs = TextPairs(["a", "b", "c"], ["1", "2", "3"])
    assert pairs.take([2, 0]) == TextPairs(["c", "a"], ["3", "1"])


def test_token_lengths_and_count_longer():
    class Tokenizer:
        def __call__(self, texts):
            return tf.ragged.constant([[1] * len(t.split()) for t in texts])

    lengths = token_lengths(Tokenizer(), ["a b c", "a", "a b c d e"])
    np.testing.assert_array_equal(lengths, [3, 1, 5])
    assert count_longer(lengths, 3) == (1, 5)
    assert count_longer(lengths, 5) == (0, 5)
    assert count_longer([], 3) == (0, 0)
