#!/usr/bin/env python
"""Extractive QA on SQuAD-format JSON with a BERT-family encoder.

The same as `kerasft question-answering`: every option is a flag (`--help` lists
them), `--config FILE` reads them from JSON/YAML, flags override the file.

Example:
    python recipes/question_answering.py --config recipes/configs/question_answering.yaml --output runs/question_answering
"""

import sys

from kerasft.cli import main

if __name__ == "__main__":
    sys.exit(main(["question-answering", *sys.argv[1:]]))
