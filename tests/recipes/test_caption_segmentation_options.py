"""Every option of the segmentation and image captioning configs changes
what the run does (issue 21): subsets, augmentation, gradient
checkpointing, LoRA on a ViT encoder, partial fine-tuning, schedules, and
the refusals of what a recipe cannot honour."""

import csv
import dataclasses
import types

import keras
import numpy as np
import pytest

from kerasft import cli, recipes
from kerasft.data.synthetic import shapes_segmentation, write_segmentation_folder
from tests.recipes._segmentation_child import tiny_cnn
from tests.recipes.caption_tiny import caption_backbone, vit_backbone

# === Image captioning ===

CAPTION = dict(
    image_size=32, epochs=1, mode="full", head_epochs=0, batch_size=4,
    max_length=8, embed_dim=16, decoder_layers=1, num_heads=2, dropout=0.0,
    num_beams=1, samples=0, learning_rate=1e-2, strategy="default",
    precision="float32", verbose=0, seed=3,
)


@pytest.fixture(scope="module")
def captions(tmp_path_factory):
    """`(train_csv, val_csv)`: 8 and 4 random 32 px images, two captions
    each (noise, so any flip or shift changes the pixels)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("caption_options")
    rng = np.random.default_rng(0)
    words = ["red", "blue", "green", "square", "circle", "above", "below"]
    paths = {}
    for split, count in (("train", 8), ("val", 4)):
        rows = [("image", "caption")]
        for i in range(count):
            name = f"{split}_{i}.png"
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), np.uint8)).save(
                root / name)
            for _ in range(2):
                rows.append((name, "a " + " ".join(rng.choice(words, 3))))
        paths[split] = str(root / f"{split}.csv")
        with open(paths[split], "w", newline="") as f:
            csv.writer(f).writerows(rows)
    return paths["train"], paths["val"]


def _caption(tmp_path, name, captions, validate=False, **options):
    """A one-epoch run; without `validate` no held-out images (nothing to
    caption and score: the fast path)."""
    train, val = captions
    options = {**CAPTION, **options}
    options.setdefault("backbone", caption_backbone())
    if validate:
        options["validation"] = val
    else:
        options["validation_split"] = 0.0
    return recipes.image_captioning(train=train, output_dir=str(tmp_path / name),
                                    **options)


def _recording_total_steps(monkeypatch):
    """The `total_steps` every `Run.optimizer` call receives."""
    from kerasft.recipes import _runner

    steps = []
    real = _runner.Run.optimizer

    def recording(self, groups=None, total_steps=None, **kwargs):
        steps.append(total_steps)
        return real(self, groups, total_steps, **kwargs)

    monkeypatch.setattr(_runner.Run, "optimizer", recording)
    return steps


def _weights(model):
    return {v.path: np.array(v.numpy()) for v in model.weights}


def test_caption_subsets_of_tables(captions):
    """Subsets of images (each with all its captions), taken after the
    validation split: the held-out images do not depend on the subset."""
    import importlib

    from kerasft.recipes.config import resolve_config
    from kerasft.recipes.configs import ImageCaptioningConfig

    module = importlib.import_module("kerasft.recipes.image_captioning")

    def tables(**options):
        config = resolve_config(ImageCaptioningConfig, None, train=captions[0],
                                test=captions[1], validation_split=0.25,
                                **{**CAPTION, "backbone": "vgg16", **options})
        logged = []
        run = types.SimpleNamespace(config=config, log=logged.append)
        return module._read_splits(run, config), " ".join(logged)

    full, _ = tables()
    subset, logged = tables(max_train_samples=3, max_eval_samples=1)
    assert [len(full[n]) for n in ("train", "validation", "test")] == [6, 2, 4]
    assert [len(subset[n]) for n in ("train", "validation", "test")] == [3, 1, 1]
    assert set(subset["validation"].image_paths) <= set(
        full["validation"].image_paths)
    assert set(subset["train"].image_paths) <= set(full["train"].image_paths)
    assert all(len(c) == 2 for c in subset["train"].captions)
    for text in ("Using 3 of 6 train images", "Using 1 of 2 validation images",
                 "Using 1 of 4 test images"):
        assert text in logged


@pytest.mark.slow
def test_caption_subsets_keep_whole_images(captions, tmp_path, capsys):
    result = _caption(tmp_path, "subset", captions, validate=True,
                      max_train_samples=3, max_eval_samples=2, verbose=1)
    out = capsys.readouterr().out
    assert "Using 3 of 8 train images" in out
    assert "Using 2 of 4 validation images" in out
    assert "on 3 images" in out
    with open(result.output_dir + "/predictions.csv") as f:
        rows = list(csv.DictReader(f))
    # Two validation images, each with both of its references.
    assert len(rows) == 2
    assert all(len(r["references"].split(" | ")) == 2 for r in rows)


def test_caption_augmentation_changes_training_images_only(captions):
    from kerasft.data.captions import (caption_batches, load_caption_images,
                                       read_captions)
    from kerasft.heads.captioning import (build_vocabulary, caption_tokenizer,
                                          encode_table)

    table = read_captions(captions[0])
    images = load_caption_images(table, (32, 32))
    tokenizer = caption_tokenizer(build_vocabulary(
        [c for group in table.captions for c in group], 64))
    ids, _ = encode_table(tokenizer, table.captions, 8)

    def first_batch(**kwargs):
        ds = caption_batches(images, ids, 8, shuffle=False, seed=1, **kwargs)
        return next(iter(ds))[0]["image"].numpy()

    plain = first_batch()
    flipped = first_batch(augment={"horizontal_flip": True,
                                   "width_shift_range": 0.2})
    assert flipped.shape == plain.shape and not np.array_equal(plain, flipped)
    # Same seed, same pixels: the augmentation is resumable.
    again = first_batch(augment={"horizontal_flip": True,
                                 "width_shift_range": 0.2})
    np.testing.assert_array_equal(flipped, again)


def test_caption_recipe_augments_train_not_validation(captions, tmp_path,
                                                      monkeypatch):
    from kerasft.data import captions as caption_data

    seen = {}
    real = caption_data.caption_batches

    def recording(*args, **kwargs):
        seen[kwargs["captions"]] = kwargs.get("augment")
        return real(*args, **kwargs)

    monkeypatch.setattr(caption_data, "caption_batches", recording)
    augment = {"horizontal_flip": True}
    _caption(tmp_path, "augment", captions, validate=True, augment=augment,
             max_eval_samples=1)
    assert seen == {"random": augment, "first": None}


@pytest.mark.parametrize("augment", [{"mixup_alpha": 0.2}, {"cutmix": True}])
def test_caption_refuses_mixup_and_cutmix(captions, tmp_path, augment):
    with pytest.raises(ValueError, match="cannot mix images for captioning"):
        _caption(tmp_path, "mix", captions, augment=augment)


def test_cli_refuses_mixup_for_captions(captions, tmp_path, capsys):
    code = cli.main([
        "image-captioning", "--train", captions[0], "--backbone", "vgg16",
        "--augment", '{"mixup_alpha": 0.2}', "--output", str(tmp_path / "cli"),
    ])
    assert code != 0
    assert "cannot mix images for captioning" in capsys.readouterr().err


def test_caption_model_remat_has_the_same_loss_and_gradients():
    import tensorflow as tf

    from kerasft.heads.captioning import caption_loss, caption_model

    backbone = caption_backbone()
    plain = caption_model(backbone, 32, 8, embed_dim=16, num_layers=1,
                          num_heads=2, dropout=0.0)
    remat = caption_model(backbone, 32, 8, embed_dim=16, num_layers=1,
                          num_heads=2, dropout=0.0, remat=True)
    remat.set_weights(plain.get_weights())
    assert "RematSegment" in {type(l).__name__ for l in remat._flatten_layers()}
    rng = np.random.default_rng(0)
    inputs = {"image": rng.uniform(0, 255, (2, 32, 32, 3)).astype("float32"),
              "tokens": rng.integers(1, 32, (2, 8)).astype("int32")}
    targets = rng.integers(1, 32, (2, 8))
    results = []
    for model in (plain, remat):
        with tf.GradientTape() as tape:
            loss = caption_loss()(targets, model(inputs, training=True))
        grads = tape.gradient(loss, model.trainable_weights)
        results.append((float(loss), grads))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-6)
    assert len(results[0][1]) == len(results[1][1]) == len(plain.trainable_weights)
    for a, b in zip(results[0][1], results[1][1]):
        # Embedding gradients come as IndexedSlices.
        np.testing.assert_allclose(tf.convert_to_tensor(a).numpy(),
                                   tf.convert_to_tensor(b).numpy(), atol=1e-6)


@pytest.mark.slow
def test_caption_gradient_checkpointing_trains_the_same(captions, tmp_path):
    plain = _caption(tmp_path, "plain", captions)
    remat = _caption(tmp_path, "remat", captions, gradient_checkpointing=True)
    names = {type(layer).__name__ for layer in remat.model._flatten_layers()}
    assert "RematSegment" in names
    assert "RematSegment" not in {
        type(layer).__name__ for layer in plain.model._flatten_layers()}
    np.testing.assert_allclose(plain.history["loss"], remat.history["loss"],
                               rtol=1e-5)
    for a, b in zip(plain.model.get_weights(), remat.model.get_weights()):
        np.testing.assert_allclose(a, b, atol=2e-6)


def test_caption_partial_keeps_lower_encoder_groups_bit_identical(captions,
                                                                  tmp_path):
    backbone = caption_backbone()
    before = _weights(backbone.model)
    _caption(tmp_path, "partial", captions, backbone=backbone, mode="partial",
             head_epochs=1, unfreeze_groups=1, epochs=2)
    after = _weights(backbone.model)
    lower = [p for p in before if p.startswith("c1_")]
    top = [p for p in before if p.startswith("c2_")]
    assert lower and top
    for path in lower:
        np.testing.assert_array_equal(before[path], after[path])
    assert any(not np.array_equal(before[p], after[p]) for p in top)


def test_caption_lora_trains_only_the_vit_adapters(captions, tmp_path):
    backbone = vit_backbone()
    before = _weights(backbone.model)
    result = _caption(tmp_path, "lora", captions, backbone=backbone,
                      lora_rank=2)
    after = _weights(backbone.model)
    adapters = [p for p in after if "lora_kernel" in p]
    assert adapters and not any("lora_kernel" in p for p in before)
    for path, value in before.items():  # every base encoder weight
        np.testing.assert_array_equal(value, after[path])
    # The B factors start at zero; training moved them.
    assert any(np.abs(after[p]).max() > 0 for p in adapters
               if p.endswith("lora_kernel_b"))
    trainable = {v.path for v in result.model.trainable_weights}
    encoder = set(before) | set(adapters)
    assert trainable & encoder == {p for p in adapters}


def test_caption_lora_refusals(captions, tmp_path, monkeypatch):
    from kerasft.data import captions as caption_data

    def no_loading(*args, **kwargs):
        raise AssertionError("images loaded before the refusal")

    monkeypatch.setattr(caption_data, "load_caption_images", no_loading)
    with pytest.raises(ValueError, match=r"needs a transformer \(ViT\) image "
                       r"encoder.*'caption_cnn'.*mode='partial'"):
        _caption(tmp_path, "cnn", captions, lora_rank=2)
    with pytest.raises(ValueError, match=r"backbone='vgg16' is a convnet"):
        _caption(tmp_path, "vgg", captions, backbone="vgg16", lora_rank=2)
    with pytest.raises(ValueError, match="lora_rank` must be a positive"):
        _caption(tmp_path, "zero", captions, lora_rank=0)
    with pytest.raises(ValueError, match="mode='full' and head_epochs=0"):
        _caption(tmp_path, "staged", captions, lora_rank=2, mode="progressive",
                 head_epochs=1, epochs=3)


def test_caption_schedules_get_the_run_length(captions, tmp_path,
                                             monkeypatch):
    """`lr_schedule` and `warmup_ratio` need the run's length: training
    batches per epoch x epochs."""
    steps = _recording_total_steps(monkeypatch)
    _caption(tmp_path, "cosine", captions, epochs=2, lr_schedule="cosine",
             warmup_ratio=0.25)
    assert steps == [2 * 2]  # 8 images in batches of 4, 2 epochs


# === Segmentation ===

SEGMENTATION = dict(
    image_size=32, levels=(0, 1, 2), decoder_filters=8, mode="full",
    head_epochs=0, epochs=1, batch_size=4, dropout=0.0, strategy="default",
    precision="float32", verbose=0, seed=3,
)


@pytest.fixture(scope="module")
def mask_folder(tmp_path_factory):
    images, masks = shapes_segmentation(12, 32, seed=0)
    root = str(tmp_path_factory.mktemp("mask_options"))
    write_segmentation_folder(root, images, masks)
    return root


def _fake_run(config):
    """What `segmentation._read_splits` reads of a `Run`."""
    logged = []
    run = types.SimpleNamespace(config=config, global_batch=4, on_tpu=False,
                                epoch_variable=None, log=logged.append)
    return run, logged


def test_segmentation_subsets_are_taken_before_decoding(mask_folder,
                                                        monkeypatch):
    import importlib

    from kerasft.data import masks
    from kerasft.recipes.config import resolve_config
    from kerasft.recipes.configs import SegmentationConfig

    # `kerasft.recipes.segmentation` is the function; this is its module.
    segmentation = importlib.import_module("kerasft.recipes.segmentation")
    decoded = []
    real = masks._read_pair
    monkeypatch.setattr(masks, "_read_pair",
                        lambda *a: decoded.append(a[0]) or real(*a))
    config = resolve_config(
        SegmentationConfig, None, train=mask_folder, validation_split=0.25,
        max_train_samples=4, max_eval_samples=2, backbone=tiny_cnn(),
        **{k: v for k, v in SEGMENTATION.items() if k != "levels"},
    )
    run, logged = _fake_run(config)
    train, validation, _ = segmentation._read_splits(run, config, 32)
    assert (train.num_samples, validation.num_samples) == (4, 2)
    assert len(decoded) == 6  # of 12 listed pairs
    assert "Using 4 of 9 training images" in " ".join(logged)
    assert "Using 2 of 3 validation images" in " ".join(logged)
    # The held-out images do not depend on the training subset.
    everything = dataclasses.replace(config, max_train_samples=None,
                                     max_eval_samples=None)
    full_train, full_val, _ = segmentation._read_splits(
        _fake_run(everything)[0], everything, 32)
    assert set(validation.file_paths) <= set(full_val.file_paths)
    assert set(train.file_paths) <= set(full_train.file_paths)
    assert not set(full_train.file_paths) & set(full_val.file_paths)


def test_segmentation_subsets_in_the_recipe(tmp_path, capsys):
    images, masks = shapes_segmentation(12, 32, seed=0)
    recipes.segmentation(
        train=(images, masks), validation=(images[:6], masks[:6]),
        backbone=tiny_cnn(), output_dir=str(tmp_path / "run"),
        max_train_samples=5, max_eval_samples=3,
        **{**SEGMENTATION, "verbose": 1},
    )
    out = capsys.readouterr().out
    assert "Using 5 of 12 training images" in out
    assert "Using 3 of 6 validation images" in out


def test_segmentation_schedules_get_the_run_length(tmp_path, monkeypatch):
    steps = _recording_total_steps(monkeypatch)
    images, masks = shapes_segmentation(10, 32, seed=0)
    recipes.segmentation(
        train=(images, masks), backbone=tiny_cnn(), validation_split=0.0,
        lr_schedule="cosine", warmup_ratio=0.25,
        output_dir=str(tmp_path / "cosine"), **{**SEGMENTATION, "epochs": 2},
    )
    assert steps == [3 * 2]  # ceil(10 / 4) batches x 2 epochs


def test_segmentation_gradient_checkpointing_trains_the_same(tmp_path):
    images, masks = shapes_segmentation(8, 32, seed=0)
    models = {}
    for name, remat in (("plain", False), ("remat", True)):
        keras.utils.set_random_seed(0)
        models[name] = recipes.segmentation(
            train=(images, masks), backbone=tiny_cnn(), validation_split=0.0,
            gradient_checkpointing=remat, output_dir=str(tmp_path / name),
            **SEGMENTATION,
        ).model
    layers = {type(l).__name__ for l in models["remat"]._flatten_layers()}
    assert "RematSegment" in layers
    for a, b in zip(models["plain"].get_weights(), models["remat"].get_weights()):
        np.testing.assert_allclose(a, b, atol=2e-6)
