"""Byte-level BPE (GPT-2, BART/RoBERTa): ids equal Hugging Face's.

The tokenizers `kerasft.backbones.load_task` builds for the GPT-2 and BART
fixture folders, against `transformers.AutoTokenizer` on the same folder,
on the generated multilingual corpus. kerasft's recipes tokenize these
eagerly (KerasHub's Python path): equal on every string. KerasHub's
TensorFlow-graph path (`tf.data.Dataset.map(tokenizer)`) differs only on
strings holding U+0000 (cut there) or "६" (KerasHub's internal
placeholder character); see docs/text.md.
"""

import pytest
import tensorflow as tf

from kerasft.backbones import load_task
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
