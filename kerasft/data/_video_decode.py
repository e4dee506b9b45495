"""Listing and decoding video clips (no TensorFlow).

A clip is a video file (`VIDEO_EXTENSIONS`, decoded with PyAV, or OpenCV
when PyAV is not installed) or a folder of frame images (the UCF101
frame-dump layout: `class/clip/frame_0001.jpg`, frames in sorted name
order). Decoding resizes every kept frame to the target size while
converting it to RGB (FFmpeg's swscale for video, PIL for frame images)
and returns uint8 `[frames, height, width, 3]`.
"""

import os

import numpy as np

from kerasft.data._listing import IMAGE_EXTENSIONS

VIDEO_EXTENSIONS = (
    ".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg",
)
SAMPLINGS = ("uniform", "random_consecutive")


def list_clips(directory, class_names=None):
    """`(class_names, clip_paths, labels)` of a class-per-folder directory.

    Under each class folder (recursively), every video file is a clip and
    every folder directly holding image files is a clip of frames. Raises
    on a missing directory, fewer than two classes, or a class folder
    without clips.
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise ValueError(
            f"`directory` must be an existing folder. Received: {directory!r}"
        )
    found = sorted(
        d for d in os.listdir(directory)
        if os.path.isdir(os.path.join(directory, d))
    )
    names = found if class_names is None else list(class_names)
    missing = [n for n in names if n not in found]
    if missing:
        raise ValueError(
            f"`class_names` {missing} are not subfolders of {directory!r}. "
            f"Subfolders: {found}"
        )
    if len(names) < 2:
        raise ValueError(
            f"Found {len(names)} class folder(s) in {directory!r} ({names}); "
            "classification needs at least 2 classes, one subfolder each."
        )
    paths, labels, empty = [], [], []
    for index, name in enumerate(names):
        clips = _clips_under(os.path.join(directory, name))
        if not clips:
            empty.append(name)
        paths.extend(clips)
        labels.extend([index] * len(clips))
    if empty:
        raise ValueError(
            f"Class folder(s) {empty} in {directory!r} hold no clips. Each "
            "class folder needs video files "
            f"({', '.join(VIDEO_EXTENSIONS)}) or folders of frame images; "
            "remove the empty folders or pass `class_names`."
        )
    return names, paths, labels


def _clips_under(class_dir):
    clips = []
    for root, dirs, files in os.walk(class_dir):
        dirs.sort()
        if root != class_dir and any(
            f.lower().endswith(IMAGE_EXTENSIONS) for f in files
        ):
            clips.append(root)
            dirs[:] = []  # a frame folder is one clip
            continue
        clips.extend(
            os.path.join(root, f) for f in sorted(files)
            if f.lower().endswith(VIDEO_EXTENSIONS)
        )
    return sorted(clips)


def check_decoder(paths):
    """Raises `ImportError` when a video file is listed and neither PyAV
    nor OpenCV can be imported (frame folders need neither)."""
    if all(os.path.isdir(p) for p in paths):
        return
    import importlib.util

    if not any(importlib.util.find_spec(m) for m in ("av", "cv2")):
        raise ImportError(
            "Decoding video files needs PyAV or OpenCV: "
            "pip install 'kerasft[video]'"
        )


def uniform_indices(length, frames):
    """`frames` indices spread evenly over `length` frames (segment centres);
    shorter clips repeat their last frame."""
    if length >= frames:
        return [int((i + 0.5) * length / frames) for i in range(frames)]
    return list(range(length)) + [length - 1] * (frames - length)


def pad_frames(clip, frames):
    """`clip` ([n, h, w, 3]) with its last frame repeated up to `frames`."""
    if len(clip) >= frames:
        return clip
    extra = np.repeat(clip[-1:], frames - len(clip), axis=0)
    return np.concatenate([clip, extra], axis=0)


def decode_clip(path, frames, image_size, sampling):
    """`(uint8 [n, h, w, 3], original frame count)` of one clip.

    `"uniform"` keeps exactly `frames` frames (converting only those);
    `"random_consecutive"` keeps every frame (at least `frames`), for the
    pipeline to pick a window from each epoch. Clips shorter than `frames`
    are padded by repeating their last frame. Raises on unreadable clips.
    """
    if os.path.isdir(path):
        clip, length = _decode_frame_folder(path, frames, image_size, sampling)
    else:
        _check_readable(path, MAX_VIDEO_BYTES)
        clip, length = _decode_video(path, frames, image_size, sampling)
    return pad_frames(clip, frames), length


def _decode_frame_folder(path, frames, image_size, sampling):
    from PIL import Image

    files = sorted(
        f for f in os.listdir(path) if f.lower().endswith(IMAGE_EXTENSIONS)
    )
    if not files:
        raise ValueError(f"No frame images in {path!r}.")
    length = len(files)
    if sampling == "uniform":
        files = [files[i] for i in uniform_indices(len(files), frames)]
    height, width = image_size
    out = []
    for name in files:
        _check_readable(os.path.join(path, name))
        with Image.open(os.path.join(path, name)) as image:
            image = image.convert("RGB").resize((width, height), Image.BILINEAR)
            out.append(np.asarray(image, np.uint8))
    return np.stack(out), length


# Largest video file decoded (bytes); a larger one is skipped as unreadable.
MAX_VIDEO_BYTES = 8 * 2**30


def _check_readable(path, max_bytes=None):
    """Raises (the clip is then skipped as unreadable) unless `path` is a
    regular file under the cap: a FIFO would block the decoder, a device
    such as /dev/zero would never end."""
    from kerasft.data._listing import unreadable_file_reason

    reason = unreadable_file_reason(path, max_bytes)
    if reason is not None:
        raise ValueError(f"{path!r}: {reason}")


def _decode_video(path, frames, image_size, sampling):
    try:
        import av
    except ImportError:
        return _decode_video_opencv(path, frames, image_size, sampling)
    height, width = image_size
    with av.open(path) as container:
        if not container.streams.video:
            raise ValueError(f"{path!r} has no video stream.")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # FFmpeg's frame threads
        decoded = list(container.decode(stream))
    if not decoded:
        raise ValueError(f"{path!r} holds no decodable frame.")
    length = len(decoded)
    if sampling == "uniform":
        decoded = [decoded[i] for i in uniform_indices(len(decoded), frames)]
    out = [
        f.reformat(width=width, height=height, format="rgb24",
                   interpolation="BILINEAR").to_ndarray()
        for f in _unique(decoded)
    ]
    return _expand(out, decoded), length


def _unique(items):
    seen, out = set(), []
    for item in items:
        if id(item) not in seen:
            seen.add(id(item))
            out.append(item)
    return out


def _expand(converted, order):
    """Converted unique frames back in `order` (repeats included)."""
    by_id = dict(zip(map(id, _unique(order)), converted))
    return np.stack([by_id[id(f)] for f in order])


def _decode_video_opencv(path, frames, image_size, sampling):
    try:
        import cv2
    except ImportError as e:
        raise ImportError(
            "Decoding video files needs PyAV or OpenCV: "
            "pip install 'kerasft[video]'"
        ) from e
    capture = cv2.VideoCapture(path)
    raw = []
    while capture.isOpened():
        ok, frame = capture.read()
        if not ok:
            break
        raw.append(frame)
    capture.release()
    if not raw:
        raise ValueError(f"{path!r} holds no decodable frame.")
    length = len(raw)
    if sampling == "uniform":
        raw = [raw[i] for i in uniform_indices(length, frames)]
    height, width = image_size
    out = [
        cv2.cvtColor(cv2.resize(f, (width, height), interpolation=cv2.INTER_LINEAR),
                     cv2.COLOR_BGR2RGB)
        for f in raw
    ]
    return np.stack(out), length
