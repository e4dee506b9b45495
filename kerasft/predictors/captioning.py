"""Captions of an image captioning run: a CSV row per image.

The run's `CaptionGenerator` (its model and vocabulary) decodes greedily;
the CSV has `input`, `caption` (detokenized, without `[START]`/`[END]`)
and `error`.

Example:
```python
run = kerasft.load("runs/captions")
captioning.predict(run, "new_photos/", "captions.csv")
```
"""

from kerasft.predictors import _inputs, _output

COLUMNS = ("input", "caption", "error")


def predict(run, inputs, output, *, batch_size=32, top_k=None, verbose=1):
    """Captions images with a finished image captioning run.

    Args:
        run: the run, as `kerasft.load` returns it (`run.model` is its
            `CaptionGenerator`).
        inputs: a folder of images, a CSV with a `filename` column, or a
            file with one image path per line.
        output: the CSV file to write.
        batch_size: images per generation call. Defaults to `32`.
        top_k: not used by captioning; must be `None`.
        verbose: `1` shows a progress bar and lists unreadable inputs.
            Defaults to `1`.

    Returns:
        A `Predictions`.
    """
    _output.check_options(top_k, batch_size)
    _output.refuse_top_k(top_k, "image captioning")
    paths = _inputs.image_paths(inputs)
    generator = run.model
    if not hasattr(generator, "caption"):
        raise ValueError(
            f"{run.directory!r}: the loaded model is not a caption generator "
            f"({type(generator).__name__})."
        )
    height, width, channels = (int(v) for v in generator.encoder.input_shape[1:])
    batches, errors = _inputs.image_batches(paths, (height, width), channels,
                                            batch_size)
    captions = {}
    bar = _output.progress(len(paths), verbose)
    done = len(errors)
    for images, index, _ in batches:
        texts = generator.caption(images.astype("float32"), batch_size=batch_size)
        captions.update(zip(index.tolist(), texts))
        done += len(index)
        bar.update(done)
    rows = [
        {"input": p, "error": errors[i]} if i in errors
        else {"input": p, "caption": captions[i], "error": ""}
        for i, p in enumerate(paths)
    ]
    unreadable = [(p, errors[i]) for i, p in enumerate(paths) if i in errors]
    return _output.finish(output, rows, unreadable, [], verbose, COLUMNS)
