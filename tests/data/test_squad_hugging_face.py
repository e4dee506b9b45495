"""`squad_features` windows and answer spans equal Hugging Face `run_qa`'s.

`run_qa.py`'s `prepare_train_features`: `tokenizer(question, context,
truncation="only_second", max_length, stride, return_overflowing_tokens,
return_offsets_mapping, padding="max_length")`, then the answer's first
and last token from the offsets (CLS when the window lacks it). Contexts
come from the multilingual corpus (compatibility characters, accents,
CJK, controls, long punctuation runs), on the MiniLM folder.
"""

import random

import numpy as np
import pytest

from kerasft.backbones.bert import bert
from kerasft.data.squad import SquadExample
from kerasft.data.squad import squad_features
from tests.backbones.test_bert import minilm_folder
from tests.backbones.text_corpus import corpus

transformers = pytest.importorskip("transformers")

LENGTH, STRIDE, QUERY = 64, 12, 24


def _examples(n=120, seed=0):
    rng = random.Random(seed)
    texts = corpus(2000)
    out = []
    for i in range(n):
        context = " ".join(rng.choice(texts) for _ in range(4)).strip()
        words = [w for w in context.split(" ") if w.strip()] or ["x"]
        answer = rng.choice(words)
        start = context.find(answer)
        out.append(SquadExample(
            f"q{i}", "Königstraße 2½ km²? " + rng.choice(texts)[:12], context,
            answer, start, (answer,),
        ))
    return out


def _run_qa(tokenizer, examples):
    """`run_qa.py`'s `prepare_train_features` (no answer -> CLS)."""
    enc = tokenizer(
        [e.question for e in examples], [e.context for e in examples],
        truncation="only_second", max_length=LENGTH, stride=STRIDE,
        return_overflowing_tokens=True, return_offsets_mapping=True,
        padding="max_length",
    )
    starts, ends = [], []
    for i, offsets in enumerate(enc["offset_mapping"]):
        ex = examples[enc["overflow_to_sample_mapping"][i]]
        sequence_ids = enc.sequence_ids(i)
        start_char, end_char = ex.answer_start, ex.answer_start + len(ex.answer_text)
        first = sequence_ids.index(1)
        last = len(sequence_ids) - 1 - sequence_ids[::-1].index(1)
        if not (offsets[first][0] <= start_char and offsets[last][1] >= end_char):
            starts.append(0)
            ends.append(0)
            continue
        s = first
        while s <= last and offsets[s][0] <= start_char:
            s += 1
        e = last
        while e >= first and offsets[e][1] >= end_char:
            e -= 1
        starts.append(s - 1)
        ends.append(e + 1)
    return enc, starts, ends


def test_windows_and_spans_equal_run_qa():
    reference = transformers.BertTokenizerFast.from_pretrained(minilm_folder())
    backbone = bert(minilm_folder(), sequence_length=LENGTH, load_weights=False)
    examples = [  # questions within max_query_length on both sides
        ex for ex in _examples()
        if len(reference(ex.question, add_special_tokens=False)["input_ids"]) <= QUERY
    ]
    assert len(examples) > 50
    enc, starts, ends = _run_qa(reference, examples)
    features = squad_features(
        examples, backbone, LENGTH, doc_stride=STRIDE, max_query_length=QUERY
    )
    np.testing.assert_array_equal(
        features.example_index, enc["overflow_to_sample_mapping"]
    )
    np.testing.assert_array_equal(features.inputs["token_ids"], enc["input_ids"])
    np.testing.assert_array_equal(features.inputs["segment_ids"], enc["token_type_ids"])
    np.testing.assert_array_equal(features.labels["start_logits"], starts)
    np.testing.assert_array_equal(features.labels["end_logits"], ends)
    for row, offsets in enumerate(enc["offset_mapping"]):
        mask = features.context_mask[row].astype(bool)
        expected = np.asarray(offsets)[mask]
        np.testing.assert_array_equal(features.offsets[row][mask], expected)
