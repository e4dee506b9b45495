"""`kerasft.data.conll`: CoNLL / JSON-lines readers, WordPiece label alignment."""

import json

import numpy as np
import pytest

from kerasft.backbones.bert import bert
from kerasft.data import conll
from tests.fixtures.tiny_hf import make_tiny_folder
from tests.fixtures.tiny_hf import vocabulary

CONLL = """-DOCSTART- -X- -X- O

The DT B-NP O
tower NN I-NP B-LOC
was VBD B-VP O
built VBN I-VP O
in IN B-PP O
1889 CD B-NP B-DATE
. . O O

Paris NNP B-NP B-LOC
"""


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    folder, _ = make_tiny_folder(str(tmp_path_factory.mktemp("tiny") / "bert"))
    return bert(folder, sequence_length=10)


def test_read_conll_skips_docstart_and_splits_sentences(tmp_path):
    path = tmp_path / "eng.train"
    path.write_text(CONLL)
    data = conll.read_token_tags(str(path))
    assert data.sentences == [
        ["The", "tower", "was", "built", "in", "1889", "."], ["Paris"]
    ]
    assert data.tags == [["O", "B-LOC", "O", "O", "O", "B-DATE", "O"], ["B-LOC"]]
    chunks = conll.read_conll(str(path), tag_column=2)
    assert chunks.tags[0][:2] == ["B-NP", "I-NP"]
    assert conll.label_list(data.tags) == ["O", "B-DATE", "B-LOC"]


def test_read_jsonl_and_lists(tmp_path):
    path = tmp_path / "train.jsonl"
    rows = [{"tokens": ["Paris", "tower"], "tags": ["B-LOC", "O"]},
            {"tokens": ["in", "1889"], "ner_tags": ["O", "B-DATE"]}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    data = conll.read_token_tags(str(path))
    assert data.sentences == [["Paris", "tower"], ["in", "1889"]]
    assert data.tags == [["B-LOC", "O"], ["O", "B-DATE"]]
    same = conll.read_token_tags((data.sentences, data.tags))
    assert same == data
    array = tmp_path / "train.json"  # one JSON array works too
    array.write_text(json.dumps(rows))
    assert conll.read_token_tags(str(array)) == data
    partly = tmp_path / "partly.jsonl"
    partly.write_text(json.dumps(rows[0]) + "\n" + json.dumps({"tokens": ["a"]}) + "\n")
    with pytest.raises(ValueError, match="sentence 1 has no 'tags'"):
        conll.read_token_tags(str(partly))
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(rows[0]) + "\n{oops\n")
    with pytest.raises(ValueError, match=r"broken.jsonl:2: not JSON"):
        conll.read_token_tags(str(broken))


@pytest.mark.parametrize(
    "sentences, tags, message",
    [
        ([["a", "b"]], [["O"]], "2 words but 1 tags"),
        ([[]], [[]], "sentence 0 is empty"),
        (["a b"], [["O", "O"]], "is a string"),
        ([["a"]], [["O"], ["O"]], "1 sentences but 2 tag lists"),
        ([["a", ""]], [["O", "O"]], "empty or non-string word"),
    ],
)
def test_bad_inputs_are_reported(sentences, tags, message):
    with pytest.raises((ValueError, TypeError), match=message):
        conll.read_token_tags((sentences, tags))


def test_bad_files_are_reported(tmp_path):
    one_column = tmp_path / "bad.conll"
    one_column.write_text("Paris B-LOC\ntower\n")
    with pytest.raises(ValueError, match=r"bad.conll:2: .*one column"):
        conll.read_token_tags(str(one_column))
    with pytest.raises(ValueError, match="does not exist"):
        conll.read_token_tags(str(tmp_path / "missing.conll"))
    with pytest.raises(ValueError, match=r"tags \['B-PER'\] are not in the label set"):
        conll.encode_tags([["O", "B-PER"]], ["O", "B-LOC"], "Validation data")


def test_first_piece_carries_the_label(backbone):
    vocab = vocabulary()
    labels = ["O", "B-LOC", "I-LOC", "B-DATE", "I-DATE"]
    sentences = [["The", "Paris", "tower", "1889"], ["good"] * 12]
    tags = conll.encode_tags(
        [["O", "B-LOC", "I-LOC", "B-DATE"], ["O"] * 12], labels
    )
    features = conll.token_features(sentences, backbone, tags=tags)
    ids = features.inputs["token_ids"]
    assert [vocab[i] for i in ids[0]] == [
        "[CLS]", "the", "paris", "tower", "1", "##8", "##8", "##9", "[SEP]", "[PAD]"
    ]
    assert features.labels[0].tolist() == [-100, 0, 1, 2, 3, -100, -100, -100, -100, -100]
    assert features.word_ids[0].tolist() == [-1, 0, 1, 2, 3, 3, 3, 3, -1, -1]
    # 12 one-piece words in 8 slots: 4 cut, counted.
    assert features.labels[1].tolist() == [-100] + [0] * 8 + [-100]
    assert features.truncated_words == 4
    assert features.inputs["padding_mask"][0].tolist() == [1] * 9 + [0]
    every = conll.token_features(
        sentences, backbone, tags=tags, label_all_tokens=True, labels=labels
    )
    # B-DATE on the first piece, I-DATE on the others.
    assert every.labels[0].tolist() == [-100, 0, 1, 2, 3, 4, 4, 4, -100, -100]
    with pytest.raises(ValueError, match="needs `labels`"):
        conll.token_features(sentences, backbone, tags=tags, label_all_tokens=True)


def test_word_tags_read_the_first_piece_and_fill_cut_words(backbone, tmp_path):
    labels = ["O", "B-LOC", "B-DATE"]
    sentences = [["Paris", "1889"], ["good"] * 10]
    features = conll.token_features(sentences, backbone)
    assert features.labels is None
    logits = np.zeros(features.inputs["token_ids"].shape + (3,))
    logits[0, 1, 1] = 1.0  # Paris -> B-LOC
    logits[0, 2, 2] = 1.0  # "1" -> B-DATE
    logits[0, 3:6, 1] = 1.0  # later pieces of 1889 are not read
    logits[1, :, 1] = 1.0  # every token B-LOC; the two cut words get O
    tags = conll.word_tags(features, logits, sentences, labels)
    assert tags[0] == ["B-LOC", "B-DATE"]
    assert tags[1] == ["B-LOC"] * 8 + ["O", "O"]
    path = tmp_path / "predictions.conll"
    conll.write_conll(str(path), sentences[:1], [["B-LOC", "O"]], tags[:1])
    assert path.read_text() == "Paris B-LOC B-LOC\n1889 O B-DATE\n\n"
