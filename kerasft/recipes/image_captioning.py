"""`image_captioning`: an image backbone encoder + a Transformer decoder.

The tutorial's `TFVisionEncoderDecoderModel` (ViT + GPT-2) is gone from
transformers 5; this is its Keras 3 replacement. The run, in
`strategy.scope()` under the chosen precision policy:

- captions from a CSV of `image,caption` rows or a COCO captions JSON
  (`kerasft.data.read_captions`: missing images, columns and empty captions
  fail before anything loads), subsets of images with all their captions
  (`max_train_samples`, `max_eval_samples`, after `validation_split`),
  images decoded once into cached uint8 tensors (`load_caption_images`),
  training images augmented per batch (`augment`; MixUp/CutMix refused);
- a WordPiece vocabulary built from the training captions (KerasHub's
  `compute_word_piece_vocabulary`) or read from `vocabulary`, written to
  `vocabulary.txt` in the run folder (a resumed run reads it back);
- `kerasft.heads.captioning.caption_model`: the backbone's feature-map
  tokens, projected, cross-attended by `TransformerDecoder` blocks;
- the backbone frozen first, then opened as the image recipes open it
  (`mode`: `feature_extraction`, `partial`, `progressive`, `full`, through
  `ProgressiveUnfreeze` at `fine_tune_learning_rate`, optionally with
  `layer_decay`), teacher forcing with one random caption per image and
  epoch, resumable from `output_dir/backup`; or LoRA adapters on a ViT
  encoder (`lora_rank`); the encoder's groups rematerialized with
  `gradient_checkpointing`;
- evaluation: loss and token accuracy, then greedy (and with `num_beams >
  1` beam-search) captions scored with BLEU-1..4 (sacreBLEU, all
  references), ROUGE-L and CIDEr-D (`kerasft.evaluation.captioning`);
  `predictions.csv` (image, references, predictions) and `captions.png`
  (images with generated and reference captions).

`load_captioner(run_dir)` gives a `CaptionGenerator` for a finished run.
"""

import csv
import io
import os

import numpy as np

from kerasft import _io
from kerasft.recipes.config import resolve_config
from kerasft.recipes.configs import ImageCaptioningConfig  # noqa: F401

__all__ = ["ImageCaptioningConfig", "image_captioning", "load_captioner"]

VOCABULARY_FILE = "vocabulary.txt"
PREDICTIONS_FILE = "predictions.csv"
GRID_FILE = "captions.png"
OUTPUTS = (VOCABULARY_FILE, PREDICTIONS_FILE, GRID_FILE, "training_curves.png")


def image_captioning(config=None, *, overwrite=False, callbacks=None, **kwargs):
    """Trains an image captioning model on captioned images.

    Args:
        config: an `ImageCaptioningConfig`, a dict, or a path to a
            JSON/YAML file. Defaults to `None` (keyword arguments only).
        overwrite: replace another run's outputs in `output_dir`.
            Defaults to `False`.
        callbacks: extra Keras callbacks for `fit`. Defaults to `None`.
        **kwargs: `ImageCaptioningConfig` fields, overriding `config`.

    Returns:
        A `RecipeResult` with `.model` (the caption model), `.metrics`
        (`val_bleu1`..`val_bleu4` on sacreBLEU's 0-100 scale, `val_rougeL`,
        `val_cider`, `val_loss`, `val_token_accuracy`, and `val_beam_*`
        with `num_beams > 1`), `.output_dir`.

    Example:
    ```python
    result = kerasft.recipes.image_captioning(
        train="captions.csv", backbone="efficientnetb0", image_size=224,
        mode="progressive", epochs=10, output_dir="runs/captions")
    from kerasft.recipes.image_captioning import load_captioner
    captioner = load_captioner("runs/captions")
    captioner.caption(images, num_beams=3)
    ```
    """
    import keras_hub  # noqa: F401 (registers the decoder layers for loading)

    import kerasft.layers  # noqa: F401 (registers Preprocess for loading)
    from kerasft.recipes._image_backbone import open_run

    config = resolve_config(ImageCaptioningConfig, config, **kwargs)
    run, image_size = open_run(config, overwrite, "a CSV of image,caption "
                               "rows or a COCO captions JSON.")
    if image_size is None:
        return run.completed_result()
    if config.lora_rank and hasattr(config.backbone, "model"):
        _check_lora(config, config.backbone)  # a convnet fails before loading
    tables = _read_splits(run, config)  # bad input fails before any loading
    skipped = list(tables.pop("skipped", ()))
    if run.state == "new":
        _clear_outputs(run.dir)
    tokenizer = _tokenizer(run, config, tables["train"])
    data = _data(run, config, tables, tokenizer, image_size)
    steps = data["train"][1].cardinality().numpy()
    model, backbone = _build(run, config, len(tokenizer.get_vocabulary()),
                             image_size, total_steps=int(steps) * config.epochs)
    from kerasft.recipes._stages import with_unfreeze

    all_callbacks = with_unfreeze(run, config, backbone, callbacks)
    run.log(
        f"Training {backbone.name} + {config.decoder_layers} decoder block(s) "
        f"({config.mode}) on {len(data['train'][0].table)} images, "
        f"{run.replicas} replica(s), precision {run.policy.name}."
    )
    history = run.fit(model, data["train"][1],
                      data.get("validation", (None, None))[1], all_callbacks)
    metrics, shown = _evaluate(run, config, model, tokenizer, data)
    metrics["truncated"] = data["truncated"]
    skipped += [p for name in ("train", "validation", "test") if name in data
                for p in data[name][0].skipped]
    return run.finish(
        model, history, metrics, plot=_plotter(history, shown, config.samples),
        skipped_files=skipped,
    )


def load_captioner(directory, compile=True):
    """A `CaptionGenerator` for the finished captioning run in `directory`
    (its `model.keras` and `vocabulary.txt`)."""
    import keras
    import keras_hub  # noqa: F401

    import kerasft.layers  # noqa: F401 (registers Preprocess)
    import kerasft.optimizers  # noqa: F401 (registers LayerwiseLR)
    import kerasft.remat  # noqa: F401 (registers RematSegment)
    from kerasft.heads.caption_decoding import CaptionGenerator
    from kerasft.heads.captioning import caption_tokenizer

    paths = [os.path.join(directory, n) for n in (_io.MODEL_FILE, VOCABULARY_FILE)]
    for path in paths:
        if not os.path.isfile(path):
            raise ValueError(
                f"{directory!r} is not a finished image_captioning run: it has "
                f"no {os.path.basename(path)}."
            )
    model = keras.models.load_model(paths[0], compile=compile)
    return CaptionGenerator(model, caption_tokenizer(_read_vocabulary(paths[1])))


# === Data ===


def _read_splits(run, config):
    from kerasft.data.captions import read_captions

    read = dict(image_dir=config.image_dir, image_column=config.image_column,
                caption_column=config.caption_column)
    tables = {name: read_captions(getattr(config, name), **read)
              for name in ("train", "validation", "test")
              if getattr(config, name) is not None}
    if "validation" not in tables and config.validation_split:
        from kerasft.data._split import holdout_indices
        from kerasft.data.captions import readable_images

        # Split the readable images: a corrupt one drawn alone into
        # validation would otherwise leave it empty.
        train, tables["skipped"] = readable_images(tables["train"])
        rest, held = holdout_indices(
            np.full(len(train), np.nan), config.validation_split, config.seed
        )
        if len(held) == 0 or len(rest) == 0:
            raise ValueError(
                f"validation_split={config.validation_split} of {len(train)} "
                "readable images leaves no image on one side; pass `validation` or "
                "change `validation_split`."
            )
        tables["train"], tables["validation"] = train.take(rest), train.take(held)
        run.log(f"Holding out {len(held)} of {len(train)} training images "
                f"for validation (validation_split={config.validation_split}).")
    return _subsets(run, config, tables)


def _subsets(run, config, tables):
    """`tables` with seeded random subsets of images (each with all its
    captions): `max_train_samples` of train, `max_eval_samples` of
    validation and test (`kerasft.recipes._subsets`; taken after the
    validation split)."""
    from kerasft.recipes._subsets import log_subset, subset_indices

    for name, limit in (("train", config.max_train_samples),
                        ("validation", config.max_eval_samples),
                        ("test", config.max_eval_samples)):
        if name in tables and limit is not None:
            before = len(tables[name])
            tables[name] = tables[name].take(
                subset_indices(before, limit, config.seed))
            log_subset(run, f"{name} images", before, len(tables[name]))
    return tables


def _tokenizer(run, config, train):
    """The run's tokenizer; its vocabulary in `vocabulary.txt` (written once,
    read back by a resumed run)."""
    from kerasft.heads.captioning import build_vocabulary, caption_tokenizer

    path = os.path.join(run.dir, VOCABULARY_FILE)
    if run.state == "resume" and os.path.isfile(path):
        vocabulary = _read_vocabulary(path)
    elif config.vocabulary is not None:
        vocabulary = _read_vocabulary(config.vocabulary)
    else:
        vocabulary = build_vocabulary(
            [c for group in train.captions for c in group], config.vocabulary_size
        )
    tokenizer = caption_tokenizer(vocabulary)
    if run.chief:
        _io.write_text(path, "\n".join(vocabulary) + "\n")
    return tokenizer


def _read_vocabulary(path):
    if not os.path.isfile(path):
        raise ValueError(f"Vocabulary file {path!r} does not exist.")
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.rstrip("\n")]


def _data(run, config, tables, tokenizer, image_size):
    """`{split: (CaptionImages, batches)}` and `"truncated"` counts."""
    from kerasft.data.captions import (
        caption_batches,
        load_caption_images,
    )
    from kerasft.heads.captioning import encode_table

    out, truncated = {}, {}
    for name, table in tables.items():
        images = load_caption_images(table, (image_size, image_size))
        ids, cut = encode_table(tokenizer, images.table.captions,
                                config.max_length)
        truncated[name] = cut
        if cut:
            run.notice(
                f"Truncation: {cut} of {images.table.num_captions} {name} "
                f"captions are longer than max_length={config.max_length} "
                "allows; their ends are cut."
            )
        train = name == "train"
        batches = caption_batches(
            images, ids, run.global_batch, shuffle=train, seed=config.seed,
            epoch=run.epoch_variable, drop_remainder=run.on_tpu,
            captions="random" if train else "first",
            augment=config.augment if train else None,
        )
        out[name] = (images, batches)
    out["truncated"] = truncated
    return out


# === Model ===


def _build(run, config, vocabulary_size, image_size, total_steps=None):
    """The compiled caption model and its backbone: LoRA adapters on a ViT
    encoder (`lora_rank`), else the mode's first stage frozen; the encoder
    rematerialized with `gradient_checkpointing`."""
    import keras

    from kerasft.heads.captioning import caption_loss, caption_model
    from kerasft.recipes import _stages
    from kerasft.recipes._image_backbone import resolve_backbone

    with run.strategy.scope():
        backbone = resolve_backbone(config, run.strategy, image_size)
        if config.lora_rank:
            _enable_lora(run, config, backbone)
        run.reseed()
        model = caption_model(
            backbone, vocabulary_size, config.max_length,
            embed_dim=config.embed_dim, num_layers=config.decoder_layers,
            num_heads=config.num_heads, dropout=config.dropout,
            train_batchnorm=config.train_batchnorm,
            remat=config.gradient_checkpointing,
        )
        if not config.lora_rank:
            _stages.freeze_first_stage(model, backbone, config)
        model.compile(
            optimizer=_stages.optimizer(run, config, backbone, total_steps),
            loss=caption_loss(),
            weighted_metrics=[
                keras.metrics.SparseCategoricalAccuracy(name="token_accuracy")
            ],
        )
    return model, backbone


def _enable_lora(run, config, backbone):
    """LoRA of rank `config.lora_rank` on the encoder's attention query and
    value projections (`kerasft.backbones.enable_lora`); the rest of the
    encoder freezes. A convnet (no such projections) is refused."""
    from kerasft import backbones

    _check_lora(config, backbone)
    total, trainable = backbones.enable_lora(backbone, config.lora_rank,
                                             verbose=False)
    run.log(f"LoRA rank {config.lora_rank}: {trainable:,} of {total:,} "
            "encoder parameters train.")


def _check_lora(config, backbone):
    """`ValueError` when `backbone` has no attention projections to adapt."""
    from kerasft import _keras_compat
    from kerasft.backbones.lora import DEFAULT_TARGET

    projections = [
        layer for layer in _keras_compat.all_layers(backbone.model)
        if layer.name in DEFAULT_TARGET and hasattr(layer, "enable_lora")
    ]
    if not projections:
        raise ValueError(
            f"`lora_rank` needs a transformer (ViT) image encoder, but "
            f"backbone {backbone.name!r} has no attention projections "
            f"({', '.join(DEFAULT_TARGET)}) to adapt. Pass a ViT "
            "(kerasft.backbones.from_keras_hub(keras_hub.models.ViTBackbone"
            "...)), or drop `lora_rank` and use mode='partial' to train "
            f"fewer weights. Received: lora_rank={config.lora_rank}"
        )


# === Evaluation ===


def _evaluate(run, config, model, tokenizer, data):
    """Loss, token accuracy and caption scores per held-out split; writes
    the validation (else test) predictions. Returns `(metrics, shown)`."""
    from kerasft.data.captions import image_batches
    from kerasft.evaluation.captioning import caption_scores
    from kerasft.heads.caption_decoding import CaptionGenerator
    from kerasft.recipes._runner import prefixed

    generator = CaptionGenerator(model, tokenizer)
    beams = [("", 1)] + ([("beam_", config.num_beams)] if config.num_beams > 1 else [])
    metrics, shown = {}, None
    for name, prefix in (("validation", "val_"), ("test", "test_")):
        if name not in data:
            continue
        images, batches = data[name]
        scores = model.evaluate(batches, verbose=0, return_dict=True)
        metrics.update(prefixed(scores, prefix))
        references = [list(c) for c in images.table.captions]
        columns = {}
        for tag, num_beams in beams:
            predictions = generator.caption(
                image_batches(images, run.global_batch), num_beams=num_beams
            )
            columns[f"{tag}prediction"] = predictions
            metrics.update(prefixed(caption_scores(predictions, references),
                                    prefix + tag))
        if shown is None:
            shown = (images, references, columns["prediction"])
            if run.chief:
                _io.write_text(os.path.join(run.dir, PREDICTIONS_FILE),
                               _predictions_csv(images.table, columns))
    return metrics, shown


def _predictions_csv(table, columns):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["image", "references", *columns])
    for i, (path, refs) in enumerate(zip(table.image_paths, table.captions)):
        writer.writerow([path, " | ".join(refs),
                         *(c[i] for c in columns.values())])
    return out.getvalue()


def _plotter(history, shown, samples):
    def plot(directory):
        from kerasft.recipes._caption_grid import plot_caption_grid
        from kerasft.recipes._classification import write_curves

        write_curves(history, directory)
        if shown is not None and samples:
            images, references, predictions = shown
            with _io.atomic_path(os.path.join(directory, GRID_FILE)) as tmp:
                plot_caption_grid(images, references, predictions, tmp, samples)

    return plot


def _clear_outputs(directory):
    """Removes the captioning outputs a former run left in `directory`."""
    for name in OUTPUTS:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            os.remove(path)
