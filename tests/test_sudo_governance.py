"""Governance by what the chain has, on real chopsticks chains running the example runtime
(spec 100 -> the candidate, 101): production upgraded by sudo, refused on a real chain without
a confirmation naming the code, and one line naming what production lacks for a governance.

The chain and project fixtures are test_governance's: a fresh chain per test on a free port.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from substrateinterface import Keypair
from test_governance import ALICE, Net, chain_project, live, net
from test_release_e2e import (
    candidate_hash,
    chain_events,
    invoke,
    make_clone,
    production_up,
    stop_networks,
)

from pipeline import deploy, ledger
from pipeline.chain import Chain
from pipeline.config import Environment, load_environment
from pipeline.errors import PipelineError
from pipeline.release import check_governance

__all__ = ["candidate_hash", "chain_project", "net"]  # the fixtures, used here by name
# Each chain test has a fresh chain of its own: workers take them one by one.
pytestmark = pytest.mark.independent

# A real (non-dev) key: what a non-local environment's sudo key looks like, but not this chain's.
OUTSIDER = Keypair.create_from_seed("0x" + "42" * 32)
OUTSIDER_VAR = "SUDO_GOVERNANCE_TEST_KEY"

SUDO_ENV = """\
local = {local}
governance = "sudo"
inclusion_timeout = 60.0

[networks.production]
{production}

[networks.lts]
kind = "endpoint"
endpoint = "ws://127.0.0.1:1"

[networks.reckless]
kind = "endpoint"
endpoint = "ws://127.0.0.1:2"

[sudo]
{key}
{council}
"""


def sudo_env(
    net: Net, name: str, *, local: bool = True, key: str = 'dev = "//Alice"', council: str = ""
) -> Environment:
    production = (  # a local chopsticks chain makes its blocks on demand
        f'kind = "chopsticks-genesis"\nport = {net.net.port}'
        if local
        else f'kind = "endpoint"\nendpoint = "{net.endpoint}"'
    )
    text = SUDO_ENV.format(
        local=str(local).lower(), production=production, key=key, council=council
    )
    (net.root / "environments").mkdir(exist_ok=True)
    (net.root / "environments" / f"{name}.toml").write_text(text)
    return load_environment(name, net.root)


@pytest.mark.chain
def test_production_upgraded_by_sudo_is_journaled_checked_and_done_once(
    net: Net, tmp_path: Path
) -> None:
    env = sudo_env(net, "solo")
    candidate = net.candidate()
    with net.chain() as chain:
        check_governance(env, chain)  # the example runtime has Sudo
    with ledger.open_ledger(tmp_path, "solo-101", create={"env": "solo"}) as journal:
        result = deploy.deploy(env, "production", candidate, recorder=journal, stage="enact")
        assert (result.skipped, result.spec_before, result.spec_after) == (False, 100, 101)
        assert live(net) == (candidate.code_hash, 101)
        again = deploy.deploy(env, "production", candidate, recorder=journal, stage="enact")
        assert again.skipped  # the chain has it: nothing is submitted twice
        intents = list(journal.state.intents.values())
    assert [(i.stage, i.signer, i.call.split("(")[0]) for i in intents] == [
        ("enact", ALICE.ss58_address, "Sudo.sudo_unchecked_weight")
    ]
    assert intents[0].result is not None and intents[0].result["success"] is True


@pytest.mark.chain
def test_real_production_needs_the_confirmed_hash_and_nothing_is_submitted_without(
    net: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(OUTSIDER_VAR, "0x" + "42" * 32)
    env = sudo_env(net, "live", local=False, key=f'env = "{OUTSIDER_VAR}"')
    candidate = net.candidate()
    with net.chain() as chain:
        nonce = chain.nonce(OUTSIDER.ss58_address)
        head = chain.block_number()
    with pytest.raises(PipelineError) as unconfirmed:
        deploy.deploy(env, "production", candidate)
    assert str(unconfirmed.value) == (
        "production is production, upgraded by sudo: its upgrade needs an explicit "
        f"confirmation: rerun confirming {candidate.code_hash} (--confirm-hash)"
    )
    with pytest.raises(PipelineError, match=r"the confirmation names 0x4242.* but the candidate"):
        deploy.deploy(env, "production", candidate, confirm_hash="0x" + "42" * 32)
    # confirmed: it goes on to the chain's own checks, which refuse a key that is not its sudo
    with pytest.raises(PipelineError, match=r"is not the chain's sudo key"):
        deploy.deploy(env, "production", candidate, confirm_hash=candidate.code_hash)
    with net.chain() as chain:
        assert chain.nonce(OUTSIDER.ss58_address) == nonce and chain.block_number() == head
    assert live(net) == (net.production_hash, 100)


@pytest.mark.chain
def test_a_governance_the_chain_lacks_is_one_line(net: Net) -> None:
    council = (
        '[council]\nmember_key = { dev = "//Alice" }\ncollective = "Senate"\n'
        'root_dispatch = "CouncilRoot.dispatch_as_root"\n'
    )
    sudo_env(net, "senate", council=council)
    path = net.root / "environments" / "senate.toml"
    path.write_text(path.read_text().replace('"sudo"', '"collective"', 1))
    env = load_environment("senate", net.root)
    with net.chain() as chain, pytest.raises(PipelineError) as info:
        check_governance(env, chain)
    message = str(info.value)
    assert message.startswith(
        f"production ({net.endpoint}) has no pallet Senate (council.collective): name its own in"
        " [council] (pallets: "
    )
    assert message.endswith('; or, as it has Sudo, governance = "sudo" (environment senate)')
    assert "\n" not in message


@pytest.mark.docker
@pytest.mark.chain
def test_release_under_sudo_governance_has_no_motion_and_upgrades_once(
    tmp_path: Path, candidate_hash: str
) -> None:
    """The whole release, as a user runs it, with an environment that has no [council]: propose
    and track say there is nothing to vote on, enact is a journaled sudo upgrade; killed right
    after that upgrade was broadcast, the resumed release does not submit it again."""
    clone, production = make_clone(
        tmp_path, release="e2e-sudo", first_deadline="2026-12-01T12:00:00+00:00"
    )
    environment = clone / "environments/e2e.toml"
    local = environment.read_text().split("[council]")[0]
    environment.write_text(local.replace("local = true ", 'governance = "sudo"\nlocal = true ', 1))
    try:
        before = production_up(clone, production)
        killed = invoke(clone, "release", crash_at="submit:enact:after-broadcast")
        assert killed.returncode == -9, killed.stdout + killed.stderr
        done = invoke(clone, "release")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "release e2e-sudo complete" in done.stdout
        report = json.loads((clone / ".pipeline/releases/e2e-sudo/report.json").read_text())
        assert report["complete"] is True
        results = {s["stage"]: s["result"] for s in report["stages"]}
        assert results["propose"]["outcome"] == "no motion: production is upgraded by sudo"
        assert results["track"]["outcome"] == "no votes: production is upgraded by sudo"
        assert (results["enact"]["outcome"], results["enact"]["spec_version"]) == (
            "already-live",  # the killed run's upgrade went in; the resumed one found it
            101,
        )
        with Chain(f"ws://127.0.0.1:{production}") as chain:
            assert chain.code_hash() == candidate_hash
        gained = chain_events(production) - before
        assert gained[("System", "CodeUpdated")] == 1 and gained[("Sudo", "Sudid")] == 1
        assert gained[("Council", "Proposed")] == 0
    finally:
        stop_networks(clone)
