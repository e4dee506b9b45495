"""Reading a JSON file a user named, with errors that name the file.

`json.load` alone reports "Expecting value: line 1 column 1 (char 0)": not
which file, nor what it should have held. `load_json` names both.
"""

import json
import os


def load_json(path, expected):
    """The parsed JSON of the file at `path`.

    Args:
        path: a file path.
        expected: what the file should hold, for the message, e.g.
            "a COCO file: an object with 'images', 'annotations' and
            'categories'".

    Returns:
        The parsed value.

    Raises:
        ValueError: a missing or unreadable file, text that is not UTF-8,
            or text that is not JSON, each naming the file and `expected`.

    Example:
    >>> load_json("missing.json", "an object of option names to values")
    Traceback (most recent call last):
    ...
    ValueError: Cannot read 'missing.json' (No such file or directory). Expected an object of option names to values.
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8-sig") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{path!r} is not valid JSON ({e.msg} at line {e.lineno}, column "
            f"{e.colno}). Expected {expected}."
        ) from None
    except UnicodeDecodeError as e:
        raise ValueError(
            f"{path!r} is not UTF-8 text ({e.reason} at byte {e.start}). "
            f"Expected {expected}."
        ) from None
    except OSError as e:
        raise ValueError(
            f"Cannot read {path!r} ({e.strerror or e}). Expected {expected}."
        ) from None
