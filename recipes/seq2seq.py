#!/usr/bin/env python
"""Fine-tune T5 or BART on a CSV of source,target pairs (translation,
summarization).

The same as `kerasft seq2seq`: every option is a flag (`--help` lists
them), `--config FILE` reads them from JSON/YAML, flags override the file.

Example:
    python recipes/seq2seq.py --train pairs.csv --backbone t5_small_multi \
        --task-prefix "translate English to German: " --epochs 3 \
        --output runs/translate
"""

import sys

from kerasft.cli import main

if __name__ == "__main__":
    sys.exit(main(["seq2seq", *sys.argv[1:]]))
