"""`kerasft.data.text`: CSV/TSV reading, label mapping, tokenized tf.data."""

import numpy as np
import pytest

from kerasft.backbones.bert import bert
from kerasft.data import text as text_data
from tests.fixtures.tiny_hf import make_tiny_folder
from tests.fixtures.tiny_hf import vocabulary


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    folder, _ = make_tiny_folder(str(tmp_path_factory.mktemp("tiny") / "bert"))
    return bert(folder, sequence_length=10)


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_read_csv_maps_string_labels_and_saves_mapping(tmp_path):
    path = _write(
        tmp_path / "train.csv",
        '\ufefftext,label\n"a good film, really",pos\nbad movie,neg\nfine,pos\n',
    )
    table = text_data.read_text_csv(path)
    assert table.texts == ["a good film, really", "bad movie", "fine"]
    assert table.pairs is None
    assert table.label_mapping == {"neg": 0, "pos": 1}
    np.testing.assert_array_equal(table.labels, [1, 0, 1])
    table.save_label_mapping(tmp_path / "mapping.json")
    assert text_data.load_label_mapping(tmp_path / "mapping.json") == {
        "neg": 0,
        "pos": 1,
    }
    val = _write(tmp_path / "val.csv", "text,label\nx,neg\ny,maybe\n")
    with pytest.raises(ValueError, match=r"\['maybe'\] are not in `label_mapping`"):
        text_data.read_text_csv(val, label_mapping=table.label_mapping)


def test_read_tsv_with_pairs_and_integer_labels(tmp_path):
    path = _write(
        tmp_path / "pairs.tsv",
        "text\ttext_pair\tlabel\nwho is it\tit is paris\t1\nwhat\tthe tower\t0\n",
    )
    table = text_data.read_text_csv(path)
    assert table.pairs == ["it is paris", "the tower"]
    assert table.label_mapping is None
    assert table.labels.dtype == np.int32
    np.testing.assert_array_equal(table.labels, [1, 0])
    no_pairs = text_data.read_text_csv(path, pair_column=None)
    assert no_pairs.pairs is None


def test_missing_column_names_the_column_and_the_columns_found(tmp_path):
    path = _write(tmp_path / "t.csv", "sentence,target\nhello,1\n")
    with pytest.raises(ValueError, match=r"no column 'text'.*\['sentence', 'target'\]"):
        text_data.read_text_csv(path)
    with pytest.raises(ValueError, match="no column 'label'"):
        text_data.read_text_csv(path, text_column="sentence")
    with pytest.raises(ValueError, match="no column 'second'"):
        text_data.read_text_csv(
            path, text_column="sentence", label_column="target", pair_column="second"
        )
    table = text_data.read_text_csv(path, text_column="sentence", label_column="target")
    assert table.texts == ["hello"]


def test_encode_labels():
    ids, mapping = text_data.encode_labels(["b", "a", "b"])
    np.testing.assert_array_equal(ids, [1, 0, 1])
    assert mapping == {"a": 0, "b": 1}
    floats, mapping = text_data.encode_labels(["0.5", "1.25"])
    assert floats.dtype == np.float32 and mapping is None
    # Numbers are ids already, even with a mapping (a TextTable's labels).
    ids, mapping = text_data.encode_labels(np.array([1, 0]), {"no": 0, "yes": 1})
    np.testing.assert_array_equal(ids, [1, 0])
    with pytest.raises(ValueError, match="empty"):
        text_data.encode_labels(["a", ""])


def test_dataset_round_trip_to_the_tokens(backbone):
    vocab = vocabulary()
    texts = ["a good film", "the movie was bad", "fine"]
    ds = text_data.text_dataset(
        texts, ["pos", "neg", "pos"], tokenizer=backbone, batch_size=2
    )
    batches = list(ds)
    assert [int(b[0]["token_ids"].shape[0]) for b in batches] == [2, 1]
    x, y = batches[0]
    assert sorted(x) == ["padding_mask", "segment_ids", "token_ids"]
    assert all(v.dtype == "int32" and v.shape[1] == 10 for v in x.values())
    np.testing.assert_array_equal(y, [1, 0])
    decoded = []
    for batch_x, _ in batches:
        for ids, mask in zip(batch_x["token_ids"].numpy(), batch_x["padding_mask"].numpy()):
            tokens = [vocab[i] for i in ids[mask == 1]]
            assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
            decoded.append(" ".join(tokens[1:-1]))
    assert decoded == texts


def test_dataset_from_a_table_with_string_labels(tmp_path, backbone):
    path = _write(tmp_path / "t.csv", "text,text_pair,label\nwho,paris,yes\nwhat,film,no\n")
    table = text_data.read_text_csv(path)
    x, y = next(iter(text_data.text_dataset(table, tokenizer=backbone, batch_size=2)))
    np.testing.assert_array_equal(y, [1, 0])
    assert x["segment_ids"].numpy()[0, 3] == 1  # [CLS] who [SEP] paris


def test_pairs_get_segment_ids_and_shuffle_is_seeded(backbone):
    ds = text_data.text_dataset(
        ["who", "what"], [0, 1], text_pairs=["paris", "the tower"], tokenizer=backbone,
        batch_size=2, sequence_length=8,
    )
    x, _ = next(iter(ds))
    vocab = vocabulary()
    assert [vocab[i] for i in x["token_ids"][1].numpy()[:6]] == [
        "[CLS]", "what", "[SEP]", "the", "tower", "[SEP]"
    ]
    np.testing.assert_array_equal(x["segment_ids"][1].numpy(), [0, 0, 0, 1, 1, 1, 0, 0])
    assert x["token_ids"].shape[1] == 8
    assert backbone.tokenizer.sequence_length == 10  # not mutated
    texts = [f"{w}" for w in vocab[16:36]]
    order = lambda seed: [  # noqa: E731
        int(b["token_ids"][0, 1])
        for b in text_data.text_dataset(
            texts, tokenizer=backbone, batch_size=1, shuffle=True, seed=seed
        )
    ]
    assert order(3) == order(3) != order(4)


def test_hugging_face_style_inputs_are_renamed(backbone):
    hf = {
        "input_ids": np.array([[2, 30, 3, 0]]),
        "attention_mask": np.array([[1, 1, 1, 0]]),
    }
    x = text_data.from_hf_inputs(hf)
    np.testing.assert_array_equal(x["token_ids"], [[2, 30, 3, 0]])
    np.testing.assert_array_equal(x["segment_ids"], [[0, 0, 0, 0]])
    np.testing.assert_array_equal(x["padding_mask"], [[1, 1, 1, 0]])
    out = backbone.model(x)
    assert tuple(out["pooled_output"].shape) == (1, 16)
    with pytest.raises(ValueError, match="input_ids"):
        text_data.from_hf_inputs({"ids": np.zeros((1, 3))})
    with pytest.raises(ValueError, match="Unknown input names"):
        text_data.from_hf_inputs({"input_ids": np.zeros((1, 3)), "labels": 1})


def test_bad_arguments(backbone):
    with pytest.raises(ValueError, match="tokenizer"):
        text_data.text_dataset(["a"], [0])
    with pytest.raises(TypeError, match="not one string"):
        text_data.text_dataset("a good film", tokenizer=backbone)
    with pytest.raises(ValueError, match="one entry per text"):
        text_data.text_dataset(["a", "b"], [0], tokenizer=backbone)
    with pytest.raises(ValueError, match="batch_size"):
        text_data.text_dataset(["a"], tokenizer=backbone, batch_size=0)
    with pytest.raises(TypeError, match="TextClassifierPreprocessor"):
        text_data.text_dataset(["a"], tokenizer=str.split)
