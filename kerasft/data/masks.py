"""Segmentation data: images with per-pixel class masks, from folders, arrays or tfds.

Every source is checked before anything trains: each image has a mask of
the same size (both files and sizes named otherwise), the mask folder has
every image's mask (a few missing names listed otherwise), and every label
is a class id or `ignore_index`. Masks are read as class ids: palette PNGs
give their palette indices (not the RGB colours they display as), grey and
16-bit PNGs their integer values. Images are resized bilinearly, masks
with nearest neighbour (labels are never blended), then both are cached in
memory as arrays and batched by the shared pipeline, with augmentation
moving masks with their pixels. Pairs whose image or mask cannot be read
(not an image, truncated) are skipped, named in one warning and listed in
`skipped_files`, as `image_folder` does; `validation_split` then splits the
readable pairs, so no subset loses its files to skipping.
"""

import concurrent.futures
import logging
import os

import numpy as np

from kerasft.data import _mask_pipeline
from kerasft.data import _pipeline
from kerasft.data._listing import IMAGE_EXTENSIONS

_MASK_MODES = ("P", "L", "I", "I;16", "I;16B", "I;16L", "1")
# What PIL raises for a file that is not an image or is cut short
# (UnidentifiedImageError is an OSError; some broken PNGs raise SyntaxError).
_UNREADABLE = (OSError, SyntaxError)
_LOG = logging.getLogger("kerasft.data")


def read_mask(path, size=None):
    """A mask file as an int32 `(h, w)` array of class ids.

    Args:
        path: a palette (`P`), greyscale (`L`) or 16-bit integer PNG (any
            format PIL reads in those modes).
        size: `(height, width)` to resize to with nearest neighbour.
            Defaults to `None` (as stored).

    Raises:
        ValueError: an RGB/RGBA mask, whose colours are not class ids.
    """
    from PIL import Image

    with Image.open(path) as mask:
        if mask.mode not in _MASK_MODES:
            raise ValueError(
                f"Mask {os.fspath(path)!r} is a {mask.mode} image; masks must "
                "be palette or single-channel integer PNGs holding class ids. "
                "Convert colours to ids first (one id per colour)."
            )
        if size is not None and mask.size != (size[1], size[0]):
            mask = mask.resize((size[1], size[0]), Image.NEAREST)
        return np.asarray(mask).astype(np.int32)


def _read_image(path, size):
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")
        if image.size != (size[1], size[0]):
            image = image.resize((size[1], size[0]), Image.BILINEAR)
        return np.asarray(image, dtype=np.uint8)


def pair_files(image_dir, mask_dir, mask_suffix="", return_skipped=False):
    """`(image paths, mask paths)` matched by file stem, pairs with an
    unreadable file left out; errors list a few images without a mask, and
    images whose mask differs in size. With `return_skipped`, also the
    tuple of files left out as unreadable (a third item)."""
    image_paths, mask_paths, skipped = _readable_pairs(image_dir, mask_dir,
                                                       mask_suffix)
    if return_skipped:
        return image_paths, mask_paths, tuple(skipped)
    return image_paths, mask_paths


def _readable_pairs(image_dir, mask_dir, mask_suffix):
    """`(image paths, mask paths, skipped)`: `skipped` names the file of
    each pair PIL cannot open."""
    for arg, folder in (("image_dir", image_dir), ("mask_dir", mask_dir)):
        if not os.path.isdir(folder):
            raise ValueError(
                f"`{arg}` must be an existing folder. Received: {folder!r}"
            )
    images = sorted(
        f for f in os.listdir(image_dir) if f.lower().endswith(IMAGE_EXTENSIONS)
    )
    if not images:
        raise ValueError(f"Found no images in {image_dir!r}.")
    masks = {}
    for f in os.listdir(mask_dir):
        stem, ext = os.path.splitext(f)
        if ext.lower() in IMAGE_EXTENSIONS:
            masks[stem] = f
    missing = [f for f in images if os.path.splitext(f)[0] + mask_suffix not in masks]
    if missing:
        raise ValueError(
            f"The mask folder {mask_dir!r} lacks the masks of {len(missing)} of "
            f"{len(images)} images, e.g. "
            + ", ".join(repr(os.path.splitext(f)[0] + mask_suffix + ".png")
                        for f in missing[:5])
            + f" (for {', '.join(missing[:5])}). Masks share the image's file "
            "name (any image extension)."
        )
    image_paths = [os.path.join(image_dir, f) for f in images]
    mask_paths = [
        os.path.join(mask_dir, masks[os.path.splitext(f)[0] + mask_suffix])
        for f in images
    ]
    wrong, kept, skipped = [], [], []
    for image_path, mask_path in zip(image_paths, mask_paths):
        sizes = _sizes(image_path, mask_path)
        if isinstance(sizes, str):
            skipped.append(sizes)
            continue
        (a, b) = sizes
        kept.append((image_path, mask_path))
        if a != b:
            wrong.append(
                f"{image_path} is {a[0]}x{a[1]} but {mask_path} is {b[0]}x{b[1]}"
            )
    if wrong:
        raise ValueError(
            f"{len(wrong)} mask(s) differ in size from their image (width x "
            "height): " + "; ".join(wrong[:5]) + ("; ..." if len(wrong) > 5 else "")
        )
    return [i for i, _ in kept], [m for _, m in kept], skipped


def _sizes(image_path, mask_path):
    """`(image size, mask size)`, or the path of the one PIL cannot open."""
    from PIL import Image

    sizes = []
    for path in (image_path, mask_path):
        try:
            with Image.open(path) as f:
                sizes.append(f.size)
        except _UNREADABLE:
            return path
    return tuple(sizes)


def _read_pair(image_path, mask_path, image_size):
    """`(image, mask)` arrays, or the path of the file that fails to decode
    (a truncated file opens, then fails here)."""
    try:
        mask = read_mask(mask_path, image_size)
    except _UNREADABLE:
        return mask_path
    try:
        return _read_image(image_path, image_size), mask
    except _UNREADABLE:
        return image_path


def _report_skipped(skipped, total, where):
    if skipped:
        shown = ", ".join(skipped[:5]) + (", ..." if len(skipped) > 5 else "")
        _LOG.warning("Skipped %d unreadable image file(s) in %s: %s",
                     len(skipped), where, shown)
    if len(skipped) == total:
        raise ValueError(
            f"No readable image and mask pairs in {where!r} (all {total} "
            "were unreadable)."
        )


def segmentation_folder(image_dir, mask_dir, image_size, batch_size,
                        num_classes=None, class_names=None, ignore_index=255,
                        mask_suffix="", workers=8, **kwargs):
    """Images and same-named masks from two folders, as a `tf.data.Dataset`.

    `image_dir/cat_1.jpg` pairs with `mask_dir/cat_1.png` (any image
    extension; `mask_suffix="_mask"` pairs it with `cat_1_mask.png`).
    Batches are `(float32 images in [0, 255], int32 masks (b, h, w))`;
    the dataset carries `image_folder`'s attributes (`class_names`,
    `num_classes`, `num_samples`, `steps_per_epoch`, `file_paths`,
    `skipped_files`, `class_counts` as pixel counts) and `ignore_index`.
    Unreadable pairs are skipped before `validation_split` divides the
    rest; the training subset lists them in `skipped_files`.

    Args:
        image_dir: folder of images.
        mask_dir: folder of masks (palette or integer PNGs, see `read_mask`).
        image_size: `(height, width)` or one int.
        batch_size: examples per batch.
        num_classes: number of classes. Defaults to `None` (from
            `class_names`, else the largest label + 1).
        class_names: class names in id order. Defaults to `None`.
        ignore_index: label of pixels to ignore (kept as is), or `None`.
            Defaults to `255`.
        mask_suffix: what mask names add to the image's stem.
            Defaults to `""`.
        workers: decoding threads. Defaults to `8`.
        **kwargs: `segmentation_arrays`' batching arguments (`augment`,
            `validation_split`, `subset`, `seed`, `shuffle`,
            `drop_remainder`, `epoch`).

    Example:
    ```python
    train, val = kerasft.data.segmentation_folder(
        "pets/images", "pets/masks", 128, 16, num_classes=3,
        validation_split=0.2, subset="both", seed=1,
        augment=dict(horizontal_flip=True, rotation_range=10))
    ```
    """
    image_paths, mask_paths, skipped = _readable_pairs(image_dir, mask_dir,
                                                       mask_suffix)
    return segmentation_files(
        image_paths, mask_paths, image_size, batch_size, num_classes=num_classes,
        class_names=class_names, ignore_index=ignore_index, workers=workers,
        where=image_dir, skipped_files=skipped, **kwargs,
    )


def segmentation_files(image_paths, mask_paths, image_size, batch_size,
                       num_classes=None, class_names=None, ignore_index=255,
                       workers=8, where="the given files", skipped_files=(),
                       **kwargs):
    """Listed image and mask files (pair `i` is `image_paths[i]`,
    `mask_paths[i]`), decoded into a `tf.data.Dataset` as
    `segmentation_folder` does; pairs that fail to decode are skipped.

    Recipes list a folder (`pair_files`), keep a subset of the pairs, and
    decode only those.

    Args:
        image_paths, mask_paths: equally long lists of files.
        image_size, batch_size, num_classes, class_names, ignore_index,
            workers: as in `segmentation_folder`.
        where: the source named in messages. Defaults to
            `"the given files"`.
        skipped_files: files already left out as unreadable (listed in the
            result's `skipped_files`). Defaults to `()`.
        **kwargs: `segmentation_arrays`' batching arguments.

    Example:
    ```python
    images, masks = kerasft.data.masks.pair_files("pets/images", "pets/masks")
    train = kerasft.data.masks.segmentation_files(images[:100], masks[:100],
                                                  128, 16, num_classes=3)
    ```
    """
    if len(image_paths) != len(mask_paths):
        raise ValueError(
            "`image_paths` and `mask_paths` must pair up. Received "
            f"{len(image_paths)} images and {len(mask_paths)} masks."
        )
    image_size = _pipeline.check_image_size(image_size)
    skipped = list(skipped_files)
    total = len(image_paths) + len(skipped)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        pairs = list(pool.map(lambda p: _read_pair(*p, image_size),
                              zip(image_paths, mask_paths)))
    kept = [i for i, pair in enumerate(pairs) if not isinstance(pair, str)]
    skipped += [pair for pair in pairs if isinstance(pair, str)]
    _report_skipped(skipped, total, where)
    images = [pairs[i][0] for i in kept]
    masks = [pairs[i][1] for i in kept]
    image_paths = [image_paths[i] for i in kept]
    mask_paths = [mask_paths[i] for i in kept]
    wanted = _mask_pipeline.num_classes_of(num_classes, class_names)
    num_classes = _mask_pipeline.check_labels(masks, wanted, ignore_index, mask_paths)
    return _mask_pipeline.finish(np.stack(images), np.stack(masks), batch_size, num_classes,
                   class_names, ignore_index, file_paths=image_paths,
                   skipped_files=tuple(skipped), **kwargs)


def segmentation_arrays(images, masks, batch_size=32, image_size=None,
                        num_classes=None, class_names=None, ignore_index=255,
                        **kwargs):
    """Images `(N, h, w, c)` in [0, 255] and masks `(N, h, w[, 1])` in memory.

    Args:
        images, masks: arrays (or lists of arrays of varying sizes when
            `image_size` is given); mask `i` must match image `i` in size.
        batch_size, num_classes, class_names, ignore_index: as in
            `segmentation_folder`.
        image_size: `(height, width)` to resize to (masks with nearest
            neighbour). Defaults to `None` (as given).
        **kwargs: `augment` (an `ImageAugmentation`, a dict of its
            arguments, whose `mask_fill_value` then defaults to
            `ignore_index`, or a callable on the dict
            `{"images", "segmentation_masks"}`), `validation_split`,
            `subset` (`"training"`, `"validation"` or `"both"`), `seed`,
            `shuffle`, `drop_remainder`, `epoch`, as in `image_folder`.
    """
    if len(images) != len(masks):
        raise ValueError(
            f"`images` and `masks` must have one mask per image. Received "
            f"{len(images)} images and {len(masks)} masks."
        )
    masks = [np.asarray(m) for m in masks]
    masks = [m[..., 0] if m.ndim == 3 and m.shape[-1] == 1 else m for m in masks]
    images = [np.asarray(i) for i in images]
    wrong = [
        f"image {i} is {img.shape[:2]} but mask {i} is {m.shape}"
        for i, (img, m) in enumerate(zip(images, masks))
        if img.shape[:2] != m.shape
    ]
    if wrong:
        raise ValueError(
            f"{len(wrong)} mask(s) differ in size from their image "
            "(height, width): " + "; ".join(wrong[:5])
        )
    wanted = _mask_pipeline.num_classes_of(num_classes, class_names)
    num_classes = _mask_pipeline.check_labels(masks, wanted, ignore_index)
    if image_size is not None:
        from PIL import Image

        size = _pipeline.check_image_size(image_size)
        images = [_mask_pipeline.resize_array(i, size, Image.BILINEAR) for i in images]
        masks = [_mask_pipeline.resize_array(m, size, Image.NEAREST) for m in masks]
    images = [_mask_pipeline.rgb(i) for i in images]
    return _mask_pipeline.finish(np.stack(images).clip(0, 255).astype(np.uint8),
                   np.stack(masks).astype(np.int32), batch_size, num_classes,
                   class_names, ignore_index, **kwargs)


def segmentation_tfds(name, split, image_size, batch_size, image_key="image",
                      mask_key="segmentation_mask", label_offset=0,
                      data_dir=None, download=True, **kwargs):
    """A tensorflow-datasets segmentation split, e.g. `oxford_iiit_pet`.

    Args:
        name: a tfds dataset name or a prepared `DatasetBuilder`.
        split: a split string, e.g. `"train[:80%]"`.
        image_size, batch_size: as in `segmentation_folder`.
        image_key: feature holding the image. Defaults to `"image"`.
        mask_key: feature holding the mask. Defaults to
            `"segmentation_mask"`.
        label_offset: added to every mask label except `ignore_index`
            (`oxford_iiit_pet` stores 1, 2, 3: pass `-1`). Defaults to `0`.
        data_dir, download: as in `kerasft.data.tfds`.
        **kwargs: `segmentation_arrays`' arguments (`num_classes`,
            `ignore_index`, `augment`, `seed`, ...).
    """
    images, masks = tfds_arrays(
        name, split, image_key, mask_key, label_offset,
        kwargs.get("ignore_index", 255), data_dir=data_dir, download=download,
    )
    return segmentation_arrays(images, masks, batch_size, image_size=image_size,
                               **kwargs)


def tfds_arrays(name, split, image_key="image", mask_key="segmentation_mask",
                label_offset=0, ignore_index=255, data_dir=None, download=True):
    """`(images, masks)`: lists of the arrays of a tfds segmentation split,
    masks 2-D int32 with `label_offset` added (not to `ignore_index`).

    Args:
        name, split, image_key, mask_key, label_offset, data_dir, download:
            as in `segmentation_tfds`.
        ignore_index: the label `label_offset` leaves alone. Defaults to
            `255`.

    Example:
    ```python
    images, masks = tfds_arrays("oxford_iiit_pet", "train", label_offset=-1)
    ```
    """
    import tensorflow_datasets as tfds_lib

    if isinstance(name, str):
        builder = tfds_lib.builder(name, data_dir=data_dir)
        if download:
            builder.download_and_prepare()
    else:
        builder = name
    images, masks = [], []
    for example in tfds_lib.as_numpy(builder.as_dataset(split=split)):
        images.append(example[image_key])
        mask = np.asarray(example[mask_key]).astype(np.int32)
        mask = mask[..., 0] if mask.ndim == 3 else mask
        if label_offset:
            mask = np.where(mask == ignore_index, mask, mask + label_offset)
        masks.append(mask)
    return images, masks
