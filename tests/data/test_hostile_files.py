"""Image readers under hostile data (issue 24, item 7): only regular files
under a size cap are read; devices, FIFOs and broken symlinks are skipped
and reported, never hang the run or fill its memory."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from kerasft.data import _listing

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOSTILE = ["dangling.png", "fifo.png", "loop.png", "zero.png"]


def _hostile_folder(tmp_path):
    folder = tmp_path / "images"
    for name in ("cat", "dog"):
        (folder / name).mkdir(parents=True)
        for i in range(2):
            pixels = np.full((8, 8, 3), 60 * i + (100 if name == "cat" else 0), "uint8")
            Image.fromarray(pixels).save(folder / name / f"{i}.png")
    cat = folder / "cat"
    os.symlink("/dev/zero", cat / "zero.png")
    os.symlink(cat / "nowhere.png", cat / "dangling.png")
    os.symlink(cat / "loop.png", cat / "loop.png")
    os.mkfifo(cat / "fifo.png")
    rows = ["filename,label"] + [
        f"images/{c}/{n},{c}" for c in ("cat", "dog") for n in ("0.png", "1.png")
    ] + [f"images/cat/{n},cat" for n in HOSTILE]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder, tmp_path / "labels.csv"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs (POSIX)")
def test_devices_fifos_and_broken_links_are_skipped_not_read(tmp_path):
    folder, csv_path = _hostile_folder(tmp_path)
    env = {**os.environ, "PYTHONPATH": ROOT, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-m", "tests.data._hostile_child", str(folder),
         str(csv_path)],
        cwd=ROOT, env=env, capture_output=True, timeout=240,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    reads = [json.loads(line) for line in done.stdout.decode().splitlines()
             if line.startswith("{")]
    assert len(reads) == 4
    for read in reads:
        assert read["images"] == 4, read
        assert read["skipped"] == HOSTILE, read


def test_unreadable_file_reason(tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    assert _listing.unreadable_file_reason(str(big)) is None
    assert "larger than 10 bytes" in _listing.unreadable_file_reason(str(big), 10)
    assert _listing.unreadable_file_reason("/dev/zero") == "not a regular file"
    assert _listing.unreadable_file_reason(str(tmp_path)) == "not a regular file"
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    assert _listing.unreadable_file_reason(str(tmp_path / "loop"))
    assert _listing.unreadable_file_reason(str(tmp_path / "missing"))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs (POSIX)")
def test_video_decoder_refuses_fifos_and_devices_without_opening(tmp_path):
    from kerasft.data import _video_decode

    os.mkfifo(tmp_path / "clip.mp4")
    os.symlink("/dev/zero", tmp_path / "zero.mp4")
    for name in ("clip.mp4", "zero.mp4"):
        with pytest.raises(ValueError, match="not a regular file"):
            _video_decode.decode_clip(str(tmp_path / name), 4, (8, 8), "uniform")
    frames = tmp_path / "frames"
    frames.mkdir()
    os.symlink("/dev/zero", frames / "0001.png")
    with pytest.raises(ValueError, match="not a regular file"):
        _video_decode.decode_clip(str(frames), 4, (8, 8), "uniform")
