"""Video input pipeline and feature-extraction speed (issue 13).

1. Clips/s of `kerasft.data.video_folder` (decode + sample + augment, one
   random transform per clip) against a plain per-frame Python loop with
   the same library (PyAV): decode every frame to a full-size RGB array,
   resize each with PIL, pick 16 uniform frames, and apply one
   `ImageDataGenerator` transform (drawn per clip) to every frame. Both
   read the same generated mp4 files (H.264, 320x240, 64 frames, like
   UCF101's), produce float32 `[16, 112, 112, 3]` clips, and are timed over
   one pass (video_folder's includes decoding into its cache), over
   video_folder's later, cached epochs, and over 5 epochs of training
   (the loop decodes every epoch, video_folder once).
2. Feature extraction on video: the `video_classification` recipe, 10 head
   epochs on a frozen VGG16 (`weights=None`: no BatchNorm, so random
   weights give usable features; 64 px, 8 frames per clip), with
   cached per-frame features (`feature_cache="memory"`: the backbone runs
   once per split) against the uncached model (`feature_cache="off"`: the
   backbone runs on every frame of every clip in every epoch). Wall time
   of the whole recipe call.

Usage:
    .venv/bin/python benchmarks/video_pipeline.py [--clips 24] [--fe-clips 48]
"""

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from kerasft.data import video_folder  # noqa: E402
from kerasft.data._video_decode import uniform_indices  # noqa: E402
from tests.data import videos  # noqa: E402

FRAMES, SIZE = 16, 112
AUGMENT = dict(rotation_range=10, zoom_range=0.1, horizontal_flip=True)


def write_clips(root, clips, length=64, height=240, width=320):
    rng = np.random.RandomState(0)
    for i in range(clips):
        direction = ("left", "right")[i % 2]
        small = videos.moving_square(direction, length, 60, seed=i)
        clip = np.repeat(np.repeat(small, 4, axis=1), 6, axis=2)
        clip = clip[:, :height, :width]
        clip = np.clip(clip + rng.randint(0, 20, clip.shape), 0, 255)
        folder = os.path.join(root, direction)
        os.makedirs(folder, exist_ok=True)
        videos.write_video(os.path.join(folder, f"c{i:03d}.mp4"),
                           clip.astype("uint8"), fps=25)


def plain_loop(root):
    """The per-frame Python loop a tutorial writes, one clip at a time."""
    import av
    import tensorflow as tf
    from PIL import Image

    idg = tf.keras.preprocessing.image.ImageDataGenerator(**AUGMENT)
    out = []
    for label, name in enumerate(sorted(os.listdir(root))):
        for file in sorted(os.listdir(os.path.join(root, name))):
            frames = []
            with av.open(os.path.join(root, name, file)) as container:
                for frame in container.decode(video=0):
                    image = Image.fromarray(frame.to_ndarray(format="rgb24"))
                    frames.append(np.asarray(
                        image.resize((SIZE, SIZE), Image.BILINEAR), "float32"))
            picked = [frames[i] for i in uniform_indices(len(frames), FRAMES)]
            params = idg.get_random_transform((SIZE, SIZE, 3))
            clip = np.stack([idg.apply_transform(f, params) for f in picked])
            out.append((clip, label))
    return len(out)


def pipeline(root, epochs=3):
    start = time.perf_counter()
    ds = video_folder(root, frames=FRAMES, image_size=SIZE, batch_size=8,
                      augment=AUGMENT, seed=0)
    times = []
    for _ in range(epochs):
        n = sum(int(x.shape[0]) for x, _ in ds)
        times.append(time.perf_counter() - start)
        start = time.perf_counter()
    return n, times


def feature_extraction(root, cache, out):
    from kerasft import recipes

    start = time.perf_counter()
    result = recipes.video_classification(
        train=root, backbone="vgg16", weights="none", frames=8,
        image_size=64, mode="feature_extraction", feature_cache=cache,
        epochs=10, batch_size=8, validation_split=0.25, verbose=0,
        strategy="default", precision="float32", output_dir=out,
    )
    return time.perf_counter() - start, result.metrics["val_accuracy"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--fe-clips", type=int, default=48)
    parser.add_argument("--skip", default="", help="pipeline and/or fe")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp()
    if "pipeline" not in args.skip:
        root = os.path.join(tmp, "mp4")
        write_clips(root, args.clips)
        pipeline(root, epochs=1)  # warm-up: imports, traces
        start = time.perf_counter()
        n = plain_loop(root)
        loop = n / (time.perf_counter() - start)
        n, times = pipeline(root, epochs=5)
        first, cached = n / times[0], n / np.mean(times[1:])
        five = 5 * n / sum(times)
        print(f"plain loop: {loop:.1f} clips/s")
        print(f"video_folder first epoch (decode+cache): {first:.1f} clips/s "
              f"-> {first / loop:.1f}x")
        print(f"video_folder cached epochs: {cached:.1f} clips/s "
              f"-> {cached / loop:.1f}x")
        print(f"5 epochs (the loop decodes every epoch): {five:.1f} clips/s "
              f"-> {five / loop:.1f}x")
    if "fe" not in args.skip:
        root = os.path.join(tmp, "frames")
        videos.clip_folder(root, per_class=args.fe_clips // 2, frames=24,
                           size=64)
        off, off_acc = feature_extraction(root, "off", os.path.join(tmp, "off"))
        on, on_acc = feature_extraction(root, "memory", os.path.join(tmp, "on"))
        print(f"feature extraction, 10 head epochs: uncached {off:.1f} s, "
              f"cached {on:.1f} s -> {off / on:.1f}x "
              f"(val accuracy {off_acc:.3f} / {on_acc:.3f})")


if __name__ == "__main__":
    main()
