#!/usr/bin/env python
"""Named-entity recognition (token classification) with a BERT-family encoder.

The same as `kerasft token-classification`: every option is a flag (`--help` lists
them), `--config FILE` reads them from JSON/YAML, flags override the file.

Example:
    python recipes/token_classification.py --train eng.train --val eng.testa --output runs/token_classification
"""

import sys

from kerasft.cli import main

if __name__ == "__main__":
    sys.exit(main(["token-classification", *sys.argv[1:]]))
