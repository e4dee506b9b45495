"""Extractive QA data: a SQuAD-format reader, features with answer token
positions, and span decoding back to text.

`read_squad` reads SQuAD v1.1/v2.0 JSON; `squad_features` tokenizes
`[CLS] question [SEP] context [SEP]` with the backbone's own WordPiece
tokenizer and locates the answer's first and last token through per-token
character offsets (computed by re-tokenizing the context word by word, since
KerasHub tokenizers return no offsets); `decode_spans` picks the best span
`start <= end < start + max_answer_length` inside the context of one window;
`postprocess_predictions` decodes each question over all its windows (long
contexts split with `doc_stride`), with an n-best list and SQuAD v2.0's
"no answer".
"""

import dataclasses
import os
import unicodedata
from typing import Optional

import numpy as np


@dataclasses.dataclass(frozen=True)
class SquadExample:
    """One question about one context.

    Args:
        id: the question id.
        question: the question text.
        context: the paragraph.
        answer_text: the first gold answer, `""` when unanswerable.
        answer_start: character offset of `answer_text` in `context`, `-1`
            when unanswerable.
        answers: every gold answer text (SQuAD dev sets hold several).
    """

    id: str
    question: str
    context: str
    answer_text: str
    answer_start: int
    answers: tuple = ()


@dataclasses.dataclass(frozen=True)
class SquadFeatures:
    """Model inputs, labels and decoding aids from `squad_features`.

    Args:
        inputs: `{"token_ids", "segment_ids", "padding_mask"}` int32 arrays
            `(n, sequence_length)`.
        labels: `{"start_logits", "end_logits"}` int32 answer token indices
            `(n,)` (0, the `[CLS]` position, when the answer is missing or
            cut off), keyed like the `question_answering` head's outputs.
        context_mask: `(n, sequence_length)` 1 on context tokens.
        offsets: `(n, sequence_length, 2)` character span of each context
            token in its context, `-1` elsewhere.
        contexts: the context strings, for `span_texts`.
        truncated: number of answers that no window holds whole.
        example_index: `(n,)` index of each window's example in the
            examples given to `squad_features`.
    """

    inputs: dict
    labels: dict
    context_mask: np.ndarray
    offsets: np.ndarray
    contexts: list
    truncated: int
    example_index: Optional[np.ndarray] = None


def read_squad(path):
    """Reads a SQuAD-format JSON file into `SquadExample`s.

    Args:
        path: a file with `{"data": [{"paragraphs": [{"context", "qas":
            [{"id", "question", "answers": [{"text", "answer_start"}]}]}]}]}`.

    Returns:
        A list of `SquadExample`, in file order.

    Example:
    ```python
    examples = kerasft.data.read_squad("train-v1.1.json")
    ```
    """
    from kerasft._json_file import load_json

    expected = ("SQuAD JSON: an object whose 'data' list holds articles of "
                "'paragraphs' with 'context' and 'qas'")
    data = load_json(path, expected)
    if not isinstance(data, dict) or "data" not in data:
        raise ValueError(f"{os.fspath(path)!r} is not SQuAD format. Expected {expected}.")
    examples = []
    for article in data["data"]:
        for paragraph in article.get("paragraphs", []):
            context = paragraph["context"]
            for qa in paragraph["qas"]:
                answers = qa.get("answers") or []
                if qa.get("is_impossible") or not answers:
                    text, start = "", -1
                else:
                    text = answers[0]["text"]
                    start = int(answers[0]["answer_start"])
                    if context[start : start + len(text)] != text:
                        raise ValueError(
                            f"Question {qa.get('id')!r}: answer {text!r} is "
                            f"not at answer_start={start} of its context."
                        )
                examples.append(
                    SquadExample(
                        id=str(qa.get("id", len(examples))),
                        question=qa["question"],
                        context=context,
                        answer_text=text,
                        answer_start=start,
                        answers=tuple(a["text"] for a in answers),
                    )
                )
    return examples


def squad_features(
    examples, tokenizer, sequence_length=None, doc_stride=None, max_query_length=None
):
    """Tokenizes examples into windows and finds the answer's token positions.

    Each window is `[CLS] question [SEP] context part [SEP]`. With
    `doc_stride=None` there is one window per example and the rest of a
    long context is cut (answers past it get label 0 and are counted in
    `truncated`). With a `doc_stride`, a long context is split into
    overlapping windows, consecutive ones sharing `doc_stride` context
    tokens, as Hugging Face's `run_qa.py` does with the tokenizer's
    `stride`; a window holding the whole answer gets its positions, the
    others label 0 (the `[CLS]` "no answer" position), and
    `features.example_index` maps every window back to its example.

    Args:
        examples: `SquadExample`s.
        tokenizer: a kerasft text `Backbone`, its `.tokenizer`
            (a KerasHub BERT preprocessor) or a KerasHub `BertTokenizer`.
        sequence_length: window length; defaults to the preprocessor's.
        doc_stride: context tokens shared by consecutive windows, or `None`
            for one window per example. Defaults to `None`.
        max_query_length: longest question in tokens (longer ones are cut).
            Defaults to half the window.

    Returns:
        `SquadFeatures`, one row per window.

    Example:
    ```python
    features = squad_features(examples, backbone, 384, doc_stride=128)
    model.fit(features.inputs, features.labels, epochs=2)
    ```
    """
    word_tokenizer, sequence_length = _word_tokenizer(tokenizer, sequence_length)
    max_query_length = _check_window(sequence_length, doc_stride, max_query_length)
    special = tuple(word_tokenizer.token_to_id(t) for t in ("[CLS]", "[SEP]", "[PAD]"))
    rows, example_index, starts, ends = [], [], [], []
    truncated = 0
    for i, ex in enumerate(examples):
        question = _ids(word_tokenizer, ex.question)[:max_query_length]
        context_tokens, context_offsets = token_offsets(word_tokenizer, ex.context)
        room = sequence_length - 3 - len(question)
        if doc_stride is not None and doc_stride >= room:
            raise ValueError(
                f"`doc_stride` ({doc_stride}) must be smaller than the "
                f"context room of a window ({room} tokens for question "
                f"{ex.id!r} at sequence_length={sequence_length}). Lower "
                "`doc_stride` or raise `sequence_length`."
            )
        found = False
        for begin in _window_starts(len(context_tokens), room, doc_stride):
            stop = min(begin + room, len(context_tokens))
            rows.append(
                _window(question, context_tokens, context_offsets, begin, stop,
                        sequence_length, special)
            )
            example_index.append(i)
            first = len(question) + 2
            span = _window_answer(
                context_offsets, begin, stop, ex.answer_start,
                ex.answer_start + len(ex.answer_text),
            ) if ex.answer_start >= 0 else None
            if span is not None:
                starts.append(span[0] - begin + first)
                ends.append(span[1] - begin + first)
                found = True
            else:
                starts.append(0)
                ends.append(0)
        if ex.answer_start >= 0 and not found:
            truncated += 1
    if rows:
        token_ids, segment_ids, padding_mask, context_mask, offsets = (
            np.stack(parts) for parts in zip(*rows)
        )
    else:
        token_ids, segment_ids, padding_mask, context_mask = (
            np.zeros((0, sequence_length), "int32") for _ in range(4)
        )
        offsets = np.zeros((0, sequence_length, 2), "int32")
    inputs = {
        "token_ids": token_ids,
        "segment_ids": segment_ids,
        "padding_mask": padding_mask,
    }
    labels = {
        "start_logits": np.asarray(starts, "int32"),
        "end_logits": np.asarray(ends, "int32"),
    }
    return SquadFeatures(
        inputs,
        labels,
        context_mask,
        offsets,
        [examples[k].context for k in example_index],
        truncated,
        np.asarray(example_index, "int64"),
    )


def token_offsets(word_tokenizer, text):
    """WordPiece ids of `text` and each token's `(start, end)` char span.

    For the tokenizer `kerasft.backbones.bert` builds from a Hugging Face
    folder, these are exactly Hugging Face's ids and `offset_mapping`
    (normalisation done character by character, keeping each normalised
    character's source). For a plain KerasHub `WordPieceTokenizer`, each
    whitespace-separated word is tokenized on its own and each token's
    characters are found by walking the word normalized as that tokenizer
    does (lowercase, accents stripped), keeping a map back to the original
    characters.

    Args:
        word_tokenizer: a KerasHub `WordPieceTokenizer` (e.g. `BertTokenizer`).
        text: a string.

    Returns:
        `(ids, offsets)`: lists of equal length.

    Example:
    ```python
    ids, offsets = token_offsets(backbone.tokenizer.tokenizer, "Hello, world")
    ```

    Byte-level BPE and T5 tokenizers are handed to
    `kerasft.backbones.token_offsets`, which gives Hugging Face's offsets
    for those kinds too.
    """
    from kerasft.backbones import _offsets

    if _offsets._kind(word_tokenizer) in ("byte_level_bpe", "t5"):
        return _offsets.token_offsets(word_tokenizer, text)
    return _wordpiece_offsets(word_tokenizer, text)


def _wordpiece_offsets(word_tokenizer, text):
    """`token_offsets` for WordPiece tokenizers."""
    if hasattr(word_tokenizer, "normalization"):
        # kerasft's Hugging Face-exact WordPiece (`kerasft.backbones.bert`
        # on a Hugging Face folder): Hugging Face's own ids and offsets.
        from kerasft.backbones import _wordpiece

        return _wordpiece.encode_with_offsets(word_tokenizer, text)
    words = []  # (start, end) of whitespace-separated words
    start = None
    for i, ch in enumerate(text):
        if _is_space(ch):
            if start is not None:
                words.append((start, i))
                start = None
        elif start is None:
            start = i
    if start is not None:
        words.append((start, len(text)))
    if not words:
        return [], []
    batch = word_tokenizer([text[s:e] for s, e in words])
    ids, offsets = [], []
    lowercase = getattr(word_tokenizer, "lowercase", False)
    strip = getattr(word_tokenizer, "strip_accents", False)
    for (s, e), word_ids in zip(words, batch):
        word_ids = [int(t) for t in np.asarray(word_ids)]
        ids.extend(word_ids)
        offsets.extend(
            _word_piece_offsets(word_tokenizer, text[s:e], s, word_ids, lowercase, strip)
        )
    return ids, offsets


def decode_spans(
    start_logits,
    end_logits,
    context_mask=None,
    max_answer_length=30,
):
    """The best answer span per example: argmax of `start + end` logits.

    Only spans with `start <= end < start + max_answer_length` whose tokens
    are all inside the context (`context_mask`) count.

    Args:
        start_logits: `(batch, tokens)` or `(tokens,)` start logits.
        end_logits: same shape, end logits.
        context_mask: same shape, 1 where a token may be part of an answer.
            Defaults to `None` (every position).
        max_answer_length: longest answer in tokens. Defaults to `30`.

    Returns:
        `(spans, scores)`: int `(batch, 2)` start/end token indices and
        float `(batch,)` scores (`(2,)` and a float for 1-D inputs).

    Example:
    ```python
    spans, scores = decode_spans([[0., 5, 1, 0]], [[0., 1, 0, 4]])
    # spans == [[1, 3]]
    ```
    """
    if not _is_int(max_answer_length) or max_answer_length < 1:
        raise ValueError(
            "`max_answer_length` must be a positive integer. "
            f"Received: max_answer_length={max_answer_length!r}"
        )
    start = np.asarray(start_logits, dtype="float64")
    end = np.asarray(end_logits, dtype="float64")
    single = start.ndim == 1
    if single:
        start, end = start[None], end[None]
    if start.shape != end.shape or start.ndim != 2:
        raise ValueError(
            "`start_logits` and `end_logits` must have the same shape "
            f"(batch, tokens). Received: {start.shape} and {end.shape}"
        )
    scores = _span_scores(start, end, context_mask, max_answer_length)
    length = start.shape[1]
    flat = scores.reshape(scores.shape[0], -1).argmax(axis=1)
    spans = np.stack([flat // length, flat % length], axis=1).astype("int64")
    best = scores.reshape(scores.shape[0], -1)[np.arange(len(flat)), flat]
    if np.any(np.isinf(best)):
        raise ValueError(
            "Some rows have no allowed span (empty `context_mask`)."
        )
    if single:
        return spans[0], float(best[0])
    return spans, best


@dataclasses.dataclass(frozen=True)
class QAPrediction:
    """The answer to one question, decoded over all its windows.

    Args:
        id: the question id.
        text: the answer, `""` for "no answer" (SQuAD v2.0).
        score: start + end logit of the best span (`-inf` when no window
            holds context tokens).
        null_score: the smallest `[CLS]` start + end logit over the
            question's windows (the "no answer" score).
        n_best: up to `n_best` candidates, best first: dicts with `text`,
            `score`, `start_logit`, `end_logit`, `probability` (softmax over
            the candidates, with the null candidate in v2.0) and `offsets`
            (character `[start, end)` in the context).
    """

    id: str
    text: str
    score: float
    null_score: float
    n_best: tuple


def postprocess_predictions(
    examples,
    features,
    start_logits,
    end_logits,
    n_best=20,
    max_answer_length=30,
    version_2_with_negative=False,
    null_score_diff_threshold=0.0,
):
    """Answers from window logits: the best span over all windows of each
    question, its n-best list, and SQuAD v2.0's "no answer".

    Every span `start <= end < start + max_answer_length` of context tokens
    in any of the question's windows is a candidate, scored `start_logit +
    end_logit` (all spans, exactly; Hugging Face's `run_qa` only tries the
    top `n_best` starts x ends). A text found in several overlapping
    windows keeps its best score. With `version_2_with_negative`, the null
    score is the smallest `[CLS]` score over the windows, as in BERT's
    `run_squad.py`, and the answer is `""` when `null_score - best span
    score > null_score_diff_threshold`.

    Args:
        examples: the `SquadExample`s given to `squad_features`.
        features: its `SquadFeatures`.
        start_logits: `(windows, tokens)` model start logits.
        end_logits: `(windows, tokens)` end logits.
        n_best: candidates kept per question. Defaults to `20`.
        max_answer_length: longest answer in tokens. Defaults to `30`.
        version_2_with_negative: allow "no answer". Defaults to `False`.
        null_score_diff_threshold: see above. Defaults to `0.0`.

    Returns:
        A list of `QAPrediction`, in the order of `examples`.

    Example:
    ```python
    features = squad_features(examples, backbone, 384, doc_stride=128)
    out = model.predict(features.inputs)
    answers = postprocess_predictions(
        examples, features, out["start_logits"], out["end_logits"])
    print(answers[0].text, answers[0].n_best[:3])
    ```
    """
    for name, value in (("n_best", n_best), ("max_answer_length", max_answer_length)):
        if not _is_int(value) or value < 1:
            raise ValueError(
                f"`{name}` must be a positive integer. Received: {name}={value!r}"
            )
    start = np.asarray(start_logits, dtype="float64")
    end = np.asarray(end_logits, dtype="float64")
    rows = len(features.context_mask)
    if start.shape != features.context_mask.shape or end.shape != start.shape:
        raise ValueError(
            "`start_logits` and `end_logits` must have the features' shape "
            f"{features.context_mask.shape} (one row per window). Received: "
            f"{start.shape} and {end.shape}"
        )
    index = features.example_index
    if index is None:
        index = np.arange(rows)
    by_example = [[] for _ in examples]
    for row, example in enumerate(index):
        by_example[int(example)].append(row)
    return [
        _predict_one(
            example, rows_of, features, start, end, max_answer_length, n_best,
            version_2_with_negative, null_score_diff_threshold,
        )
        for example, rows_of in zip(examples, by_example)
    ]


def _predict_one(example, rows, features, start, end, max_answer_length,
                 n_best, with_negative, threshold):
    """One question's `QAPrediction` from its windows `rows`."""
    # Scored per question: all windows at once would need windows x
    # tokens^2 floats.
    scores = _span_scores(
        start[rows], end[rows], features.context_mask[rows], max_answer_length
    )
    length = scores.shape[-1]
    candidates = {}  # (char start, char end) -> candidate
    for local, row in enumerate(rows):
        flat = scores[local].reshape(-1)
        k = min(n_best, int(np.isfinite(flat).sum()))
        if k == 0:
            continue
        top = np.argpartition(-flat, k - 1)[:k]
        for position in top:
            s, e = divmod(int(position), length)
            begin, finish = features.offsets[row, s, 0], features.offsets[row, e, 1]
            key = (int(begin), int(finish))
            score = float(flat[position])
            if key not in candidates or candidates[key]["score"] < score:
                candidates[key] = {
                    "text": example.context[key[0] : key[1]],
                    "score": score,
                    "start_logit": float(start[row, s]),
                    "end_logit": float(end[row, e]),
                    "offsets": list(key),
                }
    best = sorted(candidates.values(), key=lambda c: -c["score"])[:n_best]
    null_score = float(min(start[r, 0] + end[r, 0] for r in rows)) if rows else 0.0
    listed = list(best)
    if with_negative:
        listed.append({
            "text": "", "score": null_score, "start_logit": None,
            "end_logit": None, "offsets": None,
        })
        listed.sort(key=lambda c: -c["score"])
        listed = listed[: n_best + 1]
    if listed:
        values = np.array([c["score"] for c in listed])
        probabilities = np.exp(values - values.max())
        probabilities /= probabilities.sum()
        for c, p in zip(listed, probabilities):
            c["probability"] = float(p)
    best_score = best[0]["score"] if best else float("-inf")
    text = best[0]["text"] if best else ""
    if with_negative and null_score - best_score > threshold:
        text = ""
    return QAPrediction(example.id, text, best_score, null_score, tuple(listed))


def span_texts(features, spans):
    """The context substrings of token spans from `decode_spans`.

    Args:
        features: the `SquadFeatures` the spans were predicted on.
        spans: `(batch, 2)` token start/end indices.

    Returns:
        A list of answer strings.

    Example:
    ```python
    out = model.predict(features.inputs)
    spans, _ = decode_spans(out["start_logits"], out["end_logits"], features.context_mask)
    answers = span_texts(features, spans)
    ```
    """
    texts = []
    for row, (s, e) in enumerate(np.asarray(spans)):
        begin = features.offsets[row, s, 0]
        finish = features.offsets[row, e, 1]
        if begin < 0 or finish < 0:
            texts.append("")
        else:
            texts.append(features.contexts[row][begin:finish])
    return texts


# === Helpers ===


def _word_tokenizer(tokenizer, sequence_length):
    preprocessor = tokenizer.tokenizer if getattr(tokenizer, "task", None) == "text" else tokenizer
    if hasattr(preprocessor, "packer"):
        word_tokenizer = preprocessor.tokenizer
        sequence_length = sequence_length or preprocessor.sequence_length
    else:
        word_tokenizer = preprocessor
    try:
        has_cls = word_tokenizer.token_to_id("[CLS]") is not None
    except (AttributeError, KeyError, ValueError):
        has_cls = False
    if not has_cls:
        raise TypeError(
            "`tokenizer` must be a BERT-style WordPiece tokenizer, its KerasHub "
            "preprocessor, or a Backbone from `kerasft.backbones.bert`. "
            f"Received: {type(tokenizer).__name__}"
        )
    if sequence_length is None:
        raise ValueError("`sequence_length` is required with a bare tokenizer.")
    return word_tokenizer, int(sequence_length)


def _ids(word_tokenizer, text):
    return [int(t) for t in np.asarray(word_tokenizer(text))]


def _span_scores(start, end, context_mask, max_answer_length):
    """`(batch, tokens, tokens)` start + end scores, `-inf` where a span is
    not allowed (end before start, too long, outside `context_mask`)."""
    length = start.shape[1]
    i = np.arange(length)
    allowed = (i[None, :] >= i[:, None]) & (i[None, :] < i[:, None] + max_answer_length)
    allowed = np.broadcast_to(allowed, (start.shape[0], length, length))
    if context_mask is not None:
        mask = np.asarray(context_mask).astype(bool)
        if mask.ndim == 1:
            mask = mask[None]
        if mask.shape != start.shape:
            raise ValueError(
                f"`context_mask` must have shape {start.shape}. "
                f"Received: {mask.shape}"
            )
        allowed = allowed & mask[:, :, None] & mask[:, None, :]
    scores = start[:, :, None] + end[:, None, :]
    return np.where(allowed, scores, -np.inf)


def _is_space(ch):
    return ch.isspace() or unicodedata.category(ch) == "Zs"


def _normalize(word, lowercase, strip):
    """Normalized characters of `word` and, for each, its index in `word`."""
    chars, origin = [], []
    for index, ch in enumerate(word):
        if ord(ch) == 0 or ord(ch) == 0xFFFD or unicodedata.category(ch) in ("Cc", "Cf"):
            continue
        norm = ch.lower() if lowercase else ch
        if strip:
            norm = "".join(
                c for c in unicodedata.normalize("NFD", norm) if unicodedata.category(c) != "Mn"
            )
        for c in norm:
            chars.append(c)
            origin.append(index)
    return "".join(chars), origin


def _word_piece_offsets(word_tokenizer, word, word_start, word_ids, lowercase, strip):
    norm, origin = _normalize(word, lowercase, strip)
    pieces = []
    for t in word_ids:
        piece = word_tokenizer.id_to_token(t)
        if piece.startswith("##"):
            piece = piece[2:]
        pieces.append(piece)
    offsets, cursor = [], 0
    unk = getattr(word_tokenizer, "oov_token", "[UNK]")
    for k, piece in enumerate(pieces):
        found = -1 if piece == unk else norm.find(piece, cursor)
        if found < 0:
            # [UNK] (or a piece normalization changed): it spans up to the
            # next piece that can be found, else the rest of the word.
            nxt = len(norm)
            for later in pieces[k + 1 :]:
                pos = norm.find(later, cursor) if later != unk else -1
                if pos >= 0:
                    nxt = pos
                    break
            found, stop = cursor, max(nxt, cursor + 1)
        else:
            stop = found + len(piece)
        stop = min(stop, len(norm))
        begin = origin[found] if found < len(origin) else len(word) - 1
        end = origin[stop - 1] + 1 if stop - 1 < len(origin) else len(word)
        offsets.append((word_start + begin, word_start + end))
        cursor = stop
    return offsets


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_window(sequence_length, doc_stride, max_query_length):
    """Validates the window arguments; returns `max_query_length`."""
    if sequence_length < 8:
        raise ValueError(
            f"`sequence_length` must be >= 8. Received: {sequence_length}"
        )
    half = (sequence_length - 3) // 2
    if max_query_length is None:
        max_query_length = half
    if not _is_int(max_query_length) or not 1 <= max_query_length <= half:
        raise ValueError(
            f"`max_query_length` must be an integer in [1, {half}] for "
            f"sequence_length={sequence_length}. Received: "
            f"max_query_length={max_query_length!r}"
        )
    if doc_stride is not None and (not _is_int(doc_stride) or doc_stride < 0):
        raise ValueError(
            "`doc_stride` must be a non-negative integer or None. Received: "
            f"doc_stride={doc_stride!r}"
        )
    return max_query_length


def _window_starts(length, room, doc_stride):
    """First context token of each window: one window, or steps of
    `room - doc_stride` until a window reaches the end of the context."""
    if doc_stride is None or length <= room:
        return [0]
    step = room - doc_stride
    starts = [0]
    while starts[-1] + room < length:
        starts.append(starts[-1] + step)
    return starts


def _window(question, tokens, offsets, begin, stop, sequence_length, special):
    """`(token_ids, segment_ids, padding_mask, context_mask, offsets)` of one
    `[CLS] question [SEP] tokens[begin:stop] [SEP]` window."""
    cls_id, sep_id, pad_id = special
    context = tokens[begin:stop]
    ids = [cls_id] + question + [sep_id] + context + [sep_id]
    first = len(question) + 2
    token_ids = np.full((sequence_length,), pad_id, "int32")
    segment_ids = np.zeros((sequence_length,), "int32")
    padding_mask = np.zeros((sequence_length,), "int32")
    context_mask = np.zeros((sequence_length,), "int32")
    char_offsets = np.full((sequence_length, 2), -1, "int32")
    token_ids[: len(ids)] = ids
    padding_mask[: len(ids)] = 1
    segment_ids[first : len(ids)] = 1
    context_mask[first : first + len(context)] = 1
    if context:
        char_offsets[first : first + len(context)] = offsets[begin:stop]
    return token_ids, segment_ids, padding_mask, context_mask, char_offsets


def _window_answer(offsets, begin, stop, char_start, char_end):
    """The answer's first and last token in `offsets[begin:stop]`, by
    Hugging Face `run_qa.py`'s rule: the window holds the answer when its
    first token starts at or before `char_start` and its last ends at or
    after `char_end`; the answer starts at the last token starting at or
    before `char_start` and ends at the first ending at or after
    `char_end`. `None` when the window does not hold it."""
    if stop <= begin:
        return None
    if not (offsets[begin][0] <= char_start and offsets[stop - 1][1] >= char_end):
        return None
    start = begin
    while start < stop and offsets[start][0] <= char_start:
        start += 1
    end = stop - 1
    while end >= begin and offsets[end][1] >= char_end:
        end -= 1
    return start - 1, end + 1
