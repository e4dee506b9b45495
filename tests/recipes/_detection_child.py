"""A tiny RetinaNet recipe run in its own process (kill -9 resume test).

Usage: python -m tests.recipes._detection_child OUTPUT_DIR TRAIN_CSV
    VAL_CSV [--hold-at-epoch E]

With --hold-at-epoch E it writes OUTPUT_DIR.marker after the second batch
of epoch E and waits there, to be killed by the test.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from kerasft import recipes  # noqa: E402
from tests.recipes._child import HoldMidEpoch  # noqa: E402
from tests.recipes.detection_tiny import SMALL_HEAD, tiny_detection_backbone  # noqa: E402


def main(argv):
    out, train, validation = argv[:3]
    callbacks = []
    if "--hold-at-epoch" in argv:
        epoch = int(argv[argv.index("--hold-at-epoch") + 1])
        callbacks.append(HoldMidEpoch(epoch, out + ".marker"))
    recipes.object_detection(
        train=train, validation=validation, backbone=tiny_detection_backbone(64),
        image_size=64, mode="partial", head_epochs=1, unfreeze_groups=2,
        epochs=4, learning_rate=2e-3, fine_tune_learning_rate=1e-3,
        batch_size=8, augment={"horizontal_flip": True, "zoom_range": 0.1},
        precision="float32", strategy="default", verbose=0, output_dir=out,
        callbacks=callbacks, **SMALL_HEAD,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
