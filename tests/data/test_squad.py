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


# === Long contexts: windows with doc_stride, decoding over windows ===

LONG = "the tower " * 30 + "paris"


def _long_example(qid="x", context=LONG, answer="paris"):
    start = context.index(answer) if answer else -1
    return squad.SquadExample(qid, "where", context, answer, start, (answer,) if answer else ())


def _oracle_logits(features, answer_id, noise=0.0, seed=0):
    """Start/end logits of a model that found `answer_id` tokens: 5 there."""
    rng = np.random.default_rng(seed)
    ids = features.inputs["token_ids"]
    logits = np.where(ids == answer_id, 5.0, 0.0) + noise * rng.standard_normal(ids.shape)
    return logits, logits.copy()


def test_windows_overlap_by_doc_stride_and_keep_offsets(backbone):
    example = _long_example()
    features = squad.squad_features([example], backbone, doc_stride=8)
    # 61 context tokens, 24 - 3 - 1 ("where") = 20 per window, step 12.
    np.testing.assert_array_equal(features.example_index, [0, 0, 0, 0, 0])
    mask = features.context_mask.astype(bool)
    assert mask.sum(axis=1).tolist() == [20, 20, 20, 20, 13]
    spans = [features.offsets[w][mask[w]] for w in range(5)]
    for w in range(4):  # consecutive windows share 8 context tokens
        np.testing.assert_array_equal(spans[w][-8:], spans[w + 1][:8])
    # Offsets still point at the context's characters.
    assert [LONG[s:e] for s, e in spans[4][-3:]] == ["the", "tower", "paris"]
    # Only the last window holds the answer; the others point at [CLS].
    start, end = features.labels["start_logits"], features.labels["end_logits"]
    assert start.tolist() == [0, 0, 0, 0, 15] and end.tolist() == [0, 0, 0, 0, 15]
    assert features.truncated == 0
    assert squad.squad_features([example], backbone).truncated == 1
    with pytest.raises(ValueError, match="doc_stride"):
        squad.squad_features([example], backbone, doc_stride=20)


def test_answer_in_a_later_window_is_found_where_one_window_loses_it(backbone):
    example = _long_example()
    paris = backbone.tokenizer.tokenizer.token_to_id("paris")
    windows = squad.squad_features([example], backbone, doc_stride=8)
    start, end = _oracle_logits(windows, paris, noise=0.1)
    (answer,) = squad.postprocess_predictions([example], windows, start, end)
    assert answer.text == "paris" and answer.id == "x"
    assert answer.score == pytest.approx(start[4, 15] + end[4, 15])
    one = squad.squad_features([example], backbone)
    start, end = _oracle_logits(one, paris, noise=0.1)
    (lost,) = squad.postprocess_predictions([example], one, start, end)
    assert lost.text != "paris"


def test_n_best_spans_over_windows_hand_made(backbone):
    example = _long_example()
    features = squad.squad_features([example], backbone, doc_stride=8)
    start = np.zeros(features.context_mask.shape)
    end = np.zeros(features.context_mask.shape)
    # Window 0 context starts at token 3 ("the tower the tower ...").
    # Span (3, 4) "the tower" scores 1.5 + 2 = 3.5 in window 0.
    start[0, 3], end[0, 4] = 1.5, 2.0
    # Window 1 starts at context token 12; context tokens 12..19 are shared
    # with window 0 (positions 15..22 there, 3..10 here). The same text
    # "the" (context token 12) scores 4 in window 1 and 0.5 in window 0:
    # deduplicated, the best score is kept.
    start[1, 3], end[1, 3] = 2.0, 2.0
    start[0, 15], end[0, 15] = 0.25, 0.25
    # A long span (10 tokens) is allowed at max_answer_length=30, not at 5.
    start[2, 3], end[2, 12] = 3.0, 3.0
    (best,) = squad.postprocess_predictions(
        [example], features, start, end, n_best=3, max_answer_length=30
    )
    texts = [c["text"] for c in best.n_best]
    c12 = features.offsets[1, 3]
    assert texts[0] == LONG[features.offsets[2, 3, 0] : features.offsets[2, 12, 1]]
    assert best.n_best[0]["score"] == 6.0
    assert best.n_best[1]["offsets"] == [int(c12[0]), int(c12[1])]
    assert best.n_best[1]["score"] == 4.0 and texts[1] == "the"
    assert best.n_best[2]["score"] == 3.5 and texts[2] == "the tower"
    assert len({tuple(c["offsets"]) for c in best.n_best}) == 3
    assert len(best.n_best) == 3
    assert sum(c["probability"] for c in best.n_best) == pytest.approx(1.0)
    assert best.text == texts[0]
    (short,) = squad.postprocess_predictions(
        [example], features, start, end, n_best=2, max_answer_length=5
    )
    # The 10-token span is too long now.
    assert [c["score"] for c in short.n_best] == [4.0, 3.5]


def test_unanswerable_questions_and_the_null_threshold(backbone):
    examples = [_long_example("has"), _long_example("none", answer="")]
    features = squad.squad_features(examples, backbone, doc_stride=8)
    assert features.example_index.tolist() == [0] * 5 + [1] * 5
    assert features.truncated == 0
    assert (features.labels["start_logits"][5:] == 0).all()  # [CLS]
    paris = backbone.tokenizer.tokenizer.token_to_id("paris")
    start, end = _oracle_logits(features, paris)
    # [CLS] scores: question "has" 1 + 1 = 2 below its best span (10);
    # question "none" min over its windows 6 + 6 = 12 (one window has 14).
    start[:5, 0] = end[:5, 0] = 1.0
    start[5:, 0] = end[5:, 0] = [7.0, 6.0, 6.0, 6.0, 6.0]
    has, none = squad.postprocess_predictions(
        examples, features, start, end, version_2_with_negative=True
    )
    assert has.text == "paris" and has.null_score == 2.0
    assert none.text == "" and none.null_score == 12.0 and none.score == 10.0
    assert [c["text"] for c in none.n_best][:2] == ["", "paris"]
    assert [c["text"] for c in none.n_best].count("") == 1
    # null - best = 12 - 10 = 2: "no answer" up to a threshold of 2.
    for threshold, text in ((1.9, ""), (2.1, "paris")):
        _, none = squad.postprocess_predictions(
            examples, features, start, end, version_2_with_negative=True,
            null_score_diff_threshold=threshold,
        )
        assert none.text == text, threshold
    # Without v2.0 mode the best span is always the answer.
    _, none = squad.postprocess_predictions(examples, features, start, end)
    assert none.text == "paris"
    with pytest.raises(ValueError, match="n_best"):
        squad.postprocess_predictions(examples, features, start, end, n_best=0)
    with pytest.raises(ValueError, match="one row per window"):
        squad.postprocess_predictions(examples, features, start[:3], end[:3])
