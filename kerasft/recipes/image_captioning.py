"""`image_captioning`: an image backbone encoder + a Transformer decoder.

The Keras 3 replacement of the tutorial's `TFVisionEncoderDecoderModel`
(gone from transformers 5): captions from a CSV or COCO JSON
(`kerasft.data.captions`), a WordPiece vocabulary (`vocabulary.txt`),
`kerasft.heads.captioning.caption_model`, the image recipes' freezing modes
or LoRA on a ViT (`lora_rank`), then BLEU, ROUGE-L and CIDEr-D of greedy
and beam-search captions. `load_captioner(run_dir)` reloads a finished run.
"""

import csv
import functools
import io
import os
import textwrap


from kerasft import _io
from kerasft.advisor.recipe import follow_advice
from kerasft.recipes._classification import plots
from kerasft.recipes._image_backbone import (
    log_training,
    open_run,
    resolve_backbone,
)
from kerasft.recipes._runner import prefixed
from kerasft.recipes._stages import with_unfreeze
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

    import kerasft

    kerasft.register_keras_objects()  # for loading: Preprocess, RematSegment
    config = resolve_config(ImageCaptioningConfig, config, **kwargs)
    what = "a CSV of image,caption rows or a COCO captions JSON."
    run, image_size = open_run(config, overwrite, what)
    if image_size is None:
        return run.completed_result()
    if config.lora_rank and hasattr(config.backbone, "model"):
        _check_lora(config, config.backbone)  # a convnet fails before loading
    tables = _read_splits(run, config)  # bad input fails before any loading
    skipped = list(tables.pop("skipped", ()))
    if run.state == "new":  # a former run's captioning outputs go
        for path in (os.path.join(run.dir, name) for name in OUTPUTS):
            if os.path.isfile(path):
                os.remove(path)
    tokenizer = _tokenizer(run, config, tables["train"])
    data = _data(run, config, tables, tokenizer, image_size)
    with run.strategy.scope():
        backbone = resolve_backbone(config, run.strategy, image_size)
    images = data["train"][0]  # captions are no class per image
    config = follow_advice(run, backbone, images.dataset.batch(64),
                           num_examples=len(images.table))
    model = _build(run, config, tokenizer, data, backbone)
    log_training(run, f"{backbone.name} + {config.decoder_layers} decoder "
                      f"block(s) ({config.mode}) on "
                      f"{len(data['train'][0].table)} images")
    history = run.fit(model, data["train"][1],
                      data.get("validation", (None, None))[1],
                      with_unfreeze(run, config, backbone, callbacks))
    metrics, shown = _evaluate(run, config, model, tokenizer, data)
    metrics["truncated"] = data.pop("truncated")
    skipped += [p for images, _ in data.values() for p in images.skipped]
    grid = {}
    if shown is not None and config.samples:
        grid[GRID_FILE] = functools.partial(_plot_caption_grid, *shown,
                                            samples=config.samples)
    return run.finish(model, history, metrics, skipped_files=skipped,
                      plot=plots(history, grid))


def load_captioner(directory, compile=True):
    """A `CaptionGenerator` for the finished captioning run in `directory`
    (its `model.keras` and `vocabulary.txt`)."""
    import keras
    import keras_hub  # noqa: F401

    import kerasft
    from kerasft.heads.caption_decoding import CaptionGenerator
    from kerasft.heads.captioning import caption_tokenizer

    kerasft.register_keras_objects()  # Preprocess, LayerwiseLR, RematSegment
    paths = [os.path.join(directory, n) for n in (_io.MODEL_FILE, VOCABULARY_FILE)]
    for path in paths:
        if not os.path.isfile(path):
            raise ValueError(
                f"{directory!r} is not a finished image_captioning run: it has "
                f"no {os.path.basename(path)}."
            )
    model = keras.models.load_model(paths[0], compile=compile)
    tokenizer = caption_tokenizer(_read_vocabulary(paths[1]))
    return CaptionGenerator(model, tokenizer)


# === Data ===


def _read_splits(run, config):
    """The caption tables of each split: validation held out of train when
    not given (`validation_split`), then seeded subsets of images, each with
    all its captions (`max_train_samples`, `max_eval_samples`)."""
    from kerasft.data.captions import read_captions
    from kerasft.recipes._subsets import log_subset, subset_indices

    read = dict(image_dir=config.image_dir, image_column=config.image_column,
                caption_column=config.caption_column)
    tables = {name: read_captions(getattr(config, name), **read)
              for name in ("train", "validation", "test")
              if getattr(config, name) is not None}
    split = config.validation_split
    if "validation" not in tables and split:
        from kerasft.data.captions import readable_images
        from kerasft.recipes._subsets import hold_out_indices

        # Split the readable images: a corrupt one drawn alone into
        # validation would otherwise leave it empty.
        train, tables["skipped"] = readable_images(tables["train"])
        rest, held = hold_out_indices(run, config, len(train), "images")
        if len(held) == 0 or len(rest) == 0:
            raise ValueError(
                f"validation_split={split} of {len(train)} readable images "
                "leaves no image on one side; pass `validation` or change "
                "`validation_split`."
            )
        tables["train"] = train.take(rest)
        tables["validation"] = train.take(held)
    limits = {"train": config.max_train_samples}
    for name in ("train", "validation", "test"):
        if name in tables:
            table = tables[name]
            limit = limits.get(name, config.max_eval_samples)
            keep = subset_indices(len(table), limit, config.seed)
            tables[name] = table.take(keep)
            log_subset(run, f"{name} images", len(table), len(keep))
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
        captions = [c for group in train.captions for c in group]
        vocabulary = build_vocabulary(captions, config.vocabulary_size)
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
    from kerasft.data.captions import caption_batches, load_caption_images
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
        out[name] = (images, caption_batches(
            images, ids, run.global_batch, shuffle=train, seed=config.seed,
            epoch=run.epoch_variable, drop_remainder=run.on_tpu,
            captions="random" if train else "first",
            augment=config.augment if train else None,
        ))
    out["truncated"] = truncated
    return out


# === Model ===


def _build(run, config, tokenizer, data, backbone):
    """The compiled caption model on `backbone`: LoRA adapters on a ViT
    encoder (`lora_rank`), else the mode's first stage frozen; the encoder
    rematerialized with `gradient_checkpointing`."""
    import keras

    from kerasft import backbones
    from kerasft.heads.captioning import caption_loss, caption_model
    from kerasft.recipes import _stages

    steps = int(data["train"][1].cardinality().numpy()) * config.epochs
    with run.strategy.scope():
        if config.lora_rank:  # query and value projections; the rest freezes
            _check_lora(config, backbone)
            total, trainable = backbones.enable_lora(backbone, config.lora_rank,
                                                     verbose=False)
            run.log(f"LoRA rank {config.lora_rank}: {trainable:,} of {total:,} "
                    "encoder parameters train.")
        run.reseed()
        model = caption_model(
            backbone, len(tokenizer.get_vocabulary()), config.max_length,
            embed_dim=config.embed_dim, num_layers=config.decoder_layers,
            num_heads=config.num_heads, dropout=config.dropout,
            train_batchnorm=config.train_batchnorm,
            remat=config.gradient_checkpointing,
        )
        if not config.lora_rank:
            _stages.freeze_first_stage(model, backbone, config)
        model.compile(
            optimizer=_stages.optimizer(run, config, backbone, steps),
            loss=caption_loss(),
            weighted_metrics=[
                keras.metrics.SparseCategoricalAccuracy(name="token_accuracy")
            ],
        )
    return model


def _check_lora(config, backbone):
    """`ValueError` when `backbone` has no attention projections to adapt."""
    from kerasft import _keras_compat
    from kerasft.backbones.lora import DEFAULT_TARGET

    if not any(layer.name in DEFAULT_TARGET and hasattr(layer, "enable_lora")
               for layer in _keras_compat.all_layers(backbone.model)):
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
            scores = caption_scores(predictions, references)
            metrics.update(prefixed(scores, prefix + tag))
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


def _plot_caption_grid(images, references, predictions, path, samples=16):
    """`captions.png`: the first `samples` images of a `CaptionImages`, each
    with its generated caption (`predictions`, one per image) and first
    reference caption (`references`, a list per image)."""
    from matplotlib.figure import Figure

    count = min(samples, len(predictions))
    rows, columns = max(1, -(-count // 4)), min(4, max(count, 1))
    figure = Figure(figsize=(3.2 * columns, 4.2 * rows))
    for i, (image, _) in enumerate(images.dataset.take(count)):
        axes = figure.add_subplot(rows, columns, i + 1)
        axes.imshow(image.numpy(), interpolation="nearest")
        axes.set_axis_off()
        generated = textwrap.fill(predictions[i] or "(empty)", 34)
        reference = textwrap.fill(references[i][0], 34)
        axes.set_title(f"{generated}\nref: {reference}", fontsize=7)
    figure.suptitle("Generated captions (top) and a reference (ref)")
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=80)
