"""A tiny captioning run in its own process, for the kill -9 test.

Usage: python -m tests.recipes._caption_child TRAIN_CSV VAL_CSV OUTPUT_DIR
    [--hold-at-epoch E]

With --hold-at-epoch E it writes OUTPUT_DIR.marker after the second batch
of epoch E and waits to be killed.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from kerasft import recipes  # noqa: E402
from tests.recipes._child import HoldMidEpoch  # noqa: E402
from tests.recipes.caption_tiny import caption_backbone  # noqa: E402

# Progressive: the decoder alone, then the top encoder group, then all.
SETTINGS = dict(
    image_size=32, epochs=4, mode="progressive", head_epochs=1,
    unfreeze_groups=1, learning_rate=2e-3, fine_tune_learning_rate=1e-3,
    batch_size=32, max_length=10, embed_dim=32, decoder_layers=1,
    num_heads=2, dropout=0.0, num_beams=2, samples=4, strategy="default",
    precision="float32", verbose=0,
)


def main(argv):
    train, val, out = argv[:3]
    callbacks = []
    if "--hold-at-epoch" in argv:
        epoch = int(argv[argv.index("--hold-at-epoch") + 1])
        callbacks.append(HoldMidEpoch(epoch, out + ".marker"))
    recipes.image_captioning(
        train=train, validation=val, backbone=caption_backbone(),
        output_dir=out, callbacks=callbacks, **SETTINGS,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
