#!/usr/bin/env python
"""Train a new head on a frozen image backbone.

The same as `kerasft feature-extraction`: every option is a flag (`--help` lists
them), `--config FILE` reads them from JSON/YAML, flags override the file.

Example:
    python recipes/feature_extraction.py --config recipes/configs/feature_extraction.yaml --output runs/feature_extraction
"""

import sys

from kerasft.cli import main

if __name__ == "__main__":
    sys.exit(main(["feature-extraction", *sys.argv[1:]]))
