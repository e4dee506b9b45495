"""Named entities of a token classification run, per input text.

Each text is split into words (runs of letters and digits, and each
punctuation mark alone, as CoNLL data is), tagged by the model (each word's
tag is read at its first WordPiece, as the recipe scores it) and the BIO
tags are joined into entities (`kerasft.evaluation.entities`). Written per
text: `input` (the whole text), `entities` (a list of `{"type", "start",
"end", "text", "score"}`, character offsets `[start, end)` into the text;
`score` is the lowest tag probability over the entity's words) and
`error`. A `.jsonl`/`.json` output gets one JSON object per text, a CSV
the entities as a JSON string. Words past the run's `max_length` are not
tagged (`"O"`); `truncated_words` counts them.

Example:
```python
run = kerasft.load("runs/ner")
tokens.predict(run, "sentences.txt", "entities.jsonl")
```
"""

import json
import re

import numpy as np

from kerasft.predictors import _inputs, _output

COLUMNS = ("input", "entities", "truncated_words", "error")
_WORD = re.compile(r"\w+|[^\w\s]")


def words_of(text):
    """`[(word, start, end)]`: runs of word characters, and each other
    non-space character alone."""
    return [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


def predict(run, inputs, output, *, batch_size=32, top_k=None, verbose=1):
    """Finds named entities with a finished token classification run.

    Args:
        run: the run, as `kerasft.load` returns it.
        inputs: a file with one text a line, a CSV with the run's
            `text_column` (default `text`), or a folder of `.txt` files.
        output: the file to write: `.jsonl` (or `.json`) for JSON lines,
            else CSV.
        batch_size: texts per model call. Defaults to `32`.
        top_k: not used; must be `None`.
        verbose: `1` shows a progress bar. Defaults to `1`.

    Returns:
        A `Predictions`; each row's `entities` is a list of dicts.
    """
    from kerasft.data.conll import token_features
    from kerasft.predictors.classification import text_tokenizer

    _output.check_options(top_k, batch_size)
    _output.refuse_top_k(top_k, "token classification")
    texts = _inputs.texts(inputs, run.config.get("text_column") or "text")
    labels = list(run.class_names or [])
    if not labels:
        raise ValueError(f"{run.directory!r} has no labels.json: the tag names "
                         "of a token classification run.")
    length = run.config.get("max_length")
    tokenizer = text_tokenizer(run, length)
    rows = []
    bar = _output.progress(len(texts), verbose)
    for start in range(0, len(texts), batch_size):
        chunk = texts[start:start + batch_size]
        spans = [words_of(t) for t in chunk]
        sentences = [[w for w, _, _ in s] for s in spans]
        features = token_features(sentences, tokenizer, length)
        logits = np.asarray(run.model(features.inputs, training=False), "float64")
        for i, text in enumerate(chunk):
            tags, scores, truncated = _word_tags(features.word_ids[i], logits[i],
                                                 len(spans[i]), labels)
            rows.append({
                "input": text,
                "entities": _entities(text, spans[i], tags, scores),
                "truncated_words": truncated,
                "error": "",
            })
        bar.update(start + len(chunk))
    if not str(output).lower().endswith((".jsonl", ".json")):
        written = [{**r, "entities": json.dumps(r["entities"], ensure_ascii=False)}
                   for r in rows]
        result = _output.finish(output, written, [], [], verbose, COLUMNS)
        result.rows = rows
        return result
    return _output.finish(output, rows, [], [], verbose, COLUMNS)


def _word_tags(word_ids, logits, num_words, labels):
    """Per word: its tag and probability at its first piece; `"O"` (score
    `None`) for words cut off by the sequence length."""
    shifted = logits - logits.max(-1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(-1, keepdims=True)
    tags, scores = ["O"] * num_words, [None] * num_words
    seen = set()
    for position, w in enumerate(word_ids):
        if 0 <= w < num_words and w not in seen:
            seen.add(w)
            best = int(probs[position].argmax())
            tags[w], scores[w] = labels[best], float(probs[position, best])
    return tags, scores, num_words - len(seen)


def _entities(text, spans, tags, scores):
    from kerasft.evaluation.entities import get_entities

    out = []
    for kind, first, last in get_entities(tags):
        start, end = spans[first][1], spans[last][2]
        known = [s for s in scores[first:last + 1] if s is not None]
        out.append({"type": kind, "start": start, "end": end,
                    "text": text[start:end],
                    "score": round(min(known), 4) if known else None})
    return out
