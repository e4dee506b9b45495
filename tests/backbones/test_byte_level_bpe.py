"""Byte-level BPE (GPT-2, BART/RoBERTa): ids equal Hugging Face's.

The tokenizers `kerasft.backbones.load_task` / `bert` build for Hugging
Face folders (`HFGPT2Tokenizer`, `HFBartTokenizer`, `HFRobertaTokenizer`),
against `transformers` on the same files, on the generated multilingual
corpus: equal on every string, eagerly and inside `tf.data` (graph mode),
on the tiny fixture folders and on a 3,000-token vocabulary trained with
`tokenizers` on the corpus (where KerasHub's own tokenizer differs on
about 30% of the strings in both modes; see docs/text.md).

Offsets: `kerasft.backbones.token_offsets` (computed from kerasft's own
tokens, never by calling Hugging Face) equal the fast tokenizer's
`offset_mapping` on every string, with its `trim_offsets` semantics
(BART/RoBERTa's `RobertaProcessing` trims spaces; GPT-2 does not), read
from the folder (`tokenizer.json`, `tokenizer_config.json`).
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
    assert type(tokenizer).__name__ in ("HFGPT2Tokenizer", "HFBartTokenizer")
    eager = [[int(i) for i in row] for row in tokenizer(texts)]
    assert eager == expected
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(512).map(tokenizer)
    graph = [row for batch in dataset for row in batch.to_list()]
    assert graph == expected
    # U+0000 and "६" (KerasHub's own graph path cuts at the one and drops
    # the other) and every special token of the folder, kept whole.
    edge = ["ab\x00cd  ef", "६ १६ x६", "a <mask> b<unk>", "x  <|endoftext|>  y", ""]
    expected = [reference(t, add_special_tokens=False).input_ids for t in edge]
    assert [[int(i) for i in row] for row in tokenizer(edge)] == expected
    graph = tf.data.Dataset.from_tensor_slices(edge).batch(8).map(tokenizer)
    assert next(iter(graph)).to_list() == expected


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


def _copy_with(tmp_path, name, post_processor=None, config=None):
    """A copy of a fixture folder with a `tokenizer.json` holding
    `post_processor` and/or `tokenizer_config.json` entries `config`."""
    import json
    import shutil

    source, kind = _folder(name)
    folder = tmp_path / name
    shutil.copytree(source, folder)
    if post_processor is not None:
        backend = transformers.AutoTokenizer.from_pretrained(source).backend_tokenizer
        backend.save(str(folder / "tokenizer.json"))
        spec = json.loads((folder / "tokenizer.json").read_text())
        spec["post_processor"] = post_processor
        (folder / "tokenizer.json").write_text(json.dumps(spec))
    if config is not None:
        spec = json.loads((folder / "tokenizer_config.json").read_text())
        spec.update(config)
        (folder / "tokenizer_config.json").write_text(json.dumps(spec))
    return str(folder), kind


def _byte_level(trim, prefix=False):
    return {"type": "ByteLevel", "add_prefix_space": prefix,
            "trim_offsets": trim, "use_regex": True}


@pytest.mark.parametrize(
    "name, post_processor, config, trimmed",
    [
        # GPT-2: tokenizer.json's post processor decides.
        ("gpt2", _byte_level(True), None, True),
        ("gpt2", {"type": "Sequence", "processors": [_byte_level(True, True),
                                                      _byte_level(True)]}, None, True),
        # RoBERTa/BART: tokenizer_config.json's `trim_offsets` decides.
        ("bart", None, {"trim_offsets": False}, False),
        # ... and its `add_prefix_space` (ids too: a space in front).
        ("bart", None, {"add_prefix_space": True}, True),
    ],
    ids=["gpt2-bytelevel-trim", "gpt2-sequence-of-two-trims", "bart-config-no-trim",
         "bart-config-prefix-space"],
)
def test_offsets_trim_as_the_folder_says(tmp_path, name, post_processor, config, trimmed):
    folder, kind = _copy_with(tmp_path, name, post_processor, config)
    reference = transformers.AutoTokenizer.from_pretrained(folder)
    tokenizer = load_task(folder, kind).preprocessor.tokenizer
    texts = corpus(5000)
    got = [(ids, list(offsets)) for ids, offsets in token_offsets(tokenizer, texts)]
    assert got == _hugging_face(reference, texts)
    # The folder's setting, not the class's, changed the spans.
    _, offsets = token_offsets(tokenizer, "a  b")
    assert (offsets[1] == (2, 2)) == trimmed
    # The setting survives the tokenizer's config (a saved task) ...
    rebuilt = type(tokenizer).from_config(tokenizer.get_config())
    rebuilt.set_vocabulary_and_merges(dict(tokenizer.vocabulary), list(tokenizer.merges))
    assert token_offsets(rebuilt, texts[:200]) == token_offsets(tokenizer, texts[:200])
    # ... and a tokenizer made without it follows the model type's rule.
    config = {**tokenizer.get_config(), "offset_trims": None}
    plain = type(tokenizer).from_config(config)
    plain.set_vocabulary_and_merges(dict(tokenizer.vocabulary), list(tokenizer.merges))
    _, offsets = token_offsets(plain, "a  b")
    assert offsets[1] == ((2, 2) if name == "bart" else (1, 2))


def _trained_vocabulary():
    """A 3,000-token byte-level BPE trained with `tokenizers` on the corpus:
    merges across GPT-2's word boundaries ("Ġ Ġ", "Ċ Ċ") and many more
    than the fixtures' number words."""
    from tokenizers import ByteLevelBPETokenizer

    trainer = ByteLevelBPETokenizer()
    trainer.train_from_iterator(
        corpus(5000) + ["the  quick\n\n  brown fox   jumps, 1999!!\n"] * 50,
        vocab_size=3000, min_frequency=2, special_tokens=["<|endoftext|>"],
        show_progress=False,
    )
    import json

    vocabulary = trainer.get_vocab()
    spec = json.loads(trainer.to_str())["model"]["merges"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec]
    return vocabulary, merges


@pytest.mark.slow
@pytest.mark.parametrize("prefix", [False, True])
def test_a_trained_vocabulary_equals_hugging_face_eagerly_and_in_graph(prefix):
    import keras_hub

    from kerasft.backbones._byte_level_bpe import HFGPT2Tokenizer

    vocabulary, merges = _trained_vocabulary()
    reference = transformers.GPT2Tokenizer(
        vocab=vocabulary, merges=[tuple(m.split(" ")) for m in merges],
        add_prefix_space=prefix,
    )
    tokenizer = HFGPT2Tokenizer(
        vocabulary=vocabulary, merges=merges, add_prefix_space=prefix
    )
    texts = corpus(5000)
    expected = [reference(t, add_special_tokens=False).input_ids for t in texts]
    assert [[int(i) for i in row] for row in tokenizer(texts)] == expected
    if prefix:  # the graph path's prefix space is checked on the fixtures' edge cases
        return
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(512).map(tokenizer)
    assert [row for batch in dataset for row in batch.to_list()] == expected
    # KerasHub's own class, on the same files, is not exact (why kerasft
    # has its own): whole texts merged as one word.
    plain = keras_hub.models.GPT2Tokenizer(vocabulary=vocabulary, merges=merges)
    assert [[int(i) for i in row] for row in plain(texts)] != expected


def test_round_trips_through_config_and_roberta_folders(tmp_path):
    import keras

    from tests.fixtures.tiny_hf import make_tiny_folder

    folder, kind = _folder("bart")
    tokenizer = load_task(folder, kind).preprocessor.tokenizer
    clone = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(tokenizer)
    )
    clone.set_vocabulary_and_merges(dict(tokenizer.vocabulary), list(tokenizer.merges))
    assert type(clone) is type(tokenizer)
    assert clone.unsplittable_tokens == ["<mask>", "<pad>", "<unk>", "</s>", "<s>"]
    text = "a <mask>  b\x00 ६"
    assert [int(i) for i in clone(text)] == [int(i) for i in tokenizer(text)]
    # RoBERTa through `kerasft.backbones.bert`.
    from kerasft.backbones import bert

    roberta, _ = make_tiny_folder(str(tmp_path / "roberta"), model_type="roberta")
    tokenizer = bert(roberta, sequence_length=16).tokenizer.tokenizer
    assert type(tokenizer).__name__ == "HFRobertaTokenizer"
    reference = transformers.AutoTokenizer.from_pretrained(roberta)
    # Its vocabulary holds lowercase letters and spaces only.
    texts = ["a good  film", "bad film   good", " a<mask> good<unk>film <s>",
             "goodfilm  ", "", "  <pad>  bad"]
    expected = _hugging_face(reference, texts)
    assert [(i, list(o)) for i, o in token_offsets(tokenizer, texts)] == expected
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(128).map(tokenizer)
    assert [row for batch in dataset for row in batch.to_list()] == [e[0] for e in expected]
    # Bytes missing from the vocabulary are dropped, as Hugging Face drops them.
    texts = ["bad\x00 film é"]
    expected = [reference(t, add_special_tokens=False).input_ids for t in texts]
    assert [[int(i) for i in row] for row in tokenizer(texts)] == expected
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(1).map(tokenizer)
    assert next(iter(dataset)).to_list() == expected


def test_roberta_saved_model_serves_text_with_the_graph_path(tmp_path):
    import numpy as np

    import kerasft
    from kerasft import heads
    from kerasft.backbones import bert
    from tests.fixtures.tiny_hf import make_tiny_folder

    folder, _ = make_tiny_folder(str(tmp_path / "roberta"), model_type="roberta")
    backbone = bert(folder, sequence_length=16)
    model = kerasft.build_model(backbone, heads.text_classification(2))
    path = kerasft.export(model, str(tmp_path / "saved"), preprocessor=backbone.tokenizer)
    texts = ["a good  film<mask>", "bad\x00  film "]
    loaded = tf.saved_model.load(path)  # held: its variables live in it
    served = loaded.serve_text(tf.constant(texts))
    expected = model.predict(backbone.tokenizer(texts), verbose=0)
    np.testing.assert_allclose(np.asarray(served), expected, atol=1e-5)


def test_missing_kerashub_internals_fail_loudly():
    from kerasft import _keras_compat

    with pytest.raises(_keras_compat.KerasInternalError, match="_maybe_initialized_tf"):
        _keras_compat.bpe_merge_words(object(), tf.constant(["a"]))
