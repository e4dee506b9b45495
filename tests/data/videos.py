"""Synthetic clips of a square moving left, right, up or down, written as
mp4/avi files (PyAV) or frame folders. Order matters: the average frame of
a left-moving clip is that of a right-moving one."""

import os

import numpy as np

DIRECTIONS = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}


def moving_square(direction, frames=8, size=32, seed=0, square=None):
    """uint8 `[frames, size, size, 3]`: a bright square crossing the frame
    along `direction` (mirror paths for opposite directions, so every
    position is visited in both), on a noisy dark background."""
    rng = np.random.RandomState(seed)
    square = square or max(2, size // 6)
    dy, dx = DIRECTIONS[direction]
    span = size - square
    fixed = rng.randint(0, span + 1)
    clip = rng.randint(0, 40, (frames, size, size, 3)).astype("uint8")
    colour = rng.randint(160, 256, 3)
    for t in range(frames):
        moving = int(round(t * span / max(frames - 1, 1)))
        y = fixed if dy == 0 else (moving if dy > 0 else span - moving)
        x = fixed if dx == 0 else (moving if dx > 0 else span - moving)
        clip[t, y:y + square, x:x + square] = colour
    return clip


def write_video(path, clip, codec=None, fps=8):
    """Writes `clip` with PyAV (mp4: h264, avi: mpeg4 unless `codec`)."""
    import av

    if codec is None:
        codec = "libx264" if path.endswith(".mp4") else "mpeg4"
    with av.open(path, "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = clip.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for frame in clip:
            image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame),
                                               format="rgb24")
            for packet in stream.encode(image):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_frames(folder, clip):
    """Writes `clip` as `folder/frame_0000.png`, ..."""
    from PIL import Image

    os.makedirs(folder, exist_ok=True)
    for t, frame in enumerate(clip):
        Image.fromarray(frame).save(os.path.join(folder, f"frame_{t:04d}.png"))


def clip_folder(root, per_class=4, directions=("left", "right"), frames=8,
                size=32, kind="frames", seed=0):
    """`root/<direction>/clip_i` (frame folders, or `.mp4`/`.avi` files)."""
    for c, direction in enumerate(directions):
        for i in range(per_class):
            clip = moving_square(direction, frames, size, seed=seed + 1000 * c + i)
            base = os.path.join(root, direction, f"clip_{i:03d}")
            if kind == "frames":
                write_frames(base, clip)
            else:
                os.makedirs(os.path.dirname(base), exist_ok=True)
                write_video(f"{base}.{kind}", clip)
    return root
