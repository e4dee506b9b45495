"""Optional test requirements: skipped locally, a failure under `CI=true`.

A CI run must not pass by skipping what it exists to check (the MiniLM
parity and fine-tuning tests, `tf.distribute` on two logical CPUs), so with
the environment variable `CI=true` a missing requirement fails the test.
"""

import importlib
import os

import pytest

CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing_requirement(reason):
    """Skips the calling test (or module, when called at import), or fails
    it under `CI=true`."""
    if CI:
        pytest.fail(f"{reason} (required when CI=true)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def import_required(module_name, install):
    """Imports `module_name`; when it is missing, `missing_requirement`
    with the `install` hint (e.g. "pip install afinn")."""
    try:
        return importlib.import_module(module_name)
    except ImportError:
        missing_requirement(f"needs the `{module_name}` package: {install}")
