#!/usr/bin/env python
"""Fine-tune a BERT-family encoder on a CSV of text,label.

The same as `kerasft text-classification`: every option is a flag (`--help` lists
them), `--config FILE` reads them from JSON/YAML, flags override the file.

Example:
    python recipes/text_classification.py --config recipes/configs/text_classification.json --output runs/text_classification
"""

import sys

from kerasft.cli import main

if __name__ == "__main__":
    sys.exit(main(["text-classification", *sys.argv[1:]]))
