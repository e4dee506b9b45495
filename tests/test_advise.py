"""`kerasft.advise` and `mode="auto"` on a tiny BatchNorm CNN pretrained on
the digits 0-4 (the demo's network and pretraining, a few epochs)."""

import json
import os

import keras
import numpy as np
import pytest

import kerasft
from kerasft import backbones
from kerasft.recipes import demo


@pytest.fixture(scope="module")
def pretrained():
    """`(make_backbone, digits 0-4, digits 5-9)`; the backbone starts from
    the same checkpoint each time it is made."""
    data = demo.digits_data(10, 0)
    cnn = demo.small_cnn(seed=1)
    demo.pretrain(cnn, *data["pretrain"], epochs=4, verbose=0)
    weights = cnn.get_weights()

    def make():
        cnn.set_weights(weights)
        return backbones.from_model(cnn, name="digits_cnn")

    x59 = np.concatenate([data["few"][0], data["held_out"][0]])
    y59 = np.concatenate([data["few"][1], data["held_out"][1]])
    return make, data["pretrain"], (x59, y59)


def _per_class(x, y, n):
    keep = np.concatenate([np.flatnonzero(y == c)[:n] for c in np.unique(y)])
    return x[keep], y[keep]


def _noisy_inverted(x):
    rng = np.random.RandomState(0)
    return np.clip(255 - x + rng.normal(0, 40, x.shape), 0, 255).astype("float32")


def test_near_tiny_task_gets_feature_extraction(pretrained):
    make, _, (x59, y59) = pretrained
    # Tiny: below the 3 per class from which the panel found full better.
    advice = kerasft.advise(_per_class(x59, y59, 2), make(), lr_sweep=False)
    assert advice.mode == "feature_extraction"
    assert advice.measurements["examples_per_class"] == 2
    assert "examples/class" in advice.reasons["mode"]


def test_far_larger_task_opens_more_groups(pretrained):
    make, _, (x59, y59) = pretrained
    near = kerasft.advise(_per_class(x59, y59, 2), make(), lr_sweep=False)
    x, y = _per_class(x59, y59, 150)
    far = kerasft.advise((_noisy_inverted(x), y), make())
    assert far.mode in ("partial", "progressive", "full")
    opened = lambda a: 0 if a.mode == "feature_extraction" else (  # noqa: E731
        a.measurements["num_groups"] if a.mode == "full" else a.unfreeze_groups)
    assert opened(far) > opened(near)
    # The head sweep ran and the backbone trains slower than the head.
    assert np.isfinite(far.measurements["head_rate"])
    assert far.fine_tune_learning_rate < far.learning_rate  # head rate ~1e-2


def test_shift_in_early_groups_only_shows_in_the_per_group_figures(pretrained):
    make, (x04, y04), (x59, y59) = pretrained
    x, y = _per_class(x04, y04, 40)
    source = kerasft.advise((x, y), make(), lr_sweep=False)
    # Inverting the pixels moves the first block's input statistics most;
    # new digit classes (5-9) move the top block's.
    inverted = kerasft.advise((255.0 - x, y), make(), lr_sweep=False)
    new_classes = kerasft.advise(_per_class(x59, y59, 40), make(), lr_sweep=False)
    s, i, n = (a.measurements["group_shift"] for a in (source, inverted, new_classes))
    assert max(s) < 0.05  # the pretraining data sits on its own statistics
    assert i[0] > 3 * i[-1] and i[0] > 10 * s[0]
    assert n[-1] > 5 * n[0]


def test_layernorm_backbone_uses_per_group_probes():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Reshape((8, 8))(inputs)
    for i in (1, 2):
        x = keras.layers.Dense(16, name=f"layer{i}_dense")(x)
        x = keras.layers.LayerNormalization(name=f"layer{i}_norm")(x)
    model = keras.Model(inputs, x)
    backbone = backbones.from_model(model, name="tiny_ln")
    rng = np.random.RandomState(0)
    y = np.repeat(np.arange(2), 20)
    images = rng.normal(size=(40, 8, 8, 1)).astype("float32") + y[:, None, None, None]
    advice = kerasft.advise((images, y), backbone, lr_sweep=False)
    m = advice.measurements
    assert m["shift_kind"] == "probe"
    assert len(m["group_shift"]) == len(backbone.groups)
    assert all(0.0 <= a <= 1.0 for a in m["group_shift"])


def test_rejects_mismatched_data(pretrained):
    make, (x04, y04), _ = pretrained
    with pytest.raises(ValueError, match="as many examples as labels"):
        kerasft.advise((x04[:10], y04[:9]), make())


@pytest.mark.slow
def test_mode_auto_follows_the_advice_and_writes_it(pretrained, tmp_path):
    make, _, (x59, y59) = pretrained
    train = _per_class(x59, y59, 2)
    out = str(tmp_path / "run")
    result = kerasft.recipes.image_classification(
        backbone=make(), train=train, validation=(x59[-100:], y59[-100:]),
        mode="auto", batch_size=16, verbose=0, output_dir=out,
        precision="float32",
    )
    with open(os.path.join(out, "advice.json")) as f:
        advice = json.load(f)
    assert advice["choices"]["mode"] == "feature_extraction"
    assert len(result.history["loss"]) == advice["choices"]["epochs"]
    assert result.metrics["val_accuracy"] > 0.3  # chance: 0.2


def test_kerasft_advise_prints_and_writes(pretrained, tmp_path, capsys):
    from kerasft import cli

    make, _, (x59, y59) = pretrained
    model_path = str(tmp_path / "cnn.keras")
    make().model.save(model_path)
    x, y = _per_class(x59, y59, 2)
    data_path = str(tmp_path / "data.npz")
    np.savez(data_path, x=x, y=y)
    out = str(tmp_path / "advice.json")
    assert cli.main(["advise", data_path, "--backbone", model_path,
                     "--no-lr-sweep", "--output", out]) == 0
    printed = capsys.readouterr().out
    assert "because" in printed and "feature_extraction" in printed
    with open(out) as f:
        assert json.load(f)["choices"]["mode"] == "feature_extraction"


def test_mode_auto_is_a_mode_of_every_recipe_with_modes():
    from kerasft.recipes.configs import (
        ImageClassificationConfig,
        Seq2SeqConfig,
        SegmentationConfig,
    )

    config = ImageClassificationConfig(mode="auto", epochs=1, head_epochs=2)
    assert config.mode == "auto"  # epochs are the advice's to choose
    assert SegmentationConfig(mode="auto").mode == "auto"
    assert Seq2SeqConfig(mode="auto").mode == "auto"


def test_without_labels_a_batchnorm_backbone_is_measured_by_its_shift(
        pretrained):
    make, (x04, _), (x59, _) = pretrained
    inverted = kerasft.advise((255.0 - x04[:40], None), make(),
                              default_rates=(2e-3, 2e-4))
    m = inverted.measurements
    assert m["shift_kind"] == "batchnorm" and np.isnan(m["probe_accuracy"])
    assert m["group_shift"][0] > 0.15  # the inverted pixels, seen unlabelled
    assert inverted.mode != "feature_extraction"
    # No classes to sweep a head on: the recipe's rates.
    assert inverted.learning_rate == 2e-3
    assert "recipe's rates" in inverted.reasons["learning_rate"]


def test_generative_recipes_get_no_feature_extraction_and_no_head_stage():
    make_backbone = backbones.from_model
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    x = keras.layers.Dense(4, name="block1_dense")(inputs)
    x = keras.layers.LayerNormalization(name="block1_norm")(x)
    x = keras.layers.Dense(4, name="block2_dense")(x)
    backbone = make_backbone(keras.Model(inputs, x), name="tiny")
    advice = kerasft.advise(None, backbone, num_examples=2,
                            allowed_modes=("partial", "progressive", "full"),
                            head_stage=False)
    # 2 examples afford no group, but the recipe cannot freeze them all.
    assert advice.mode == "partial" and advice.unfreeze_groups == 1
    assert "no feature_extraction" in advice.reasons["mode"]
    assert advice.head_epochs == 0 and advice.epochs >= 1
    assert advice.measurements["shift_kind"] == "none"


def test_kerasft_advise_on_texts_in_a_fresh_process(tmp_path):
    import subprocess
    import sys

    from tests.fixtures.tiny_hf import make_tiny_folder

    folder, _ = make_tiny_folder(str(tmp_path / "bert"))
    rows = ["text,label"] + [
        f"the {w} film,{label}" for label, words in
        (("pos", ("good", "great", "fine")), ("neg", ("bad", "awful", "dull")))
        for w in words for _ in range(2)]
    (tmp_path / "reviews.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "advice.json"
    done = subprocess.run(
        [sys.executable, "-m", "kerasft.cli", "advise", "reviews.csv",
         "--backbone", folder, "--max-length", "8", "--output", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "because" in done.stdout
    advice = json.loads(out.read_text())
    m = advice["measurements"]
    # A LayerNorm encoder: one linear probe per group, on 12 labelled texts.
    assert m["shift_kind"] == "probe" and m["num_examples"] == 12
    assert len(m["group_shift"]) == len(m["groups"]) >= 3
    assert m["examples_per_class"] == 6
