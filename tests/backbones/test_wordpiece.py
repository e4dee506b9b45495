"""`kerasft.backbones._wordpiece`: ids and offsets equal Hugging Face's.

The reference is the `tokenizers` library loading the folder's
`tokenizer.json` (Hugging Face's fast tokenizer), on the generated
multilingual corpus of `tests/backbones/text_corpus.py`, for the MiniLM
folder and small WordPiece folders made with `tokenizers` (cased,
lowercase without accent stripping, accent stripping without lowercase, no
Chinese-character splitting). Each folder is checked three ways: eager
calls, `tf.data` (graph mode) and the Python offsets path.
"""

import json
import os

import pytest
import tensorflow as tf

from kerasft.backbones import _wordpiece
from kerasft.backbones.bert import bert
from kerasft.data.squad import token_offsets
from tests.backbones.test_bert import minilm_folder
from tests.backbones.text_corpus import corpus

tokenizers = pytest.importorskip("tokenizers")

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


@pytest.fixture(scope="module")
def texts():
    return corpus(5000)


def _reference(folder):
    ref = tokenizers.Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    ref.no_padding()
    ref.no_truncation()
    return ref


def _make_folder(folder, texts, lowercase, strip_accents, chinese_chars):
    """A WordPiece folder trained with `tokenizers` on `texts`, saved as
    Hugging Face does (tokenizer.json, vocab.txt, tokenizer_config.json)."""
    from tokenizers import models, normalizers, pre_tokenizers, trainers

    tok = tokenizers.Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=chinese_chars,
        strip_accents=strip_accents,
        lowercase=lowercase,
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=3000, special_tokens=SPECIAL, show_progress=False
    )
    tok.train_from_iterator(texts[:2000], trainer)
    os.makedirs(folder, exist_ok=True)
    tok.save(os.path.join(folder, "tokenizer.json"))
    vocab = tok.get_vocab()
    with open(os.path.join(folder, "vocab.txt"), "w", encoding="utf-8") as f:
        for token in sorted(vocab, key=vocab.get):
            f.write(token + "\n")
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump(
            {
                "do_lower_case": lowercase,
                "strip_accents": strip_accents,
                "tokenize_chinese_chars": chinese_chars,
                "tokenizer_class": "BertTokenizer",
            },
            f,
        )
    return folder


def _tokenizer(folder):
    norm = _wordpiece.read_normalization(folder)
    vocabulary = _wordpiece.vocabulary_from_tokenizer_json(
        os.path.join(folder, "tokenizer.json")
    )
    return _wordpiece.make_tokenizer("bert", vocabulary, norm)


def _check_parity(folder, texts):
    ref = _reference(folder)
    tokenizer = _tokenizer(folder)
    expected = ref.encode_batch(texts, add_special_tokens=False)
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(512)
    graph = [row for batch in dataset.map(tokenizer) for row in batch.to_list()]
    for text, enc, in_graph in zip(texts, expected, graph):
        ids, offsets = _wordpiece.encode_with_offsets(tokenizer, text)
        assert ids == enc.ids, (text, enc.tokens)
        assert offsets == [tuple(o) for o in enc.offsets], (text, enc.tokens)
        assert [int(t) for t in in_graph] == enc.ids, (text, enc.tokens)
    # Eager calls run the same Python code as `encode_with_offsets`.
    eager = tokenizer(texts[:200])
    assert [[int(t) for t in row] for row in eager] == [e.ids for e in expected[:200]]


def test_issue_examples_on_minilm():
    tokenizer = bert(minilm_folder(), sequence_length=16, load_weights=False)
    word_tokenizer = tokenizer.tokenizer.tokenizer
    for text, pieces in [
        ("2½ km²", ["2", "##½", "km²"]),
        ("…", ["…"]),
        ("Königstraße", ["ko", "##nig", "##straße"]),
    ]:
        ids = word_tokenizer(text)
        assert [word_tokenizer.id_to_token(int(i)) for i in ids] == pieces


def test_minilm_ids_and_offsets_equal_hugging_face(texts):
    _check_parity(minilm_folder(), texts)


@pytest.mark.parametrize(
    "lowercase,strip_accents,chinese_chars",
    [(False, None, True), (True, False, True), (False, True, False)],
    ids=["cased", "lower_keep_accents", "strip_only_no_cjk"],
)
def test_small_folders_equal_hugging_face(
    tmp_path, texts, lowercase, strip_accents, chinese_chars
):
    folder = _make_folder(
        str(tmp_path / "wp"), texts, lowercase, strip_accents, chinese_chars
    )
    _check_parity(folder, texts)


def test_bert_backbone_offsets_follow_folder(tmp_path, texts):
    """`bert()` on a cased folder reads its normalisation, and SQuAD's
    `token_offsets` returns Hugging Face's offsets."""
    folder = _make_folder(str(tmp_path / "wp"), texts, False, None, True)
    tokenizer = _wordpiece.make_tokenizer(
        "bert",
        _wordpiece.vocabulary_from_tokenizer_json(
            os.path.join(folder, "tokenizer.json")
        ),
        _wordpiece.read_normalization(folder),
    )
    assert tokenizer.normalization == _wordpiece.Normalization(
        lowercase=False, strip_accents=False, chinese_chars=True
    )
    ref = _reference(folder)
    for text in texts[:300]:
        enc = ref.encode(text, add_special_tokens=False)
        ids, offsets = token_offsets(tokenizer, text)
        assert ids == enc.ids
        assert offsets == [tuple(o) for o in enc.offsets]
    # The public entry point dispatches WordPiece to the same code.
    from kerasft.backbones import token_offsets as any_offsets

    assert any_offsets(tokenizer, texts[:50]) == [token_offsets(tokenizer, t) for t in texts[:50]]


def test_tokenizer_config_overrides_tokenizer_json(tmp_path, texts):
    folder = _make_folder(str(tmp_path / "wp"), texts, True, None, True)
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump({"do_lower_case": False}, f)
    norm = _wordpiece.read_normalization(folder)
    # As BertTokenizerFast: do_lower_case wins; strip_accents still
    # follows the (new) lowercase.
    assert norm.lowercase is False and norm.strip_accents is False


def test_round_trips_through_config():
    tokenizer = _tokenizer(minilm_folder())
    config = tokenizer.get_config()
    # KerasHub saves the vocabulary as an asset, not in the config.
    config["vocabulary"] = tokenizer.vocabulary
    clone = tokenizer.__class__.from_config(config)
    assert clone.normalization == tokenizer.normalization
    text = "Königstraße 2½ km² ΟΔΟΣ"
    assert clone.token_ids(text) == tokenizer.token_ids(text)


def test_preprocessor_packs_exact_ids():
    backbone = bert(minilm_folder(), sequence_length=12, load_weights=False)
    ref = _reference(minilm_folder())
    text = "Ⅻ ＡＢＣ ① soft\u00adhyphen café"
    enc = ref.encode(text)
    out = backbone.tokenizer([text])
    ids = [int(t) for t in out["token_ids"][0]]
    assert ids[: len(enc.ids)] == enc.ids
    dataset = tf.data.Dataset.from_tensor_slices([text]).batch(1)
    in_graph = next(iter(dataset.map(backbone.tokenizer)))
    assert [int(t) for t in in_graph["token_ids"][0]] == ids


def test_unbatched_graph_inputs_give_one_row():
    tokenizer = _tokenizer(minilm_folder())
    texts = ["Königstraße 2½ km²", "a"]
    dataset = tf.data.Dataset.from_tensor_slices(texts).map(tokenizer)
    rows = [[int(t) for t in row] for row in dataset]
    assert rows == [tokenizer.token_ids(t) for t in texts]
    backbone = bert(minilm_folder(), sequence_length=8, load_weights=False)
    packed = next(iter(tf.data.Dataset.from_tensor_slices(texts).map(backbone.tokenizer)))
    assert packed["token_ids"].shape == (8,)
