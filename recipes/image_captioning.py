#!/usr/bin/env python
"""Image captioning: an image backbone encoder + a Transformer decoder.

The same as `kerasft image-captioning`: every option is a flag (`--help` lists
them), `--config FILE` reads them from JSON/YAML, flags override the file.

Example:
    python recipes/image_captioning.py --train captions.csv \
        --backbone efficientnetb0 --image-size 224 --epochs 10 \
        --output runs/image_captioning
"""

import sys

from kerasft.cli import main

if __name__ == "__main__":
    sys.exit(main(["image-captioning", *sys.argv[1:]]))
