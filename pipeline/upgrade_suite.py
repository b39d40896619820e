"""The generic upgrade checks every FRAME runtime passes, as a pytest module a chain suite imports
(`from pipeline.upgrade_suite import *`): the network runs the release's artifact (`:code`, spec)
with every pallet at its in-code storage version, blocks continue, a signed transfer works, and
the chain's metadata and events decode.

`pipeline.suites` runs a suite with the network, the environment and the artifact in environment
variables; the fixtures here read them, and a repo's own tests beside these use them too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from substrateinterface import Keypair

from pipeline import config, diff, keys, metadata, suites, upgrade
from pipeline.artifact import RuntimeBlob
from pipeline.chain import Call, Chain
from pipeline.config import Environment, Network
from pipeline.metadata_reader import read_metadata
from pipeline.project import load_project

__all__ = [
    "Target",
    "artifact",
    "chain",
    "connect",
    "sudo",
    "target",
    "test_blocks_continue_on_the_new_code",
    "test_code_and_version_are_the_artifacts",
    "test_events_of_recent_blocks_decode",
    "test_metadata_decodes_with_the_artifacts_pallets",
    "test_pallets_are_at_their_in_code_storage_versions",
    "test_signed_transfer_is_included",
]

RECENT_BLOCKS = 5


@dataclass(frozen=True)
class Target:
    env: Environment
    network: Network
    endpoint: str
    preset: str  # the repo's genesis preset: in-code storage versions are read from it


def _variable(name: str, how: str = "run the suite with `runtime-pipeline test`") -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: {how}")
    return value


@pytest.fixture(scope="session")
def target() -> Target:
    """The network this run of the suite is pointed at, and its environment."""
    root = Path(_variable(suites.ROOT_VAR))
    env = config.load_environment(_variable(suites.ENVIRONMENT_VAR), root)
    network = config.network(env, _variable(suites.NETWORK_VAR))
    preset = load_project(root).preset
    return Target(env, network, _variable(suites.ENDPOINT_VAR), preset)


def connect(target: Target, endpoint: str) -> Chain:
    """A connection to `endpoint` with the timeouts of the suite's environment."""
    return Chain(
        endpoint, timeout=target.env.inclusion_timeout, connect_timeout=target.env.connect_timeout
    )


@pytest.fixture(scope="session")
def chain(target: Target) -> Iterator[Chain]:
    with connect(target, target.endpoint) as connection:
        yield connection


@pytest.fixture(scope="session")
def sudo(target: Target) -> Keypair:
    return keys.signer(target.env, "sudo")


@pytest.fixture(scope="session")
def artifact(target: Target) -> upgrade.Candidate:
    """The runtime the network should run: the release's build."""
    path = _variable(suites.ARTIFACT_VAR, "run it through the release, or pass --artifact")
    return upgrade.load_candidate(Path(path), target.preset)


def test_code_and_version_are_the_artifacts(chain: Chain, artifact: upgrade.Candidate) -> None:
    code = chain.code_hash()
    assert code == artifact.code_hash, f":code is {code}, the artifact {artifact.code_hash}"
    version = chain.runtime_version()
    live = (version["specName"], version["specVersion"])
    built = (artifact.blob.version.spec_name, artifact.spec_version)
    assert live == built, f"the chain runs {live}, the artifact is {built}"


def test_pallets_are_at_their_in_code_storage_versions(
    chain: Chain, artifact: upgrade.Candidate
) -> None:
    live = upgrade.check_live(chain, artifact)
    behind = [
        f"{r.pallet}: on chain {r.on_chain}, in code {r.in_code}"
        for r in live.storage_versions
        if not r.ok
    ]
    assert behind == [], f"a migration is missing or did not finish: {behind}"
    assert live.problems == (), "; ".join(live.problems)


def test_blocks_continue_on_the_new_code(target: Target, chain: Chain) -> None:
    head = chain.block_number()
    made = upgrade.next_block(chain, head, target.network.chopsticks, target.env.inclusion_timeout)
    assert made > head, f"no block after #{head}"
    header = chain.rpc("chain_getHeader", [chain.block_hash(made)])
    assert header["parentHash"] == chain.block_hash(made - 1), f"#{made} is not on #{made - 1}"


def test_signed_transfer_is_included(chain: Chain, sudo: Keypair) -> None:
    if "Balances" not in metadata.chain_metadata(chain).pallet_names():
        pytest.skip("the runtime has no Balances pallet")
    deposit = int(metadata.chain_metadata(chain).constant("Balances", "ExistentialDeposit"))
    amount = max(deposit, 1) * 10
    fresh = Keypair.create_from_mnemonic(Keypair.generate_mnemonic())
    receipt = chain.submit(
        Call("Balances", "transfer_keep_alive", {"dest": fresh.ss58_address, "value": amount}),
        sudo,
    )
    assert receipt.find("System", "ExtrinsicSuccess"), f"no success in #{receipt.block_number}"
    account = chain.query("System", "Account", [fresh.ss58_address], block_hash=receipt.block_hash)
    free = account["data"]["free"]
    assert free == amount, f"the recipient holds {free}, not the {amount} sent"


def test_metadata_decodes_with_the_artifacts_pallets(
    chain: Chain, artifact: upgrade.Candidate
) -> None:
    """The chain's metadata decodes, and says what the artifact's does: pallets, then every
    call, event and storage item with its signature."""
    raw = metadata.chain_metadata_bytes(chain)
    metadata.decode_metadata(raw, f"the runtime on {chain.endpoint}")  # as queries decode it
    live = diff.summarize(RuntimeBlob.from_bytes(chain.code()), read_metadata(raw))
    built = diff.summary_of(diff.Runtime("artifact", artifact.blob, artifact.path))
    assert live.pallets == built.pallets, f"pallets on chain {live.pallets}, built {built.pallets}"
    for kind in ("call", "event", "storage"):
        differ = sorted(
            name
            for name in live.items[kind].keys() | built.items[kind].keys()
            if name not in live.items[kind]
            or name not in built.items[kind]
            or live.items[kind][name].signature != built.items[kind][name].signature
        )
        assert not differ, f"{kind}s on chain differ from the artifact's: {', '.join(differ)}"


def test_events_of_recent_blocks_decode(chain: Chain) -> None:
    head = chain.block_number()
    for number in range(max(head - RECENT_BLOCKS, 1), head + 1):
        events = chain.events(chain.block_hash(number))
        unnamed = [event for event in events if not (event.module and event.name)]
        assert not unnamed, f"block #{number}: events without pallet or name: {unnamed}"
