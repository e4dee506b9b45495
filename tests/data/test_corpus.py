"""Corpus reading and packing: every token used, stride overlap exact, no cut."""

import numpy as np
import pytest

from kerasft.data import corpus


def _stream(documents, sep):
    out = []
    for ids in documents:
        out += [sep, *ids]
    return out + [sep]


@pytest.mark.parametrize("length,stride", [(8, 8), (8, 3), (5, 1), (16, 16)])
def test_pack_uses_every_token_and_overlaps_by_exactly_the_stride(length, stride):
    rng = np.random.default_rng(0)
    documents = [list(rng.integers(1, 50, size=n)) for n in (3, 17, 1, 0, 29)]
    stream = _stream(documents, 0)
    packed = corpus.pack(documents, length, separator_id=0, stride=stride, pad_id=-1)
    assert packed.num_tokens == len(stream)
    assert packed.num_documents == 5
    assert packed.token_ids.shape == packed.labels.shape == (packed.num_windows, length)
    scored = []
    for k in range(packed.num_windows):
        start = k * stride
        real = packed.padding_mask[k]
        # Inputs are the stream from the window's start; labels shifted by one.
        np.testing.assert_array_equal(packed.token_ids[k][real], stream[start:start + length])
        n_labels = int(packed.label_mask[k].sum())
        np.testing.assert_array_equal(
            packed.labels[k][:n_labels], stream[start + 1:start + 1 + n_labels]
        )
        assert (packed.token_ids[k][~real] == -1).all()
        scored += list(range(start + 1, start + 1 + n_labels))
        if k:  # consecutive windows share exactly length - stride inputs
            np.testing.assert_array_equal(
                packed.token_ids[k][: length - stride],
                packed.token_ids[k - 1][stride:],
            )
    # Every stream token after the first is a label; the last window is needed.
    assert set(scored) == set(range(1, len(stream)))
    if packed.num_windows > 1:  # without the last window a label is lost
        assert (packed.num_windows - 2) * stride + length < len(stream) - 1


@pytest.mark.parametrize("stride", [1, 3, 8])
def test_score_each_token_once_counts_every_label_exactly_once(stride):
    documents = [list(range(1, 40)), list(range(40, 45))]
    packed = corpus.pack(documents, 8, separator_id=0, stride=stride,
                         score_each_token_once=True)
    scored = []
    for k in range(packed.num_windows):
        positions = k * stride + 1 + np.flatnonzero(packed.label_mask[k])
        scored += positions.tolist()
    assert sorted(scored) == list(range(1, packed.num_tokens))
    assert packed.num_labels == packed.num_tokens - 1


def test_short_corpus_is_one_padded_window():
    packed = corpus.pack([[7, 8]], 10, separator_id=3, pad_id=0)
    assert packed.num_windows == 1
    assert packed.token_ids[0, :4].tolist() == [3, 7, 8, 3]
    assert packed.padding_mask[0].tolist() == [True] * 4 + [False] * 6
    assert packed.label_mask[0].tolist() == [1.0] * 3 + [0.0] * 7


def test_pack_rejects_a_stride_outside_the_window():
    with pytest.raises(ValueError, match="stride"):
        corpus.pack([[1]], 4, separator_id=0, stride=5)
    with pytest.raises(ValueError, match="sequence_length"):
        corpus.pack([[1]], 0, separator_id=0)


def test_split_documents_holds_out_the_tail_without_sharing_tokens():
    documents = [list(range(0, 10)), list(range(10, 100))]
    train, validation = corpus.split_documents(documents, 0.25)
    flat_train = [t for d in train for t in d]
    flat_val = [t for d in validation for t in d]
    assert flat_train + flat_val == list(range(100))
    assert len(flat_val) == 25


def test_read_corpus_file_folder_and_csv(tmp_path):
    (tmp_path / "a.txt").write_text("alpha text", encoding="utf-8")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "b.txt").write_text("beta text", encoding="utf-8")
    (tmp_path / "skip.md").write_text("not a txt", encoding="utf-8")
    assert corpus.read_corpus(str(tmp_path)) == ["alpha text", "beta text"]
    assert corpus.read_corpus(str(tmp_path / "a.txt")) == ["alpha text"]
    table = tmp_path / "docs.csv"
    table.write_text("id,body\n1,one doc\n2,\"two, docs\"\n", encoding="utf-8")
    assert corpus.read_corpus(str(table), text_column="body") == ["one doc", "two, docs"]


def test_read_corpus_errors_name_the_problem(tmp_path):
    table = tmp_path / "docs.csv"
    table.write_text("id,body\n1,x\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"no column 'text'.*\['id', 'body'\]"):
        corpus.read_corpus(str(table))
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="holds no text"):
        corpus.read_corpus(str(empty))
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok \xff\xfe broken")
    with pytest.raises(ValueError, match="bad.txt.*UTF-8"):
        corpus.read_corpus(str(bad))
    with pytest.raises(ValueError, match="does not exist"):
        corpus.read_corpus(str(tmp_path / "missing.txt"))
    folder = tmp_path / "nothing"
    folder.mkdir()
    with pytest.raises(ValueError, match="no .txt files"):
        corpus.read_corpus(str(folder))
