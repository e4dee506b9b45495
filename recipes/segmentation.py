#!/usr/bin/env python
"""Semantic segmentation: a backbone's feature pyramid + U-Net or DeepLabV3+.

The same as `kerasft segmentation`: every option is a flag (`--help` lists
them), `--config FILE` reads them from JSON/YAML, flags override the file.

Example:
    python recipes/segmentation.py --train data/pets/train --val data/pets/val --kind deeplabv3plus --output runs/pets
"""

import sys

from kerasft.cli import main

if __name__ == "__main__":
    sys.exit(main(["segmentation", *sys.argv[1:]]))
