"""Fixtures the unit tests share."""

from __future__ import annotations

import pytest

from orchestrator.storage import get_storage, reset_storage


@pytest.fixture
def local_storage(settings, tmp_path):
    """The internal storage on a directory of the test's own."""
    settings.HARRIER_STORAGE = "local"
    settings.HARRIER_STORAGE_PATH = str(tmp_path / "storage")
    reset_storage()
    yield get_storage()
    reset_storage()
