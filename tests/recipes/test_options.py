"""Options implemented once (the runner's optimizer, `build_model`'s remat)
change what a recipe does, as documented."""

import numpy as np
import pytest

from kerasft import recipes
from tests.recipes.tiny import tiny_backbone, tiny_images

FAST = dict(precision="float32", strategy="default", verbose=0, dropout=0.0,
            validation_split=0.0, seed=3)


def _run(tmp_path, name, **options):
    x, y = tiny_images(16)
    options = {**FAST, "batch_size": 16, **options}
    return recipes.image_classification(
        train=(x, y), backbone=tiny_backbone(), epochs=1, head_units=(),
        output_dir=str(tmp_path / name), **options)


def _head(model):
    dense = [layer for layer in model.layers if layer.name.endswith("output")
             or layer.__class__.__name__ == "Dense"]
    kernel, bias = dense[-1].get_weights()
    return kernel, bias


def test_weight_decay_moves_kernels_never_biases(tmp_path):
    """One update from the same start: decoupled decay changes the kernel,
    and the bias, which gets the same gradient step either way, not at all."""
    plain = _head(_run(tmp_path, "plain", weight_decay=0.0,
                       mode="feature_extraction").model)
    decayed = _head(_run(tmp_path, "decayed", weight_decay=0.5,
                         mode="feature_extraction").model)
    assert not np.array_equal(plain[0], decayed[0])
    np.testing.assert_array_equal(plain[1], decayed[1])


def test_accumulation_equals_the_larger_batch(tmp_path):
    """BatchNorm is frozen and dropout off: two accumulated batches of 8 are
    one batch of 16."""
    one = _run(tmp_path, "one", batch_size=16, mode="full", head_epochs=0).model
    two = _run(tmp_path, "two", batch_size=8, accumulation_steps=2, mode="full",
               head_epochs=0).model
    changed = 0
    for a, b in zip(one.get_weights(), two.get_weights()):
        np.testing.assert_allclose(a, b, atol=2e-6)
    first = _run(tmp_path, "unaccumulated", batch_size=8, mode="full",
                 head_epochs=0).model
    for a, b in zip(one.get_weights(), first.get_weights()):
        changed += not np.allclose(a, b, atol=2e-6)
    assert changed  # without accumulation, two updates differ from one


@pytest.mark.parametrize("mode", ["full"])
def test_gradient_checkpointing_recomputes_the_same_training(tmp_path, mode):
    plain = _run(tmp_path, "plain", mode=mode, head_epochs=0).model
    remat = _run(tmp_path, "remat", mode=mode, head_epochs=0,
                 gradient_checkpointing=True).model
    names = {type(layer).__name__ for layer in remat.layers[1]._flatten_layers()}
    assert "RematSegment" in names
    for a, b in zip(plain.get_weights(), remat.get_weights()):
        np.testing.assert_allclose(a, b, atol=2e-6)


@pytest.mark.parametrize("key", ["mixup_alpha", "cutmix_alpha"])
def test_mixing_blends_the_training_batches_only(tmp_path, key, monkeypatch):
    """`augment={"mixup_alpha": a}` (or cutmix): training batches carry soft
    labels (rows that are not one-hot), validation batches do not."""
    from kerasft.recipes import _runner

    seen = {}
    fit = _runner.Run.fit

    def spy(self, model, train, validation=None, *args, **kwargs):
        seen["train"] = np.concatenate([y for _, y in train])
        seen["validation"] = np.concatenate([y for _, y in validation])
        return fit(self, model, train, validation, *args, **kwargs)

    monkeypatch.setattr(_runner.Run, "fit", spy)
    result = _run(tmp_path, key, batch_size=8, mode="feature_extraction",
                  validation_split=0.25, augment={key: 1.0})
    assert result.model.loss.__class__.__name__ != "SparseCategoricalCrossentropy"
    train, validation = seen["train"], seen["validation"]
    assert train.ndim == validation.ndim == 2  # one-hot labels
    np.testing.assert_allclose(train.sum(axis=1), 1.0, atol=1e-5)
    assert (train.max(axis=1) < 1 - 1e-3).any()  # some rows are blends
    np.testing.assert_array_equal(validation.max(axis=1), 1.0)


def test_mixing_under_a_curriculum(tmp_path, monkeypatch):
    """A curriculum's pipeline mixes its batches too, and says so (`mix`)."""
    from kerasft.recipes import _runner

    seen = {}
    fit = _runner.Run.fit

    def spy(self, model, train, validation=None, *args, **kwargs):
        seen["mix"] = train.mix
        seen["labels"] = np.concatenate([y for _, y in train])
        return fit(self, model, train, validation, *args, **kwargs)

    monkeypatch.setattr(_runner.Run, "fit", spy)
    _run(tmp_path, "curriculum", batch_size=8, mode="feature_extraction",
         augment={"mixup_alpha": 1.0}, curriculum="linear",
         difficulty=np.arange(16.0))
    assert type(seen["mix"]).__name__ == "MixUp"
    assert (seen["labels"].max(axis=1) < 1 - 1e-3).any()


@pytest.mark.parametrize("recipe,reason", [
    ("segmentation", "per-pixel masks"),
    ("object_detection", "labels are boxes"),
])
def test_mixing_is_refused_where_labels_do_not_allow_it(recipe, reason):
    from kerasft.recipes import registry

    config_class = registry.get(recipe).config_class()
    with pytest.raises(ValueError, match=f"cannot mix images for .*{reason}"):
        config_class(train="x", augment={"mixup_alpha": 0.2},
                     **({"kind": "retinanet", "image_size": 32}
                        if recipe == "object_detection" else {}))
    from kerasft.recipes.configs import ImageClassificationConfig

    with pytest.raises(ValueError, match="mixup_alpha or cutmix_alpha, not both"):
        ImageClassificationConfig(
            train="x", augment={"mixup_alpha": 0.2, "cutmix_alpha": 1.0})
