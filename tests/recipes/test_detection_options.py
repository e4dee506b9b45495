"""object_detection (both kinds) honours its config's options:
`validation_split` holds whole training images out when no validation is
given (seeded, disjoint, subsets taken after), tiny data is refused with
one line, `lr_schedule` gets the run's step count, and mode="partial"
keeps the lower backbone groups bit-identical."""

import csv
import os
import types

import keras
import numpy as np
import pytest

from kerasft import recipes
from kerasft.recipes import _box_splits
from tests.recipes.detection_tiny import SMALL_HEAD, tiny_detection_backbone
from tests.recipes.test_object_detection import _boxes_csv
from tests.recipes.tiny import tiny_backbone

FAST = dict(precision="float32", strategy="default", verbose=1, epochs=1)
SINGLE = dict(conv_filters=(8,), batch_size=4, **FAST)
RETINANET = dict(image_size=32, batch_size=4, **{**SMALL_HEAD, "fpn_filters": 8,
                                                 "head_filters": 8}, **FAST)


def _fake(seed=0, **options):
    """A `(run, config, logged)` for `_box_splits.read_splits`."""
    logged = []
    config = types.SimpleNamespace(**{
        "validation": None, "test": None, "validation_split": 0.1,
        "max_train_samples": None, "max_eval_samples": None, "seed": seed,
        **options,
    })
    run = types.SimpleNamespace(config=config, log=logged.append)
    return run, config, logged


def _many_boxes_csv(root, n):
    """`n` 32x32 images with 1-3 boxes each (a CSV row per box)."""
    from tests.data import detection_shapes as shapes

    items = shapes.make_images(root, n, seed=5, size=32, min_side=8, max_side=14)
    return shapes.write_csv(root, items)


def _rows_per_image(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    counts = {}
    for row in rows:
        name = os.path.basename(row["filename"])
        counts[name] = counts.get(name, 0) + 1
    return counts


def test_hold_out_sizes_disjoint_seeded_and_stratified(tmp_path):
    path = _boxes_csv(str(tmp_path / "data"), n=20)
    run, config, logged = _fake(train=path, validation_split=0.25)
    splits = _box_splits.read_splits(run, config)
    train, validation = splits["train"], splits["validation"]
    assert (len(train), len(validation)) == (15, 5)
    assert not set(train.paths) & set(validation.paths)
    assert len(set(train.paths) | set(validation.paths)) == 20
    # Stratified: one box per image, two alternating classes.
    counts = np.bincount([int(l[0]) for l in validation.labels], minlength=2)
    assert sorted(counts) == [2, 3]
    assert logged == ["Holding out 5 of 20 training images for validation "
                      "(validation_split=0.25)."]
    again = _box_splits.read_splits(*_fake(train=path, validation_split=0.25)[:2])
    assert again["validation"].paths == validation.paths
    other = _box_splits.read_splits(*_fake(1, train=path, validation_split=0.25)[:2])
    assert other["validation"].paths != validation.paths


def test_every_box_of_an_image_stays_on_its_side(tmp_path):
    path = _many_boxes_csv(str(tmp_path / "data"), 10)
    per_image = _rows_per_image(path)
    assert max(per_image.values()) > 1  # the test needs several boxes
    run, config, _ = _fake(train=path, validation_split=0.3)
    splits = _box_splits.read_splits(run, config)
    assert (len(splits["train"]), len(splits["validation"])) == (7, 3)
    for part in (splits["train"], splits["validation"]):
        for file, boxes in zip(part.paths, part.boxes):
            assert len(boxes) == per_image[os.path.basename(file)]


def test_subsets_are_taken_after_the_hold_out(tmp_path):
    path = _boxes_csv(str(tmp_path / "data"), n=20)
    whole = _box_splits.read_splits(*_fake(train=path, validation_split=0.25)[:2])
    run, config, logged = _fake(train=path, validation_split=0.25,
                                max_train_samples=6, max_eval_samples=2)
    part = _box_splits.read_splits(run, config)
    assert (len(part["train"]), len(part["validation"])) == (6, 2)
    # The held-out images do not depend on the subset sizes.
    assert set(part["validation"].paths) <= set(whole["validation"].paths)
    assert set(part["train"].paths) <= set(whole["train"].paths)
    assert logged[1:] == [
        f"Using 6 of 15 train images of {path} (max_train_samples / "
        "max_eval_samples subset).",
        f"Using 2 of 5 validation images held out of {path} "
        "(max_train_samples / max_eval_samples subset).",
    ]


def test_given_validation_or_zero_split_holds_nothing_out(tmp_path):
    path = _boxes_csv(str(tmp_path / "data"), n=8)
    for options in ({"validation": path}, {"validation_split": 0.0}):
        run, config, logged = _fake(train=path, **options)
        splits = _box_splits.read_splits(run, config)
        assert len(splits["train"]) == 8
        assert not any("Holding out" in line for line in logged)


def test_tiny_data(tmp_path):
    """Four images: one held out, three train; one image: refused, naming
    the two ways on."""
    path = _boxes_csv(str(tmp_path / "four"), n=4)
    splits = _box_splits.read_splits(*_fake(train=path)[:2])
    assert (len(splits["train"]), len(splits["validation"])) == (3, 1)
    one = _boxes_csv(str(tmp_path / "one"), n=1)
    with pytest.raises(ValueError, match=r"validation_split=0.1 needs at least "
                       r"2 training images .* has 1\. Pass `validation` data, "
                       r"or validation_split=0"):
        _box_splits.read_splits(*_fake(train=one)[:2])
    run, config, _ = _fake(train=one, validation_split=0.0)
    assert len(_box_splits.read_splits(run, config)["train"]) == 1
    two = _boxes_csv(str(tmp_path / "two"), n=2)
    with pytest.raises(ValueError, match="leaves no training data"):
        _box_splits.read_splits(*_fake(train=two, validation_split=0.9)[:2])


def test_single_box_run_reports_validation_without_val(tmp_path, capsys):
    path = _boxes_csv(str(tmp_path / "data"), n=4)
    result = recipes.object_detection(
        train=path, backbone=tiny_backbone(), mode="feature_extraction",
        output_dir=str(tmp_path / "run"), **SINGLE)
    assert "val_mean_iou" in result.metrics and "val_loss" in result.metrics
    assert int(result.model.optimizer.iterations) == 1  # 3 images, batch 4
    assert ("Holding out 1 of 4 training images for validation "
            "(validation_split=0.1).") in capsys.readouterr().out
    one = _boxes_csv(str(tmp_path / "one"), n=1)
    with pytest.raises(ValueError, match="needs at least 2 training images"):
        recipes.object_detection(train=one, backbone=tiny_backbone(),
                                 output_dir=str(tmp_path / "one_run"), **SINGLE)
    assert not os.path.exists(str(tmp_path / "one_run" / "model.keras"))


def test_retinanet_run_reports_validation_without_val(tmp_path, capsys):
    path = _many_boxes_csv(str(tmp_path / "data"), 6)
    result = recipes.object_detection(
        train=path, backbone=tiny_detection_backbone(32), mode="feature_extraction",
        output_dir=str(tmp_path / "run"), **RETINANET)
    assert "val_map" in result.metrics and "val_loss" in result.metrics
    assert int(result.model.optimizer.iterations) == 2  # 5 images, batch 4
    assert ("Holding out 1 of 6 training images for validation "
            "(validation_split=0.1).") in capsys.readouterr().out
    assert os.path.exists(str(tmp_path / "run" / "validation_boxes.png"))


def _weights(model, prefix):
    """`{name: [arrays]}` of the layers whose names start with `prefix`."""
    return {layer.name: [np.array(w) for w in layer.get_weights()]
            for layer in model._flatten_layers(include_self=False)
            if layer.name.startswith(prefix) and layer.get_weights()}


def _assert_groups(model, fresh, same, changed):
    for prefix in same:
        assert _weights(fresh, prefix), prefix
        for name, weights in _weights(fresh, prefix).items():
            for a, b in zip(weights, _weights(model, prefix)[name]):
                np.testing.assert_array_equal(a, b, err_msg=name)
    for prefix in changed:
        trained = _weights(model, prefix)
        assert any(not np.array_equal(a, b)
                   for name, weights in _weights(fresh, prefix).items()
                   for a, b in zip(weights, trained[name])), prefix


def test_single_box_partial_keeps_lower_groups_bit_identical(tmp_path):
    path = _boxes_csv(str(tmp_path / "data"), n=8)
    result = recipes.object_detection(
        train=path, backbone=tiny_backbone(), mode="partial", head_epochs=1,
        unfreeze_groups=1, validation_split=0.0,
        **{**SINGLE, "epochs": 2, "learning_rate": 0.05,
           "fine_tune_learning_rate": 0.05},
        output_dir=str(tmp_path / "run"))
    _assert_groups(result.model, tiny_backbone().model, same=["b1_"],
                   changed=["b2_conv"])


def test_retinanet_partial_keeps_lower_groups_bit_identical(tmp_path):
    path = _many_boxes_csv(str(tmp_path / "data"), 8)
    result = recipes.object_detection(
        train=path, backbone=tiny_detection_backbone(32), mode="partial",
        head_epochs=1, unfreeze_groups=2, validation_split=0.0,
        **{**RETINANET, "epochs": 2, "learning_rate": 0.01,
           "fine_tune_learning_rate": 0.01},
        output_dir=str(tmp_path / "run"))
    _assert_groups(result.model, tiny_detection_backbone(32).model,
                   same=["b0_", "b1_", "b2_"], changed=["b3_conv", "b4_conv"])


@pytest.mark.parametrize("kind", ["single", "retinanet"])
def test_linear_schedule_decays_over_the_runs_steps(tmp_path, kind):
    """`total_steps` reaches the optimizer: a linear schedule ends at 0
    after every training batch of every epoch."""
    if kind == "single":
        path = _boxes_csv(str(tmp_path / "data"), n=8)
        options = dict(backbone=tiny_backbone(), **SINGLE)
    else:
        path = _many_boxes_csv(str(tmp_path / "data"), 8)
        options = dict(backbone=tiny_detection_backbone(32), **RETINANET)
    result = recipes.object_detection(
        train=path, mode="full", head_epochs=0, lr_schedule="linear",
        validation_split=0.0, **{**options, "epochs": 2},
        output_dir=str(tmp_path / "run"))
    optimizer = result.model.optimizer
    assert int(optimizer.iterations) == 4  # 8 images, batch 4, 2 epochs
    assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == 0.0


def _one_step(tmp_path, kind, name, **options):
    """One full-model update on all 8 images (no hold-out, dropout off)."""
    if kind == "single":
        path = _boxes_csv(str(tmp_path / "data"), n=8)
        base = dict(backbone=tiny_backbone(), **SINGLE, dropout=0.0)
    else:
        path = _many_boxes_csv(str(tmp_path / "data"), 8)
        base = dict(backbone=tiny_detection_backbone(32), **RETINANET)
    options = {**base, "batch_size": 8, "verbose": 0, "seed": 3, **options}
    return recipes.object_detection(
        train=path, mode="full", head_epochs=0, validation_split=0.0,
        output_dir=str(tmp_path / name), **options).model


@pytest.mark.slow  # three runs each (20-50 s on 2 busy cores)
@pytest.mark.parametrize("kind, lowest", [("single", "b1_conv"),
                                          ("retinanet", "b0_conv")])
def test_checkpointing_recomputes_and_layer_decay_slows_low_groups(
        tmp_path, kind, lowest):
    plain = _one_step(tmp_path, kind, "plain")
    remat = _one_step(tmp_path, kind, "remat", gradient_checkpointing=True)
    assert "RematSegment" in {type(l).__name__ for l in remat._flatten_layers()}
    for a, b in zip(plain.get_weights(), remat.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
    decayed = _one_step(tmp_path, kind, "decayed", layer_decay=0.1)
    fresh = (tiny_backbone() if kind == "single"
             else tiny_detection_backbone(32)).model
    start = _weights(fresh, lowest)[lowest][0]
    step = lambda model: np.abs(_weights(model, lowest)[lowest][0] - start).mean()  # noqa: E731
    assert step(decayed) < step(plain) / 10


@pytest.mark.slow  # three runs (about 20 s on 2 busy cores)
def test_single_box_accumulation_equals_the_larger_batch(tmp_path):
    """(RetinaNet's loss is normalised by each batch's positive anchors, so
    there two accumulated batches are not exactly one larger batch.)"""
    one = _one_step(tmp_path, "single", "one")
    two = _one_step(tmp_path, "single", "two", batch_size=4, accumulation_steps=2)
    for a, b in zip(one.get_weights(), two.get_weights()):
        np.testing.assert_allclose(a, b, atol=2e-6)
    unaccumulated = _one_step(tmp_path, "single", "plain4", batch_size=4)
    assert any(not np.allclose(a, b, atol=2e-6)
               for a, b in zip(one.get_weights(), unaccumulated.get_weights()))
