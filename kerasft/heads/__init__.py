"""Head builders: the layers kerasft puts on top of a backbone."""

from kerasft.heads.head import Head
from kerasft.heads.classification import ClassificationHead
from kerasft.heads.classification import MultilabelHead
from kerasft.heads.classification import classification
from kerasft.heads.classification import multilabel
from kerasft.heads.regression import RegressionHead
from kerasft.heads.regression import regression
from kerasft.heads.detection import DetectionHead
from kerasft.heads.detection import detection
from kerasft.heads.text import TextClassificationHead, text_classification
from kerasft.heads.question_answering import QuestionAnsweringHead, question_answering
from kerasft.heads.token_classification import TokenClassificationHead, token_classification

__all__ = [
    "ClassificationHead",
    "DetectionHead",
    "Head",
    "MultilabelHead",
    "RegressionHead",
    "classification",
    "detection",
    "multilabel",
    "regression",
    "TextClassificationHead", "text_classification",
    "QuestionAnsweringHead", "question_answering",
    "TokenClassificationHead", "token_classification",
]
