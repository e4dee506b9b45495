"""Image recipes: real tiny runs, their outputs, and fail-fast input checks."""

import csv
import json
import os

import keras
import numpy as np
import pytest

from kerasft import recipes
from kerasft.recipes._classification import resolve_class_weight
from kerasft.recipes._stages import stages
from tests.data._folders import BAD_FILES, make_bad_folder
from tests.recipes.tiny import tiny_backbone, tiny_images

FAST = dict(batch_size=16, precision="float32", strategy="default", verbose=0)


def _weights(model, layer):
    layer = model.get_layer("tiny").get_layer(layer)
    return [keras.ops.convert_to_numpy(w) for w in layer.weights]


def test_progressive_run_writes_every_output(tmp_path):
    x, y = tiny_images(48)
    out = str(tmp_path / "run")
    backbone = tiny_backbone()
    before_b1 = _weights_of(backbone, "b1_conv")
    bn_before = _weights_of(backbone, "b2_bn")
    result = recipes.progressive_fine_tuning(
        train=(x, y), validation=(x[:24], y[:24]), backbone=backbone,
        epochs=3, head_epochs=1, unfreeze_groups=1, learning_rate=0.3,
        fine_tune_learning_rate=0.03, output_dir=out, **FAST,
    )
    files = set(os.listdir(out))
    assert {"config.json", "metrics.json", "history.csv", "model.keras",
            "training_curves.png", "confusion_matrix.png", "labels.json",
            "logs"} <= files
    assert "backup" not in files  # removed once the run is complete
    with open(os.path.join(out, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics == result.metrics
    assert metrics["val_accuracy"] > 0.6 and "val_f1" in metrics  # chance: 1/3
    assert len(result.history["loss"]) == 3
    assert os.listdir(os.path.join(out, "logs"))  # TensorBoard event files
    # The stages ran: b1 opened at epoch 2 ("all"), BatchNorm never moved.
    after_b1 = _weights(result.model, "b1_conv")
    assert not np.allclose(after_b1[0], before_b1[0])
    for a, b in zip(_weights(result.model, "b2_bn"), bn_before):
        np.testing.assert_array_equal(a, b)
    # model.keras reloads and predicts the same.
    reloaded = keras.models.load_model(os.path.join(out, "model.keras"))
    np.testing.assert_allclose(
        reloaded.predict(x[:4], verbose=0),
        result.model.predict(x[:4], verbose=0),
        atol=1e-5,
    )


def test_same_config_again_is_complete_and_other_config_refused(tmp_path):
    x, y = tiny_images(32)
    out = str(tmp_path / "run")
    backbone = tiny_backbone()
    start = {n: _weights_of(backbone, n)[0] for n in ("b1_conv", "b2_conv")}
    kwargs = dict(train=(x, y), backbone=backbone, epochs=1, output_dir=out, **FAST)
    first = recipes.feature_extraction(**kwargs)
    for name in ("b1_conv", "b2_conv"):  # the backbone never trained
        np.testing.assert_array_equal(_weights(first.model, name)[0], start[name])
    stamp = os.path.getmtime(os.path.join(out, "model.keras"))
    again = recipes.feature_extraction(**kwargs)  # no training: loaded back
    assert again.history == first.history
    assert os.path.getmtime(os.path.join(out, "model.keras")) == stamp
    with pytest.raises(ValueError, match=r"holds another run .*epochs"):
        recipes.feature_extraction(**{**kwargs, "epochs": 2})
    with pytest.raises(ValueError, match="always uses mode='feature_extraction'"):
        recipes.feature_extraction(**kwargs, mode="full")


# === Learning, through kerasft.data, with unreadable files ===


@pytest.fixture(scope="module")
def bad_folder(tmp_path_factory):
    """Two flat-colour classes (learnable) plus an empty file, a text file,
    a truncated JPEG and a webp in a nested sub-folder."""
    return make_bad_folder(tmp_path_factory.mktemp("bad"), counts=(10, 10))


@pytest.mark.parametrize(
    "recipe, extra",
    [
        ("image_classification", dict(mode="full", head_epochs=2)),
        ("feature_extraction", {}),
        ("partial_fine_tuning", dict(head_epochs=2, unfreeze_groups=1)),
        ("progressive_fine_tuning", dict(head_epochs=2, unfreeze_groups=1)),
        ("full_fine_tuning", dict(head_epochs=2, augment={"horizontal_flip": True})),
    ],
)
def test_every_image_recipe_trains_and_reports_skipped_files(
    bad_folder, tmp_path, recipe, extra
):
    out = str(tmp_path / "run")
    result = getattr(recipes, recipe)(
        train=bad_folder, validation=bad_folder, backbone=tiny_backbone(),
        epochs=5, learning_rate=0.3, fine_tune_learning_rate=0.03,
        output_dir=out, **{**FAST, "batch_size": 8}, **extra,
    )
    # train and validation each skip the same three files.
    names = sorted(os.path.basename(p) for p in result.skipped_files)
    assert names == sorted(BAD_FILES * 2)
    with open(os.path.join(out, "metrics.json")) as f:
        assert sorted(json.load(f)["skipped_files"]) == sorted(result.skipped_files)
    assert result.metrics["val_accuracy"] > 0.8  # chance: 11/21
    # model.keras takes raw images, whatever trained the head.
    reloaded = keras.models.load_model(os.path.join(out, "model.keras"))
    assert reloaded.input_shape == (None, 16, 16, 3)


def test_csv_source_with_bad_files_and_validation_split(bad_folder, tmp_path):
    rows = [["filename", "label"]]
    for root, _, files in os.walk(bad_folder):
        for name in sorted(files):
            path = os.path.join(root, name)
            label = "red" if "class_0" in path else "green"
            rows.append([os.path.relpath(path, str(tmp_path)), label])
    table = tmp_path / "images.csv"
    with open(table, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    result = recipes.image_classification(
        train=str(table), validation_split=0.25, backbone=tiny_backbone(),
        mode="feature_extraction", epochs=5, learning_rate=0.3,
        output_dir=str(tmp_path / "run"), **{**FAST, "batch_size": 8},
    )
    assert sorted(os.path.basename(p) for p in result.skipped_files) == BAD_FILES
    assert result.metrics["val_accuracy"] > 0.7
    with open(tmp_path / "run" / "labels.json") as f:
        assert json.load(f) == ["green", "red"]


def test_feature_extraction_caches_features_unless_augmenting(
    bad_folder, tmp_path, capsys
):
    kwargs = dict(train=bad_folder, validation=bad_folder, epochs=4,
                  learning_rate=0.3, precision="float32", strategy="default",
                  batch_size=8, verbose=2)
    cached = recipes.feature_extraction(
        backbone=tiny_backbone(), output_dir=str(tmp_path / "a"), **kwargs)
    log = capsys.readouterr().out
    assert "Caching backbone features (memory)" in log
    assert cached.metrics["val_accuracy"] > 0.8
    # The saved model is the whole model and predicts as the trained one.
    x = np.zeros((2, 16, 16, 3), "float32") + np.array([230, 20, 20], "float32")
    reloaded = keras.models.load_model(str(tmp_path / "a" / "model.keras"))
    np.testing.assert_allclose(
        reloaded.predict(x, verbose=0), cached.model.predict(x, verbose=0),
        atol=1e-5,
    )
    assert reloaded.predict(x, verbose=0).argmax(-1).tolist() == [0, 0]
    on_disk = recipes.feature_extraction(
        backbone=tiny_backbone(), output_dir=str(tmp_path / "d"),
        feature_cache="disk", **kwargs)
    assert "Caching backbone features (disk)" in capsys.readouterr().out
    assert on_disk.metrics["val_accuracy"] > 0.8
    assert "backup" not in os.listdir(tmp_path / "d")  # cache files removed
    recipes.feature_extraction(
        backbone=tiny_backbone(), output_dir=str(tmp_path / "b"),
        augment={"horizontal_flip": True}, **kwargs)
    log = capsys.readouterr().out
    assert log.count("Features are not cached: augmentation") == 1
    assert "Caching backbone features" not in log


def test_cached_feature_extraction_mirrored_matches_one_device(tmp_path):
    """The head trains on cached features under MirroredStrategy (two
    logical CPUs, 2 x 8) as on one device (16): the same loss curve."""
    x, y = tiny_images(48)
    runs = []
    for name, strategy, batch in (("one", "default", 16), ("two", "mirrored", 8)):
        runs.append(recipes.feature_extraction(
            train=(x, y), validation=(x[:24], y[:24]), backbone=tiny_backbone(),
            epochs=3, learning_rate=0.3, dropout=0.0, batch_size=batch,
            lr_scaling="none", strategy=strategy, precision="float32",
            verbose=0, output_dir=str(tmp_path / name),
        ))
    assert runs[1].model.distribute_strategy.num_replicas_in_sync == 2
    np.testing.assert_allclose(
        runs[1].history["loss"], runs[0].history["loss"], rtol=1e-4)
    assert runs[1].metrics["val_accuracy"] == runs[0].metrics["val_accuracy"]


def test_imbalanced_options_train(tmp_path):
    # 3:1 imbalance; focal loss, label smoothing and balanced weights.
    x, y = tiny_images(64, classes=2)
    keep = np.concatenate([np.where(y == 0)[0], np.where(y == 1)[0][:11]])
    x, y = x[keep], y[keep]
    result = recipes.feature_extraction(
        train=(x, y), validation=(x, y), backbone=tiny_backbone(), epochs=6,
        learning_rate=0.3, loss="focal", label_smoothing=0.1,
        class_weight="balanced", output_dir=str(tmp_path / "r"), **FAST,
    )
    assert result.metrics["val_accuracy"] > 0.8
    assert result.metrics["val_recall"] > 0.75  # macro: the rare class too


def test_class_weight_resolution():
    from sklearn.utils.class_weight import compute_class_weight

    class Train:
        class_names = ("cat", "dog", "eel")
        class_counts = (30, 10, 5)

    balanced = resolve_class_weight("balanced", Train)
    y = np.repeat([0, 1, 2], Train.class_counts)
    expected = compute_class_weight("balanced", classes=np.arange(3), y=y)
    np.testing.assert_allclose([balanced[i] for i in range(3)], expected)
    assert resolve_class_weight({"dog": 3}, Train) == {0: 1.0, 1: 3.0, 2: 1.0}
    assert resolve_class_weight('{"2": 0.5}', Train) == {0: 1.0, 1: 1.0, 2: 0.5}
    with pytest.raises(ValueError, match="neither a class name nor a class id"):
        resolve_class_weight({"cow": 2}, Train)
    with pytest.raises(ValueError, match="class_weight"):
        recipes.ImageClassificationConfig(class_weight="heavy")


def _weights_of(backbone, layer):
    return [
        keras.ops.convert_to_numpy(w)
        for w in backbone.model.get_layer(layer).weights
    ]


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("feature_extraction", (None, None)),
        ("partial", ({0: 0, 2: 1}, {0: 1e-3, 2: 1e-4})),
        ("full", ({0: 0, 2: "all"}, {0: 1e-3, 2: 1e-4})),
        ("progressive", ({0: 0, 2: 1, 6: "all"}, {0: 1e-3, 2: 1e-4, 6: 1e-5})),
    ],
)
def test_stage_plans(mode, expected):
    config = recipes.ImageClassificationConfig(
        mode=mode, epochs=10, head_epochs=2, unfreeze_groups=1
    )
    schedule, rates = stages(config, num_groups=3)
    assert schedule == expected[0]
    if rates is not None:
        assert rates == pytest.approx(expected[1])


# === Fail fast, before any training ===


def test_unknown_backbone_lists_known(tmp_path):
    x, y = tiny_images(8)
    with pytest.raises(ValueError, match=r"Unknown backbone 'resnet5'.*resnet50"):
        recipes.image_classification(
            train=(x, y), backbone="resnet5", output_dir=str(tmp_path / "r"), **FAST
        )
    assert not os.path.exists(tmp_path / "r" / "config.json")


def test_image_size_too_small(tmp_path):
    x, y = tiny_images(8)
    with pytest.raises(ValueError, match=r"image_size`=16 is too small.*32x32"):
        recipes.image_classification(
            train=(x, y), backbone="mobilenetv2", weights=None, image_size=16,
            output_dir=str(tmp_path / "r"), **FAST,
        )


def test_labels_outside_num_classes(tmp_path):
    x, y = tiny_images(8)
    with pytest.raises(ValueError, match=r"Validation labels \[5\] are outside"):
        recipes.image_classification(
            train=(x, y), validation=(x[:2], np.array([0, 5])), num_classes=3,
            backbone=tiny_backbone(), output_dir=str(tmp_path / "r"), **FAST,
        )


def test_csv_without_named_columns(tmp_path):
    path = tmp_path / "train.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([["file", "class"], ["a.png", "cat"]])
    with pytest.raises(ValueError, match=r"has no column\(s\) \['filename', 'label'\]"):
        recipes.image_classification(
            train=str(path), backbone=tiny_backbone(), output_dir=str(tmp_path / "r"),
            **FAST,
        )
    with pytest.raises(ValueError, match=r"no column\(s\) \['filename', 'xmin'"):
        recipes.object_detection(
            train=str(path), backbone=tiny_backbone(), output_dir=str(tmp_path / "d"),
            **FAST,
        )


def test_folder_of_another_run(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"epochs": 99}))
    # It completed an epoch (a folder without one is replaced: issue 15).
    (out / "backup").mkdir()
    (out / "backup" / "ckpt-00001.weights.h5").write_bytes(b"x")
    x, y = tiny_images(8)
    with pytest.raises(ValueError, match="holds another run"):
        recipes.image_classification(
            train=(x, y), backbone=tiny_backbone(), output_dir=str(out), **FAST
        )
