"""Generated text of a seq2seq or causal LM run: a row per prompt.

Prompts are the lines of a text file, a CSV column (`prompt`, else the
run's `source_column` or `text_column`, else `text`), or a folder's `.txt`
files. Generation is `kerasft.generation.generate_with` with the greedy
sampler (as `kerasft generate` by default; use `kerasft generate` for beam
search or sampling); seq2seq prompts get the run's `task_prefix`, causal
LM generations start with their prompt. The CSV has `input`, `generated`
and `error`.

Example:
```python
run = kerasft.load("runs/summaries")
generative.predict(run, "articles.txt", "summaries.csv")
```
"""

import os

from kerasft.predictors import _inputs, _output

COLUMNS = ("input", "generated", "error")
GENERATIVE_FILE = "generative.json"


def prompts_of(run, inputs):
    """The prompts in `inputs` (see the module doc)."""
    inputs = _inputs.check_exists(inputs)
    if os.path.isfile(inputs) and _inputs.is_table(inputs):
        config = run.config
        candidates = ["prompt"] + [
            c for c in (config.get("source_column"), config.get("text_column"),
                        "text") if c
        ]
        return _inputs.csv_values(
            inputs, _inputs.csv_column(inputs, tuple(dict.fromkeys(candidates)))
        )
    return _inputs.texts(inputs)


def predict(run, inputs, output, *, batch_size=32, top_k=None, verbose=1):
    """Generates text for prompts with a finished seq2seq or causal LM run.

    Args:
        run: the run, as `kerasft.load` returns it (`run.model` is its
            KerasHub task, preprocessor included).
        inputs: a file with one prompt a line, a CSV (see the module doc)
            or a folder of `.txt` files.
        output: the CSV file to write.
        batch_size: prompts per `generate` call. Defaults to `32`.
        top_k: not used; must be `None` (`kerasft generate --sampler top_k`
            samples from the top k tokens).
        verbose: `1` shows a progress bar. Defaults to `1`.

    Returns:
        A `Predictions`.
    """
    from kerasft.generation import generate_with, make_sampler

    _output.check_options(top_k, batch_size)
    _output.refuse_top_k(top_k, "text generation (see kerasft generate)")
    prompts = prompts_of(run, inputs)
    info = run.read_json(GENERATIVE_FILE) or {}
    prefix = run.config.get("task_prefix") or info.get("task_prefix") or ""
    sampler = make_sampler("greedy")
    rows = []
    bar = _output.progress(len(prompts), verbose)
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start:start + batch_size]
        texts = generate_with(run.model, [prefix + p for p in chunk], sampler,
                              batch_size=batch_size)
        rows.extend({"input": p, "generated": t, "error": ""}
                    for p, t in zip(chunk, texts))
        bar.update(start + len(chunk))
    return _output.finish(output, rows, [], [], verbose, COLUMNS)
