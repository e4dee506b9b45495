#!/usr/bin/env python
"""Domain adaptation of a GPT-2-family model on a text corpus.

The same as `kerasft causal-lm`: every option is a flag (`--help` lists
them), `--config FILE` reads them from JSON/YAML, flags override the file.

Example:
    python recipes/causal_lm.py --train corpus/ --backbone path/to/hf_gpt2 \
        --sequence-length 512 --stride 384 --prompts 'The court' --output runs/causal_lm
"""

import sys

from kerasft.cli import main

if __name__ == "__main__":
    sys.exit(main(["causal-lm", *sys.argv[1:]]))
