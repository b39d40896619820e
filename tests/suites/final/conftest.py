"""The final suite also reads production, to compare the mirror's carried-over state with it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipeline import config
from pipeline.chain import Chain

from ..conftest import Target, connect
from ..helpers import fork_point


@pytest.fixture(scope="session")
def production(target: Target) -> Iterator[Chain]:
    network = config.network(target.env, "production")
    if network.endpoint == target.endpoint:
        pytest.fail("the final suite runs on the mirror of production (lts), not on production")
    with connect(target, network.endpoint) as chain:
        yield chain


@pytest.fixture(scope="session")
def forked_at(chain: Chain, production: Chain) -> str:
    """Hash of the production block the mirror was forked at: the state it carried over."""
    return fork_point(chain, production)[1]
