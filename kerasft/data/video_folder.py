"""`video_folder`: class-per-folder video clips as a fast `tf.data` pipeline.

Every clip is decoded once (threads in parallel; frames resized while they
are converted to RGB), cached as uint8 before the shuffle, and each epoch
then shuffles, samples frames, batches, augments with one random
transform per clip and mixes clips (`mix`: MixUp / CutMix of whole clips),
from stateless seeds of `(seed, epoch, batch)` as `image_folder` does, so
resumed runs repeat exactly.
"""

import concurrent.futures
import json
import logging
import os
import random

import numpy as np
import tensorflow as tf

from kerasft.augment import ImageAugmentation
from kerasft.data import _pipeline
from kerasft.data._split import holdout_indices
from kerasft.data._video_decode import SAMPLINGS, check_decoder, decode_clip, list_clips
from kerasft.data.images import _check_split

_LOG = logging.getLogger("kerasft.data")


def video_folder(
    directory,
    frames=16,
    image_size=(112, 112),
    batch_size=8,
    sampling="uniform",
    augment=None,
    validation_split=None,
    subset=None,
    seed=None,
    cache=True,
    shuffle=True,
    label_mode="int",
    drop_remainder=None,
    class_names=None,
    shuffle_buffer=None,
    epoch=None,
    workers=None,
    select=None,
    mix=None,
):
    """Loads `directory/<class>/<clip>` video clips as a `tf.data.Dataset`.

    A clip is a video file (mp4, avi, webm, mkv, ...; decoded with PyAV,
    or OpenCV when PyAV is missing: `pip install 'kerasft[video]'`) or a
    folder of frame images (`class/clip/frame_0001.jpg`, the UCF101
    frame-dump layout). Batches are `(clips, labels)` with clips float32
    `[batch, frames, height, width, 3]` in `[0, 255]` (unless `augment`
    rescales).

    Unreadable clips are skipped, named in one warning and listed in
    `skipped_files`; clips with fewer than `frames` frames are padded by
    repeating their last frame and listed in `padded_files`. The dataset
    carries `image_folder`'s attributes (`class_names`, `class_counts`,
    `num_classes`, `num_samples`, `steps_per_epoch`, `file_paths`,
    `skipped_files`, `augment`, `class_weights()`) plus `frames`,
    `sampling` and `padded_files`.

    Args:
        directory: folder with one subfolder of clips per class.
        frames: frames per clip (>= 1). Defaults to `16`.
        image_size: `(height, width)` of every frame, or one int.
            Defaults to `(112, 112)`.
        batch_size: clips per batch. Defaults to `8`.
        sampling: `"uniform"` (`frames` frames spread evenly over the
            clip, chosen once and cached) or `"random_consecutive"` (every
            frame cached; each epoch a random window of `frames`
            consecutive frames per clip, the centre window when
            `shuffle=False`). Defaults to `"uniform"`.
        augment: `None`, a `kerasft.augment.ImageAugmentation` or a dict of
            its (ImageDataGenerator) arguments, applied with one random
            transform per clip (every frame moves alike); or a callable on
            float32 clip batches. Defaults to `None`.
        validation_split: fraction of clips held out (stratified), with
            `subset` and `seed`, as in `image_folder`. Defaults to `None`.
        subset: `"training"`, `"validation"` or `"both"`. Defaults to `None`.
        seed: seed of the split, shuffle, sampling and augmentation.
            Defaults to `None`.
        cache: `True` (memory) or a file path for the decoded frames.
            Defaults to `True`.
        shuffle: reshuffle every epoch. Defaults to `True`.
        label_mode: `"int"` or `"categorical"`. Defaults to `"int"`.
        drop_remainder: drop the last partial batch (`None`: only on TPU).
            Defaults to `None`.
        class_names: class subfolders to use, in label order.
            Defaults to `None` (all, sorted).
        shuffle_buffer: shuffle block size. Defaults to `None` (all clips).
        epoch: a `tf.Variable` holding the epoch number, for exact resume.
            Defaults to `None`.
        workers: decoding threads. Defaults to `None` (one per CPU).
        select: a function `select(labels, part)` returning the indices of
            the listed clips to keep (`labels`: their int labels; `part`:
            `"training"`, or `"validation"` for the `validation_split`
            part), called before any clip is decoded: the recipes'
            stratified `max_train_samples` / `max_eval_samples`.
            Defaults to `None` (every clip).
        mix: `None`, a `kerasft.augment.MixUp` / `CutMix` applied to whole
            clips (`ClipMixing`: one blend weight per clip for all its
            frames; one CutMix box per clip, the same in every frame), or a
            callable on `(clips, one_hot_labels)` batches. Needs
            `label_mode="categorical"`; the `validation_split` part is
            never mixed. Defaults to `None`.

    Returns:
        A `tf.data.Dataset` with the attributes above, or a pair
        `(training, validation)` for `subset="both"`.

    Example:
    ```python
    train, val = kerasft.data.video_folder(
        "ucf101/", frames=16, image_size=112, batch_size=8,
        validation_split=0.2, subset="both", seed=0,
        augment=dict(horizontal_flip=True, zoom_range=0.1))
    model.fit(train, validation_data=val, epochs=5)
    ```
    """
    check_frames(frames)
    if sampling not in SAMPLINGS:
        raise ValueError(
            f"`sampling` must be one of {SAMPLINGS}. "
            f"Received: sampling={sampling!r}"
        )
    image_size = _pipeline.check_image_size(image_size)
    mix = _resolve_mix(mix)
    _pipeline.check_common(batch_size, label_mode, mix)
    augment = _resolve_augment(augment)
    _check_split(validation_split, subset, seed)
    if cache is not True and not isinstance(cache, str):
        raise TypeError(
            "`cache` must be True (memory) or a file path. "
            f"Received: cache={cache!r}"
        )
    names, paths, labels = list_clips(directory, class_names)
    check_decoder(paths)
    held_out = None
    if validation_split:
        keep, out = holdout_indices(labels, validation_split, seed)
        held_out = [paths[i] for i in out], [labels[i] for i in out]
        paths, labels = [paths[i] for i in keep], [labels[i] for i in keep]
        if select is not None:
            held_out = _selected(select, *held_out, "validation")
    if select is not None:
        paths, labels = _selected(select, paths, labels, "training")
    if shuffle:  # a mixed order in the cache (see image_folder)
        order = list(range(len(paths)))
        random.Random(seed).shuffle(order)
        paths, labels = [paths[i] for i in order], [labels[i] for i in order]
    common = dict(
        names=tuple(names), frames=frames, image_size=image_size,
        sampling=sampling, batch_size=batch_size, seed=seed,
        label_mode=label_mode, shuffle_buffer=shuffle_buffer, epoch=epoch,
        drop_remainder=_pipeline.resolve_drop_remainder(drop_remainder),
        workers=workers or os.cpu_count() or 1, where=repr(os.fspath(directory)),
    )
    if not validation_split:
        return _subset(paths, labels, cache, shuffle, augment, mix, **common)

    def part(name, files, targets, shuffled, aug, mixer):
        place = f"{cache}-{name}" if isinstance(cache, str) else cache
        where = (f"the {name} part of {common['where']} "
                 f"(validation_split={validation_split})")
        return _subset(files, targets, place, shuffled, aug, mixer,
                       **{**common, "where": where})

    if subset == "training":
        return part("training", paths, labels, shuffle, augment, mix)
    val = part("validation", *held_out, False, None, None)
    if subset == "validation":
        return val
    return part("training", paths, labels, shuffle, augment, mix), val


def _selected(select, paths, labels, part):
    """`(paths, labels)` at the indices `select(labels, part)` keeps."""
    keep = [int(i) for i in select(np.asarray(labels, np.int64), part)]
    return [paths[i] for i in keep], [labels[i] for i in keep]


def check_frames(frames):
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise ValueError(
            "`frames` must be a positive int (frames per clip). "
            f"Received: frames={frames!r}"
        )


def _resolve_augment(augment):
    if isinstance(augment, str):
        raise ValueError(
            "`augment` for clips must be None, an ImageAugmentation, a dict "
            "of its arguments or a callable on clip batches. "
            f"Received: augment={augment!r}"
        )
    return _pipeline.resolve_augment(augment)


def _resolve_mix(mix):
    """A `MixUp` / `CutMix` (anything with `mix(images, labels, seed)`)
    becomes a `ClipMixing`; `None`, a `ClipMixing` or another callable on
    clip batches is kept."""
    if mix is None or isinstance(mix, ClipMixing) or not hasattr(mix, "mix"):
        return mix
    return ClipMixing(mix)


def _subset(paths, labels, cache, shuffle, augment, mix, *, names, frames,
            image_size, sampling, batch_size, seed, label_mode,
            shuffle_buffer, epoch, drop_remainder, workers, where):
    """One subset's clips -> decoded, cached -> batches, with its info."""
    decoded = _decode_all(paths, labels, frames, image_size, sampling,
                          cache, workers, where)
    kept, kept_labels, skipped, padded, elements = decoded
    ds = _batches(
        elements, len(kept), len(names), frames, sampling, batch_size,
        augment, shuffle, shuffle_buffer, seed, label_mode, drop_remainder,
        epoch, mix,
    )
    ds = _pipeline.with_info(
        ds, class_names=names,
        class_counts=np.bincount(kept_labels, minlength=len(names)),
        num_samples=len(kept), batch_size=batch_size,
        drop_remainder=drop_remainder, augment=augment, mix=mix,
        file_paths=kept, skipped_files=skipped,
    )
    for name, value in (("frames", frames), ("sampling", sampling),
                        ("padded_files", tuple(padded))):
        object.__setattr__(ds, name, value)
    return ds


def _decode_all(paths, labels, frames, image_size, sampling, cache,
                workers, where):
    """Decodes every clip once (threads) into a cached dataset of
    `(uint8 frames, label)`; returns kept paths and labels, skipped and
    padded paths, and the dataset."""
    failures, padded, kept = {}, [], []

    def decode(path):
        try:
            return decode_clip(path, frames, image_size, sampling)
        except Exception as e:  # any decoder error: the clip is unreadable
            failures[path] = f"{type(e).__name__}: {e}"
            return None

    def generate():
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            # A bounded window of clips in flight keeps memory flat.
            window = max(2 * workers, 4)
            pending = [pool.submit(decode, p) for p in paths[:window]]
            for i, path in enumerate(paths):
                result = pending[i].result()
                pending[i] = None
                if i + window < len(paths):
                    pending.append(pool.submit(decode, paths[i + window]))
                if result is None:
                    continue
                clip, length = result
                if length < frames:
                    padded.append(path)
                kept.append(i)
                yield clip, np.int32(labels[i])

    height, width = image_size
    known = _read_sidecar(cache, paths)
    ds = tf.data.Dataset.from_generator(generate, output_signature=(
        tf.TensorSpec([None, height, width, 3], tf.uint8),
        tf.TensorSpec([], tf.int32),
    ))
    ds = ds.cache() if cache is True else ds.cache(cache)
    if known is None:
        for _ in ds.batch(64).map(lambda c, y: y):  # fills the cache
            pass
        _write_sidecar(cache, paths, kept, failures, padded)
    else:  # a complete cache file of an earlier process
        kept[:], padded[:] = known["kept"], known["padded"]
        failures.update(known["failures"])
    skipped = tuple(p for p in paths if p in failures)
    if skipped:
        shown = "; ".join(f"{p} ({failures[p]})" for p in skipped[:5])
        _LOG.warning("Skipped %d unreadable clip(s) in %s: %s%s",
                     len(skipped), where, shown,
                     ", ..." if len(skipped) > 5 else "")
    if padded:
        _LOG.warning(
            "Padded %d clip(s) shorter than %d frames in %s by repeating "
            "their last frame: %s%s", len(padded), frames, where,
            ", ".join(padded[:5]), ", ..." if len(padded) > 5 else "")
    if not kept:
        raise ValueError(
            f"No readable clips in {where}: all {len(skipped)} of its clips "
            "were unreadable."
        )
    return (tuple(paths[i] for i in kept),
            np.asarray([labels[i] for i in kept], np.int64),
            skipped, tuple(padded), ds)


def _batches(elements, num_samples, num_classes, frames, sampling,
             batch_size, augment, shuffle, shuffle_buffer, seed, label_mode,
             drop_remainder, epoch, mix=None):
    """Cached `(uint8 frames, label)` -> shuffled, sampled, batched,
    augmented, mixed `(float32 clips, labels)`, one stateless seed per
    epoch."""
    autotune = tf.data.AUTOTUNE
    buffer = num_samples if shuffle_buffer is None else shuffle_buffer
    buffer = max(1, min(buffer, num_samples))

    def window(clip, clip_seed):
        if sampling == "uniform":
            return clip
        spare = tf.shape(clip)[0] - frames
        if shuffle:
            start = tf.random.stateless_uniform(
                [], clip_seed, minval=0, maxval=spare + 1, dtype=tf.int32
            )
        else:
            start = spare // 2
        return clip[start:start + frames]

    def transform(step_seed, clips, labels):
        clips = tf.ensure_shape(clips, [None, frames, None, None, 3])
        if isinstance(augment, ImageAugmentation):
            clips = augment_clips(augment, clips, step_seed)
        elif augment is not None:
            clips = augment(tf.cast(clips, tf.float32))
        else:
            clips = tf.cast(clips, tf.float32)
        if label_mode == "categorical":
            labels = tf.one_hot(labels, num_classes)
        if isinstance(mix, ClipMixing):  # stateless: exact resume
            clips, labels = mix.mix(clips, labels, _fold(step_seed, 1))
        elif mix is not None:
            clips, labels = mix(clips, labels)
        return clips, labels

    def one_epoch(epoch_seed):
        ds = elements
        if shuffle:
            ds = _pipeline.shuffled(ds, buffer, epoch_seed)
        ds = ds.enumerate().map(
            lambda i, element: (
                window(element[0], _fold(_fold(epoch_seed, 2), i)),
                element[1],
            ),
            num_parallel_calls=autotune,
        )
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        return ds.enumerate().map(
            lambda step, batch: transform(
                _fold(epoch_seed, step), batch[0], batch[1]
            ),
            num_parallel_calls=autotune,
        )

    steps = (num_samples // batch_size if drop_remainder
             else -(-num_samples // batch_size))
    ds = _pipeline.epoch_seeds(seed, epoch).flat_map(one_epoch)
    ds = ds.apply(tf.data.experimental.assert_cardinality(steps))
    return ds.prefetch(autotune)


def _fold(seed, value):
    return tf.random.experimental.stateless_fold_in(
        tf.cast(seed, tf.int64), tf.cast(value, tf.int64)
    )


def augment_clips(augmentation, clips, seed):
    """`augmentation` (an `ImageAugmentation`) with one random transform
    per clip: the frames of a clip are stacked as channels of one image
    (`[b, h, w, frames * c]`), so the warp, flips, brightness and channel
    shift drawn for that image move every frame alike.

    Args:
        augmentation: a `kerasft.augment.ImageAugmentation`.
        clips: `[batch, frames, height, width, channels]`.
        seed: a stateless `[2]` seed.

    Returns:
        float32 clips of the same shape.
    """
    clips = tf.cast(clips, tf.float32)
    out = augmentation.augment(_frames_on_channels(clips), seed)
    return _frames_from_channels(out, clips)


def _frames_on_channels(clips):
    """`[b, frames, h, w, c]` -> `[b, h, w, frames * c]`: one image per
    clip, whose channels are every frame's."""
    shape = tf.shape(clips)
    stacked = tf.transpose(clips, [0, 2, 3, 1, 4])
    return tf.reshape(
        stacked, [shape[0], shape[2], shape[3], shape[1] * shape[4]]
    )


def _frames_from_channels(images, clips):
    """`_frames_on_channels`'s inverse, back to the shape of `clips`."""
    shape = tf.shape(clips)
    out = tf.reshape(
        images, [shape[0], shape[2], shape[3], shape[1], shape[4]]
    )
    return tf.ensure_shape(tf.transpose(out, [0, 3, 1, 2, 4]), clips.shape)


def mix_clips(mixer, clips, labels, seed):
    """`mixer` (a `kerasft.augment.MixUp` / `CutMix`) on whole clips: the
    frames of a clip are stacked as channels of one image (as in
    `augment_clips`), so MixUp draws one weight per clip for all its
    frames and CutMix one box per clip, pasted at the same place in every
    frame, its label weight the pasted area.

    Args:
        mixer: an image mixer with a stateless `mix(images, labels, seed)`
            that treats every channel alike (`MixUp`, `CutMix`).
        clips: `[batch, frames, height, width, channels]`.
        labels: one-hot `[batch, classes]`.
        seed: a stateless `[2]` seed.

    Returns:
        `(float32 clips of the same shape, soft labels)`.
    """
    clips = tf.cast(clips, tf.float32)
    mixed, labels = mixer.mix(_frames_on_channels(clips), labels, seed)
    return _frames_from_channels(mixed, clips), labels


class ClipAugmentation:
    """An `ImageAugmentation` applied to clip batches with one random
    transform per clip (`augment_clips`), for pipelines that take a
    stateless `augment(batch, seed)` (`kerasft.data._pipeline.finish`).

    Args:
        augmentation: a `kerasft.augment.ImageAugmentation`.

    Example:
    ```python
    aug = ClipAugmentation(ImageAugmentation(horizontal_flip=True))
    clips = aug.augment(clips, seed=tf.constant([0, 1], tf.int64))
    ```
    """

    def __init__(self, augmentation):
        self.augmentation = augmentation

    def augment(self, clips, seed):
        return augment_clips(self.augmentation, clips, seed)

    def __call__(self, clips):
        seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int64)
        return self.augment(clips, seed)


class ClipMixing:
    """A `kerasft.augment.MixUp` / `CutMix` on `(clips, one_hot_labels)`
    batches, whole clips at a time (`mix_clips`): one MixUp weight per
    clip, one CutMix box per clip in the same place in every frame. It has
    the stateless `mix(clips, labels, seed)` that `video_folder(mix=...)`
    and `kerasft.data._pipeline.finish(mix=...)` call.

    Args:
        mixer: a `kerasft.augment.MixUp` or `CutMix`.

    Example:
    ```python
    mixing = ClipMixing(kerasft.augment.CutMix(1.0))
    clips, soft_labels = mixing.mix(clips, one_hot_labels,
                                    seed=tf.constant([0, 1], tf.int64))
    ```
    """

    def __init__(self, mixer):
        if not callable(getattr(mixer, "mix", None)):
            raise TypeError(
                "`mixer` must be a kerasft.augment.MixUp or CutMix (a "
                "stateless `mix(images, labels, seed)`). "
                f"Received: mixer={mixer!r}"
            )
        self.mixer = mixer

    def mix(self, clips, labels, seed):
        return mix_clips(self.mixer, clips, labels, seed)

    def __call__(self, clips, labels, *rest):
        seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int64)
        return (*self.mix(clips, labels, seed), *rest)

    def __repr__(self):
        return f"ClipMixing({self.mixer!r})"


def _sidecar(cache):
    return f"{cache}.clips.json"


def _read_sidecar(cache, paths):
    """What decoding found, kept beside a complete cache file (`None`
    when there is none for exactly these clips)."""
    if cache is True or not os.path.exists(f"{cache}.index"):
        return None
    try:
        with open(_sidecar(cache)) as f:
            known = json.load(f)
    except (OSError, ValueError):
        return None
    return known if known.get("paths") == list(paths) else None


def _write_sidecar(cache, paths, kept, failures, padded):
    if cache is True:
        return
    from kerasft import _io

    _io.write_json(_sidecar(cache), {
        "paths": list(paths), "kept": list(kept), "failures": failures,
        "padded": list(padded),
    })
