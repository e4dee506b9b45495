"""`kerasft.data.squad`: SQuAD reader, answer token positions, span decoding."""

import json

import numpy as np
import pytest

from kerasft.backbones.bert import bert
from kerasft.data import squad
from tests.fixtures.tiny_hf import make_tiny_folder
from tests.fixtures.tiny_hf import vocabulary

CONTEXT = "The tower, in Paris (1889), was built; a good-ly film."


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    folder, _ = make_tiny_folder(str(tmp_path_factory.mktemp("tiny") / "bert"))
    return bert(folder, sequence_length=24)


def _squad_file(path):
    data = {
        "version": "v2.0",
        "data": [
            {
                "title": "t",
                "paragraphs": [
                    {
                        "context": CONTEXT,
                        "qas": [
                            {
                                "id": "q1",
                                "question": "Where is the tower?",
                                "answers": [
                                    {"text": "Paris", "answer_start": 14},
                                    {"text": "in Paris", "answer_start": 11},
                                ],
                            },
                            {
                                "id": "q2",
                                "question": "When was it built?",
                                "answers": [{"text": "1889", "answer_start": 21}],
                            },
                            {
                                "id": "q3",
                                "question": "Who?",
                                "answers": [],
                                "is_impossible": True,
                            },
                        ],
                    }
                ],
            }
        ],
    }
    path.write_text(json.dumps(data))
    return str(path)


def test_read_squad(tmp_path):
    examples = squad.read_squad(_squad_file(tmp_path / "s.json"))
    assert [e.id for e in examples] == ["q1", "q2", "q3"]
    assert examples[0].answer_text == "Paris" and examples[0].answer_start == 14
    assert examples[0].answers == ("Paris", "in Paris")
    assert examples[2].answer_start == -1 and examples[2].answer_text == ""
    bad = tmp_path / "bad.json"
    data = json.loads((tmp_path / "s.json").read_text())
    data["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = 3
    bad.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="not at answer_start=3"):
        squad.read_squad(str(bad))


def test_token_offsets_map_back_to_the_characters(backbone):
    word_tokenizer = backbone.tokenizer.tokenizer
    text = "Tower,  in PARÍS (1889)! filmed zebra."
    ids, offsets = squad.token_offsets(word_tokenizer, text)
    np.testing.assert_array_equal(ids, np.asarray(word_tokenizer(text)))
    pieces = [text[s:e] for s, e in offsets]
    assert pieces == [
        "Tower", ",", "in", "PARÍS", "(", "1", "8", "8", "9", ")", "!", "film",
        "ed", "zebra", ".",
    ]
    assert word_tokenizer.id_to_token(ids[-2]) == "[UNK]"


def test_features_locate_answers_and_decode_back(tmp_path, backbone):
    examples = squad.read_squad(_squad_file(tmp_path / "s.json"))
    features = squad.squad_features(examples, backbone)
    vocab = vocabulary()
    ids = features.inputs["token_ids"]
    start, end = features.labels["start_logits"], features.labels["end_logits"]
    assert [vocab[i] for i in ids[0, start[0] : end[0] + 1]] == ["paris"]
    assert [vocab[i] for i in ids[1, start[1] : end[1] + 1]] == ["1", "##8", "##8", "##9"]
    assert (start[2], end[2]) == (0, 0)  # unanswerable -> [CLS]
    # [CLS] question [SEP] context [SEP]: segment 1 and context mask agree.
    row = features.inputs["segment_ids"][0]
    context = features.context_mask[0]
    assert context.sum() == row.sum() - 1  # all but the final [SEP]
    spans = np.stack([start, end], axis=1)
    assert squad.span_texts(features, spans[:2]) == ["Paris", "1889"]
    assert features.truncated == 0


def test_needs_a_wordpiece_tokenizer(tmp_path):
    folder, _ = make_tiny_folder(str(tmp_path / "r"), model_type="roberta")
    example = squad.SquadExample("x", "q", "good film", "film", 5)
    with pytest.raises(TypeError, match="WordPiece"):
        squad.squad_features([example], bert(folder, sequence_length=16))


def test_answer_past_the_window_is_counted(backbone):
    long_context = "the tower " * 30 + "paris"
    example = squad.SquadExample(
        "x", "where", long_context, "paris", long_context.index("paris")
    )
    features = squad.squad_features([example], backbone)
    assert features.truncated == 1
    assert features.labels["start_logits"][0] == 0


def test_decode_spans_hand_made():
    start = np.array([[0.0, 5.0, 1.0, 0.0, 9.0], [3.0, 0.0, 0.0, 2.0, 0.0]])
    end = np.array([[0.0, 1.0, 0.0, 4.0, 0.0], [0.0, 8.0, 0.0, 0.0, 1.0]])
    # Row 0: start 4 has no end >= 4 better than start 1 + end 3 (5 + 4 = 9
    # vs 9 + 0 = 9, tie broken by the first in row-major order: (1, 3)).
    # Row 1: (0, 1) = 3 + 8.
    spans, scores = squad.decode_spans(start, end)
    np.testing.assert_array_equal(spans, [[1, 3], [0, 1]])
    np.testing.assert_allclose(scores, [9.0, 11.0])
    # A max length of 2 tokens forbids (1, 3): row 0 becomes (4, 4) = 9.
    spans, _ = squad.decode_spans(start, end, max_answer_length=2)
    np.testing.assert_array_equal(spans, [[4, 4], [0, 1]])
    # The context mask keeps the span inside the context.
    mask = np.array([[0, 0, 1, 1, 0], [0, 0, 0, 1, 1]])
    spans, scores = squad.decode_spans(start, end, context_mask=mask)
    np.testing.assert_array_equal(spans, [[2, 3], [3, 4]])
    np.testing.assert_allclose(scores, [5.0, 3.0])
    span, score = squad.decode_spans(start[0], end[0])
    assert tuple(span) == (1, 3) and score == 9.0
    with pytest.raises(ValueError, match="max_answer_length"):
        squad.decode_spans(start, end, max_answer_length=0)
    with pytest.raises(ValueError, match="same shape"):
        squad.decode_spans(start, end[:, :3])
