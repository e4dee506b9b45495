"""Image recipes: real tiny runs, their outputs, and fail-fast input checks."""

import csv
import json
import os

import keras
import numpy as np
import pytest

from kerasft import recipes
from kerasft.recipes.image_classification import stages
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
        epochs=3, head_epochs=1, unfreeze_groups=1, learning_rate=1e-2,
        output_dir=out, **FAST,
    )
    files = set(os.listdir(out))
    assert {"config.json", "metrics.json", "history.csv", "model.keras",
            "training_curves.png", "confusion_matrix.png", "labels.json",
            "logs"} <= files
    assert "backup" not in files  # removed once the run is complete
    with open(os.path.join(out, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics == result.metrics
    assert 0 <= metrics["val_accuracy"] <= 1 and "val_f1" in metrics
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
    x, y = tiny_images(8)
    with pytest.raises(ValueError, match="holds another run"):
        recipes.image_classification(
            train=(x, y), backbone=tiny_backbone(), output_dir=str(out), **FAST
        )
