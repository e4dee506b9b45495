"""Byte-level BPE (GPT-2, BART/RoBERTa): ids equal Hugging Face's.

The tokenizers `kerasft.backbones.load_task` builds for the GPT-2 and BART
fixture folders, against `transformers.AutoTokenizer` on the same folder,
on the generated multilingual corpus. kerasft's recipes tokenize these
eagerly (KerasHub's Python path): equal on every string. KerasHub's
TensorFlow-graph path (`tf.data.Dataset.map(tokenizer)`) differs only on
strings holding U+0000 (cut there) or "६" (KerasHub's internal
placeholder character); see docs/text.md.

Offsets: `kerasft.backbones.token_offsets` (computed from kerasft's own
tokens, never by calling Hugging Face) equal the fast tokenizer's
`offset_mapping` on every string, with its `trim_offsets` semantics
(BART/RoBERTa's `RobertaProcessing` trims spaces; GPT-2 does not).
"""

import pytest
import tensorflow as tf

from kerasft.backbones import load_task
from kerasft.backbones import token_offsets
from tests.backbones.text_corpus import corpus
from tests.fixtures.tiny_generative import bart_folder, gpt2_folder

transformers = pytest.importorskip("transformers")


@pytest.mark.parametrize("name", ["gpt2", "bart"])
def test_ids_equal_hugging_face_on_the_corpus(name):
    folder, kind = {
        "gpt2": (gpt2_folder(), "causal_lm"),
        "bart": (bart_folder(), "seq2seq"),
    }[name]
    reference = transformers.AutoTokenizer.from_pretrained(folder)
    tokenizer = load_task(folder, kind).preprocessor.tokenizer
    texts = corpus(5000)
    expected = [reference(t, add_special_tokens=False).input_ids for t in texts]
    eager = [[int(i) for i in row] for row in tokenizer(texts)]
    assert eager == expected
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(512).map(tokenizer)
    graph = [row for batch in dataset for row in batch.to_list()]
    differ = [t for t, g, e in zip(texts, graph, expected) if g != e]
    assert all("\x00" in t or "\u096c" in t for t in differ)


def _folder(name):
    return {
        "gpt2": (gpt2_folder(), "causal_lm"),
        "bart": (bart_folder(), "seq2seq"),
    }[name]


def _hugging_face(reference, texts):
    out = []
    for t in texts:
        e = reference(t, add_special_tokens=False, return_offsets_mapping=True)
        out.append((e.input_ids, [tuple(o) for o in e.offset_mapping]))
    return out


@pytest.mark.parametrize("name", ["gpt2", "bart"])
def test_ids_and_offsets_equal_hugging_face_on_the_corpus(name):
    folder, kind = _folder(name)
    reference = transformers.AutoTokenizer.from_pretrained(folder)
    tokenizer = load_task(folder, kind).preprocessor.tokenizer
    texts = corpus(5000)
    got = [(ids, list(offsets)) for ids, offsets in token_offsets(tokenizer, texts)]
    assert got == _hugging_face(reference, texts)
    # Multi-byte characters split across tokens, and trimmed spaces (BART).
    ids, offsets = token_offsets(tokenizer, "é  😀")
    assert offsets[:2] == [(0, 1), (0, 1)]
    assert offsets[-4:] == [(3, 4)] * 4
    spaces = (2, 2) if name == "bart" else (1, 2)
    assert offsets[2] == spaces


@pytest.mark.parametrize("name", ["gpt2", "bart"])
def test_offsets_with_a_prefix_space(name):
    """`add_prefix_space=True`: the added space belongs to the first
    character (Hugging Face keeps it in the first token's span)."""
    folder, kind = _folder(name)
    base = load_task(folder, kind).preprocessor.tokenizer
    tokenizer = type(base)(
        vocabulary=dict(base.vocabulary), merges=list(base.merges), add_prefix_space=True
    )
    reference = transformers.AutoTokenizer.from_pretrained(folder, add_prefix_space=True)
    # Hugging Face adds the space only where the text does not start with one.
    texts = [t for t in corpus(1000) if t and not t.startswith(" ")]
    got = [(ids, list(offsets)) for ids, offsets in token_offsets(tokenizer, texts)]
    assert got == _hugging_face(reference, texts)


def test_squad_token_offsets_dispatches_and_other_tokenizers_are_refused():
    import keras_hub

    from kerasft.data.squad import token_offsets as squad_offsets

    folder, kind = _folder("bart")
    tokenizer = load_task(folder, kind).preprocessor.tokenizer
    assert squad_offsets(tokenizer, "naïve café") == token_offsets(tokenizer, "naïve café")
    with pytest.raises(TypeError, match="Received: str"):
        token_offsets("not a tokenizer", "x")
    wordpiece = keras_hub.tokenizers.WordPieceTokenizer(vocabulary=["[UNK]", "x"])
    with pytest.raises(ValueError, match="trim_offsets=True"):
        token_offsets(wordpiece, "x", trim_offsets=True)
    padded = type(tokenizer)(
        vocabulary=dict(tokenizer.vocabulary), merges=list(tokenizer.merges),
        sequence_length=8,
    )
    with pytest.raises(ValueError, match="sequence_length=8"):
        token_offsets(padded, "x")
