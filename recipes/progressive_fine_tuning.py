#!/usr/bin/env python
"""Head, then the top groups, then everything, at lower rates.

The same as `kerasft progressive-fine-tuning`: every option is a flag (`--help` lists
them), `--config FILE` reads them from JSON/YAML, flags override the file.

Example:
    python recipes/progressive_fine_tuning.py --config recipes/configs/progressive_fine_tuning.yaml --output runs/progressive_fine_tuning
"""

import sys

from kerasft.cli import main

if __name__ == "__main__":
    sys.exit(main(["progressive-fine-tuning", *sys.argv[1:]]))
