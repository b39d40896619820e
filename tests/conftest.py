"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.runtimes import runtime_wasm


@pytest.fixture(scope="session")
def upgrade_wasms() -> tuple[Path, Path]:
    """(production, candidate): the committed spec 100 release and HEAD's spec 101 build."""
    return runtime_wasm(100), runtime_wasm(101)
