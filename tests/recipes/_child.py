"""A tiny progressive recipe run in its own process (resume, multi-worker).

Usage: python -m tests.recipes._child OUTPUT_DIR [--hold-at-epoch E]
    [--strategy NAME] [--augment] [--feature-extraction]

With --hold-at-epoch E it writes OUTPUT_DIR.marker in the middle of epoch E
(after its second batch) and then waits, to be killed by the test. The
strategy is created first, before any other TensorFlow work, as
MultiWorkerMirroredStrategy requires. --augment turns on ImageDataGenerator-
style augmentation (rotation, shifts, flips); --feature-extraction runs
`feature_extraction` instead (the head trains on cached features).
"""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402

from kerasft import distribute, recipes  # noqa: E402
from tests.recipes.tiny import tiny_backbone, tiny_images  # noqa: E402


class HoldMidEpoch(keras.callbacks.Callback):
    def __init__(self, epoch, marker):
        super().__init__()
        self.epoch, self.marker, self.current = epoch, marker, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch == 1:
            with open(self.marker, "w") as f:
                f.write(str(os.getpid()))
            time.sleep(300)


def main(argv):
    out = argv[0]
    name = "default"
    if "--strategy" in argv:
        name = argv[argv.index("--strategy") + 1]
    strategy = distribute.strategy(name)
    callbacks = []
    if "--hold-at-epoch" in argv:
        epoch = int(argv[argv.index("--hold-at-epoch") + 1])
        callbacks.append(HoldMidEpoch(epoch, out + ".marker"))
    augment = None
    if "--augment" in argv:
        augment = dict(rotation_range=20, width_shift_range=0.1,
                       height_shift_range=0.1, horizontal_flip=True)
    x, y = tiny_images(48)
    common = dict(
        train=(x, y), validation=(x[:16], y[:16]), backbone=tiny_backbone(),
        epochs=4, learning_rate=5e-2, batch_size=16, strategy=strategy,
        precision="float32", verbose=0, output_dir=out, callbacks=callbacks,
        dropout=float(os.environ.get("KFT_DROPOUT", "0.2")),
    )
    if "--feature-extraction" in argv:  # the head trains on cached features
        recipes.feature_extraction(**common)
        return
    recipes.progressive_fine_tuning(
        head_epochs=1, unfreeze_groups=1, layer_decay=0.5,
        fine_tune_learning_rate=5e-3, augment=augment, **common,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
