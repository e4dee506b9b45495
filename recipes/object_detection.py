#!/usr/bin/env python
"""One box and one class per image (MobileNetV2 + detection head).

The same as `kerasft object-detection`: every option is a flag (`--help` lists
them), `--config FILE` reads them from JSON/YAML, flags override the file.

Example:
    python recipes/object_detection.py --config recipes/configs/object_detection.yaml --output runs/object_detection
"""

import sys

from kerasft.cli import main

if __name__ == "__main__":
    sys.exit(main(["object-detection", *sys.argv[1:]]))
