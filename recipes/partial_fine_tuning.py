#!/usr/bin/env python
"""Head first, then the top backbone groups.

The same as `kerasft partial-fine-tuning`: every option is a flag (`--help` lists
them), `--config FILE` reads them from JSON/YAML, flags override the file.

Example:
    python recipes/partial_fine_tuning.py --config recipes/configs/partial_fine_tuning.yaml --output runs/partial_fine_tuning
"""

import sys

from kerasft.cli import main

if __name__ == "__main__":
    sys.exit(main(["partial-fine-tuning", *sys.argv[1:]]))
