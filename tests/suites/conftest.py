"""Fixtures and markers shared by the example runtime's chain suites.

`pipeline.suites` starts pytest with the network in environment variables; keys are resolved
here through `pipeline.keys` from the environment's own settings, so no secret travels on a
command line. Accounts the tests create have fresh random secrets that live only in memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from substrateinterface import Keypair

from pipeline import devrpc, keys
from pipeline.chain import Call, Chain
from pipeline.upgrade_suite import Target as Target
from pipeline.upgrade_suite import chain as chain
from pipeline.upgrade_suite import connect as connect
from pipeline.upgrade_suite import sudo as sudo
from pipeline.upgrade_suite import target as target

# Sub-systems by marker: the release plan maps its sub-systems to these names.
MARKERS = {
    "balances": "transfers and transaction fees (pallet-balances, pallet-transaction-payment)",
    "council": "council motions (pallet-collective)",
    "notes": "the notes pallet and its stored notes",
    "sudo": "the sudo key (pallet-sudo)",
    "runtime": "the runtime as a whole: versions, runtime APIs, block production",
}
BLOCK_TIMEOUT_S = 120.0


def pytest_configure(config: pytest.Config) -> None:
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")


@pytest.fixture(scope="session")
def unit(chain: Chain) -> int:
    """One token in plancks, from the chain's own properties."""
    decimals = chain.rpc("system_properties").get("tokenDecimals", 12)
    return int(10 ** int(decimals[0] if isinstance(decimals, list) else decimals))


@pytest.fixture(scope="session")
def next_block(target: Target, chain: Chain) -> Callable[[], int]:
    """Make a block (chopsticks builds them on demand) or wait for the chain's next one."""

    def make() -> int:
        before = chain.block_number()
        if target.network.chopsticks:
            return devrpc.produce_blocks(target.endpoint, 1)
        deadline = time.monotonic() + BLOCK_TIMEOUT_S
        while (head := chain.block_number()) <= before:
            if time.monotonic() > deadline:
                pytest.fail(f"{target.endpoint} made no block in {BLOCK_TIMEOUT_S:.0f}s")
            time.sleep(1.0)
        return head

    return make


def fresh_account(target: Target) -> Keypair:
    """An account nobody has used: a random secret, kept in memory only."""
    return Keypair.create_from_mnemonic(
        Keypair.generate_mnemonic(), ss58_format=target.env.ss58_format
    )


@pytest.fixture(scope="session")
def funded(target: Target, chain: Chain, sudo: Keypair, unit: int) -> Callable[[int], Keypair]:
    """A fresh account holding `units` tokens, paid by the sudo key (which every staging
    environment has), so the tests work on any network, not only with dev accounts."""

    def make(units: int) -> Keypair:
        account = fresh_account(target)
        transfer = {"dest": account.ss58_address, "value": units * unit}
        chain.submit(Call("Balances", "transfer_keep_alive", transfer), sudo)
        return account

    return make


@pytest.fixture(scope="session")
def councillors(target: Target, chain: Chain) -> list[Keypair]:
    """Council members this suite can sign for: the dev councillors of a local environment."""
    if not target.env.local:
        pytest.skip(
            f"{target.env.name} is not local: on a real network nothing votes for anyone, so "
            "a motion cannot be carried by the suite"
        )
    members = set(chain.query("Council", "Members"))
    dev = [keys.dev_keypair(target.env, name) for name in keys.DEV_ACCOUNTS]
    found = [key for key in dev if key.ss58_address in members]
    if len(found) < 2:
        pytest.fail(f"the council has {len(found)} dev member(s); a motion needs at least two")
    return found
