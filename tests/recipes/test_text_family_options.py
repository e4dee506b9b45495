"""Text classification, question answering and token classification honour
every option of their configs: the mode's stages (frozen groups stay
bit-identical, the top transformer layer changes, a token head's pooler
never trains), `validation_split`, and token classification's
`class_weight`, `label_smoothing`, `loss="focal"` and `curriculum`."""

import json
import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest

from kerasft import cli, recipes
from tests.fixtures.tiny_hf import make_tiny_folder
from tests.recipes.ner_data import FILLER, ner_sentences

FAST = dict(precision="float32", strategy="default", verbose=0, dropout=0.0,
            seed=1, batch_size=8)
RECIPES = ("text_classification", "question_answering", "token_classification")
NO_GRADIENT = "Gradients do not exist"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Tiny random BERT: groups embeddings, transformer_layer_0/1, pooler."""
    folder, _ = make_tiny_folder(str(tmp_path_factory.mktemp("text") / "bert"))
    return folder


def _squad(path, contexts, questions=2, seed=0):
    """`contexts` paragraphs of 12-16 words, each with `questions`
    questions whose answer is "paris"."""
    rng = np.random.default_rng(seed)
    paragraphs = []
    for c in range(contexts):
        words = [str(w) for w in rng.choice(FILLER, int(rng.integers(12, 16)))]
        words.insert(int(rng.integers(0, len(words))), "paris")
        context = " ".join(words)
        qas = [{"id": f"c{c}q{q}", "question": f"where is {FILLER[q]}",
                "answers": [{"text": "paris",
                             "answer_start": context.index("paris")}]}
               for q in range(questions)]
        paragraphs.append({"context": context, "qas": qas})
    with open(path, "w") as f:
        json.dump({"data": [{"title": "t", "paragraphs": paragraphs}]}, f)
    return str(path)


def _train(recipe, tmp_path, folder, name, **options):
    """One tiny run of `recipe` (8 examples, max_length 24)."""
    options = {**FAST, "epochs": 1, "max_length": 24, "learning_rate": 1e-2,
               **options}
    out = str(tmp_path / name)
    if recipe == "text_classification":
        texts = [f"{FILLER[i]} {'good' if i % 2 else 'bad'}" for i in range(8)]
        data = (texts, [i % 2 for i in range(8)])
        return recipes.text_classification(train=data, validation=data,
                                           backbone=folder, output_dir=out,
                                           **options)
    if recipe == "question_answering":
        data = _squad(tmp_path / f"{name}.json", 4)
        return recipes.question_answering(train=data, validation=data,
                                          backbone=folder, doc_stride=None,
                                          output_dir=out, **options)
    data = ner_sentences(8, seed=0)
    return recipes.token_classification(train=data, validation=data,
                                        backbone=folder, output_dir=out,
                                        **options)


def _group(path):
    """The BERT group of an encoder variable path."""
    head = path.split("/")[0]
    if head.startswith("transformer_layer_"):
        return head
    return "pooler" if head == "pooled_dense" else "embeddings"


def _encoder(model):
    return next(layer for layer in model.layers if isinstance(layer, keras.Model))


def _changed_groups(model, folder, max_length=24):
    """`{group: changed?}` of the trained encoder against the checkpoint."""
    from kerasft import backbones

    start = {w.path: np.asarray(w)
             for w in backbones.bert(folder, sequence_length=max_length).model.weights}
    changed = {}
    for w in _encoder(model).weights:
        group = _group(w.path)
        moved = not np.array_equal(np.asarray(w), start[w.path])
        changed[group] = changed.get(group, False) or moved
    return changed


# === Modes ===


@pytest.mark.parametrize("recipe", RECIPES)
def test_feature_extraction_leaves_every_encoder_weight_bit_identical(
        tmp_path, folder, recipe):
    result = _train(recipe, tmp_path, folder, "frozen", mode="feature_extraction")
    changed = _changed_groups(result.model, folder)
    assert len(changed) == 4 and not any(changed.values()), changed


@pytest.mark.parametrize("recipe", RECIPES)
def test_partial_opens_only_the_top_transformer_layer(tmp_path, folder, recipe):
    """unfreeze_groups=1 counts transformer layers: the top one trains after
    the head epoch; the embeddings and lower layer stay bit-identical. A
    head reading tokens keeps the pooler frozen (no gradient-less variable
    in the optimizer); text classification opens it with the top layer."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _train(recipe, tmp_path, folder, "partial", mode="partial",
                        head_epochs=1, unfreeze_groups=1, epochs=2)
    assert not [w for w in caught if NO_GRADIENT in str(w.message)]
    changed = _changed_groups(result.model, folder)
    assert changed == {
        "embeddings": False,
        "transformer_layer_0": False,
        "transformer_layer_1": True,
        "pooler": recipe == "text_classification",
    }


class _Snapshot(keras.callbacks.Callback):
    """The encoder's weights at the end of the first epoch."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            self.first = [np.asarray(w) for w in _encoder(self.model).weights]


@pytest.mark.parametrize("recipe", RECIPES)
def test_head_epochs_keep_the_encoder_frozen_in_the_first_epoch(
        tmp_path, folder, recipe):
    snapshot = _Snapshot()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _train(recipe, tmp_path, folder, "head", mode="full",
                        head_epochs=1, epochs=2, callbacks=[snapshot])
    assert not [w for w in caught if NO_GRADIENT in str(w.message)]
    from kerasft import backbones

    start = [np.asarray(w) for w in
             backbones.bert(folder, sequence_length=24).model.weights]
    for before, after in zip(start, snapshot.first):
        np.testing.assert_array_equal(before, after)
    changed = _changed_groups(result.model, folder)
    assert changed["embeddings"] and changed["transformer_layer_0"]
    assert changed["pooler"] == (recipe == "text_classification")


def test_progressive_never_trains_a_token_heads_pooler(tmp_path, folder):
    """progressive: top layer, then "all" — all transformer groups, never
    the pooler a token head does not read."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _train("token_classification", tmp_path, folder, "progressive",
                        mode="progressive", head_epochs=1, unfreeze_groups=1,
                        epochs=3)
    assert not [w for w in caught if NO_GRADIENT in str(w.message)]
    assert _changed_groups(result.model, folder) == {
        "embeddings": True, "transformer_layer_0": True,
        "transformer_layer_1": True, "pooler": False}


@pytest.mark.slow
def test_minilm_partial_two_groups_opens_its_two_top_layers(tmp_path):
    """The real 6-layer MiniLM checkpoint: unfreeze_groups=2 trains layers
    4 and 5 only (~20 s: a 22M-parameter encoder on 8 sentences)."""
    from tests.backbones.test_bert import minilm_folder

    folder = minilm_folder()
    result = recipes.token_classification(
        train=ner_sentences(8, seed=0), validation=ner_sentences(4, seed=1),
        backbone=folder, max_length=16, epochs=2, mode="partial", head_epochs=1,
        unfreeze_groups=2, output_dir=str(tmp_path / "minilm"),
        **{**FAST, "learning_rate": 1e-3})
    changed = _changed_groups(result.model, folder, max_length=16)
    assert changed == {
        "embeddings": False, "pooler": False,
        **{f"transformer_layer_{i}": i >= 4 for i in range(6)}}


@pytest.mark.parametrize("command", ["text-classification",
                                     "question-answering",
                                     "token-classification"])
def test_lora_with_a_staged_mode_is_refused_on_the_cli(capsys, command):
    args = [command, "--train", "x", "--lora-rank", "2", "--mode", "partial",
            "--head-epochs", "1", "--output", "unused"]
    assert cli.main(args) == 2
    errors = [line for line in capsys.readouterr().err.splitlines()
              if "error:" in line]
    assert len(errors) == 1, errors
    assert "--lora-rank" in errors[0] and "--mode 'full'" in errors[0]


# === validation_split ===


def test_question_answering_holds_out_whole_contexts(tmp_path, folder, capsys):
    from kerasft.data.squad import read_squad
    from kerasft.recipes.question_answering import _hold_out

    path = _squad(tmp_path / "qa.json", 8, questions=3)
    examples = read_squad(path)
    train, held = _hold_out(examples, 0.25, seed=0)
    assert (len(train), len(held)) == (18, 6)  # 2 of 8 contexts, 3 questions
    assert not {e.context for e in train} & {e.context for e in held}
    assert [e.id for e in _hold_out(examples, 0.25, seed=0)[1]] == [e.id for e in held]
    assert {e.context for e in _hold_out(examples, 0.25, seed=1)[1]} != {
        e.context for e in held}
    result = recipes.question_answering(
        train=path, backbone=folder, validation_split=0.25, max_length=24,
        doc_stride=None, epochs=1, output_dir=str(tmp_path / "run"),
        **{**FAST, "seed": 0, "verbose": 1})
    assert ("Holding out 6 of 24 training questions (2 whole contexts) for "
            "validation (validation_split=0.25).") in capsys.readouterr().out
    with open(os.path.join(result.output_dir, "predictions.json")) as f:
        assert set(json.load(f)) == {e.id for e in held}
    with pytest.raises(ValueError, match="holds out whole contexts, and the "
                                         "training data has 1"):
        _hold_out(read_squad(_squad(tmp_path / "one.json", 1)), 0.25, 0)


def test_token_classification_holds_out_sentences(tmp_path, folder, capsys):
    sentences, tags = ner_sentences(16, seed=4)
    result = recipes.token_classification(
        train=(sentences, tags), backbone=folder, validation_split=0.25,
        max_length=16, epochs=1, output_dir=str(tmp_path / "run"),
        **{**FAST, "verbose": 1})
    assert ("Holding out 4 of 16 training sentences for validation "
            "(validation_split=0.25).") in capsys.readouterr().out
    with open(os.path.join(result.output_dir, "predictions.conll")) as f:
        blocks = f.read().strip().split("\n\n")
    held = [[line.split()[0] for line in block.splitlines()] for block in blocks]
    assert len(held) == 4 and all(s in sentences for s in held)
    # Seeded: the same seed holds out the same sentences.
    from kerasft.data.conll import TokenTagData
    from kerasft.recipes.configs import TokenClassificationConfig
    from kerasft.recipes.token_classification import _hold_out

    class _Quiet:
        def log(self, message):
            pass

    data = {"Training": TokenTagData(sentences, tags)}
    config = TokenClassificationConfig(train="x", validation_split=0.25, seed=1)
    split = _hold_out(_Quiet(), config, data)
    assert sorted(map(tuple, split["Validation"].sentences)) == sorted(map(tuple, held))
    kept = split["Training"].sentences
    assert len(kept) == 12 and not set(map(tuple, kept)) & set(map(tuple, held))


# === Token classification's loss options ===


def test_token_loss_matches_keras_for_each_option():
    from kerasft.heads import TokenCrossentropy

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, (4, 6))
    y[:, 0] = -100
    y[1, 3:] = -100
    logits = rng.normal(size=(4, 6, 3)).astype("float32")
    scored, gold = logits[y != -100], y[y != -100]
    onehot = np.eye(3)[gold]
    plain = keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, ignore_class=-100)(y, logits)
    assert float(TokenCrossentropy()(y, logits)) == pytest.approx(float(plain), 1e-6)
    smoothed = keras.losses.CategoricalCrossentropy(
        from_logits=True, label_smoothing=0.1)(onehot, scored)
    got = TokenCrossentropy(label_smoothing=0.1)(y, logits)
    assert float(got) == pytest.approx(float(smoothed), 1e-6)
    assert float(got) != pytest.approx(float(plain), 1e-3)
    focal = keras.losses.CategoricalFocalCrossentropy(from_logits=True)(onehot, scored)
    assert float(TokenCrossentropy(focal=True)(y, logits)) == pytest.approx(
        float(focal), 1e-6)
    per_token = keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, reduction=None)(gold, scored).numpy()
    weights = [0.5, 2.0, 1.0]
    assert float(TokenCrossentropy(class_weight=weights)(y, logits)) == pytest.approx(
        float(np.mean(per_token * np.asarray(weights)[gold])), 1e-6)
    loss = TokenCrossentropy(class_weight=weights, label_smoothing=0.1, focal=True)
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert again.get_config() == loss.get_config()


def _trained_loss(tmp_path, folder, name, **options):
    """`(the loss fit minimized, model logits, labels)` on the training
    sentences of one short run."""
    from kerasft import backbones
    from kerasft.data.conll import encode_tags, label_list, token_features

    result = _train("token_classification", tmp_path, folder, name, **options)
    sentences, tags = ner_sentences(8, seed=0)
    labels = label_list(tags)
    features = token_features(
        sentences, backbones.bert(folder, sequence_length=24), 24,
        tags=encode_tags(tags, labels, "train"), labels=labels)
    logits = result.model.predict(features.inputs, verbose=0)
    return result.model.loss, logits, features.labels


def _plain(labels, logits):
    return float(keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, ignore_class=-100)(labels, logits))


def test_token_class_weights_change_the_loss(tmp_path, folder):
    """"balanced" weighs each scored token by its gold tag's
    `from_labels` weight over the training tokens' tags."""
    from kerasft.data.class_weights import from_labels
    from kerasft.heads import TokenCrossentropy

    loss, logits, labels = _trained_loss(tmp_path, folder, "balanced",
                                         class_weight="balanced")
    weights = from_labels(labels[labels != -100], 5)
    assert isinstance(loss, TokenCrossentropy)
    assert loss.class_weight == pytest.approx([weights[i] for i in range(5)])
    assert len(set(loss.class_weight)) > 1  # "O" is common, entities rare
    assert float(loss(labels, logits)) != pytest.approx(_plain(labels, logits),
                                                        rel=1e-3)


def test_token_class_weights_by_tag_name_or_id():
    import types

    from kerasft.recipes.configs import TokenClassificationConfig
    from kerasft.recipes.token_classification import _tag_weights

    run = types.SimpleNamespace(log=lambda message: None)
    labels = ["O", "B-LOC", "I-LOC"]
    token_labels = np.array([[-100, 0, 0, 1, 2, -100]])
    config = TokenClassificationConfig(train="x", class_weight='{"B-LOC": 3, "2": 0.5}')
    assert _tag_weights(run, config, labels, token_labels) == [1.0, 3.0, 0.5]
    config = TokenClassificationConfig(train="x", class_weight="balanced")
    assert _tag_weights(run, config, labels, token_labels) == pytest.approx(
        [4 / 6, 4 / 3, 4 / 3])
    with pytest.raises(ValueError, match="'B-PER' is neither a class name"):
        _tag_weights(run, TokenClassificationConfig(
            train="x", class_weight={"B-PER": 2.0}), labels, token_labels)


@pytest.mark.parametrize("options", [{"label_smoothing": 0.2}, {"loss": "focal"}])
def test_token_smoothing_and_focal_change_the_loss(tmp_path, folder, options):
    from kerasft.heads import TokenCrossentropy

    loss, logits, labels = _trained_loss(tmp_path, folder, "loss", **options)
    assert isinstance(loss, TokenCrossentropy) and loss.class_weight is None
    assert loss.label_smoothing == options.get("label_smoothing", 0.0)
    assert loss.focal == ("loss" in options)
    value, plain = float(loss(labels, logits)), _plain(labels, logits)
    assert value != pytest.approx(plain, rel=1e-3)
    if loss.focal:
        assert value < plain * 0.25  # alpha 0.25 and (1 - p) ** 2 < 1


@pytest.mark.slow
def test_token_loss_options_survive_model_keras_in_a_fresh_process(tmp_path, folder):
    """~20 s: one run, then a fresh Python that imports TensorFlow."""
    result = _train("token_classification", tmp_path, folder, "saved",
                    class_weight="balanced", label_smoothing=0.1, loss="focal")
    config = result.model.loss.get_config()
    assert len(config["class_weight"]) == 5 and config["focal"]
    code = (
        "import json, sys, keras, kerasft\n"
        "m = keras.models.load_model(sys.argv[1])\n"
        "print(json.dumps(m.loss.get_config()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, os.path.join(result.output_dir, "model.keras")],
        capture_output=True, text=True, check=True,
    ).stdout.strip().splitlines()[-1]
    assert json.loads(out) == json.loads(json.dumps(config))


def test_token_curriculum_first_epoch_sees_only_the_easiest_sentences(
        tmp_path, folder, monkeypatch):
    from kerasft import backbones
    from kerasft.data.conll import token_features
    from kerasft.recipes import _curriculum

    sentences, tags = ner_sentences(16, seed=5)
    seen = {}
    training_data = _curriculum.training_data

    def spy(run, config, source, raw, loss):
        seen["raw"] = raw
        seen["out"] = training_data(run, config, source, raw, loss)
        return seen["out"]

    monkeypatch.setattr(_curriculum, "training_data", spy)
    # Difficulty per sentence: its position (the first four are easiest).
    recipes.token_classification(
        train=(sentences, tags), validation=(sentences[:4], tags[:4]),
        backbone=folder, max_length=16, epochs=1, output_dir=str(tmp_path / "c"),
        curriculum={"pacing": "linear", "start_fraction": 0.25, "ramp_epochs": 2},
        difficulty=lambda s, t: np.arange(len(s), dtype=float), **FAST)
    assert seen["raw"] == (sentences, tags)
    dataset, (curriculum,) = seen["out"]
    curriculum.on_epoch_begin(0)
    rows = {tuple(r) for x, _ in dataset for r in x["token_ids"].numpy()}
    ids = token_features(sentences, backbones.bert(folder, sequence_length=16),
                         16).inputs["token_ids"]
    easiest = {tuple(r) for r in ids[:4]}
    assert rows == easiest and not easiest & {tuple(r) for r in ids[4:]}
