"""Text recipe's Trainer-style options: subsets, schedules, other sources."""

import math

import numpy as np
import pytest

from kerasft import recipes
from kerasft.optimizers import factory
from kerasft.recipes import _text_options
from kerasft.recipes.configs import TextClassificationConfig
from tests.fixtures.tiny_hf import make_tiny_folder

FAST = dict(precision="float32", strategy="default", verbose=0)


def test_subset_is_stratified_and_seeded():
    labels = np.array([0] * 60 + [1] * 30 + [2] * 10)
    keep = _text_options.subset_indices(labels, 20, seed=0)
    assert len(keep) == 20 and len(set(keep)) == 20
    assert np.bincount(labels[keep]).tolist() == [12, 6, 2]
    np.testing.assert_array_equal(keep, _text_options.subset_indices(labels, 20, 0))
    assert len(_text_options.subset_indices(labels, 500, 0)) == 100


def test_subset_splits_limits_each_split_by_its_own_option():
    """The training split takes `max_train_samples`, every other split
    `max_eval_samples`; `labels` stratifies; a cut is logged, once."""
    import types

    logged = []
    run = types.SimpleNamespace(
        config=types.SimpleNamespace(max_train_samples=10, max_eval_samples=4,
                                     seed=0),
        log=logged.append)
    splits = {"Training": list(range(30)), "Validation": list(range(100, 104)),
              "Test": list(range(200, 220))}
    out = _text_options.subset_splits(
        run, splits, "sentences", lambda part, keep: [part[i] for i in keep],
        labels=lambda part: [v % 2 for v in part])
    assert out is splits
    assert [len(splits[k]) for k in ("Training", "Validation", "Test")] == [10, 4, 4]
    assert sum(v % 2 for v in splits["Training"]) == 5  # stratified: 15/15
    assert splits["Validation"] == [100, 101, 102, 103]  # nothing cut
    assert logged == [
        "Using 10 of 30 training sentences (max_train_samples / "
        "max_eval_samples subset).",
        "Using 4 of 20 test sentences (max_train_samples / "
        "max_eval_samples subset).",
    ]


def _hf_linear(step, total, warmup):
    """transformers' get_linear_schedule_with_warmup multiplier."""
    if step < warmup:
        return step / max(1, warmup)
    return max(0.0, (total - step) / max(1, total - warmup))


def _hf_cosine(step, total, warmup):
    if step < warmup:
        return step / max(1, warmup)
    progress = (step - warmup) / max(1, total - warmup)
    return max(0.0, 0.5 * (1 + math.cos(math.pi * progress)))


@pytest.mark.parametrize("name, reference", [("linear", _hf_linear),
                                             ("cosine", _hf_cosine)])
def test_schedules_match_hugging_face_trainer(name, reference):
    total, ratio = 100, 0.1
    warmup = factory.warmup_steps(ratio, total)
    assert warmup == 10
    schedule = factory.learning_rate_schedule(2e-5, name, ratio, total)
    for step in (0, 5, 10, 11, 40, 55, 99, 100):
        assert float(schedule(step)) == pytest.approx(
            2e-5 * reference(step, total, warmup), rel=1e-5, abs=1e-12)
    assert factory.learning_rate_schedule(2e-5, "constant", 0.0, total) == 2e-5


def test_config_checks():
    with pytest.raises(ValueError, match="`warmup_ratio` must be in"):
        TextClassificationConfig(warmup_ratio=1.5)
    with pytest.raises(ValueError, match="`max_train_samples` must be a positive"):
        TextClassificationConfig(max_train_samples=0)
    with pytest.raises(ValueError, match="`lr_schedule` must be one of"):
        TextClassificationConfig(lr_schedule="step")


class FakeHFDataset:
    """The `datasets.Dataset` column API, duck-typed."""

    def __init__(self, columns, names):
        self._columns = columns
        self.column_names = list(columns)
        self.features = {"label": type("ClassLabel", (), {"names": names})()}

    def __getitem__(self, key):
        return list(self._columns[key])

    def __len__(self):
        return len(self._columns["text"])

    def __repr__(self):
        return f"FakeHFDataset(num_rows={len(self)})"


def _texts(n, seed):
    rng = np.random.default_rng(seed)
    filler = ["a", "the", "film", "book", "movie", "very"]
    labels = np.arange(n) % 2
    texts = [f"{rng.choice(filler)} {'good' if y else 'bad'} {rng.choice(filler)}"
             for y in labels]
    return texts, labels


def test_hf_dataset_subsets_and_linear_warmup_through_the_recipe(tmp_path):
    folder, _ = make_tiny_folder(str(tmp_path / "bert"))
    texts, labels = _texts(40, 0)
    train = FakeHFDataset({"text": texts, "label": labels}, ["neg", "pos"])
    val_texts, val_labels = _texts(20, 1)
    validation = FakeHFDataset({"text": val_texts, "label": val_labels},
                               ["neg", "pos"])
    result = recipes.text_classification(
        train=train, validation=validation, backbone=folder, epochs=1,
        batch_size=8, max_length=8, max_train_samples=16, max_eval_samples=8,
        lr_schedule="linear", warmup_ratio=0.25, output_dir=str(tmp_path / "run"),
        **FAST,
    )
    import json
    import os

    with open(os.path.join(tmp_path, "run", "labels.json")) as f:
        assert json.load(f) == ["neg", "pos"]  # the ClassLabel names, in id order
    # 16 training texts / batch 8 = 2 steps: warmup 1 step, then decay.
    optimizer = result.model.optimizer
    rate = getattr(optimizer, "inner_optimizer", optimizer).learning_rate
    assert float(optimizer.iterations) == 2
    assert float(rate) == pytest.approx(0.0, abs=1e-12)  # decayed to 0 at the end
    assert "WarmupSchedule" in str(optimizer.get_config()["learning_rate"])
    assert "val_accuracy" in result.metrics


def test_tfds_imdb_reviews_source(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    config = TextClassificationConfig(output_dir=str(tmp_path))
    with tfds.testing.mock_data(num_examples=6):
        table = _text_options.read_source("tfds:imdb_reviews:test", config)
    assert len(table.texts) == 6 and all(isinstance(t, str) for t in table.texts)
    assert table.label_mapping == {"neg": 0, "pos": 1}
