"""Answers of a question answering run: a row per question.

Questions come from a SQuAD-format JSON file, or a CSV with `question`
and `context` columns (and an optional `id`; else the row number). Each
question is cut into the run's windows (`max_length`, `doc_stride`) and
decoded as the recipe decodes it (`kerasft.data.postprocess_predictions`:
every span of every window, the run's `n_best`, `max_answer_length` and
SQuAD v2.0 "no answer"). Written: `id`, `question`, `answer` (`""` for no
answer), `score` (the answer's probability among the n-best candidates),
`start` and `end` (character offsets in the context, empty for no answer)
and `error`; a `.jsonl`/`.json` output gets JSON lines, else CSV.

Example:
```python
run = kerasft.load("runs/qa")
question_answering.predict(run, "dev-v2.0.json", "answers.csv")
```
"""

import os

import numpy as np

from kerasft.predictors import _inputs, _output

COLUMNS = ("id", "question", "answer", "score", "start", "end", "error")


def read_questions(inputs):
    """`SquadExample`s (without answers) from a SQuAD JSON file or a CSV
    with `question` and `context` columns."""
    from kerasft.data.squad import SquadExample, read_squad

    inputs = _inputs.check_exists(inputs)
    if os.path.isdir(inputs):
        raise ValueError(
            f"Question answering reads a SQuAD JSON file or a CSV with "
            f"question,context columns, not a folder. Received: {inputs!r}"
        )
    if inputs.lower().endswith(".json"):
        return read_squad(inputs)
    if not _inputs.is_table(inputs):
        raise ValueError(
            "Question answering reads a SQuAD-format .json file or a .csv/"
            f".tsv with question,context columns. Received: {inputs!r}"
        )
    for column in ("question", "context"):
        _inputs.csv_column(inputs, (column,))
    return [
        SquadExample(id=str(row.get("id") or i), question=row["question"],
                     context=row["context"], answer_text="", answer_start=-1)
        for i, row in enumerate(_inputs.csv_rows(inputs))
    ]


def predict(run, inputs, output, *, batch_size=32, top_k=None, verbose=1):
    """Answers questions about contexts with a finished QA run.

    Args:
        run: the run, as `kerasft.load` returns it.
        inputs: a SQuAD-format JSON file, or a CSV with `question` and
            `context` columns (`id` optional).
        output: the file to write: `.jsonl` (or `.json`) for JSON lines,
            else CSV.
        batch_size: windows per model call. Defaults to `32`.
        top_k: not used; must be `None` (the run's `n_best` sets the
            candidates).
        verbose: `1` shows a progress bar. Defaults to `1`.

    Returns:
        A `Predictions`.
    """
    from kerasft.data.squad import postprocess_predictions, squad_features
    from kerasft.predictors.classification import text_tokenizer

    _output.check_options(top_k, batch_size)
    _output.refuse_top_k(top_k, "question answering (n_best is the run's)")
    examples = read_questions(inputs)
    config = run.config
    length = config.get("max_length")
    features = squad_features(examples, text_tokenizer(run, length), length,
                              doc_stride=config.get("doc_stride"))
    windows = len(features.context_mask)
    starts, ends = [], []
    bar = _output.progress(windows, verbose)
    for begin in range(0, windows, batch_size):
        part = {k: v[begin:begin + batch_size] for k, v in features.inputs.items()}
        out = run.model(part, training=False)
        starts.append(np.asarray(out["start_logits"]))
        ends.append(np.asarray(out["end_logits"]))
        bar.update(min(begin + batch_size, windows))
    answers = postprocess_predictions(
        examples, features, np.concatenate(starts), np.concatenate(ends),
        n_best=config.get("n_best") or 20,
        max_answer_length=config.get("max_answer_length") or 30,
        version_2_with_negative=bool(config.get("version_2_with_negative")),
        null_score_diff_threshold=config.get("null_score_diff_threshold") or 0.0,
    )
    rows = [_row(example, answer) for example, answer in zip(examples, answers)]
    return _output.finish(output, rows, [], [], verbose, COLUMNS)


def _row(example, answer):
    chosen = next((c for c in answer.n_best if c["text"] == answer.text), None)
    offsets = (chosen or {}).get("offsets") if answer.text else None
    return {
        "id": example.id,
        "question": example.question,
        "answer": answer.text,
        "score": round(chosen["probability"], 4) if chosen else None,
        "start": offsets[0] if offsets else None,
        "end": offsets[1] if offsets else None,
        "error": "",
    }
