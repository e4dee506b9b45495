"""A tiny seq2seq run in its own process, for the kill -9 resume test.

Usage: python -m tests.recipes._seq2seq_child ARGS_JSON [--hold-at-epoch E]

ARGS_JSON holds the `kerasft.recipes.seq2seq` keyword arguments. With
--hold-at-epoch E the run writes `<output_dir>.marker` after the second
batch of epoch E and waits there, to be killed by the test.
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402

from kerasft import recipes  # noqa: E402


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
    kwargs = json.loads(argv[0])
    callbacks = []
    if "--hold-at-epoch" in argv:
        epoch = int(argv[argv.index("--hold-at-epoch") + 1])
        callbacks.append(HoldMidEpoch(epoch, kwargs["output_dir"] + ".marker"))
    recipes.seq2seq(callbacks=callbacks, **kwargs)


if __name__ == "__main__":
    main(sys.argv[1:])
