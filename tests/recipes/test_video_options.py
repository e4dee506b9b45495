"""Every option of `VideoClassificationConfig` changes what the video recipe
does: class weights, label smoothing, focal loss (end to end and on cached
per-frame features), curriculum, subsets, the schedule's total steps, the
freezing modes and MixUp / CutMix of whole clips."""

import json
import os

import keras
import numpy as np
import pytest

from kerasft import cli, recipes
from kerasft.recipes import _curriculum, _data
from kerasft.recipes.configs import VideoClassificationConfig
from tests.data import videos
from tests.recipes.video_tiny import frame_backbone

FAST = dict(frames=2, image_size=32, batch_size=4, temporal="mean",
            temporal_units=8, dropout=0.0, learning_rate=1e-2, seed=3,
            precision="float32", strategy="default", verbose=0,
            validation_split=0.0)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """8 training and 4 validation clips per class (left, right)."""
    root = tmp_path_factory.mktemp("video_options")
    videos.clip_folder(str(root / "train"), per_class=8, frames=2, seed=0)
    videos.clip_folder(str(root / "val"), per_class=4, frames=2, seed=5000)
    return root


def _run(clips, tmp_path, name, **options):
    options = {**FAST, "mode": "feature_extraction", "epochs": 2, **options}
    return recipes.video_classification(
        train=str(clips / "train"), validation=str(clips / "val"),
        backbone=frame_backbone(), output_dir=str(tmp_path / name), **options)


def _head_weights(model):
    return [w for layer in model.layers if layer.name.startswith("video")
            or "head" in layer.name or layer.__class__.__name__ == "Dense"
            for w in layer.get_weights()]


@pytest.mark.parametrize("feature_cache", ["memory", "off"])
def test_class_weight_changes_the_loss_and_the_trained_head(
    clips, tmp_path, feature_cache
):
    """By name or id, on cached features and end to end alike."""
    common = dict(feature_cache=feature_cache, epochs=1)
    plain = _run(clips, tmp_path, "plain", **common)
    weighted = _run(clips, tmp_path, "weighted", class_weight={"left": 5.0},
                    **common)
    by_id = _run(clips, tmp_path, "by_id", class_weight='{"0": 5.0}', **common)
    assert weighted.history["loss"][0] != pytest.approx(
        plain.history["loss"][0], rel=1e-3)
    assert weighted.history["loss"] == pytest.approx(by_id.history["loss"])
    changed = [not np.allclose(a, b) for a, b in zip(
        _head_weights(plain.model), _head_weights(weighted.model))]
    assert any(changed)


def test_balanced_class_weight_upweights_the_rare_class(tmp_path):
    root = tmp_path / "imbalanced"
    videos.clip_folder(str(root / "a"), per_class=6, frames=2,
                       directions=("left",))
    videos.clip_folder(str(root / "a"), per_class=2, frames=2,
                       directions=("right",), seed=77)
    common = dict(train=str(root / "a"), backbone=frame_backbone(), epochs=1,
                  mode="feature_extraction", **FAST)
    plain = recipes.video_classification(output_dir=str(tmp_path / "p"),
                                         **common)
    balanced = recipes.video_classification(
        output_dir=str(tmp_path / "b"), class_weight="balanced", **common)
    # 6 left, 2 right: weights 8/12 and 8/4; the run's loss moves with them.
    assert balanced.history["loss"][0] != pytest.approx(
        plain.history["loss"][0], rel=1e-3)


def test_class_weight_names_an_unknown_class(clips, tmp_path):
    with pytest.raises(ValueError, match="'up'.*neither a class name"):
        _run(clips, tmp_path, "bad", class_weight={"up": 2.0})


@pytest.mark.parametrize("feature_cache", ["memory", "off"])
def test_label_smoothing_and_focal_loss_change_the_loss(
    clips, tmp_path, feature_cache
):
    """Same start, same batches: smoothing raises the loss, focal (which
    down-weights easy examples and scales by alpha) lowers it."""
    runs = {
        name: _run(clips, tmp_path, name, epochs=1, feature_cache=feature_cache,
                   **options)
        for name, options in (("plain", {}), ("smooth", {"label_smoothing": 0.2}),
                              ("focal", {"loss": "focal"}))
    }
    smooth = runs["smooth"].model.loss
    assert isinstance(smooth, keras.losses.CategoricalCrossentropy)
    assert smooth.get_config()["label_smoothing"] == 0.2
    assert isinstance(runs["focal"].model.loss,
                      keras.losses.CategoricalFocalCrossentropy)
    loss = {name: r.history["loss"][0] for name, r in runs.items()}
    assert loss["focal"] < loss["plain"] / 2, loss
    # Softer targets, other gradients: another trained head.
    for name in ("smooth", "focal"):
        assert any(not np.allclose(a, b) for a, b in zip(
            _head_weights(runs["plain"].model),
            _head_weights(runs[name].model))), name
    # One-hot labels through the metrics, the confusion matrix and top-k.
    for r in runs.values():
        with open(os.path.join(r.output_dir, "confusion_matrix.json")) as f:
            assert np.asarray(json.load(f)["val"]).sum() == 8
        assert 0.0 <= r.metrics["val_accuracy"] <= 1.0


def test_curriculum_trains_on_the_easiest_clips_first(clips, tmp_path,
                                                      monkeypatch):
    """`difficulty` ranks the left clips easiest: epoch 0 (half the data)
    sees only them; from `ramp_epochs` on, every clip."""
    seen = {}
    callback, images = _curriculum.curriculum_callback, _data.curriculum_images

    def keep_callback(*args):
        seen["curriculum"] = callback(*args)
        return seen["curriculum"]

    def keep_dataset(*args):
        seen["dataset"] = images(*args)
        return seen["dataset"]

    monkeypatch.setattr(_curriculum, "curriculum_callback", keep_callback)
    monkeypatch.setattr(_data, "curriculum_images", keep_dataset)

    def scores(x, y):
        seen["scored"] = (x.shape, y.copy())
        return y.astype("float64")  # left (0) easiest

    result = _run(clips, tmp_path, "curriculum", epochs=2, curriculum=json.dumps(
        {"pacing": "step", "start_fraction": 0.5, "ramp_epochs": 1}),
        difficulty=scores, augment={"horizontal_flip": True})
    shape, labels = seen["scored"]
    assert shape == (16, 2, 32, 32, 3)  # decoded in order, before training
    curriculum = seen["curriculum"]
    assert set(labels[curriculum.indices(0)]) == {0}
    assert set(curriculum.indices(1)) == set(range(16))
    curriculum.on_epoch_begin(0)
    first = np.concatenate([y.numpy() for _, y in seen["dataset"]])
    assert len(first) == 16 and set(first.tolist()) == {0}  # left clips only
    assert len(result.history["loss"]) == 2


def test_curriculum_with_random_windows_is_refused():
    with pytest.raises(ValueError, match="sampling='uniform' with a curriculum"):
        VideoClassificationConfig(train="x", curriculum="root",
                                  difficulty=[0.0], sampling="random_consecutive")


def test_subsets_are_stratified_and_taken_before_decoding(clips, tmp_path,
                                                          capsys):
    result = _run(clips, tmp_path, "subset", epochs=1, max_train_samples=6,
                  max_eval_samples=4, verbose=1)
    out = capsys.readouterr().out
    assert "Using 6 of 16 training clips" in out
    assert "Using 4 of 8 validation clips" in out
    with open(os.path.join(result.output_dir, "confusion_matrix.json")) as f:
        matrix = np.asarray(json.load(f)["val"])
    assert matrix.sum() == 4 and matrix.sum(axis=1).tolist() == [2, 2]
    assert int(result.model.optimizer.iterations) == 2  # 6 clips / batch 4


def test_subset_of_the_validation_split_part(clips, tmp_path, capsys):
    result = recipes.video_classification(
        train=str(clips / "train"), backbone=frame_backbone(), epochs=1,
        output_dir=str(tmp_path / "split"), mode="feature_extraction",
        **{**FAST, "validation_split": 0.5, "verbose": 1},
        max_train_samples=4, max_eval_samples=2)
    out = capsys.readouterr().out
    assert "Using 4 of 8 training clips" in out
    assert "Using 2 of 8 validation clips" in out
    with open(os.path.join(result.output_dir, "confusion_matrix.json")) as f:
        assert np.asarray(json.load(f)["val"]).sum(axis=1).tolist() == [1, 1]


def test_linear_schedule_decays_over_the_runs_total_steps(clips, tmp_path):
    """16 clips / batch 4 x 2 epochs = 8 steps: the rate reaches 0 at the
    end, so `total_steps` reached the optimizer."""
    result = _run(clips, tmp_path, "linear", mode="full", head_epochs=0,
                  lr_schedule="linear", warmup_ratio=0.25)
    optimizer = result.model.optimizer
    rate = getattr(optimizer, "inner_optimizer", optimizer).learning_rate
    assert int(optimizer.iterations) == 8
    assert float(rate) == pytest.approx(0.0, abs=1e-9)


def _backbone_weights(model):
    return {layer.name: [w.copy() for w in layer.get_weights()]
            for layer in model._flatten_layers()
            if layer.name.startswith(("f1_", "f2_", "f3_")) and layer.weights}


def test_partial_trains_the_top_group_and_keeps_the_lower_bit_identical(
    clips, tmp_path
):
    before = _backbone_weights(frame_backbone().model)
    result = _run(clips, tmp_path, "partial", mode="partial", head_epochs=1,
                  unfreeze_groups=1, epochs=2)
    after = _backbone_weights(result.model)
    assert set(after) == {"f1_conv", "f2_conv", "f3_dense"}
    for name in ("f1_conv", "f2_conv"):
        for a, b in zip(before[name], after[name]):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(before["f3_dense"][0], after["f3_dense"][0])


def test_accumulation_equals_the_larger_batch(clips, tmp_path):
    """No BatchNorm, no dropout: two accumulated batches of 4 are one of 8."""
    one = _run(clips, tmp_path, "one", mode="full", head_epochs=0, epochs=1,
               batch_size=8)
    two = _run(clips, tmp_path, "two", mode="full", head_epochs=0, epochs=1,
               batch_size=4, accumulation_steps=2)
    for a, b in zip(one.model.get_weights(), two.model.get_weights()):
        np.testing.assert_allclose(a, b, atol=2e-6)


def test_layer_decay_slows_the_lower_groups(clips, tmp_path):
    """With layer_decay=0.1 the lowest group moves far less than without."""
    start = _backbone_weights(frame_backbone().model)["f1_conv"][0]
    moved = {}
    for decay in (None, 0.1):
        result = _run(clips, tmp_path, f"decay_{decay}", mode="full",
                      head_epochs=0, epochs=1, batch_size=8,
                      layer_decay=decay)
        kernel = _backbone_weights(result.model)["f1_conv"][0]
        moved[decay] = float(np.abs(kernel - start).max())
    assert 0 < moved[0.1] < moved[None] / 5, moved


def test_gradient_checkpointing_trains_the_same_video_model(clips, tmp_path):
    plain = _run(clips, tmp_path, "plain_full", mode="full", head_epochs=0,
                 epochs=1)
    remat = _run(clips, tmp_path, "remat", mode="full", head_epochs=0,
                 epochs=1, gradient_checkpointing=True)
    names = {type(layer).__name__ for layer in remat.model._flatten_layers()}
    assert "RematSegment" in names
    for a, b in zip(plain.model.get_weights(), remat.model.get_weights()):
        np.testing.assert_allclose(a, b, atol=2e-6)


def test_cli_parses_the_classification_options():
    args = cli.build_parser().parse_args([
        "video-classification", "--train", "clips", "--class-weight",
        "balanced", "--label-smoothing", "0.1", "--loss", "focal",
        "--max-train-samples", "6", "--max-eval-samples", "4",
        "--curriculum", "root", "--difficulty", "runs/first",
        "--lr-schedule", "cosine", "--warmup-ratio", "0.1",
    ])
    config = cli.config_from_args(VideoClassificationConfig, args)
    assert (config.class_weight, config.label_smoothing, config.loss) == (
        "balanced", 0.1, "focal")
    assert (config.max_train_samples, config.max_eval_samples) == (6, 4)
    assert (config.curriculum, config.difficulty) == ("root", "runs/first")
    assert (config.lr_schedule, config.warmup_ratio) == ("cosine", 0.1)


def test_video_folder_select_runs_on_the_list_before_decoding(clips):
    """`select` sees the labels of each part (the held-out one named) and
    only the clips it keeps are decoded."""
    from kerasft.data import video_folder

    calls = []

    def select(labels, part):
        calls.append((part, np.bincount(labels).tolist()))
        return np.flatnonzero(labels == 0)[:2]

    train, val = video_folder(
        str(clips / "train"), frames=2, image_size=32, batch_size=4, seed=0,
        validation_split=0.25, subset="both", select=select)
    assert calls == [("validation", [2, 2]), ("training", [6, 6])]
    assert (train.num_samples, val.num_samples) == (2, 2)
    assert list(train.class_counts) == [2, 0]


def test_curriculum_ranked_by_a_finished_run_folder(clips, tmp_path, capsys):
    """`difficulty` as a first run's folder: its model scores the decoded
    training clips by their loss, kept in the backup for a resume."""
    first = _run(clips, tmp_path, "first", epochs=1)
    result = _run(clips, tmp_path, "ranked", epochs=2, verbose=1,
                  curriculum="linear", difficulty=first.output_dir)
    out = capsys.readouterr().out
    assert "Curriculum (linear): epoch 0 trains on the easiest 20%" in out
    assert len(result.history["loss"]) == 2


# === MixUp / CutMix of clips ===


def _spy_on_fit(monkeypatch):
    """The labels of every training and validation batch `fit` sees."""
    from kerasft.recipes import _runner

    seen = {}
    fit = _runner.Run.fit

    def spy(self, model, train, validation=None, *args, **kwargs):
        seen["train"] = np.concatenate([y for _, y in train])
        if validation is not None:
            seen["validation"] = np.concatenate([y for _, y in validation])
        return fit(self, model, train, validation, *args, **kwargs)

    monkeypatch.setattr(_runner.Run, "fit", spy)
    return seen


def _soft_training_labels(labels):
    """Rows sum to 1 and some of them are blends of two classes."""
    assert labels.ndim == 2
    np.testing.assert_allclose(labels.sum(axis=1), 1.0, atol=1e-5)
    assert (labels.max(axis=1) < 1 - 1e-3).any()


@pytest.mark.parametrize("key", ["mixup_alpha", "cutmix_alpha"])
def test_mixing_blends_the_training_clips_only(clips, tmp_path, key,
                                               monkeypatch):
    """`augment={"mixup_alpha": a}` (or cutmix): the training batches carry
    soft labels; the held-out `validation_split` part stays one-hot."""
    seen = _spy_on_fit(monkeypatch)
    options = {**FAST, "validation_split": 0.25}
    result = recipes.video_classification(
        train=str(clips / "train"), backbone=frame_backbone(), epochs=1,
        mode="feature_extraction", augment={key: 1.0},
        output_dir=str(tmp_path / key), **options)
    assert result.model.loss.__class__.__name__ != (
        "SparseCategoricalCrossentropy")
    _soft_training_labels(seen["train"])
    validation = seen["validation"]
    assert validation.ndim == 2 and len(validation) == 4
    np.testing.assert_array_equal(validation.max(axis=1), 1.0)


def test_mixing_blends_the_curriculum_batches(clips, tmp_path, monkeypatch):
    """The curriculum's training pipeline mixes clips too; the validation
    folder does not."""
    seen = _spy_on_fit(monkeypatch)
    _run(clips, tmp_path, "curriculum_mix", epochs=1,
         curriculum=json.dumps({"pacing": "step", "start_fraction": 1.0}),
         difficulty=lambda x, y: y.astype("float64"),
         augment={"horizontal_flip": True, "mixup_alpha": 1.0})
    _soft_training_labels(seen["train"])
    np.testing.assert_array_equal(seen["validation"].max(axis=1), 1.0)


def _plain_and_mixed(clips, mixer):
    """The same shuffled training batches, unmixed and mixed by `mixer`."""
    from kerasft.data import video_folder

    common = dict(frames=2, image_size=32, batch_size=8, seed=4,
                  label_mode="categorical")
    plain = video_folder(str(clips / "train"), **common)
    mixed = video_folder(str(clips / "train"), mix=mixer, **common)
    assert mixed.mix is not None and plain.mix is None
    return [(x.numpy(), y.numpy(), mx.numpy(), my.numpy())
            for (x, y), (mx, my) in zip(plain, mixed)]


def test_clip_cutmix_pastes_the_same_box_in_every_frame(clips):
    """CutMix of clips: one box per clip, the same pixels in every frame,
    its label weight the pasted area."""
    from kerasft.augment import CutMix

    blended = 0
    for x, y, mx, my in _plain_and_mixed(clips, CutMix(1.0, seed=0)):
        np.testing.assert_allclose(my.sum(axis=1), 1.0, atol=1e-5)
        for i in range(len(x)):
            changed = (mx[i] != x[i]).any(axis=-1)  # [frames, h, w]
            for frame in changed[1:]:
                np.testing.assert_array_equal(frame, changed[0])
            rows, cols = np.flatnonzero(changed[0].any(1)), np.flatnonzero(
                changed[0].any(0))
            if len(rows):  # a box: its bounding rectangle, all of it
                assert changed[0][rows[0]:rows[-1] + 1,
                                  cols[0]:cols[-1] + 1].all()
            own = y[i].argmax()
            if my[i, own] < 1 - 1e-6:  # a partner of the other class
                blended += 1
                assert changed[0].mean() == pytest.approx(1 - my[i, own])
    assert blended > 0


def test_clip_mixup_blends_every_frame_with_one_weight(clips):
    """MixUp of clips: `x = lam x_i + (1 - lam) x_j` with one `lam` for
    all the frames of a clip, `lam` its label weight."""
    from kerasft.augment import MixUp

    blended = 0
    for x, y, mx, my in _plain_and_mixed(clips, MixUp(1.0, seed=0)):
        for i in range(len(x)):
            lam = my[i, y[i].argmax()]
            if not 0.01 < lam < 0.99:  # no partner of the other class
                continue
            blended += 1
            partner = (mx[i] - lam * x[i]) / (1 - lam)
            errors = np.abs(x - partner).reshape(len(x), -1).max(axis=1)
            assert errors.min() < 0.05  # a clip of the batch, every frame
    assert blended > 0


def test_cli_takes_mixing_for_video_classification():
    from kerasft.augment import MixUp
    from kerasft.recipes._classification import (
        classification_label_mode,
        split_mixing,
    )

    args = cli.build_parser().parse_args([
        "video-classification", "--train", "clips",
        "--augment", '{"mixup_alpha": 0.2}',
    ])
    config = cli.config_from_args(VideoClassificationConfig, args)
    assert config.augment == {"mixup_alpha": 0.2}
    assert classification_label_mode(config) == "categorical"
    rest, mix = split_mixing(config.augment, seed=0)
    assert rest is None and isinstance(mix, MixUp) and mix.alpha == 0.2


def test_clip_mixing_needs_one_hot_labels_and_a_mixer(clips):
    from kerasft.augment import MixUp
    from kerasft.data import video_folder
    from kerasft.data.video_folder import ClipMixing

    with pytest.raises(ValueError, match="label_mode='categorical'"):
        video_folder(str(clips / "train"), frames=2, image_size=32,
                     mix=MixUp(0.2))
    with pytest.raises(TypeError, match="MixUp or CutMix"):
        ClipMixing(lambda x, y: (x, y))
