"""Token classification (NER) data: CoNLL files, JSON lines, WordPiece labels.

`read_token_tags` reads sentences with one tag per word from a
CoNLL-2003-style file (`token ... tag` per line, a blank line between
sentences, `-DOCSTART-` lines skipped), JSON lines of `{"tokens": [...],
"tags": [...]}`, or Python `(sentences, tags)` lists. `token_features`
tokenizes each word with the backbone's WordPiece tokenizer and aligns the
tags to sub-tokens: the first piece of a word carries its tag and the other
pieces are ignored by the loss (`ignore_index`), as in Hugging Face's
`run_ner.py`; `label_all_tokens=True` labels every piece instead.
`word_tags` maps per-token logits back to one tag per word.
"""

import dataclasses
import json
import os
from typing import Optional

import numpy as np

IGNORE_INDEX = -100


@dataclasses.dataclass(frozen=True)
class TokenTagData:
    """Sentences of words with one tag per word.

    Args:
        sentences: a list of sentences, each a list of word strings.
        tags: a list of tag lists (same lengths), or `None` when unlabelled.
    """

    sentences: list
    tags: Optional[list] = None

    def __len__(self):
        return len(self.sentences)


@dataclasses.dataclass(frozen=True)
class TokenFeatures:
    """Model inputs and labels from `token_features`.

    Args:
        inputs: `{"token_ids", "segment_ids", "padding_mask"}` int32 arrays
            `(n, sequence_length)`.
        labels: `(n, sequence_length)` int32 tag ids, `ignore_index` on
            special tokens, padding and (by default) non-first pieces;
            `None` without tags.
        word_ids: `(n, sequence_length)` index of the word each token
            belongs to, `-1` on special tokens and padding.
        truncated_words: words cut off by `sequence_length` (their first
            piece did not fit); `word_tags` predicts `"O"` for them.
    """

    inputs: dict
    labels: Optional[np.ndarray]
    word_ids: np.ndarray
    truncated_words: int


def read_conll(path, tag_column=-1):
    """Reads a CoNLL-2003-style file into `TokenTagData`.

    Args:
        path: a text file: one `token [other columns] tag` line per word,
            blank lines between sentences; `-DOCSTART-` lines are skipped.
        tag_column: column of the tag. Defaults to `-1` (the last).

    Returns:
        `TokenTagData`.

    Example:
    ```python
    data = kerasft.data.read_conll("eng.train")
    data.sentences[0], data.tags[0]
    ```
    """
    sentences, tags = [], []
    words, labels = [], []
    with open(os.fspath(path), encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            columns = line.split()
            if not columns or columns[0] == "-DOCSTART-":
                if words:
                    sentences.append(words)
                    tags.append(labels)
                words, labels = [], []
                continue
            if len(columns) < 2:
                raise ValueError(
                    f"{path}:{number}: expected 'token ... tag', got "
                    f"{line.strip()!r} (one column)."
                )
            try:
                tag = columns[tag_column]
            except IndexError:
                raise ValueError(
                    f"{path}:{number}: no column {tag_column} in "
                    f"{line.strip()!r}."
                ) from None
            words.append(columns[0])
            labels.append(tag)
    if words:
        sentences.append(words)
        tags.append(labels)
    if not sentences:
        raise ValueError(f"{path!r} holds no sentences.")
    return TokenTagData(sentences, tags)


def read_token_jsonl(path):
    """Reads JSON lines of `{"tokens": [...], "tags": [...]}`.

    A file holding one JSON array of such objects works too. `"ner_tags"`
    is accepted for `"tags"`; lines without tags make unlabelled data
    (every line or none must have them).

    Example:
    ```python
    data = kerasft.data.read_token_jsonl("train.jsonl")
    ```
    """
    sentences, tags = [], []
    for number, row in _json_rows(path):
        if not isinstance(row, dict) or "tokens" not in row:
            raise ValueError(
                f"{path}:{number}: expected an object with 'tokens' and 'tags'."
            )
        sentences.append(row["tokens"])
        tags.append(row.get("tags", row.get("ner_tags")))
    if not sentences:
        raise ValueError(f"{path!r} holds no sentences.")
    labelled = [t is not None for t in tags]
    if any(labelled) and not all(labelled):
        raise ValueError(
            f"{path}: sentence {labelled.index(False)} has no 'tags' while "
            "others do."
        )
    return check_token_tags(sentences, tags if all(labelled) else None, str(path))


def read_token_tags(value, tag_column=-1):
    """`TokenTagData` from a CoNLL file, a `.jsonl`/`.json` file of JSON
    lines, `(sentences, tags)` lists, or `TokenTagData` itself."""
    if isinstance(value, TokenTagData):
        return check_token_tags(value.sentences, value.tags)
    if isinstance(value, (str, os.PathLike)):
        path = os.fspath(value)
        if not os.path.exists(path):
            raise ValueError(f"Token data file {path!r} does not exist.")
        if path.endswith((".jsonl", ".json")):
            return read_token_jsonl(path)
        data = read_conll(path, tag_column)
        return check_token_tags(data.sentences, data.tags, path)
    if isinstance(value, tuple) and len(value) == 2:
        return check_token_tags(list(value[0]), list(value[1]))
    raise TypeError(
        "Token data must be a CoNLL or JSON-lines path, (sentences, tags) "
        f"lists or TokenTagData. Received: {type(value).__name__}"
    )


def check_token_tags(sentences, tags=None, where="data"):
    """Validated `TokenTagData`: non-empty sentences of strings, one tag per
    word."""
    sentences = [list(s) if not isinstance(s, str) else s for s in sentences]
    for n, words in enumerate(sentences):
        if isinstance(words, str):
            raise TypeError(
                f"{where}: sentence {n} is a string; give a list of words "
                f"(e.g. {words.split()[:3]!r})."
            )
        if not words:
            raise ValueError(f"{where}: sentence {n} is empty.")
        if not all(isinstance(w, str) and w.strip() for w in words):
            raise ValueError(
                f"{where}: sentence {n} holds an empty or non-string word: "
                f"{words!r}"
            )
    if tags is None:
        return TokenTagData(sentences, None)
    tags = [list(t) for t in tags]
    if len(tags) != len(sentences):
        raise ValueError(
            f"{where}: {len(sentences)} sentences but {len(tags)} tag lists."
        )
    for n, (words, labels) in enumerate(zip(sentences, tags)):
        if len(words) != len(labels):
            raise ValueError(
                f"{where}: sentence {n} has {len(words)} words but "
                f"{len(labels)} tags: {words[:5]!r}..."
            )
        if not all(isinstance(t, str) for t in labels):
            raise TypeError(
                f"{where}: sentence {n}: tags must be strings (e.g. 'B-PER'). "
                f"Received: {labels[:5]!r}"
            )
    return TokenTagData(sentences, tags)


def label_list(tag_sequences):
    """The tag set: `"O"` first when present, then the others sorted."""
    found = {t for tags in tag_sequences for t in tags}
    return (["O"] if "O" in found else []) + sorted(found - {"O"})


def encode_tags(tag_sequences, labels, where="data"):
    """Tag strings -> id lists; unknown tags are an error naming them."""
    index = {t: i for i, t in enumerate(labels)}
    unknown = sorted({t for tags in tag_sequences for t in tags} - set(index))
    if unknown:
        raise ValueError(
            f"{where}: tags {unknown} are not in the label set {list(labels)}."
            " Pass `labels` with every tag, or fix the data."
        )
    return [[index[t] for t in tags] for tags in tag_sequences]


def token_features(
    sentences,
    tokenizer,
    sequence_length=None,
    tags=None,
    label_all_tokens=False,
    labels=None,
    ignore_index=IGNORE_INDEX,
):
    """`[CLS] word pieces [SEP]` windows with tags aligned to the pieces.

    Args:
        sentences: lists of words.
        tokenizer: a kerasft text `Backbone`, its `.tokenizer` or a KerasHub
            WordPiece tokenizer (with `sequence_length`).
        sequence_length: tokens per sentence; defaults to the preprocessor's.
        tags: per-word tag ids (ints), or `None`.
        label_all_tokens: label every piece of a word (a `B-X` word's later
            pieces get `I-X`, which needs `labels`); else only the first.
            Defaults to `False`.
        labels: the tag names, indexed by id (for `label_all_tokens`).
        ignore_index: label of positions the loss skips. Defaults to `-100`.

    Returns:
        `TokenFeatures`.

    Example:
    ```python
    features = token_features([["John", "lives", "in", "Paris"]], backbone,
                              tags=[[1, 0, 0, 3]])
    ```
    """
    from kerasft.data.squad import _word_tokenizer

    word_tokenizer, sequence_length = _word_tokenizer(tokenizer, sequence_length)
    if label_all_tokens and labels is None:
        raise ValueError("`label_all_tokens=True` needs `labels` (tag names).")
    inside = _inside_ids(labels) if label_all_tokens else {}
    pieces = _word_pieces(word_tokenizer, sentences)
    cls_id, sep_id, pad_id = (
        word_tokenizer.token_to_id(t) for t in ("[CLS]", "[SEP]", "[PAD]")
    )
    n = len(sentences)
    token_ids = np.full((n, sequence_length), pad_id, "int32")
    padding_mask = np.zeros((n, sequence_length), "int32")
    word_ids = np.full((n, sequence_length), -1, "int32")
    label_ids = np.full((n, sequence_length), ignore_index, "int32")
    truncated = 0
    room = sequence_length - 2
    for i, words in enumerate(sentences):
        ids, owners, first = [cls_id], [-1], []
        for w, word in enumerate(words):
            word_pieces = pieces[word]
            if len(ids) - 1 >= room:
                truncated += len(words) - w
                break
            first.append(len(ids))
            for k, piece in enumerate(word_pieces[: room - (len(ids) - 1)]):
                ids.append(piece)
                owners.append(w)
                if tags is not None:
                    tag = tags[i][w]
                    if k == 0:
                        label_ids[i, len(ids) - 1] = tag
                    elif label_all_tokens:
                        label_ids[i, len(ids) - 1] = inside.get(tag, tag)
        ids.append(sep_id)
        owners.append(-1)
        token_ids[i, : len(ids)] = ids
        padding_mask[i, : len(ids)] = 1
        word_ids[i, : len(owners)] = owners
    inputs = {
        "token_ids": token_ids,
        "segment_ids": np.zeros_like(token_ids),
        "padding_mask": padding_mask,
    }
    return TokenFeatures(
        inputs, label_ids if tags is not None else None, word_ids, truncated
    )


def word_tags(features, logits, sentences, labels, outside="O"):
    """One predicted tag per word: the argmax at the word's first piece.

    Words cut off by `sequence_length` get `outside`.

    Args:
        features: the `TokenFeatures` the logits were computed on.
        logits: `(n, sequence_length, num_labels)` model outputs.
        sentences: the sentences (lists of words).
        labels: tag names indexed by id.
        outside: the tag of truncated words. Defaults to `"O"`.

    Returns:
        A list of tag lists, one per sentence.
    """
    predicted = np.asarray(logits).argmax(axis=-1)
    out = []
    for i, words in enumerate(sentences):
        tags = [outside] * len(words)
        seen = set()
        for position, w in enumerate(features.word_ids[i]):
            if w >= 0 and w not in seen:
                seen.add(w)
                tags[w] = labels[int(predicted[i, position])]
        out.append(tags)
    return out


def write_conll(path, sentences, gold, predicted):
    """Writes `word gold predicted` lines, a blank line between sentences
    (the layout `conlleval` reads); `gold` may be `None`."""
    with open(os.fspath(path), "w", encoding="utf-8") as f:
        for n, words in enumerate(sentences):
            for k, word in enumerate(words):
                columns = [word] + ([gold[n][k]] if gold is not None else [])
                f.write(" ".join(columns + [predicted[n][k]]) + "\n")
            f.write("\n")


# === Helpers ===


def _json_rows(path):
    """`(line number, object)` of a JSON-lines file or a JSON array file."""
    with open(os.fspath(path), encoding="utf-8") as f:
        text = f.read()
    if text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not JSON: {e}") from None
        return list(enumerate(rows, 1))
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append((number, json.loads(line)))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{number}: not JSON: {e}") from None
    return out


def _word_pieces(word_tokenizer, sentences):
    """`{word: piece ids}` for every distinct word, in one tokenizer call."""
    words = sorted({w for s in sentences for w in s})
    unk = word_tokenizer.token_to_id(getattr(word_tokenizer, "oov_token", "[UNK]"))
    out = {}
    if not words:
        return out
    for word, ids in zip(words, word_tokenizer(words)):
        ids = [int(t) for t in np.asarray(ids)]
        out[word] = ids or [unk]  # e.g. a lone control character
    return out


def _inside_ids(labels):
    """`{id of B-X: id of I-X}` for the tags that have both."""
    if labels is None:
        return {}
    index = {t: i for i, t in enumerate(labels)}
    return {
        i: index["I-" + t[2:]]
        for t, i in index.items()
        if t.startswith("B-") and "I-" + t[2:] in index
    }
