"""A tiny video recipe run in its own process, for the kill -9 test.

Usage: python -m tests.recipes._video_child CLIPS OUTPUT_DIR MODE
    [--hold-at-epoch E]

MODE is `partial` (augmented random windows, backbone groups opening) or
`feature_extraction` (the head trains on cached per-frame features). With
--hold-at-epoch E it writes OUTPUT_DIR.marker after the second batch of
epoch E and waits to be killed.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from kerasft import recipes  # noqa: E402
from tests.recipes._child import HoldMidEpoch  # noqa: E402
from tests.recipes.video_tiny import frame_backbone  # noqa: E402


def main(argv):
    clips, out, mode = argv[:3]
    callbacks = []
    if "--hold-at-epoch" in argv:
        epoch = int(argv[argv.index("--hold-at-epoch") + 1])
        callbacks.append(HoldMidEpoch(epoch, out + ".marker"))
    extra = {}
    if mode == "partial":
        extra = dict(
            sampling="random_consecutive", head_epochs=1, unfreeze_groups=1,
            fine_tune_learning_rate=1e-3,
            augment={"rotation_range": 10, "horizontal_flip": True},
        )
    recipes.video_classification(
        train=clips, backbone=frame_backbone(size=16), frames=4,
        image_size=16, temporal="gru", temporal_units=8, epochs=4,
        batch_size=4, learning_rate=1e-2, validation_split=0.25, mode=mode,
        strategy="default", precision="float32", verbose=0, output_dir=out,
        callbacks=callbacks, **extra,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
