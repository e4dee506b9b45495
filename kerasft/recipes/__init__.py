"""Recipes: the kerasft pieces composed for one task, distributed and resumable.

Every recipe takes a frozen dataclass config (or a dict, a JSON/YAML path,
or keyword arguments), runs inside `strategy.scope()` under the chosen
precision policy, writes `config.json`, `metrics.json`, `history.csv`,
`model.keras`, plots and TensorBoard logs into `output_dir` (atomically),
resumes an interrupted run started again with the same config, and returns
a `RecipeResult` with `.model`, `.history`, `.metrics` and `.output_dir`.
"""

from kerasft.recipes._runner import RecipeResult
from kerasft.recipes.config import RecipeConfig
from kerasft.recipes.fine_tuning import feature_extraction
from kerasft.recipes.fine_tuning import full_fine_tuning
from kerasft.recipes.fine_tuning import partial_fine_tuning
from kerasft.recipes.fine_tuning import progressive_fine_tuning
from kerasft.recipes.image_classification import ImageClassificationConfig
from kerasft.recipes.image_classification import image_classification
from kerasft.recipes.object_detection import ObjectDetectionConfig
from kerasft.recipes.object_detection import object_detection
from kerasft.recipes.question_answering import QuestionAnsweringConfig
from kerasft.recipes.question_answering import question_answering
from kerasft.recipes.text_classification import TextClassificationConfig
from kerasft.recipes.text_classification import text_classification

__all__ = [
    "ImageClassificationConfig",
    "ObjectDetectionConfig",
    "QuestionAnsweringConfig",
    "RecipeConfig",
    "RecipeResult",
    "TextClassificationConfig",
    "feature_extraction",
    "full_fine_tuning",
    "image_classification",
    "object_detection",
    "partial_fine_tuning",
    "progressive_fine_tuning",
    "question_answering",
    "text_classification",
]
