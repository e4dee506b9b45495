"""Tiny data, backbones and command lines for the fresh-process round trip
of every recipe (`tests/test_round_trip.py`).

`write_case(name, folder)` writes one case's data (and saved tiny backbone,
or tiny BERT folder) into `folder` and returns a `Case`: the command lines
a user would type there, with paths relative to `folder`. Every case is as
small as its recipe allows (16-32 px images, 6-12 examples, one or two
batches, one epoch), so the 15 cases train in seconds each.

Example:
```python
case = write_case("feature_extraction", "/tmp/fe")
case.train   # ['feature-extraction', '--train', 'images', ..., '--output', 'run']
case.predict_input, case.inputs
```
"""

import csv
import dataclasses
import json
import os

import numpy as np

RUN = "run"
# Options every case passes: no auto-picked strategy or precision, quiet.
COMMON = ("--precision", "float32", "--strategy", "default", "--verbose", "0")


@dataclasses.dataclass(frozen=True)
class Case:
    """One recipe's round trip, as command lines run in its folder.

    Attributes:
        name: the case id (a recipe name, `object_detection_retinanet`).
        recipe: the registry name of the recipe.
        train: `kerasft` arguments that train the tiny run into `run/`.
        predict_input: what `kerasft predict run INPUT` reads.
        inputs: how many inputs `predict_input` holds.
        finish: `kerasft` arguments of the last step (`export` or
            `generate`), or `None` when `predict` is the last step.
        predict_files: files the predictor writes besides the CSV, per
            readable input (detection overlays, segmentation masks).
    """

    name: str
    recipe: str
    train: list
    predict_input: str
    inputs: int
    finish: list = None
    predict_files: int = 0


EXPORT = ["export", RUN, "--format", "saved_model", "--output", "exported"]


def _png(path, array):
    from PIL import Image

    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.asarray(array, "uint8")).save(path)


def _save_backbone(model, folder, name="backbone.keras"):
    model.save(os.path.join(folder, name))
    return name


def _class_images(folder, count, size, seed=0):
    """`folder/{red,green}/i.png`: the class sets the bright channel."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        image = rng.uniform(0, 80, (size, size, 3))
        image[..., i % 2] += 150
        _png(os.path.join(folder, ("red", "green")[i % 2], f"{i}.png"), image)
    return folder


def _write_csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return os.path.basename(path)


# === Image classification (five recipes, one run-folder format) ===

# The issue's own command: a real keras.applications backbone, random init.
def _image_classification(folder):
    _class_images(os.path.join(folder, "images"), 6, 32)
    return dict(
        train=["--train", "images", "--backbone", "mobilenetv2", "--weights",
               "none", "--image-size", "32", "--mode", "feature_extraction",
               "--validation-split", "0", "--batch-size", "6"],
        predict_input="images", inputs=6, finish=EXPORT,
    )


_TUTORIAL_OPTIONS = {
    "feature_extraction": [],
    "partial_fine_tuning": ["--head-epochs", "0", "--unfreeze-groups", "1"],
    "progressive_fine_tuning": ["--head-epochs", "0", "--unfreeze-groups", "1"],
    "full_fine_tuning": ["--head-epochs", "0"],
}


def _tutorial(name):
    def write(folder):
        from tests.recipes.tiny import tiny_model

        _class_images(os.path.join(folder, "images"), 6, 16)
        backbone = _save_backbone(tiny_model(16), folder)
        # Progressive opens its groups in a second epoch.
        epochs = ["--epochs", "2"] if name == "progressive_fine_tuning" else []
        return dict(
            train=["--train", "images", "--backbone", backbone,
                   "--image-size", "16", *epochs,
                   "--validation-split", "0", "--batch-size", "6",
                   *_TUTORIAL_OPTIONS[name]],
            predict_input="images", inputs=6, finish=EXPORT,
        )

    return write


# === Detection and segmentation ===


def _single_box(folder):
    from tests.recipes.tiny import tiny_model

    rng = np.random.default_rng(0)
    rows = []
    for i in range(8):
        image = rng.uniform(0, 40, (16, 16, 3))
        x0, y0 = (int(v) for v in rng.integers(0, 8, 2))
        image[y0:y0 + 6, x0:x0 + 6, i % 2] = 250
        _png(os.path.join(folder, "images", f"{i}.png"), image)
        rows.append([f"images/{i}.png", x0, y0, x0 + 6, y0 + 6,
                     ("cat", "dog")[i % 2]])
    return dict(
        train=["--train", _write_csv(os.path.join(folder, "boxes.csv"),
                                     ["filename", "xmin", "ymin", "xmax",
                                      "ymax", "label"], rows),
               "--backbone", _save_backbone(tiny_model(16), folder),
               "--image-size", "16", "--mode", "feature_extraction",
               "--conv-filters", "8", "--batch-size", "8"],
        predict_input="images", inputs=8, finish=EXPORT, predict_files=1,
    )


def _retinanet(folder):
    from tests.data import detection_shapes as shapes
    from tests.recipes.detection_tiny import tiny_detection_backbone

    items = shapes.make_images(folder, 8, seed=5, size=32, min_side=8,
                               max_side=14)
    train = shapes.write_csv(folder, items)
    backbone = _save_backbone(tiny_detection_backbone(32).model, folder)
    return dict(
        train=["--kind", "retinanet", "--train", os.path.basename(train),
               "--backbone", backbone, "--image-size", "32",
               "--mode", "feature_extraction", "--anchor-size", "2",
               "--max-level", "5", "--fpn-filters", "8", "--head-filters",
               "8", "--head-conv-layers", "1", "--batch-size", "8"],
        predict_input="images", inputs=8, finish=EXPORT, predict_files=1,
    )


def _segmentation(folder):
    from kerasft.data.synthetic import shapes_segmentation, write_segmentation_folder
    from tests.recipes._segmentation_child import tiny_cnn

    images, masks = shapes_segmentation(8, 32, seed=0)
    write_segmentation_folder(os.path.join(folder, "data"), images, masks)
    return dict(
        train=["--train", "data", "--backbone",
               _save_backbone(tiny_cnn(32).model, folder),
               "--image-size", "32", "--levels", "0,1,2", "--decoder-filters",
               "8", "--mode", "feature_extraction", "--validation-split",
               "0.25", "--batch-size", "8"],
        predict_input="data/images", inputs=8, finish=EXPORT, predict_files=1,
    )


# === Video and captioning ===


def _video(folder):
    from tests.data import videos
    from tests.recipes.video_tiny import frame_backbone

    videos.clip_folder(os.path.join(folder, "clips"), per_class=3, frames=4,
                       size=16)
    return dict(
        train=["--train", "clips", "--backbone",
               _save_backbone(frame_backbone(size=16).model, folder),
               "--frames", "4", "--image-size", "16", "--mode",
               "feature_extraction", "--temporal", "mean",
               "--validation-split", "0", "--batch-size", "6"],
        predict_input="clips", inputs=6, finish=EXPORT,
    )


def _captioning(folder):
    from tests.data.caption_shapes import image_and_captions
    from tests.recipes.caption_tiny import caption_backbone

    rng = np.random.default_rng(0)
    rows = []
    for k, (i, j) in enumerate([(0, 4), (1, 5), (2, 6), (3, 7), (8, 1), (9, 2)]):
        image, captions = image_and_captions(
            i, j, ("vertical", "horizontal")[k % 2], 32, rng)
        name = f"images/{k}.png"
        _png(os.path.join(folder, name), image)
        rows.extend((name, c) for c in captions)
    return dict(
        train=["--train", _write_csv(os.path.join(folder, "captions.csv"),
                                     ["image", "caption"], rows),
               "--backbone", _save_backbone(caption_backbone(32).model, folder),
               "--image-size", "32", "--mode", "feature_extraction",
               "--validation-split", "0.25", "--max-length", "10",
               "--embed-dim", "16", "--decoder-layers", "1", "--num-heads",
               "2", "--num-beams", "1", "--samples", "2", "--batch-size", "12"],
        predict_input="images", inputs=6, finish=None,
    )


# === Text encoders (a tiny random BERT folder) ===


def _bert(folder):
    from tests.fixtures.tiny_hf import make_tiny_folder

    make_tiny_folder(os.path.join(folder, "bert"))
    return "bert"


def _text_classification(folder):
    texts = ["a good film", "the bad film", "a great book", "an awful movie",
             "very good", "really bad", "fine film", "dull book"]
    rows = [(t, ("pos", "neg")[i % 2]) for i, t in enumerate(texts)]
    train = _write_csv(os.path.join(folder, "reviews.csv"), ["text", "label"],
                       rows)
    with open(os.path.join(folder, "new.txt"), "w") as f:
        f.write("a good book\nthe awful film\nnot very dull\n")
    return dict(
        train=["--train", train, "--backbone", _bert(folder), "--max-length",
               "8", "--validation-split", "0", "--batch-size", "8"],
        predict_input="new.txt", inputs=3, finish=EXPORT,
    )


def _question_answering(folder):
    from tests.recipes.ner_data import FILLER

    rng = np.random.default_rng(0)
    paragraphs = []
    for i in range(6):
        words = [str(w) for w in rng.choice(FILLER, 10)]
        words.insert(int(rng.integers(0, 10)), "paris")
        context = " ".join(words)
        paragraphs.append({"context": context, "qas": [{
            "id": f"q{i}", "question": "where is it",
            "answers": [{"text": "paris",
                         "answer_start": context.index("paris")}],
        }]})
    with open(os.path.join(folder, "squad.json"), "w") as f:
        json.dump({"version": "v1.1",
                   "data": [{"title": "t", "paragraphs": paragraphs}]}, f)
    questions = _write_csv(
        os.path.join(folder, "questions.csv"), ["id", "question", "context"],
        [("a", "where is it", "the tower is in paris"),
         ("b", "what was built", "a tower was built in paris")])
    return dict(
        train=["--train", "squad.json", "--val", "squad.json", "--backbone",
               _bert(folder), "--max-length", "32", "--doc-stride", "8",
               "--max-answer-length", "4", "--n-best", "2", "--batch-size",
               "8"],
        predict_input=questions, inputs=2, finish=EXPORT,
    )


def _token_classification(folder):
    from tests.recipes.ner_data import ner_sentences

    with open(os.path.join(folder, "train.conll"), "w") as f:
        for words, tags in zip(*ner_sentences(8, seed=0)):
            f.writelines(f"{w} NN O {t}\n" for w, t in zip(words, tags))
            f.write("\n")
    with open(os.path.join(folder, "sentences.txt"), "w") as f:
        f.write("the tower was built in paris in 1999\nit is a good film\n")
    return dict(
        train=["--train", "train.conll", "--val", "train.conll", "--backbone",
               _bert(folder), "--max-length", "16", "--batch-size", "8"],
        predict_input="sentences.txt", inputs=2, finish=EXPORT,
    )


# === Generative (the tiny Hugging Face fixture folders) ===


def _seq2seq(folder):
    from tests.fixtures.tiny_generative import number_words, t5_folder

    pairs = [(number_words(n), str(n)) for n in (3, 12, 40, 7, 99, 250, 61, 8)]
    train = _write_csv(os.path.join(folder, "pairs.csv"), ["source", "target"],
                       pairs)
    with open(os.path.join(folder, "prompts.txt"), "w") as f:
        f.write("digits: five\ndigits: twenty one\n")
    return dict(
        train=["--train", train, "--backbone", t5_folder(), "--task-prefix",
               "digits: ", "--validation-split", "0.25", "--source-length",
               "8", "--target-length", "4", "--batch-size", "8"],
        predict_input="prompts.txt", inputs=2,
        finish=["generate", RUN, "--prompt", "thirty", "--max-length", "4"],
    )


def _causal_lm(folder):
    from tests.fixtures.tiny_generative import gpt2_folder
    from tests.recipes.causal_lm_data import counting_corpus

    with open(os.path.join(folder, "corpus.txt"), "w") as f:
        f.write("\n".join(counting_corpus(12, seed=0)) + "\n")
    with open(os.path.join(folder, "prompts.txt"), "w") as f:
        f.write("three four\nten eleven\n")
    return dict(
        train=["--train", "corpus.txt", "--backbone", gpt2_folder(),
               "--sequence-length", "16", "--validation-split", "0.25",
               "--sample-length", "8", "--batch-size", "8"],
        predict_input="prompts.txt", inputs=2,
        finish=["generate", RUN, "--prompt", "five six", "--max-length", "8"],
    )


# `{case: (recipe, writer)}`: every registry recipe, detection twice.
_WRITERS = {
    "image_classification": ("image_classification", _image_classification),
    **{name: (name, _tutorial(name)) for name in _TUTORIAL_OPTIONS},
    "object_detection": ("object_detection", _single_box),
    "object_detection_retinanet": ("object_detection", _retinanet),
    "segmentation": ("segmentation", _segmentation),
    "text_classification": ("text_classification", _text_classification),
    "question_answering": ("question_answering", _question_answering),
    "token_classification": ("token_classification", _token_classification),
    "video_classification": ("video_classification", _video),
    "image_captioning": ("image_captioning", _captioning),
    "seq2seq": ("seq2seq", _seq2seq),
    "causal_lm": ("causal_lm", _causal_lm),
}
CASES = tuple(_WRITERS)


def recipe_of(case):
    """The registry recipe a case runs."""
    return _WRITERS[case][0]


def write_case(case, folder):
    """Writes `case`'s data into `folder` (created); returns its `Case`."""
    from kerasft.recipes import registry

    recipe, writer = _WRITERS[case]
    os.makedirs(folder, exist_ok=True)
    parts = writer(folder)
    train = parts.pop("train")
    if "--epochs" not in train:
        train += ["--epochs", "1"]
    return Case(
        name=case, recipe=recipe,
        train=[registry.get(recipe).command, *train, *COMMON, "--output", RUN],
        **parts,
    )
