#!/usr/bin/env python
"""Video action recognition: an image backbone per frame + a temporal head.

The same as `kerasft video-classification`: every option is a flag (`--help` lists
them), `--config FILE` reads them from JSON/YAML, flags override the file.

Example:
    python recipes/video_classification.py --train ucf101/train --val ucf101/val --frames 16 --output runs/video_classification
"""

import sys

from kerasft.cli import main

if __name__ == "__main__":
    sys.exit(main(["video-classification", *sys.argv[1:]]))
