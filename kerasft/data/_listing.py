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
