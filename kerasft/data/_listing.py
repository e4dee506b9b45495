"""Listing a class-per-folder image directory (no TensorFlow, no decoding).

A leaf module: `images` (reading) and `class_weights` (counting) both list
folders through it, so neither needs the other.
"""

import logging
import os

_LOG = logging.getLogger("kerasft.data")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


def list_image_files(directory, class_names=None):
    """`(class_names, file_paths, labels)` of a class-per-folder directory.

    Image files are found recursively under each class folder (extensions
    `IMAGE_EXTENSIONS`, any case), sorted, so the listing is reproducible.
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
    if class_names is None:
        names = found
    else:
        names = list(class_names)
        missing = [n for n in names if n not in found]
        if missing:
            raise ValueError(
                f"`class_names` {missing} are not subfolders of "
                f"{directory!r}. Subfolders: {found}"
            )
    paths, labels = [], []
    for index, name in enumerate(names):
        class_dir = os.path.join(directory, name)
        files = []
        for root, _, filenames in os.walk(class_dir):
            for filename in filenames:
                if filename.lower().endswith(IMAGE_EXTENSIONS):
                    files.append(os.path.join(root, filename))
        files.sort()
        paths.extend(files)
        labels.extend([index] * len(files))
    if not paths:
        raise ValueError(
            f"Found no images in {directory!r}: expected one subfolder per "
            f"class holding {', '.join(IMAGE_EXTENSIONS)} files. "
            f"Subfolders: {found}"
        )
    if len(names) < 2:
        raise ValueError(
            f"Found {len(names)} class folder(s) in {directory!r} "
            f"({names}); classification needs at least 2 classes, one "
            "subfolder each."
        )
    empty = [n for i, n in enumerate(names) if i not in set(labels)]
    if empty:
        _LOG.warning("Class folders with no images in %s: %s", directory, empty)
    return names, paths, labels


# Largest image file read (bytes); a larger one is skipped as unreadable.
MAX_IMAGE_BYTES = 256 * 2**20


def unreadable_file_reason(path, max_bytes=None):
    """Why `path` must not be read as a data file, or `None`.

    Only regular files up to `max_bytes` are read: a dangling or looping
    symlink, a device (`/dev/zero`, which never ends), a FIFO (whose read
    blocks until a writer comes), a socket or a folder, or a file over the
    cap, is reported like any unreadable file instead of hanging the run or
    filling its memory. Symlinks to regular files are followed. Checks with
    `os.stat` only: nothing is opened.

    Args:
        path: the file's path.
        max_bytes: the size cap. Defaults to `MAX_IMAGE_BYTES`.

    Example:
    >>> unreadable_file_reason("/dev/zero")
    'not a regular file'
    """
    import stat

    max_bytes = MAX_IMAGE_BYTES if max_bytes is None else max_bytes
    try:
        info = os.stat(path)
    except OSError as e:  # missing, dangling or looping symlink, no access
        return e.strerror or "cannot be read"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if info.st_size > max_bytes:
        return f"larger than {max_bytes} bytes"
    return None
