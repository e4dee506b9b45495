"""Predictors: a finished run's model on new inputs, written for people.

One module per task family, each with functions of one signature,
`predict(run, inputs, output, *, batch_size=32, top_k=None, verbose=1)`
returning a `Predictions` (`output`, `rows`, `unreadable`, `files`):

| module | function | writes |
|---|---|---|
| `classification` | `predict_images`, `predict_texts`, `predict_videos` | classes CSV |
| `detection` | `predict` | boxes CSV + an overlay PNG per image |
| `segmentation` | `predict` | a palette mask PNG per image, colour key, CSV |
| `captioning` | `predict` | captions CSV |
| `tokens` | `predict` | entities CSV or JSON lines |
| `question_answering` | `predict` | answers CSV or JSON lines |
| `generative` | `predict` | generated text CSV |

`run` is what `kerasft.load(run_dir)` returns; the recipe registry maps
each recipe to its predictor, and `kerasft predict RUN_DIR INPUT` calls it.
Extra files go in a folder named after the CSV's stem
(`predictions.csv` -> `predictions/`).
"""

from kerasft.predictors._output import Predictions

__all__ = ["Predictions"]
