"""Evaluation: metrics per task as plain floats, box AP, and PNG plots.

- `metrics`: `evaluate`, `compute_metrics`, `collect_predictions`.
- `boxes`: `box_iou`, `average_precision_per_class`, `mean_average_precision`.
- `coco`: `coco_metrics` (COCO mAP@[.5:.95], mAP@0.5, AP/AR by area).
- `plots`: `plot_history`, `plot_confusion_matrix`.
- `segmentation`: pixel accuracy, mean/per-class IoU and Dice from one
  confusion matrix (`segmentation_confusion_matrix`, `segmentation_scores`).
- `squad`: SQuAD v1.1/v2.0 exact match and F1 (`squad_scores`).
- `entities`: entity-level precision/recall/F1 over BIO tags (`entity_scores`).
- `generation`: corpus BLEU (sacreBLEU), ROUGE-1/2/L and exact match of
  generated text (`bleu`, `rouge`, `exact_match`, `generation_scores`).
- `captioning`: several references per image: BLEU-1..4 (sacreBLEU) and
  CIDEr-D (`caption_bleu`, `cider_d`, `caption_scores`).
"""

# The constants stay reachable as `kerasft.evaluation.TASKS` etc., as they
# were before the split, but are not star-exported.
from kerasft.evaluation.boxes import BOX_FORMATS  # noqa: F401
from kerasft.evaluation.boxes import average_precision_per_class
from kerasft.evaluation.boxes import box_iou
from kerasft.evaluation.boxes import mean_average_precision
from kerasft.evaluation.coco import coco_metrics
from kerasft.evaluation.metrics import BBOX  # noqa: F401
from kerasft.evaluation.metrics import CLASSES  # noqa: F401
from kerasft.evaluation.metrics import TASKS  # noqa: F401
from kerasft.evaluation.metrics import collect_predictions
from kerasft.evaluation.metrics import compute_metrics
from kerasft.evaluation.metrics import evaluate
from kerasft.evaluation.plots import plot_confusion_matrix
from kerasft.evaluation.plots import plot_history
from kerasft.evaluation.entities import entity_scores
from kerasft.evaluation.entities import get_entities
from kerasft.evaluation.captioning import caption_bleu
from kerasft.evaluation.captioning import caption_scores
from kerasft.evaluation.captioning import cider_d
from kerasft.evaluation.generation import bleu
from kerasft.evaluation.generation import exact_match
from kerasft.evaluation.generation import generation_scores
from kerasft.evaluation.generation import rouge
from kerasft.evaluation.squad import normalize_answer
from kerasft.evaluation.squad import squad_scores
from kerasft.evaluation.segmentation import segmentation_confusion_matrix
from kerasft.evaluation.segmentation import segmentation_scores

__all__ = [
    "average_precision_per_class",
    "bleu",
    "caption_bleu",
    "caption_scores",
    "cider_d",
    "box_iou",
    "coco_metrics",
    "collect_predictions",
    "compute_metrics",
    "entity_scores",
    "exact_match",
    "generation_scores",
    "get_entities",
    "normalize_answer",
    "squad_scores",
    "evaluate",
    "mean_average_precision",
    "plot_confusion_matrix",
    "plot_history",
    "rouge",
    "segmentation_confusion_matrix",
    "segmentation_scores",
]
