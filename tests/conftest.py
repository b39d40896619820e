"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.runtimes import runtime_wasm

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def upgrade_wasms() -> tuple[Path, Path]:
    """(production, candidate): the committed spec 100 release and HEAD's spec 101 build."""
    return runtime_wasm(100), runtime_wasm(101)


@pytest.fixture(scope="session")
def node_binary_for_networks() -> Path:
    """The node binary networks of real nodes run: built once per machine (about 16 minutes
    cold, beside the other tests), found in the cache after."""
    from pipeline import nodebuild
    from pipeline.project import load_project

    return nodebuild.binary_for_networks(load_project(REPO))


# Fixtures that build HEAD's runtime in the builder (a cache hit after the first time).
BUILDS_THE_CANDIDATE = frozenset({"upgrade_wasms", "candidate", "bad_input", "candidate_hash"})


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that need the candidate build need Docker: mark them, so `-m 'not docker'` is
    honest. On workers (`--dist loadgroup`) a file is one group unless its tests name their
    own: a file's tests share its module's networks. Tests on real nodes go first: they mostly
    wait for real blocks (and, on a fresh machine, for the node build), so on workers of their
    own they overlap the rest."""
    for item in items:
        if BUILDS_THE_CANDIDATE & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.docker)
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.path.name))
    items.sort(key=lambda item: item.get_closest_marker("nodes") is None)  # stable
