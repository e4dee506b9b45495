"""Reads a hostile image folder and CSV (issue 24, item 7) in its own
process, so a hang is a timeout of the test, not of the suite.

Usage: python -m tests.data._hostile_child FOLDER CSV
Prints one JSON line per read: the kept and skipped file names.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from kerasft import data  # noqa: E402


def main(folder, csv_path):
    for cache, check in ((True, "header"), (False, "header"), (False, "decode")):
        ds = data.image_folder(folder, (8, 8), 2, cache=cache,
                               check_files=check, shuffle=False)
        n = sum(int(x.shape[0]) for x, _ in ds.take(ds.steps_per_epoch))
        print(json.dumps({
            "where": f"folder cache={cache} {check}", "images": n,
            "skipped": sorted(os.path.basename(p) for p in ds.skipped_files),
        }), flush=True)
    ds = data.image_csv(csv_path, (8, 8), 2, shuffle=False)
    print(json.dumps({
        "where": "csv", "images": len(ds.file_paths),
        "skipped": sorted(os.path.basename(p) for p in ds.skipped_files),
    }), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
