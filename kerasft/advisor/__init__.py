"""`kerasft.advise`: measure the data and the backbone, choose the plan.

`advise(data, backbone)` returns an `Advice` (strategy, head epochs, rates,
layer decay, epochs), each choice from cheap measurements by a rule stated
in one sentence (`kerasft/advisor/_rules.py`). `mode="auto"` in the
`image_classification` recipe runs it first and follows it.
"""

import importlib as _importlib

# Loaded on first use, so that `kerasft advise --help` (this package's
# `command`) answers without importing TensorFlow.
_LAZY = {
    "ADVICE_FILE": "kerasft.advisor.advice",
    "Advice": "kerasft.advisor.advice",
    "advise": "kerasft.advisor.advising",
}


def __getattr__(name):
    if name in _LAZY:
        return getattr(_importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kerasft.advisor' has no attribute {name!r}")

__all__ = ["ADVICE_FILE", "Advice", "advise"]
