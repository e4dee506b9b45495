import keras
import numpy as np
import pytest

from kerasft import evaluation
from tests.evaluation.cases import CLS_PROBS
from tests.evaluation.cases import CLS_TRUE


def test_plot_history_writes_png(tmp_path):
    import matplotlib.image

    history = keras.callbacks.History()
    history.history = {"loss": [1.0, 0.5], "val_loss": [1.2, 0.7], "accuracy": [0.5, 0.8]}
    path = evaluation.plot_history(history, str(tmp_path / "curves.png"))
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[1] > image.shape[0]  # two panels side by side
    with pytest.raises(ValueError, match="history"):
        evaluation.plot_history({}, str(tmp_path / "empty.png"))


def test_plot_confusion_matrix_counts(tmp_path):
    path = tmp_path / "confusion.png"
    counts = evaluation.plot_confusion_matrix(CLS_TRUE, CLS_PROBS, ["a", "b", "c"], str(path))
    np.testing.assert_array_equal(counts, [[1, 1, 0], [0, 1, 1], [0, 0, 2]])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    evaluation.plot_confusion_matrix(
        CLS_TRUE, CLS_PROBS.argmax(1), list("abc"), str(path), normalize=True
    )
    with pytest.raises(ValueError, match="outside"):
        evaluation.plot_confusion_matrix([0, 3], [0, 1], ["a", "b"], str(path))
