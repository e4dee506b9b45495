"""NER entities per text: the model's word tags joined into spans with
character offsets, as CSV and as JSON lines."""

import json

import numpy as np
import pytest

from kerasft import recipes
from kerasft.predictors import tokens
from tests.predictors._load import assert_export_matches_predict, header, load, read_csv

TEXTS = ["the paris tower was built in 1999.", "what a dull film, paris",
         "it was good"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from tests.fixtures.tiny_hf import make_tiny_folder
    from tests.recipes.ner_data import ner_sentences

    root = tmp_path_factory.mktemp("ner")
    folder, _ = make_tiny_folder(str(root / "bert"), hidden=32, intermediate=64)
    recipes.token_classification(
        train=ner_sentences(200, seed=0), backbone=folder, epochs=4,
        batch_size=16, max_length=24, learning_rate=3e-3, dropout=0.0,
        output_dir=str(root / "run"), precision="float32", strategy="default",
        verbose=0)
    return load(root / "run", "token_classification"), folder


def test_words_keep_their_character_offsets():
    assert tokens.words_of("paris, 1999!") == [
        ("paris", 0, 5), (",", 5, 6), ("1999", 7, 11), ("!", 11, 12)]


@pytest.mark.slow
def test_entities_are_the_model_tags_with_offsets(run, tmp_path):
    from kerasft import backbones
    from kerasft.data.conll import token_features, word_tags
    from kerasft.evaluation.entities import get_entities

    run, folder = run
    lines = tmp_path / "texts.txt"
    lines.write_text("\n".join(TEXTS) + "\n")
    out = tmp_path / "entities.jsonl"
    result = tokens.predict(run, str(lines), str(out), verbose=0)
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [w["input"] for w in written] == TEXTS
    assert written == result.rows
    sentences = [[w for w, _, _ in tokens.words_of(t)] for t in TEXTS]
    tokenizer = backbones.bert(folder, sequence_length=24).tokenizer
    features = token_features(sentences, tokenizer, 24)
    logits = run.model.predict(features.inputs, verbose=0)
    tags = word_tags(features, logits, sentences, run.class_names)
    found = 0
    for text, row, words, sentence_tags in zip(TEXTS, written, sentences, tags):
        spans = get_entities(sentence_tags)
        assert [e["type"] for e in row["entities"]] == [s[0] for s in spans]
        for entity, (_, first, last) in zip(row["entities"], spans):
            assert entity["text"] == text[entity["start"]:entity["end"]]
            assert entity["text"].startswith(words[first])
            assert entity["text"].endswith(words[last])
            assert 0 < entity["score"] <= 1
        found += len(spans)
        assert row["truncated_words"] == 0 and row["error"] == ""
    assert found >= 2  # the trained tiny model tags the places and the year
    csv_out = tmp_path / "entities.csv"
    tokens.predict(run, str(lines), str(csv_out), verbose=0)
    assert header(csv_out) == ["input", "entities", "truncated_words", "error"]
    rows = read_csv(csv_out)
    assert [json.loads(r["entities"]) for r in rows] == [w["entities"] for w in written]


@pytest.mark.slow
def test_export_serves_token_ids_and_strings(run, tmp_path):
    import tensorflow as tf

    from kerasft import backbones
    from kerasft.data.conll import token_features

    run, folder = run
    sentences = [[w for w, _, _ in tokens.words_of(t)] for t in TEXTS]
    tokenizer = backbones.bert(folder, sequence_length=24).tokenizer
    batch = token_features(sentences, tokenizer, 24).inputs
    served = assert_export_matches_predict(run.directory, batch, tmp_path / "saved")
    strings = tf.constant(["the paris tower", "built in 1999"])
    np.testing.assert_allclose(
        served.serve_text(strings).numpy(),
        run.model.predict(tokenizer(strings), verbose=0), atol=1e-5)
