"""Where a one-step epoch's time goes in a recipe run (issue 25's step floor).

With the advisor's step floor, 10 examples per class train for 120-150
epochs of one step each, so the recipe's per-epoch work (the run's atomic
backup, the validation pass, TensorBoard) weighs more than the step. This
times each of them over one `text_classification` run on the advisor
panel's tiny BERT (`benchmarks/_advisor_text.py`, seed 1, the near task at
10 per class: 30 sentences, batch 32, one step an epoch).

Usage:
    .venv/bin/python benchmarks/epoch_overhead.py [--epochs 60]
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60)
    args = parser.parse_args(argv)
    import keras

    import _advisor_text as text
    from kerasft.recipes import _resume
    from kerasft.recipes.text_classification import text_classification

    spent = {}

    def timed(cls, name, label):
        original = getattr(cls, name)

        def wrapper(self, *a, **k):
            start = time.perf_counter()
            try:
                return original(self, *a, **k)
            finally:
                spent[label] = spent.get(label, 0.0) + time.perf_counter() - start

        setattr(cls, name, wrapper)

    timed(_resume.AtomicBackup, "on_epoch_end", "backup")
    timed(keras.callbacks.TensorBoard, "on_epoch_end", "tensorboard")
    timed(keras.Model, "evaluate", "validation")
    root = tempfile.mkdtemp(prefix="kerasft_epoch_overhead_")
    folder, _ = text.pretrained_folder(1, root)
    _, _, _, _, train, held = text.tasks(1, per_class=[10])[0]
    start = time.perf_counter()
    text_classification(
        backbone=folder, train=train, validation=held, batch_size=32, seed=0,
        verbose=0, dropout=0.0, precision="float32", max_length=text.MAX_LENGTH,
        output_dir=os.path.join(root, "run"), mode="full", head_epochs=30,
        epochs=args.epochs, learning_rate=1e-3, fine_tune_learning_rate=1e-4)
    total = time.perf_counter() - start
    print(f"{args.epochs} one-step epochs: run {total:.1f} s, "
          f"{total / args.epochs:.2f} s an epoch; of which " + ", ".join(
              f"{k} {v:.1f} s ({v / args.epochs:.3f} s an epoch)"
              for k, v in spent.items()))


if __name__ == "__main__":
    main()
