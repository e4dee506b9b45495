"""`kerasft.data.video_folder`: video files and frame folders -> clip batches."""

import logging
import os

import numpy as np
import pytest
import tensorflow as tf

from kerasft.augment import ImageAugmentation
from kerasft.data import video_folder
from kerasft.data._video_decode import decode_clip, uniform_indices
from kerasft.data.video_folder import augment_clips
from tests._required import import_required
from tests.data import videos


def _all(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


@pytest.mark.parametrize("kind", ["mp4", "avi"])
def test_video_files_written_with_pyav_decode_to_their_frames(tmp_path, kind):
    import_required("av", "pip install 'kerasft[video]'")
    videos.clip_folder(str(tmp_path), per_class=2, kind=kind, frames=8)
    ds = video_folder(str(tmp_path), frames=8, image_size=32, batch_size=3,
                      shuffle=False)
    assert ds.class_names == ("left", "right")
    assert ds.num_samples == 4 and ds.steps_per_epoch == 2
    assert all(p.endswith("." + kind) for p in ds.file_paths)
    x, y = _all(ds)
    assert x.shape == (4, 8, 32, 32, 3) and x.dtype == np.float32
    np.testing.assert_array_equal(y, [0, 0, 1, 1])
    # Lossy codecs: the bright square is where it was written, frame by
    # frame (moving left in clip 0, right in clip 2).
    for clip, direction in ((x[0], "left"), (x[2], "right")):
        source = videos.moving_square(direction, 8, 32,
                                      seed=0 if direction == "left" else 1000)
        np.testing.assert_allclose(_square_x(clip), _square_x(source), atol=1)
    assert np.all(np.diff(_square_x(x[0])) < 0)


def _square_x(clip):
    """Column of the bright square's centre in every frame."""
    bright = np.asarray(clip, "float32").mean(axis=-1) > 100
    columns = np.arange(clip.shape[2])
    return np.array([(b.sum(0) * columns).sum() / b.sum() for b in bright])


def test_uniform_sampling_spreads_frames_and_long_clips_are_subsampled(tmp_path):
    assert uniform_indices(16, 4) == [2, 6, 10, 14]
    assert uniform_indices(3, 5) == [0, 1, 2, 2, 2]
    clip = videos.moving_square("right", 16, 32)
    videos.write_frames(str(tmp_path / "c"), clip)
    decoded, length = decode_clip(str(tmp_path / "c"), 4, (32, 32), "uniform")
    assert length == 16
    np.testing.assert_array_equal(decoded, clip[[2, 6, 10, 14]])


def test_frame_folder_layout_and_resize(tmp_path):
    videos.clip_folder(str(tmp_path), per_class=3, frames=6, size=32,
                       directions=("left", "right", "up"))
    ds = video_folder(str(tmp_path), frames=6, image_size=(16, 24),
                      batch_size=4, seed=0, label_mode="categorical")
    assert ds.num_classes == 3 and ds.class_counts == (3, 3, 3)
    x, y = next(iter(ds))
    assert x.shape == (4, 6, 16, 24, 3) and y.shape == (4, 3)
    assert ds.frames == 6 and ds.sampling == "uniform"


def test_unreadable_clips_skipped_and_short_clips_padded_are_reported(
    tmp_path, caplog
):
    videos.clip_folder(str(tmp_path), per_class=2, frames=8)
    broken = tmp_path / "left" / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    (tmp_path / "right" / "empty.avi").write_bytes(b"")
    short = videos.moving_square("right", 3, 32, seed=7)
    videos.write_frames(str(tmp_path / "right" / "short"), short)
    with caplog.at_level(logging.WARNING, logger="kerasft.data"):
        ds = video_folder(str(tmp_path), frames=8, image_size=32,
                          batch_size=8, shuffle=False)
    assert sorted(os.path.basename(p) for p in ds.skipped_files) == [
        "broken.mp4", "empty.avi"]
    assert [os.path.basename(p) for p in ds.padded_files] == ["short"]
    assert ds.num_samples == 5
    assert "Skipped 2 unreadable clip(s)" in caplog.text
    assert "Padded 1 clip(s)" in caplog.text
    x, _ = _all(ds)
    padded = x[list(ds.file_paths).index(ds.padded_files[0])]
    np.testing.assert_array_equal(padded[:3], short)
    for t in range(3, 8):  # the last frame repeated
        np.testing.assert_array_equal(padded[t], short[-1])


def test_random_consecutive_windows_vary_by_epoch_and_repeat_exactly(tmp_path):
    videos.clip_folder(str(tmp_path), per_class=2, frames=12)
    epoch = tf.Variable(0, dtype="int64")

    def load():
        return video_folder(str(tmp_path), frames=4, image_size=32,
                            batch_size=4, sampling="random_consecutive",
                            seed=3, epoch=epoch,
                            augment=dict(rotation_range=20, zoom_range=0.2))

    a, b = load(), load()
    first, again = _all(a), _all(b)
    np.testing.assert_array_equal(first[0], again[0])  # same (seed, epoch)
    epoch.assign(1)
    assert not np.array_equal(_all(a)[0], first[0])
    # Without shuffle: the centre window, deterministically.
    centre = video_folder(str(tmp_path), frames=4, image_size=32,
                          batch_size=4, sampling="random_consecutive",
                          shuffle=False)
    x, y = _all(centre)
    source = videos.moving_square("left", 12, 32, seed=0)
    np.testing.assert_array_equal(x[0], source[4:8])


def test_augmentation_is_one_transform_per_clip():
    clips = np.stack([videos.moving_square("right", 5, 16, seed=s)
                      for s in range(8)]).astype("float32")
    flip = ImageAugmentation(horizontal_flip=True)
    out = augment_clips(flip, tf.constant(clips), tf.constant([1, 2])).numpy()
    flipped = [np.array_equal(out[i], clips[i, :, :, ::-1]) for i in range(8)]
    kept = [np.array_equal(out[i], clips[i]) for i in range(8)]
    assert all(f or k for f, k in zip(flipped, kept))  # never frame by frame
    assert any(flipped) and any(kept)
    warp = ImageAugmentation(rotation_range=40, width_shift_range=0.3)
    out = augment_clips(warp, tf.constant(clips[:1]), tf.constant([5, 6]))
    assert out.shape == (1, 5, 16, 16, 3)
    # A one-image batch with the same seed draws the clip's transform:
    # every frame of the clip got exactly that warp.
    for t in range(5):
        alone = warp.augment(clips[0, t:t + 1], tf.constant([5, 6]))
        np.testing.assert_allclose(out[0, t], alone[0], atol=1e-3)
    assert not np.allclose(out[0], clips[0])


def test_validation_split_and_file_cache_are_reused(tmp_path):
    root = videos.clip_folder(str(tmp_path / "clips"), per_class=5, frames=4)
    cache = str(tmp_path / "cache")
    train, val = video_folder(root, frames=4, image_size=16, batch_size=2,
                              validation_split=0.2, subset="both", seed=0,
                              cache=cache)
    assert train.num_samples == 8 and val.num_samples == 2
    assert not set(train.file_paths) & set(val.file_paths)
    assert os.path.exists(cache + "-training.clips.json")
    again = video_folder(root, frames=4, image_size=16, batch_size=2,
                         validation_split=0.2, subset="training", seed=0,
                         cache=cache)
    assert again.file_paths == train.file_paths
    np.testing.assert_array_equal(
        _all(again.take(1))[1], _all(train.take(1))[1]
    )


def test_errors_before_anything_is_decoded(tmp_path):
    videos.clip_folder(str(tmp_path), per_class=1, frames=4)
    os.makedirs(tmp_path / "up")
    with pytest.raises(ValueError, match=r"\['up'\].*hold no clips"):
        video_folder(str(tmp_path), frames=4)
    os.rmdir(tmp_path / "up")
    with pytest.raises(ValueError, match="`frames` must be a positive int"):
        video_folder(str(tmp_path), frames=0)
    with pytest.raises(ValueError, match="`sampling` must be one of"):
        video_folder(str(tmp_path), sampling="dense")
    with pytest.raises(ValueError, match="`augment` for clips"):
        video_folder(str(tmp_path), augment="randaugment")
    with pytest.raises(ValueError, match="existing folder"):
        video_folder(str(tmp_path / "nope"))


def test_video_files_without_a_decoder_say_what_to_install(tmp_path, monkeypatch):
    import importlib.util

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.mp4").write_bytes(b"")
    (tmp_path / "b" / "y.avi").write_bytes(b"")
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec",
        lambda name, *a: None if name in ("av", "cv2") else real(name, *a),
    )
    with pytest.raises(ImportError, match=r"kerasft\[video\]"):
        video_folder(str(tmp_path), frames=4)


def test_no_readable_clips_names_the_part_of_the_split(tmp_path):
    """With `validation_split`, an all-unreadable part is named as that part,
    with its own count, not as the whole folder."""
    root = videos.clip_folder(str(tmp_path / "clips"), per_class=5, frames=4)
    _, val = video_folder(root, frames=4, image_size=16, batch_size=2,
                          validation_split=0.2, subset="both", seed=0)
    for path in val.file_paths:  # break exactly the held-out clips
        if os.path.isdir(path):
            for name in os.listdir(path):
                with open(os.path.join(path, name), "wb") as f:
                    f.write(b"garbage")
        else:
            with open(path, "wb") as f:
                f.write(b"garbage")
    with pytest.raises(ValueError) as info:
        video_folder(root, frames=4, image_size=16, batch_size=2,
                     validation_split=0.2, subset="both", seed=0)
    message = str(info.value)
    assert message.startswith(
        f"No readable clips in the validation part of {root!r} "
        "(validation_split=0.2): all 2 of its clips were unreadable.")
