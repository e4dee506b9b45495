"""Failed weight downloads as one clear `ValueError`.

Default backbones come from the network: `keras.applications` fetches
ImageNet weights with `keras.utils.get_file`, KerasHub presets come from
Kaggle or the Hugging Face Hub. Offline, each fails deep inside its library
with a long traceback (`URL fetch failure ...`, `requests` connection
errors). `offline_error` turns such a failure into one sentence naming what
could not be downloaded and what works offline; any other error is left
as it was raised.
"""

import socket
import urllib.error

# Libraries whose exceptions mean "the network did not answer".
_NETWORK_MODULES = ("requests.", "urllib3.", "kagglehub.", "huggingface_hub.")


def is_download_failure(error):
    """Whether `error`, or an error it was raised from, is a failed
    connection (no network, no DNS, a refused or timed-out request).

    Args:
        error: an exception.

    Returns:
        A bool.
    """
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (urllib.error.URLError, ConnectionError,
                              TimeoutError, socket.gaierror, socket.timeout)):
            return True
        module = type(error).__module__ + "."
        if isinstance(error, OSError) and module.startswith(_NETWORK_MODULES):
            return True
        error = error.__cause__ or error.__context__
    return False


def offline_error(what, error, choices):
    """The one-line `ValueError` for a failed download.

    Args:
        what: what could not be downloaded, e.g. "the ImageNet weights of
            'efficientnetb0' (efficientnetb0_notop.h5)".
        error: the failure, for its reason.
        choices: the sentence naming what works offline.

    Returns:
        A `ValueError` (raise it `from None`: the traceback is the noise).

    Example:
    >>> offline_error("x.h5", OSError("no network"), "Pass weights=none.")
    ValueError('Could not download x.h5 (no network: OSError). Pass weights=none.')
    """
    reason = _reason(error)
    return ValueError(f"Could not download {what} ({reason}). {choices}")


def _reason(error):
    """The innermost error's message, on one short line."""
    innermost, seen = error, set()
    while innermost is not None and id(innermost) not in seen:
        seen.add(id(innermost))
        inner = innermost.__cause__ or innermost.__context__
        if inner is None:
            break
        innermost = inner
    text = " ".join(str(innermost).split()) or type(innermost).__name__
    if len(text) > 120:
        text = text[:117] + "..."
    return f"{text}: {type(innermost).__name__}"


def from_preset(cls, source, **kwargs):
    """`cls.from_preset(source, **kwargs)`, a failed download raised as
    one `ValueError` naming the preset and the offline choices.

    Args:
        cls: a KerasHub class with `from_preset` (a task, backbone,
            preprocessor or tokenizer).
        source: a preset name or handle.
        **kwargs: passed to `from_preset`.

    Returns:
        What `from_preset` returns.
    """
    try:
        return cls.from_preset(source, **kwargs)
    except Exception as e:  # noqa: BLE001 (re-raised unless a download)
        if not is_download_failure(e):
            raise
        raise offline_error(
            f"the KerasHub preset {source!r}", e,
            "Offline, pass `backbone` a local folder: a Hugging Face "
            "checkpoint (config.json, model.safetensors, tokenizer files) or "
            "a KerasHub preset saved with save_to_preset.",
        ) from None
