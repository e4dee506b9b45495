"""`kerasft demo` (image): the smoke setting runs the whole real path."""

import json
import os

import keras
import pytest

from kerasft.recipes import demo


def test_digits_split_is_disjoint_and_few_shot():
    data = demo.digits_data(labels_per_class=10)
    x_few, y_few = data["few"]
    assert x_few.shape == (50, 32, 32, 1) and sorted(set(y_few)) == [0, 1, 2, 3, 4]
    assert all((y_few == c).sum() == 10 for c in range(5))
    assert set(data["pretrain"][1]) == {0, 1, 2, 3, 4}  # digits 0-4
    n_5_to_9 = len(data["few"][1]) + len(data["held_out"][1])
    assert n_5_to_9 + len(data["pretrain"][1]) == 1797
    assert 0 <= x_few.min() and x_few.max() <= 255.0 + 1e-3


@pytest.mark.slow
def test_image_demo_smoke_writes_both_accuracies(tmp_path, capsys):
    out = str(tmp_path / "demo")
    metrics = demo.run_demo("image", output_dir=out, smoke=True)
    printed = capsys.readouterr().out
    assert "fine-tuned" in printed and "from scratch" in printed
    with open(os.path.join(out, "metrics.json")) as f:
        saved = json.load(f)
    assert saved == metrics
    for key in ("fine_tuned_accuracy", "from_scratch_accuracy"):
        assert 0 <= saved[key] <= 1
    assert saved["labels_per_class"] == 10
    assert {"model.keras", "training_curves.png", "fine_tuned", "from_scratch"} <= set(
        os.listdir(out)
    )
    model = keras.models.load_model(os.path.join(out, "model.keras"))
    assert model.output_shape == (None, 5)
    # Running it again with the same settings reuses the results.
    assert demo.run_demo("image", output_dir=out, smoke=True) == metrics
