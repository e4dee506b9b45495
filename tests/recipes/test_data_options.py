"""Subsets, Trainer-style schedules and curricula across the recipes
(`kerasft.recipes._subsets`, `_text_options`, `_curriculum`)."""

import json
import os
import types

import keras
import numpy as np
import pytest

from kerasft import cli, recipes
from kerasft.recipes import _curriculum, _subsets
from kerasft.recipes.configs import TextClassificationConfig
from tests.fixtures.tiny_hf import make_tiny_folder
from tests.recipes.ner_data import ner_sentences
from tests.recipes.test_question_answering import _long_squad

FAST = dict(precision="float32", strategy="default", verbose=0)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder, _ = make_tiny_folder(str(tmp_path_factory.mktemp("opts") / "bert"))
    return folder


def _rate_and_steps(model):
    optimizer = model.optimizer
    rate = getattr(optimizer, "inner_optimizer", optimizer).learning_rate
    return float(rate), int(optimizer.iterations)


# === Subsets ===


def test_subsets_without_labels_are_random_and_seeded():
    keep = _subsets.subset_indices(50, 10, seed=3)
    assert len(set(keep)) == 10 and list(keep) == sorted(keep)
    np.testing.assert_array_equal(keep, _subsets.subset_indices(50, 10, seed=3))
    assert not np.array_equal(keep, _subsets.subset_indices(50, 10, seed=4))
    assert len(_subsets.subset_indices(5, None, 0)) == 5


def test_token_classification_subsets_and_cosine_warmup(tmp_path, folder):
    sentences, tags = ner_sentences(30, seed=0)
    result = recipes.token_classification(
        train=(sentences, tags), validation=(sentences, tags), backbone=folder,
        epochs=1, batch_size=4, max_length=16, max_train_samples=10,
        max_eval_samples=6, lr_schedule="cosine", warmup_ratio=0.2,
        output_dir=str(tmp_path / "ner"), **FAST,
    )
    rate, steps = _rate_and_steps(result.model)
    assert steps == 3  # 10 sentences / batch 4
    assert rate == pytest.approx(0.0, abs=1e-12)  # cosine ends at 0
    config = result.model.optimizer.get_config()
    assert "WarmupSchedule" in str(config["learning_rate"])
    with open(os.path.join(tmp_path, "ner", "predictions.conll")) as f:
        written = [s for s in f.read().strip().split("\n\n") if s]
    assert len(written) == 6  # the evaluation subset


def test_question_answering_subsets_and_linear_schedule_from_the_cli(
        tmp_path, folder):
    data = _long_squad(tmp_path / "v2.json", 6, seed=2, unanswerable=2)
    out = str(tmp_path / "qa")
    args = ["question-answering", "--train", data, "--val", data,
            "--backbone", folder, "--epochs", "1", "--batch-size", "8",
            "--max-length", "32", "--doc-stride", "8",
            "--version-2-with-negative", "--max-train-samples", "4",
            "--max-eval-samples", "3", "--lr-schedule", "linear",
            "--warmup-ratio", "0.5", "--precision", "float32",
            "--strategy", "default", "--verbose", "0", "--output", out]
    assert cli.main(args) == 0
    with open(os.path.join(out, "metrics.json")) as f:
        metrics = json.load(f)
    # 3 of the 6 questions, stratified: 2 answerable, 1 not.
    assert metrics["val_has_ans_total"] == 2 and metrics["val_no_ans_total"] == 1
    with open(os.path.join(out, "config.json")) as f:
        config = json.load(f)
    assert config["lr_schedule"] == "linear" and config["warmup_ratio"] == 0.5
    model = keras.models.load_model(os.path.join(out, "model.keras"))
    assert "WarmupSchedule" in str(model.optimizer.get_config()["learning_rate"])


# === Curriculum ===


def test_curriculum_options_are_checked():
    with pytest.raises(ValueError, match="`curriculum` needs `difficulty`"):
        TextClassificationConfig(curriculum="root")
    with pytest.raises(ValueError, match="set `curriculum` too"):
        TextClassificationConfig(difficulty="runs/first")
    with pytest.raises(ValueError, match=r"Unknown `curriculum` key\(s\) \['speed'\]"):
        TextClassificationConfig(curriculum={"speed": 2}, difficulty="x")
    with pytest.raises(ValueError, match="`start_fraction` must be in"):
        TextClassificationConfig(
            curriculum='{"pacing": "step", "start_fraction": 0}', difficulty="x")
    TextClassificationConfig(curriculum="none", difficulty="none")  # CLI spelling
    assert _curriculum.pacing_options("root") == {
        "pacing": "root", "start_fraction": 0.2, "ramp_epochs": 5}


class _FakeRun:
    """What `_curriculum.training_data` reads of a `Run`."""

    def __init__(self, directory):
        self.backup_dir = os.path.join(directory, "backup")
        self.messages = []

    def log(self, message):
        self.messages.append(message)

    def batched(self, dataset):
        return dataset.batch(4)


def test_early_epochs_see_only_the_easiest_examples(tmp_path):
    x = np.arange(20, dtype="float32")[:, None]
    y = np.arange(20) % 2
    config = TextClassificationConfig(
        curriculum={"pacing": "linear", "start_fraction": 0.25, "ramp_epochs": 2},
        difficulty=lambda inputs, labels: -np.asarray(inputs, float)[:, 0],
    )
    run, source = _FakeRun(str(tmp_path)), types.SimpleNamespace(elements=(x, y))
    dataset, (curriculum,) = _curriculum.training_data(
        run, config, source, (x, y), "sparse_categorical_crossentropy")

    def seen(epoch):
        curriculum.on_epoch_begin(epoch)
        return np.concatenate([b[0].numpy()[:, 0] for b in dataset])

    first = seen(0)
    assert len(first) == 20 and set(first) == {15, 16, 17, 18, 19}  # hardest = 0
    assert set(seen(1)) == set(range(7, 20))  # ceil(0.625 x 20) = 13
    assert set(seen(2)) == set(range(20))
    np.testing.assert_array_equal(seen(0), first)  # a function of the epoch
    # The scores are kept for a resumed run: a changed function is not read.
    assert os.path.exists(os.path.join(run.backup_dir, _curriculum.SCORES_FILE))
    config2 = TextClassificationConfig(curriculum="linear", difficulty=lambda *a: 1 / 0)
    _curriculum.training_data(run, config2, source, (x, y), None)


def _texts(n, seed):
    rng = np.random.default_rng(seed)
    filler = ["a", "the", "film", "book", "movie", "very"]
    labels = np.arange(n) % 2
    texts = [f"{rng.choice(filler)} {'good' if y else 'bad'} {rng.choice(filler)}"
             for y in labels]
    return texts, labels


class _Crash(Exception):
    pass


class _CrashAtEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise _Crash(f"crash at epoch {epoch}")


def test_text_curriculum_resumes_like_an_uninterrupted_run(tmp_path, folder):
    texts, labels = _texts(24, 0)
    common = dict(
        train=(texts, labels), validation=(texts, labels), backbone=folder,
        epochs=3, batch_size=8, max_length=8, learning_rate=3e-3,
        curriculum={"pacing": "step", "start_fraction": 0.25, "ramp_epochs": 2},
        difficulty=_text_length, **FAST,
    )
    straight = recipes.text_classification(output_dir=str(tmp_path / "a"), **common)
    crashed = str(tmp_path / "b")
    with pytest.raises(_Crash):
        recipes.text_classification(
            output_dir=crashed, callbacks=[_CrashAtEpoch(2)], **common)
    resumed = recipes.text_classification(output_dir=crashed, **common)
    np.testing.assert_allclose(resumed.history["loss"], straight.history["loss"],
                               rtol=1e-4)
    for a, b in zip(straight.model.weights, resumed.model.weights):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(b), keras.ops.convert_to_numpy(a),
            rtol=1e-4, atol=1e-6, err_msg=a.path)
    with open(os.path.join(crashed, "config.json")) as f:
        assert json.load(f)["difficulty"] == {
            "function": f"{__name__}._text_length"}


def _text_length(texts, labels):
    return [len(t) for t in texts]


def test_cli_curriculum_ranked_by_a_first_run(tmp_path, folder, capsys):
    texts, labels = _texts(24, 1)
    csv = tmp_path / "train.csv"
    with open(csv, "w") as f:
        f.write("text,label\n" + "".join(
            f"{t},{'pos' if y else 'neg'}\n" for t, y in zip(texts, labels)))
    common = ["text-classification", "--train", str(csv), "--backbone", folder,
              "--batch-size", "8", "--max-length", "8", "--precision", "float32",
              "--strategy", "default", "--verbose", "1"]
    first = str(tmp_path / "first")
    assert cli.main(common + ["--epochs", "1", "--output", first]) == 0
    out = str(tmp_path / "curriculum")
    args = common + ["--epochs", "2", "--output", out, "--curriculum",
                     '{"pacing": "root", "start_fraction": 0.5, "ramp_epochs": 2}',
                     "--difficulty", first]
    assert cli.main(args) == 0
    assert "Curriculum (root): epoch 0 trains on the easiest 50%" in (
        capsys.readouterr().out)
    with open(os.path.join(out, "config.json")) as f:
        config = json.load(f)
    assert config["difficulty"] == first
    assert "backup" not in os.listdir(out)


def test_text_curriculum_under_a_mirrored_strategy(tmp_path, folder):
    texts, labels = _texts(16, 2)
    result = recipes.text_classification(
        train=(texts, labels), validation=(texts, labels), backbone=folder,
        epochs=2, batch_size=4, max_length=8, curriculum="step",
        difficulty=np.arange(16.0), output_dir=str(tmp_path / "m"),
        precision="float32", strategy="mirrored", verbose=0,
    )
    # 16 examples a curriculum epoch, global batch 8: 2 steps per epoch.
    assert int(keras.ops.convert_to_numpy(result.model.optimizer.iterations)) == 4
    assert "val_accuracy" in result.metrics


def test_object_detection_subsets_are_stratified_rows(tmp_path, capsys):
    from tests.recipes.test_object_detection import _boxes_csv
    from tests.recipes.tiny import tiny_backbone

    path = _boxes_csv(str(tmp_path / "data"), n=12)
    result = recipes.object_detection(
        train=path, validation=path, backbone=tiny_backbone(), epochs=1,
        conv_filters=(8,), batch_size=2, mode="feature_extraction",
        max_train_samples=6, max_eval_samples=4, precision="float32",
        strategy="default", verbose=1, output_dir=str(tmp_path / "run"),
    )
    assert int(result.model.optimizer.iterations) == 3  # 6 rows / batch 2
    out = capsys.readouterr().out
    assert f"Using 6 of 12 rows of {path}" in out
    assert f"Using 4 of 12 rows of {path}" in out
    assert "val_mean_iou" in result.metrics


def _fake_run(seed=0, batch=4):
    logged = []
    run = types.SimpleNamespace(
        global_batch=batch, config=types.SimpleNamespace(seed=seed),
        epoch_variable=None, on_tpu=False, log=logged.append,
    )
    return run, logged


def _png_classes(root, n):
    from tests.recipes.tiny import tiny_images

    x, y = tiny_images(n, size=16)
    for i, (image, label) in enumerate(zip(x, y)):
        os.makedirs(os.path.join(root, f"class_{label}"), exist_ok=True)
        keras.utils.save_img(os.path.join(root, f"class_{label}", f"{i}.png"),
                             np.clip(image, 0, 255).astype("uint8"))
    return root


@pytest.mark.parametrize("source", ["arrays", "folder", "csv"])
def test_image_subsets_are_stratified_after_the_split(tmp_path, source):
    from kerasft.recipes import _data
    from tests.recipes.tiny import tiny_images

    if source == "arrays":
        value = tiny_images(30, size=16)
    else:
        value = _png_classes(str(tmp_path / "images"), 30)
    if source == "csv":
        rows = [f"class_{i % 3}/{i}.png,class_{i % 3}" for i in range(30)]
        value = os.path.join(value, "train.csv")
        with open(value, "w") as f:
            f.write("filename,label\n" + "\n".join(rows) + "\n")
    run, logged = _fake_run()
    read = dict(image_size=(16, 16), validation_split=0.2, shuffle=True)
    train, val = _data.images(value, run, max_samples=12, max_held_out=3,
                              **read)
    # 30 -> 24 training / 6 held out, then 12 and 3 of them, per class.
    assert train.class_counts == (4, 4, 4) and val.class_counts == (1, 1, 1)
    assert "Using 12 of 24 training images" in logged[0]
    assert "Using 3 of 6 validation images" in logged[1]
    # The held-out part does not depend on the subset sizes.
    _, whole = _data.images(value, run, **read)
    if source != "arrays":
        assert set(val.file_paths) < set(whole.file_paths)
    again, _ = _data.images(value, _fake_run()[0], max_samples=12, **read)
    if source != "arrays":
        assert sorted(again.file_paths) == sorted(train.file_paths)


def test_image_classification_subsets_in_every_mode(tmp_path, capsys):
    from tests.recipes.tiny import tiny_backbone, tiny_images

    x, y = tiny_images(30, size=16)
    for mode in ("feature_extraction", "full"):
        result = recipes.image_classification(
            train=(x, y), validation=(x, y), backbone=tiny_backbone(),
            mode=mode, epochs=1, head_epochs=0, batch_size=4,
            max_train_samples=12,
            max_eval_samples=6, precision="float32", strategy="default",
            verbose=1, output_dir=str(tmp_path / mode),
        )
        assert int(result.model.optimizer.iterations) == 3  # 12 / batch 4
        out = capsys.readouterr().out
        assert "Using 12 of 30 training images" in out
        assert "Using 6 of 30 validation images" in out
        assert "val_accuracy" in result.metrics


def test_cli_image_subsets_from_a_folder(tmp_path, capsys):
    from tests.recipes.tiny import tiny_model

    train = _png_classes(str(tmp_path / "train"), 12)
    backbone = str(tmp_path / "tiny.keras")
    tiny_model().save(backbone)
    out = str(tmp_path / "out")
    code = cli.main(
        ["partial-fine-tuning", "--train", train, "--val", train,
         "--backbone", backbone, "--image-size", "16", "--epochs", "1",
         "--head-epochs", "0", "--batch-size", "3", "--max-train-samples", "6",
         "--max-eval-samples", "3", "--precision", "float32",
         "--strategy", "default", "--verbose", "1", "--output", out]
    )
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "Using 6 of 12 training images" in printed.out
    assert "Using 3 of 12 validation images" in printed.out
    with open(os.path.join(out, "config.json")) as f:
        saved = json.load(f)
    assert (saved["max_train_samples"], saved["max_eval_samples"]) == (6, 3)
    model = keras.models.load_model(os.path.join(out, "model.keras"))
    assert int(model.optimizer.iterations) == 2  # 6 images / batch 3


@pytest.mark.parametrize("source", ["arrays", "dataset"])
def test_image_curriculum_restricts_early_epochs_to_easy_images(tmp_path,
                                                                source):
    import tensorflow as tf

    from kerasft.recipes import _data
    from kerasft.recipes._classification import curriculum_data

    x = np.repeat(np.arange(20.0), 16 * 16 * 3).reshape(20, 16, 16, 3)
    y = np.arange(20) % 2
    run, _ = _fake_run()
    run.backup_dir = str(tmp_path / "backup")
    config = types.SimpleNamespace(
        seed=0, augment=None,
        difficulty=lambda images, labels: images[:, 0, 0, 0],
        curriculum={"pacing": "linear", "start_fraction": 0.25, "ramp_epochs": 2},
    )
    data = (x, y) if source == "arrays" else (
        tf.data.Dataset.from_tensor_slices((x, y)).batch(6))
    ordered = _data.images(data, run, (16, 16), shuffle=False)
    dataset, curriculum = curriculum_data(
        run, config, ordered, "int", "sparse_categorical_crossentropy")
    assert dataset.class_names == ordered.class_names and (
        dataset.num_samples == 20)

    def seen(epoch):
        curriculum.on_epoch_begin(epoch)
        return np.concatenate([b[0].numpy()[:, 0, 0, 0] for b in dataset])

    first = seen(0)
    assert len(first) == 20 and set(first) == {0, 1, 2, 3, 4}  # the easiest
    assert set(seen(1)) == set(range(13))  # ceil(0.625 x 20)
    assert set(seen(2)) == set(range(20))
    np.testing.assert_array_equal(seen(0), first)  # a function of the epoch


def test_image_curriculum_resumes_like_an_uninterrupted_run(tmp_path):
    from tests.recipes.tiny import tiny_backbone, tiny_images

    x, y = tiny_images(24, size=16)
    common = dict(
        train=(x, y), validation=(x, y), mode="full", head_epochs=0,
        epochs=3, batch_size=8, augment={"horizontal_flip": True},
        curriculum={"pacing": "step", "start_fraction": 0.25, "ramp_epochs": 2},
        difficulty=np.arange(24.0), **FAST,
    )
    straight = recipes.image_classification(
        output_dir=str(tmp_path / "a"), backbone=tiny_backbone(), **common)
    crashed = str(tmp_path / "b")
    with pytest.raises(_Crash):
        recipes.image_classification(
            output_dir=crashed, backbone=tiny_backbone(),
            callbacks=[_CrashAtEpoch(2)], **common)
    resumed = recipes.image_classification(
        output_dir=crashed, backbone=tiny_backbone(), **common)
    assert int(resumed.model.optimizer.iterations) == 9  # 24 / 8, 3 epochs
    np.testing.assert_allclose(resumed.history["loss"], straight.history["loss"],
                               rtol=1e-4)
    for a, b in zip(straight.model.weights, resumed.model.weights):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(b), keras.ops.convert_to_numpy(a),
            rtol=1e-4, atol=1e-6, err_msg=a.path)


def test_cli_image_curriculum_ranked_by_a_first_run(tmp_path, capsys):
    from tests.recipes.tiny import tiny_model

    train = _png_classes(str(tmp_path / "train"), 12)
    backbone = str(tmp_path / "tiny.keras")
    tiny_model().save(backbone)
    common = ["feature-extraction", "--train", train, "--backbone", backbone,
              "--image-size", "16", "--batch-size", "4", "--precision",
              "float32", "--strategy", "default", "--verbose", "1"]
    first = str(tmp_path / "first")
    assert cli.main(common + ["--epochs", "1", "--output", first]) == 0
    out = str(tmp_path / "curriculum")
    assert cli.main(common + [
        "--epochs", "2", "--output", out, "--max-train-samples", "8",
        "--curriculum", '{"pacing": "root", "start_fraction": 0.5, '
        '"ramp_epochs": 2}', "--difficulty", first]) == 0
    printed = capsys.readouterr().out
    assert "Curriculum (root): epoch 0 trains on the easiest 50%" in printed
    assert "Features are not cached: a curriculum" in printed
    with open(os.path.join(out, "config.json")) as f:
        assert json.load(f)["difficulty"] == first
