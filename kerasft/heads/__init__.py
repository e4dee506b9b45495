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
from kerasft.heads.retinanet import RetinaNetHead, RetinaNetPredictor
from kerasft.heads.text import TextClassificationHead, text_classification
from kerasft.heads.question_answering import QuestionAnsweringHead, question_answering
from kerasft.heads.token_classification import (
    TokenClassificationHead, TokenCrossentropy, token_classification)
from kerasft.heads.segmentation import SegmentationHead, segmentation
from kerasft.heads._segmentation_loss import SegmentationLoss
from kerasft.heads.video_classification import VideoClassificationHead, video_classification
from kerasft.heads.captioning import caption_model
from kerasft.heads.caption_decoding import CaptionGenerator

__all__ = [
    "ClassificationHead",
    "DetectionHead",
    "Head",
    "MultilabelHead",
    "RegressionHead",
    "RetinaNetHead",
    "RetinaNetPredictor",
    "classification",
    "detection",
    "multilabel",
    "regression",
    "TextClassificationHead", "text_classification",
    "QuestionAnsweringHead", "question_answering",
    "TokenClassificationHead", "TokenCrossentropy", "token_classification",
    "SegmentationHead", "SegmentationLoss", "segmentation",
    "VideoClassificationHead", "video_classification",
    "CaptionGenerator", "caption_model",
]
