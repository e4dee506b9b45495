"""Extractive QA data: a SQuAD-format reader, features with answer token
positions, and span decoding back to text.

`read_squad` reads SQuAD v1.1/v2.0 JSON; `squad_features` tokenizes
`[CLS] question [SEP] context [SEP]` with the backbone's own WordPiece
tokenizer and locates the answer's first and last token through per-token
character offsets (computed by re-tokenizing the context word by word, since
KerasHub tokenizers return no offsets); `decode_spans` picks the best span
`start <= end < start + max_answer_length` inside the context.
"""

import dataclasses
import json
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
        truncated: number of answers that fell outside the window.
    """

    inputs: dict
    labels: dict
    context_mask: np.ndarray
    offsets: np.ndarray
    contexts: list
    truncated: int


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
    with open(os.fspath(path), encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict) or "data" not in data:
        raise ValueError(
            f"{path!r} is not SQuAD format: expected a top-level 'data' list."
        )
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


def squad_features(examples, tokenizer, sequence_length=None):
    """Tokenizes examples and finds the answer's token start/end positions.

    The question is cut to half the window at most; the context fills the
    rest (no sliding window: answers past the window get label 0, counted
    in `truncated`).

    Args:
        examples: `SquadExample`s.
        tokenizer: a kerasft text `Backbone`, its `.tokenizer`
            (a KerasHub BERT preprocessor) or a KerasHub `BertTokenizer`.
        sequence_length: window length; defaults to the preprocessor's.

    Returns:
        `SquadFeatures`.

    Example:
    ```python
    features = squad_features(examples, backbone)
    model.fit(features.inputs, features.labels, epochs=2)
    ```
    """
    word_tokenizer, sequence_length = _word_tokenizer(tokenizer, sequence_length)
    if sequence_length < 8:
        raise ValueError(
            f"`sequence_length` must be >= 8. Received: {sequence_length}"
        )
    cls_id = word_tokenizer.token_to_id("[CLS]")
    sep_id = word_tokenizer.token_to_id("[SEP]")
    pad_id = word_tokenizer.token_to_id("[PAD]")
    n = len(examples)
    token_ids = np.full((n, sequence_length), pad_id, dtype="int32")
    segment_ids = np.zeros((n, sequence_length), dtype="int32")
    padding_mask = np.zeros((n, sequence_length), dtype="int32")
    context_mask = np.zeros((n, sequence_length), dtype="int32")
    offsets = np.full((n, sequence_length, 2), -1, dtype="int32")
    starts = np.zeros((n,), dtype="int32")
    ends = np.zeros((n,), dtype="int32")
    truncated = 0
    for i, ex in enumerate(examples):
        question = _ids(word_tokenizer, ex.question)
        question = question[: (sequence_length - 3) // 2]
        context_tokens, context_offsets = token_offsets(word_tokenizer, ex.context)
        room = sequence_length - 3 - len(question)
        context_tokens = context_tokens[:room]
        context_offsets = context_offsets[:room]
        ids = [cls_id] + question + [sep_id] + context_tokens + [sep_id]
        first = len(question) + 2
        token_ids[i, : len(ids)] = ids
        padding_mask[i, : len(ids)] = 1
        segment_ids[i, first : len(ids)] = 1
        context_mask[i, first : first + len(context_tokens)] = 1
        if context_offsets:
            offsets[i, first : first + len(context_tokens)] = context_offsets
        if ex.answer_start < 0:
            continue
        span = _answer_tokens(
            context_offsets, ex.answer_start, ex.answer_start + len(ex.answer_text)
        )
        if span is None:
            truncated += 1
            continue
        starts[i], ends[i] = span[0] + first, span[1] + first
    inputs = {
        "token_ids": token_ids,
        "segment_ids": segment_ids,
        "padding_mask": padding_mask,
    }
    labels = {"start_logits": starts, "end_logits": ends}
    return SquadFeatures(
        inputs, labels, context_mask, offsets, [e.context for e in examples], truncated
    )


def token_offsets(word_tokenizer, text):
    """WordPiece ids of `text` and each token's `(start, end)` char span.

    BERT tokenization never crosses whitespace, so each whitespace-separated
    word is tokenized on its own; inside a word, each token's characters are
    found by walking the word normalized as the tokenizer does (lowercase,
    accents stripped), keeping a map back to the original characters.

    Args:
        word_tokenizer: a KerasHub `WordPieceTokenizer` (e.g. `BertTokenizer`).
        text: a string.

    Returns:
        `(ids, offsets)`: lists of equal length.

    Example:
    ```python
    ids, offsets = token_offsets(backbone.tokenizer.tokenizer, "Hello, world")
    ```
    """
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
    if isinstance(max_answer_length, bool) or not isinstance(max_answer_length, int) or max_answer_length < 1:
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
    scores = np.where(allowed, scores, -np.inf)
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


def _answer_tokens(offsets, char_start, char_end) -> Optional[tuple]:
    """First and last token overlapping `[char_start, char_end)`, or None."""
    first = last = None
    for k, (s, e) in enumerate(offsets):
        if e > char_start and s < char_end:
            if first is None:
                first = k
            last = k
    if first is None:
        return None
    # An answer running past the window is cut off.
    if offsets[-1][1] < char_end:
        return None
    return first, last
