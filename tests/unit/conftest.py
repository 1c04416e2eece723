"""Fixtures shared by the unit tests of landing, ingestion and the raw lake."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A private pipeline home and landing folder under the test's tmp_path."""
    return Settings(home=tmp_path / "var", landing_dir=tmp_path / "landing")
