"""Missing optional requirements skip locally and fail under CI=true."""

import pytest

from tests import _required


def test_missing_module_skips_locally(monkeypatch):
    monkeypatch.setattr(_required, "CI", False)
    with pytest.raises(pytest.skip.Exception, match="not_a_module_xyz"):
        _required.import_required("not_a_module_xyz", "pip install it")


def test_missing_module_fails_under_ci(monkeypatch):
    monkeypatch.setattr(_required, "CI", True)
    with pytest.raises(pytest.fail.Exception, match="required when CI=true"):
        _required.import_required("not_a_module_xyz", "pip install it")
    with pytest.raises(pytest.fail.Exception, match="two logical CPU"):
        _required.missing_requirement("two logical CPU devices could not be configured")


def test_present_module_is_returned():
    assert _required.import_required("json", "stdlib").dumps([]) == "[]"
