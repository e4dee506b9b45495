"""`kerasft.advise`: measure the data and the backbone, choose the plan.

`advise(data, backbone)` returns an `Advice` (strategy, head epochs, rates,
layer decay, epochs), each choice from cheap measurements by a rule stated
in one sentence (`kerasft/advisor/_rules.py`). `mode="auto"` in the
`image_classification` recipe runs it first and follows it.
"""

from kerasft.advisor.advice import ADVICE_FILE
from kerasft.advisor.advice import Advice
from kerasft.advisor.advising import advise

__all__ = ["ADVICE_FILE", "Advice", "advise"]
