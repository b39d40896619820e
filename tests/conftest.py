"""Shared fixtures."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from fixtures.runtimes import candidate_build, runtime_wasm

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


@pytest.fixture(scope="session")
def candidate_built() -> None:
    """HEAD's runtime in the machine's build cache before a test runs the pipeline in a
    subprocess with a time limit: there it is a cache hit, where a fresh machine's cold build
    (ten minutes or more beside the other workers) would spend the limit and fail the test."""
    candidate_build()


# Fixtures that build HEAD's runtime in the builder (a cache hit after the first time).
BUILDS_THE_CANDIDATE = frozenset(
    {"upgrade_wasms", "candidate", "bad_input", "candidate_hash", "candidate_built"}
)


def group_of(item: pytest.Item) -> str:
    """The item's xdist group; a test of no group is a unit of its own."""
    mark = item.get_closest_marker("xdist_group")
    if mark is None:
        return item.nodeid
    return str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))


def starts_something(item: pytest.Item) -> bool:
    """Starts networks or builds: seconds to minutes, where a unit test takes milliseconds."""
    return any(item.get_closest_marker(name) for name in ("nodes", "chain", "docker"))


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that need the candidate build need Docker: mark them, so `-m 'not docker'` is
    honest.

    On workers (`--dist loadgroup --no-loadscope-reorder`) a file is one group unless its tests
    name their own or are `independent` (each a unit of its own, so a long file spreads over the
    workers): a file's tests share its module's networks. The units go out longest first, so
    the short ones fill the gaps at the end: tests on real nodes (they mostly wait for real
    blocks and, on a fresh machine, for the node build, so on workers of their own they overlap
    the rest), then whole releases run as a user runs them (`*_e2e` files), then the groups
    with the most tests that start something, then unit tests."""
    for item in items:
        if BUILDS_THE_CANDIDATE & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.docker)
        no_group = item.get_closest_marker("xdist_group") is None
        if no_group and item.get_closest_marker("independent") is None:
            item.add_marker(pytest.mark.xdist_group(item.path.name))
    heavy = Counter(group_of(item) for item in items if starts_something(item))
    items.sort(  # stable: a group's tests keep their order
        key=lambda item: (
            item.get_closest_marker("nodes") is None,
            not item.path.stem.endswith("_e2e"),
            not starts_something(item),
            -heavy[group_of(item)],
        )
    )
