#!/usr/bin/env python
"""Fine-tune an image backbone (EfficientNetB0 by default).

The same as `kerasft image-classification`: every option is a flag (`--help` lists
them), `--config FILE` reads them from JSON/YAML, flags override the file.

Example:
    python recipes/image_classification.py --config recipes/configs/image_classification.yaml --output runs/image_classification
"""

import sys

from kerasft.cli import main

if __name__ == "__main__":
    sys.exit(main(["image-classification", *sys.argv[1:]]))
