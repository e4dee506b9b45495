"""`kerasft predict`: batch inference with a finished run on new inputs.

`predict_to_csv(run_dir, inputs, output)` reads the run folder with
`kerasft.load` and hands it to its recipe's predictor (the recipe
registry's `predictor`), which writes what a person reads: one CSV row per
input with its classes (image, text and video classification), boxes and
overlay images (object detection), mask PNGs with a colour key
(segmentation), captions, NER entities, QA answers or generated text. The
predictors live in `kerasft.predictors`, one module per task family;
`docs/deploy.md` lists every output.
"""

# `kerasft export --quantize int8` lists its calibration images with this.
from kerasft.predictors._inputs import image_paths as _image_inputs  # noqa: F401
from kerasft.predictors._output import Predictions  # noqa: F401 (re-exported)


def predict_to_csv(run_dir, inputs, output="predictions.csv", top_k=None,
                   batch_size=32, verbose=1):
    """Predicts `inputs` with a finished run and writes a CSV.

    Args:
        run_dir: a finished recipe run folder.
        inputs: a folder, a CSV file or a text file (one input a line);
            question answering also reads SQuAD-format JSON.
        output: the CSV file to write (token classification and question
            answering also write JSON lines to a `.jsonl` name). Defaults
            to `"predictions.csv"`.
        top_k: classification: also write the `k` most probable classes
            per row. Defaults to `None`.
        batch_size: inputs per model call. Defaults to `32`.
        verbose: `1` shows a progress bar and lists unreadable inputs.
            Defaults to `1`.

    Returns:
        A `Predictions` (`output`, `rows`, `unreadable`, `files`).

    Example:
    ```python
    kerasft.predict.predict_to_csv("runs/flowers", "new_photos/", top_k=3)
    ```
    """
    import os

    from kerasft import loading
    from kerasft.predictors import _inputs, _output
    from kerasft.recipes import registry

    _output.check_options(top_k, batch_size)
    _inputs.check_exists(inputs)
    run = loading.load(run_dir)
    predictor = registry.predictor(run.recipe)
    return predictor(run, os.fspath(inputs), os.fspath(output),
                     batch_size=batch_size, top_k=top_k, verbose=verbose)
