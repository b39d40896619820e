"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.runtimes import runtime_wasm


@pytest.fixture(scope="session")
def upgrade_wasms() -> tuple[Path, Path]:
    """(production, candidate): the committed spec 100 release and HEAD's spec 101 build."""
    return runtime_wasm(100), runtime_wasm(101)


# Fixtures that build HEAD's runtime in the builder (a cache hit after the first time).
BUILDS_THE_CANDIDATE = frozenset({"upgrade_wasms", "candidate", "bad_input", "candidate_hash"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that need the candidate build need Docker: mark them, so `-m 'not docker'` is
    honest."""
    for item in items:
        if BUILDS_THE_CANDIDATE & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.docker)
