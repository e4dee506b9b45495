#!/usr/bin/env python
"""Head first, then every backbone group.

The same as `kerasft full-fine-tuning`: every option is a flag (`--help` lists
them), `--config FILE` reads them from JSON/YAML, flags override the file.

Example:
    python recipes/full_fine_tuning.py --config recipes/configs/full_fine_tuning.yaml --output runs/full_fine_tuning
"""

import sys

from kerasft.cli import main

if __name__ == "__main__":
    sys.exit(main(["full-fine-tuning", *sys.argv[1:]]))
