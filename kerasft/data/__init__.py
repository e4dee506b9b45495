"""Input pipelines: image folders, tensorflow-datasets, feature caching."""

from kerasft.data.arrays import image_arrays
from kerasft.data.box_dataset import box_dataset
from kerasft.data.captions import CaptionTable, read_captions
from kerasft.data.boxes import BoxAnnotations, read_boxes
from kerasft.data.class_weights import class_weights
from kerasft.data.corpus import PackedCorpus, pack, read_corpus
from kerasft.data.difficulty import difficulty_scores
from kerasft.data.feature_cache import CachedFeatures
from kerasft.data.feature_cache import cache_features
from kerasft.data.images import image_csv
from kerasft.data.images import image_folder
from kerasft.data.masks import read_mask, segmentation_arrays, segmentation_folder, segmentation_tfds
from kerasft.data.pairs import TextPairs, read_pairs
from kerasft.data.tfds import tfds
from kerasft.data.video_folder import video_folder
from kerasft.data.text import TextTable, encode_labels, from_hf_inputs, load_label_mapping, read_text_csv, save_label_mapping, text_dataset, tokenize  # noqa: E501
from kerasft.data.squad import SquadExample, SquadFeatures, decode_spans, read_squad, span_texts, squad_features  # noqa: E501
from kerasft.data.squad import QAPrediction, postprocess_predictions
from kerasft.data.conll import TokenFeatures, TokenTagData, read_conll, read_token_jsonl, read_token_tags, token_features, word_tags, write_conll  # noqa: E501

__all__ = [
    "BoxAnnotations",
    "CachedFeatures",
    "box_dataset",
    "cache_features",
    "class_weights",
    "PackedCorpus",
    "pack",
    "read_corpus",
    "difficulty_scores",
    "image_arrays",
    "image_csv",
    "image_folder",
    "read_boxes",
    "read_mask",
    "segmentation_arrays",
    "segmentation_folder",
    "segmentation_tfds",
    "tfds",
    "video_folder",
    # text and question answering
    "SquadExample", "SquadFeatures", "TextTable", "decode_spans", "encode_labels",
    "from_hf_inputs", "load_label_mapping", "read_squad", "read_text_csv",
    "save_label_mapping", "span_texts", "squad_features", "text_dataset", "tokenize",
    "QAPrediction", "postprocess_predictions",
    # token classification (NER)
    "TokenFeatures", "TokenTagData", "read_conll", "read_token_jsonl",
    "read_token_tags", "token_features", "word_tags", "write_conll",
    # image captioning
    "CaptionTable", "read_captions",
    # sequence-to-sequence pairs
    "TextPairs", "read_pairs",
]
