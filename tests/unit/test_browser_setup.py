"""The browser tests' set-up: without Chromium they fail, saying what to do; they are never skipped."""

from __future__ import annotations

import pytest

from tests.browser import chromium_path


def test_without_chromium_the_browser_tests_fail_saying_how_to_install_it(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(pytest.fail.Exception, match="make install"):
        chromium_path()
