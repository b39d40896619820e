"""Council upgrades: pure decisions table by table, then every path on real chopsticks chains.

The chain tests (marker `chain`) start a fresh local network per test from the production
runtime (spec 100) on a free port in a temporary state dir, with the genesis council
//Alice //Bob //Charlie, and upgrade it to the candidate (spec 101) through the council or the
sudo fallback. The two runtimes come from the `upgrade_wasms` fixture in conftest.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from fixtures.runtime_wasm import runtime_version_bytes, runtime_wasm
from substrateinterface import Keypair

from pipeline import dossier, governance, keys, ledger, localnet, motions, proposal, upgrade
from pipeline.artifact import BuildFacts, RuntimeBlob, compress, digest, dumps_digest
from pipeline.chain import BroadcastUncertain, Chain, blake2_256_hex
from pipeline.config import Environment, load_environment
from pipeline.errors import PipelineError
from pipeline.motions import Motion, MotionStatus
from pipeline.policy import candidate_info
from pipeline.project import Project
from pipeline.proposal import source_from_motion

REPO = Path(__file__).resolve().parent.parent
# A fresh chain per test: workers take the tests one by one (the project dir with production's
# spec is made once per worker).
pytestmark = pytest.mark.independent
ALICE, BOB, CHARLIE, DAVE = (
    Keypair.create_from_uri(f"//{name}") for name in ("Alice", "Bob", "Charlie", "Dave")
)
MEMBERS = (ALICE.ss58_address, BOB.ss58_address, CHARLIE.ss58_address)
HASH = "0x" + "ab" * 32
FACTS = BuildFacts(
    package="example-runtime",
    crate_version="0.1.0",
    commit="1f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c",
    tag="v101",
    branch="main",
    dirty=False,
    rustc="rustc 1.85.0 (4d91de4e4 2025-02-17)",
    builder_image="sha256:" + "5e" * 32,
    toolchain={"rustc": "1.85.0", "cargo": "1.85.0"},
    cargo_lock_blake2_256="0x" + "11" * 32,
    source_tree="2b" * 20,
    build_options={"profile": "production", "features": []},
    base_image_source="debian:bookworm-20250203",
)


def write_artifact(artifacts_dir: Path, blob: bytes, facts: BuildFacts = FACTS) -> str:
    """An artifact directory as `invoke build` writes it; returns the code hash."""
    loaded = RuntimeBlob.from_bytes(blob)
    compressed = loaded if loaded.compressed else RuntimeBlob.from_bytes(compress(loaded.wasm))
    compact = RuntimeBlob.from_bytes(compressed.wasm)
    folder = artifacts_dir / compressed.blake2_256.removeprefix("0x")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "example_runtime.compact.wasm").write_bytes(compact.raw)
    (folder / "example_runtime.compact.compressed.wasm").write_bytes(compressed.raw)
    (folder / "digest.json").write_text(dumps_digest(digest(compact, compressed, facts)))
    return compressed.blake2_256


def project_at(root: Path) -> Project:
    return Project(root=root, runtime_path="", runtime_package="example-runtime", suites={})


# --- the source remark and the decoding of motions ----------------------------------------------
def decoded(module: str, function: str, **args: Any) -> dict[str, Any]:
    """A call as substrate-interface decodes it (ProposalOf values)."""
    return {
        "call_index": "0x0000",
        "call_module": module,
        "call_function": function,
        "call_args": [{"name": k, "type": "?", "value": v} for k, v in args.items()],
    }


DIGEST = {"commit": "abc", "tag": "v1", "builder": {"image": "sha256:1"}, "x": [1, 2]}
REMARK = proposal.source_remark(DIGEST)
SOURCE = {
    "commit": "abc",
    "tag": "v1",
    "digest": blake2_256_hex(dumps_digest(DIGEST).encode()),
    "builder_image": "sha256:1",
}


def test_source_remark_is_canonical_small_json() -> None:
    assert json.loads(REMARK) == {"runtime_source": 1, **SOURCE}
    assert " " not in REMARK and list(json.loads(REMARK)) == sorted(json.loads(REMARK))
    # key order of the digest does not matter: the same source gives the same proposal hash
    assert proposal.source_remark(dict(reversed(list(DIGEST.items())))) == REMARK
    assert proposal.source_remark({**DIGEST, "tag": None}) != REMARK


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (REMARK.encode(), SOURCE),
        (  # with the dossier the motion commits to
            proposal.source_remark(DIGEST, "0x" + "d0" * 32).encode(),
            {**SOURCE, "dossier": "0x" + "d0" * 32},
        ),
        (b"hello council", None),  # an ordinary remark
        (b'{"commit": "abc"}', None),  # JSON without our mark
        (json.dumps({"runtime_source": 2, **SOURCE}).encode(), None),  # a future format
        (json.dumps({"runtime_source": 1, "commit": "abc"}).encode(), None),  # fields missing
        (b"\xff\xfe", None),  # not UTF-8
        (b"[1, 2]", None),
    ],
)
def test_parse_source_remark(data: bytes, expected: dict[str, Any] | None) -> None:
    assert proposal.parse_source_remark(data) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0x68656c6c6f", b"hello"),  # not UTF-8 on chain: substrate-interface gives hex
        ("hello", b"hello"),  # UTF-8 on chain: substrate-interface gives the text
        ("0xzz", b"0xzz"),  # text that merely starts with 0x
        ([104, 105], b"hi"),
        (b"raw", b"raw"),
    ],
)
def test_value_bytes(value: Any, expected: bytes) -> None:
    assert proposal.value_bytes(value) == expected


CODE = b"\x52\xbc\x53\x76\x46\xdb\x8e\x05" + bytes(range(40))  # not UTF-8, like a real blob
REMARK_CALL = decoded("System", "remark", remark=REMARK)
AUTHORIZE = decoded("System", "authorize_upgrade", code_hash=HASH)
WRAPPED = decoded(
    "CouncilRoot",
    "dispatch_as_root",
    call=decoded("Utility", "batch_all", calls=[REMARK_CALL, AUTHORIZE]),
)


@pytest.mark.parametrize(
    ("proposal", "method", "code_hash"),
    [
        (WRAPPED, "authorize", HASH),
        (decoded("Utility", "batch_all", calls=[REMARK_CALL, AUTHORIZE]), "authorize", HASH),
        (
            decoded(
                "Utility",
                "batch_all",
                calls=[
                    decoded("System", "remark", remark="0x" + REMARK.encode().hex()),
                    decoded("System", "set_code", code="0x" + CODE.hex()),
                ],
            ),
            "set_code",
            blake2_256_hex(CODE),
        ),
        (  # args as a mapping, other remarks beside ours, remark_with_event
            {
                "call_module": "Utility",
                "call_function": "batch",
                "call_args": {
                    "calls": [
                        decoded("System", "remark", remark="just a note"),
                        decoded("System", "remark_with_event", remark=REMARK),
                        decoded("System", "authorize_upgrade_without_checks", code_hash=HASH),
                    ]
                },
            },
            "authorize",
            HASH,
        ),
    ],
)
def test_source_from_motion_reads_the_remark_and_the_code_hash(
    proposal: dict[str, Any], method: str, code_hash: str
) -> None:
    assert source_from_motion(proposal) == {
        **SOURCE,
        "code_hash": code_hash,
        "method": method,
    }


@pytest.mark.parametrize(
    ("proposal", "problem"),
    [
        (decoded("Utility", "batch_all", calls=[REMARK_CALL]), "holds no runtime upgrade"),
        (
            decoded("Utility", "batch_all", calls=[REMARK_CALL, AUTHORIZE, AUTHORIZE]),
            "holds 2 runtime upgrades",
        ),
        (AUTHORIZE, "carries no source remark of this pipeline"),
        (
            decoded("Utility", "batch_all", calls=[REMARK_CALL, REMARK_CALL, AUTHORIZE]),
            "several source remarks",
        ),
    ],
)
def test_source_from_motion_refuses_what_a_voter_cannot_verify(
    proposal: dict[str, Any], problem: str
) -> None:
    with pytest.raises(PipelineError, match=problem):
        source_from_motion(proposal)


# --- thresholds, motion states, scenarios -------------------------------------------------------
@pytest.mark.parametrize(
    ("configured", "members", "expected"),
    [(None, 3, 2), (None, 4, 3), (None, 5, 3), (None, 2, 2), (2, 3, 2), (3, 3, 3), (2, 10, 2)],
)
def test_effective_threshold(configured: int | None, members: int, expected: int) -> None:
    assert motions.effective_threshold(configured, members, "Council", "local") == expected


@pytest.mark.parametrize(
    ("configured", "members", "problem"),
    [
        (4, 3, "council threshold 4 is above the 3 members of Council: lower council.threshold"),
        (None, 0, "Council has no members"),
        (None, 1, "a threshold of 1 makes Council.propose execute the proposal at once"),
        (1, 3, "a threshold of 1"),
    ],
)
def test_impossible_thresholds_are_refused(
    configured: int | None, members: int, problem: str
) -> None:
    with pytest.raises(PipelineError, match=problem):
        motions.effective_threshold(configured, members, "Council", "local")


@pytest.mark.parametrize(
    ("ayes", "nays", "threshold", "members", "head", "deadline", "expected"),
    [
        (0, 0, 2, 3, 5, 20, "open"),
        (1, 1, 2, 3, 5, 20, "open"),  # 2 seats not against: the threshold is still reachable
        (2, 0, 2, 3, 5, 20, "approved"),
        (2, 1, 2, 3, 25, 20, "approved"),  # approval wins over the deadline
        (0, 2, 2, 3, 5, 20, "disapproved"),
        (0, 3, 2, 3, 5, 20, "disapproved"),
        (1, 1, 2, 3, 20, 20, "expired"),  # at the deadline block
        (0, 0, 3, 3, 5, 20, "open"),
        (0, 1, 3, 3, 5, 20, "disapproved"),  # unanimity needed, one nay
    ],
)
def test_motion_state(
    ayes: int, nays: int, threshold: int, members: int, head: int, deadline: int, expected: str
) -> None:
    state = motions.motion_state(
        ayes=ayes, nays=nays, threshold=threshold, members=members, head=head, deadline=deadline
    )
    assert state == expected


M = ("m1", "m2", "m3", "m4", "m5")


@pytest.mark.parametrize(
    ("scenario", "members", "threshold", "expected"),
    [
        ("approve", M[:3], 2, [("m1", True), ("m2", True)]),
        ("approve", M, 5, [(m, True) for m in M]),
        ("reject", M[:3], 2, [("m1", False), ("m2", False), ("m3", False)]),
        ("silent", M, 3, []),
        ("split", M[:3], 2, [("m1", True), ("m2", False)]),
        ("split", M, 4, [("m1", True), ("m2", True), ("m3", True), ("m4", False)]),
    ],
)
def test_scenario_votes(
    scenario: governance.Scenario,
    members: tuple[str, ...],
    threshold: int,
    expected: list[tuple[str, bool]],
) -> None:
    assert governance.scenario_votes(scenario, members, threshold) == expected


@pytest.mark.parametrize("threshold", [2, 3])
def test_split_leaves_the_motion_undecided_with_a_nay(threshold: int) -> None:
    votes = governance.scenario_votes("split", M[:3], threshold)
    ayes, nays = sum(v for _, v in votes), sum(not v for _, v in votes)
    state = motions.motion_state(
        ayes=ayes, nays=nays, threshold=threshold, members=3, head=1, deadline=20
    )
    assert (state, nays) == ("open" if threshold == 2 else "disapproved", 1)


def test_unknown_scenario_is_refused() -> None:
    with pytest.raises(PipelineError, match="unknown scenario 'maybe': use one of approve"):
        governance.scenario_votes("maybe", M, 2)  # type: ignore[arg-type]


def status(**overrides: Any) -> MotionStatus:
    fields: dict[str, Any] = {
        "collective": "Council",
        "index": 3,
        "proposal_hash": HASH,
        "state": "open",
        "threshold": 2,
        "ayes": (ALICE.ss58_address,),
        "nays": (),
        "members": MEMBERS,
        "head": 10,
        "end": 21,
        "deadline": 21,
        "block_time": 6.0,
    }
    return MotionStatus(**{**fields, **overrides})


@pytest.mark.parametrize(
    ("overrides", "not_voted", "closable", "blocks_left", "seconds_left"),
    [
        ({}, MEMBERS[1:], False, 11, 66.0),
        ({"state": "approved", "ayes": MEMBERS[:2]}, MEMBERS[2:], True, 11, 66.0),
        ({"state": "disapproved", "ayes": (), "nays": MEMBERS[:2]}, MEMBERS[2:], True, 11, 66.0),
        ({"state": "expired", "head": 21}, MEMBERS[1:], True, 0, 0.0),
        ({"deadline": 15, "head": 15, "state": "expired"}, MEMBERS[1:], False, 0, 0.0),
        ({"state": "closed", "ayes": (), "head": 30}, MEMBERS, False, 0, 0.0),
    ],
)
def test_motion_status_views(
    overrides: dict[str, Any],
    not_voted: tuple[str, ...],
    closable: bool,
    blocks_left: int,
    seconds_left: float,
) -> None:
    s = status(**overrides)
    assert (s.not_voted, s.closable, s.blocks_left, s.seconds_left) == (
        not_voted,
        closable,
        blocks_left,
        seconds_left,
    )
    assert s.decided == (s.state != "open")
    assert json.loads(json.dumps(s.as_dict()))["not_voted"] == list(not_voted)


def test_votes_compare_by_public_key_whatever_the_ss58_format() -> None:
    polkadot = Keypair.create_from_uri("//Bob", ss58_format=0).ss58_address
    assert polkadot != BOB.ss58_address
    assert status(ayes=(polkadot,)).not_voted == (ALICE.ss58_address, CHARLIE.ss58_address)


MOTION = Motion(
    collective="Council",
    index=3,
    proposal_hash=HASH,
    code_hash="0x" + "cd" * 32,
    method="authorize",
    threshold=2,
    end=21,
    length_bound=120,
    proposed_block=1,
    reused=False,
)


def test_motion_round_trips_through_the_ledger() -> None:
    stored = json.loads(json.dumps(MOTION.as_dict()))
    assert Motion.from_dict(stored) == MOTION
    with pytest.raises(PipelineError, match="motion record lacks end, threshold"):
        Motion.from_dict({k: v for k, v in stored.items() if k not in ("end", "threshold")})


def env_with(voting_blocks: int | None) -> Environment:
    env = load_environment("local", REPO)
    assert env.council is not None
    return replace(env, council=replace(env.council, voting_blocks=voting_blocks))


@pytest.mark.parametrize(
    ("voting_blocks", "motion", "given", "expected"),
    [
        (None, MOTION, None, 21),  # the motion's end
        (5, MOTION, None, 6),  # proposal block + voting_blocks
        (5, replace(MOTION, proposed_block=None), None, 21),  # found open: block unknown
        (5, MOTION, 40, 40),  # the release's deadline wins
    ],
)
def test_voting_deadline(
    voting_blocks: int | None, motion: Motion, given: int | None, expected: int
) -> None:
    assert motions.voting_deadline(env_with(voting_blocks), motion, given) == expected


# --- artifacts and the voters' note -------------------------------------------------------------
def fake_runtime(spec_version: int) -> bytes:
    return runtime_wasm(runtime_version_bytes(spec_version=spec_version))


def fake_candidate(root: Path, spec_version: int = 101) -> upgrade.Candidate:
    """A candidate around a crafted runtime-shaped wasm (it has no genesis to build)."""
    code_hash = write_artifact(root / "artifacts", fake_runtime(spec_version))
    folder = root / "artifacts" / code_hash.removeprefix("0x")
    path = folder / "example_runtime.compact.compressed.wasm"
    blob = RuntimeBlob.load(path)
    return upgrade.Candidate(path, blob, candidate_info(blob.version, blob.size), {})


def test_load_candidate_by_hash_with_its_digest(
    tmp_path: Path, upgrade_wasms: tuple[Path, Path]
) -> None:
    code_hash = write_artifact(tmp_path / "artifacts", upgrade_wasms[1].read_bytes())
    candidate = governance.load_candidate(project_at(tmp_path), code_hash)
    assert (candidate.code_hash, candidate.spec_version) == (code_hash, 101)
    assert candidate.digest["commit"] == FACTS.commit
    (tmp_path / "artifacts" / code_hash[2:] / "digest.json").unlink()
    with pytest.raises(PipelineError, match=r"no readable .*digest.json: voters need"):
        governance.load_candidate(project_at(tmp_path), code_hash)
    with pytest.raises(PipelineError, match="unknown artifact"):
        governance.load_candidate(project_at(tmp_path), HASH)


def test_upgrade_proposal_wraps_the_batch_in_the_root_dispatch(tmp_path: Path) -> None:
    candidate = fake_candidate(tmp_path)
    code_hash = candidate.code_hash
    settings = load_environment("local", REPO).council
    assert settings is not None
    call, remark = proposal.upgrade_proposal(settings, candidate, "authorize")
    assert (call.module, call.function) == ("CouncilRoot", "dispatch_as_root")
    batch = call.params["call"]
    assert (batch.module, batch.function) == ("Utility", "batch_all")
    remark_call, upgrade = batch.params["calls"]
    assert bytes.fromhex(remark_call.params["remark"][2:]).decode() == remark
    assert proposal.parse_source_remark(remark.encode())["commit"] == FACTS.commit  # type: ignore[index]
    assert upgrade.params == {"code_hash": code_hash}
    plain, _ = proposal.upgrade_proposal(
        replace(settings, root_dispatch=None), candidate, "set_code"
    )
    assert (plain.module, plain.function) == ("Utility", "batch_all")
    assert plain.params["calls"][1].params["code"] == "0x" + candidate.blob.raw.hex()


def test_proposal_note_tells_voters_how_to_reproduce(tmp_path: Path) -> None:
    candidate = fake_candidate(tmp_path)
    code_hash = candidate.code_hash
    voters = dossier.render(
        env_name="local",
        candidate=candidate,
        method="authorize",
        changes=["A: production: example-runtime 100", "  ~ spec_version: 100 -> 101"],
        warnings=["transaction_version changes 1 -> 2: wallets must update"],
    )
    note = dossier.proposal_note(
        env_name="local",
        motion=replace(MOTION, code_hash=code_hash),
        candidate=candidate,
        dossier=voters,
        remark=proposal.source_remark(candidate.digest, blake2_256_hex(voters.encode())),
        members=3,
        block_time=6.0,
    )
    for expected in (
        "Motion #3 on Council (local)",
        "It needs 2 of 3 ayes",
        f"`{code_hash}`",
        f"- Commit: `{FACTS.commit}`",
        "- Tag: `v101`",
        f"- Builder image: `{FACTS.builder_image}`",
        "- rustc: `1.85.0`",
        "- cargo: `1.85.0`",
        f"invoke verify --ref {FACTS.commit} --expect {code_hash}",
        "invoke verify --env local --motion 3",
        "~ spec_version: 100 -> 101",
        "- warning: transaction_version changes 1 -> 2",
        "System.apply_authorized_upgrade",
    ):
        assert expected in note, expected
    # the motion's facts sit above the dossier: only the dossier is committed to
    assert note.endswith("\n" + proposal.DOSSIER_MARK + "\n" + voters)
    assert "Motion #3" not in voters and f"--expect {code_hash}" in voters
    assert proposal.dossier_hash(note) == blake2_256_hex(voters.encode())
    assert proposal.dossier_hash(note.replace("Motion #3", "Motion #4")) == proposal.dossier_hash(
        note
    )
    edited = note.replace("~ spec_version: 100 -> 101", "~ spec_version: 100 -> 102")
    assert proposal.dossier_hash(edited) != proposal.dossier_hash(note)
    with pytest.raises(PipelineError, match="no dossier mark"):
        proposal.dossier_hash(voters)


# --- real chains ----------------------------------------------------------------------------------
ENV_TEMPLATE = """\
local = {local}
inclusion_timeout = 60.0
block_time_estimate = 6.0

[networks.production]
kind = "{kind}"
{where}

[networks.lts]
kind = "endpoint"
endpoint = "ws://127.0.0.1:{lts}"

[networks.reckless]
kind = "endpoint"
endpoint = "ws://127.0.0.1:{reckless}"

{sudo}
[council]
member_key = {member}
collective = "Council"
root_dispatch = "{root_dispatch}"
{extra}
"""


@dataclass
class Net:
    """One fresh chain born from the production runtime, and a project dir pointing at it."""

    root: Path
    project: Project
    net: localnet.LocalNet
    nets: dict[str, localnet.LocalNet]
    candidate_hash: str
    production_hash: str

    @property
    def endpoint(self) -> str:
        return self.net.endpoint

    def env(
        self,
        name: str = "gov",
        *,
        local: bool = True,
        member: str = '{ dev = "//Alice" }',
        sudo: str = '[sudo]\ndev = "//Alice"\n',
        extra: str = "",
        endpoint: str | None = None,
        root_dispatch: str = "CouncilRoot.dispatch_as_root",
    ) -> Environment:
        """Write environments/<name>.toml for this chain (or another endpoint) and load it."""
        port = self.net.port
        if endpoint is None and local:
            kind, where = "chopsticks-genesis", f"port = {port}"
        else:
            kind, where = "endpoint", f'endpoint = "{endpoint or self.endpoint}"'
        lts, reckless = localnet.free_ports(2)
        text = ENV_TEMPLATE.format(
            local=str(local).lower(),
            kind=kind,
            where=where,
            lts=lts,
            reckless=reckless,
            sudo=sudo,
            member=member,
            extra=extra,
            root_dispatch=root_dispatch,
        )
        (self.root / "environments").mkdir(exist_ok=True)
        (self.root / "environments" / f"{name}.toml").write_text(text)
        return load_environment(name, self.root)

    def chain(self, endpoint: str | None = None) -> Chain:
        return Chain(endpoint or self.endpoint, connect_timeout=10, reconnect_attempts=2)

    def candidate(self, code_hash: str | None = None) -> upgrade.Candidate:
        return governance.load_candidate(self.project, code_hash or self.candidate_hash)


def make_chain_project(
    root: Path, production: Path, add_candidate: Callable[[Path], str]
) -> dict[str, str]:
    """A project dir with production's artifact, the candidate's (`add_candidate` writes it
    into the artifacts dir and returns its hash) and production's chain spec built once."""
    (root / "pipeline.toml").write_text(
        '[runtime]\npath = "examples/runtime"\npackage = "example-runtime"\n'
    )
    hashes = {
        "production": write_artifact(root / "artifacts", production.read_bytes()),
        "candidate": add_candidate(root / "artifacts"),
    }
    localnet.ensure_spec(project_at(root), localnet.LocalNet("spec", 1), production)
    return hashes


@pytest.fixture(scope="module")
def chain_project(
    tmp_path_factory: pytest.TempPathFactory, upgrade_wasms: tuple[Path, Path]
) -> Iterator[tuple[Path, dict[str, str]]]:
    """A project dir with both runtimes as artifacts (the candidate's digest: FACTS)."""
    production, candidate = upgrade_wasms
    root = tmp_path_factory.mktemp("governance")
    yield (
        root,
        make_chain_project(
            root, production, lambda artifacts: write_artifact(artifacts, candidate.read_bytes())
        ),
    )


@pytest.fixture
def net(
    chain_project: tuple[Path, dict[str, str]], upgrade_wasms: tuple[Path, Path]
) -> Iterator[Net]:
    """A fresh chain (its own port and dir) from production's spec; stopped afterwards."""
    root, hashes = chain_project
    os.environ.pop("PIPELINE_STATE_DIR", None)
    project = project_at(root)
    port = localnet.free_ports(1)[0]
    name = f"gov-{port}"
    nets = {
        "spec": localnet.LocalNet("spec", 1),
        name: localnet.LocalNet(name, port, spec_owner="spec"),
    }
    localnet.start(project, nets, name, upgrade_wasms[0])
    try:
        yield Net(root, project, nets[name], nets, hashes["candidate"], hashes["production"])
    finally:
        localnet.stop(project, nets[name])


def proposal_count(net: Net) -> int:
    with net.chain() as chain:
        return int(chain.query("Council", "ProposalCount"))


def live(net: Net) -> tuple[str, int]:
    with net.chain() as chain:
        return chain.code_hash(), int(chain.runtime_version()["specVersion"])


@pytest.mark.chain
def test_approved_motion_is_closed_and_enacted(net: Net, tmp_path: Path) -> None:
    env = net.env()
    candidate = net.candidate()
    note = tmp_path / "note.md"
    with net.chain() as chain:
        motion = governance.propose(env, chain, candidate, note_path=note)
        assert (motion.index, motion.threshold, motion.reused) == (0, 2, False)
        assert motion.proposed_block is not None
        assert motion.end == motion.proposed_block + 20  # the runtime's MotionDuration
        text = note.read_text()
        assert candidate.code_hash in text and f"--expect {candidate.code_hash}" in text
        assert "~ spec_version: 100 " in text and "pallet Notes" in text  # `invoke diff`

        again = governance.propose(env, chain, candidate)  # the same motion is never opened twice
        assert again == replace(motion, proposed_block=None, reused=True, note=None)
        assert chain.query("Council", "ProposalCount") == 1

        # a voter reads the source from the chain alone
        found = motions.find_motion(chain, "latest")
        assert (found.index, found.proposal_hash) == (motion.index, motion.proposal_hash)
        source = proposal.source_from_motion(found.proposal)
        assert source == {
            "commit": FACTS.commit,
            "tag": FACTS.tag,
            "digest": blake2_256_hex(dumps_digest(candidate.digest).encode()),
            "builder_image": FACTS.builder_image,
            "code_hash": candidate.code_hash,
            "method": "authorize",
            "dossier": proposal.dossier_hash(note.read_text()),  # the note's, committed to
        }
        assert motions.motion_from_chain(env, chain, motion.index) == replace(
            motion, proposed_block=None, reused=True, note=None
        )

        members = chain.query("Council", "Members")  # the pallet keeps them sorted
        assert set(members) == set(MEMBERS)
        votes = governance.simulate_votes(env, chain, motion, "approve")
        assert [(v.member, v.approve, v.submitted) for v in votes] == [
            (m, True, True) for m in members[:2]
        ]
        assert [v.submitted for v in governance.simulate_votes(env, chain, motion, "approve")] == [
            False,
            False,
        ]
        updates: list[MotionStatus] = []
        final = motions.track(env, chain, motion, advance=True, on_update=updates.append)
        assert final.state == "approved" and final.closable
        assert set(final.ayes) == set(members[:2]) and final.not_voted == (members[2],)

        result = governance.enact(env, chain, candidate, motion)
        assert (result.outcome, result.spec_version) == ("enacted", 101), result
        assert [s.split(" in block")[0] for s in result.steps] == [
            "Council.close #0",
            "System.apply_authorized_upgrade",
        ]
        assert chain.query("Council", "Voting", [motion.proposal_hash]) is None
        assert chain.query("System", "AuthorizedUpgrade") is None

        rerun = governance.enact(env, chain, candidate, motion)  # resumable: nothing to submit
        assert (rerun.outcome, rerun.steps) == ("already-live", ())
        with pytest.raises(PipelineError, match="already runs"):
            governance.propose(env, chain, candidate)
        older = net.candidate(net.production_hash)
        with pytest.raises(
            PipelineError, match="spec_version 100 is not greater than the chain's 101"
        ):
            governance.propose(env, chain, older)
    assert live(net) == (candidate.code_hash, 101)
    assert proposal_count(net) == 1


@pytest.mark.chain
def test_resuming_after_the_upgrade_block_waits_for_the_block_where_the_code_is_live(
    net: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed right after apply_authorized_upgrade was included, the next run finds the code on
    chain while its migrations have not run yet (they run in the following block)."""
    env = net.env()
    candidate = net.candidate()
    with net.chain() as chain:
        motion = governance.propose(env, chain, candidate)
        governance.simulate_votes(env, chain, motion, "approve")
        motions.track(env, chain, motion, advance=True)
        with monkeypatch.context() as patched:  # the run that dies before the next block
            patched.setattr(upgrade, "next_block", lambda *args, **kwargs: None)
            with pytest.raises(PipelineError, match="LastRuntimeUpgrade is still 100"):
                governance.enact(env, chain, candidate, motion)
        upgraded_in = chain.block_number()
        assert chain.code_hash() == candidate.code_hash
        resumed = governance.enact(env, chain, candidate, motion)
        assert (resumed.outcome, resumed.spec_version, resumed.steps) == ("already-live", 101, ())
        assert chain.block_number() == upgraded_in + 1
        again = governance.enact(env, chain, candidate, motion)  # nothing more to wait for
        assert again.outcome == "already-live" and chain.block_number() == upgraded_in + 1


@pytest.mark.chain
def test_rejected_motion_changes_nothing(net: Net) -> None:
    env = net.env()
    candidate = net.candidate()
    with net.chain() as chain:
        motion = governance.propose(env, chain, candidate)
        governance.simulate_votes(env, chain, motion, "reject")
        final = motions.track(env, chain, motion, advance=True)
        assert final.state == "disapproved" and set(final.nays) == set(MEMBERS)
        result = governance.enact(env, chain, candidate, motion, policy="no-nays")
        assert result.outcome == "refused" and not result.ok
        assert "3 member(s) voted against" in result.reason
        assert set(result.nays) == set(MEMBERS)
    assert live(net) == (net.production_hash, 100)


@pytest.mark.chain
def test_silent_council_past_its_deadline_falls_back_to_sudo(
    net: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = net.env()
    candidate = net.candidate()
    with net.chain() as chain:
        motion = governance.propose(env, chain, candidate)
        assert governance.simulate_votes(env, chain, motion, "silent") == []
        early = governance.enact(env, chain, candidate, motion)
        assert early.outcome == "waiting" and "invoke track" in early.reason
        monkeypatch.setenv("PIPELINE_HEARTBEAT_S", "0.2")  # the voting window, beat by beat
        lines: list[str] = []
        monkeypatch.setattr(chain, "progress", lines.append)
        final = motions.track(env, chain, motion, advance=True)
        assert final.state == "expired" and final.head == motion.end
        assert lines, f"{motion.end - motion.proposed_block} blocks tracked within a beat"  # type: ignore[operator]
        for line in lines:
            assert re.fullmatch(
                rf"\[\d+s\] waiting for motion #{motion.index} to be decided \(open at block "
                rf"#\d+: 0 aye / 0 nay of \d needed\) \(until block #{motion.end}, ~\S+ at the "
                r"block time\)",
                line,
            ), line
        result = governance.enact(env, chain, candidate, motion, policy="no-nays")
    assert (result.outcome, result.spec_version) == ("fallback", 101), result
    assert "allows the sudo fallback" in result.reason
    assert (result.ayes, result.nays, set(result.not_voted)) == ((), (), set(MEMBERS))
    assert result.steps[0].startswith("Sudo.sudo_unchecked_weight(System.set_code) in block #")
    assert live(net) == (candidate.code_hash, 101)


@pytest.mark.chain
def test_nays_refuse_the_fallback_and_refusals_submit_nothing(net: Net) -> None:
    env = net.env(extra="voting_blocks = 4")  # the deadline comes before the motion's end
    candidate = net.candidate()
    with net.chain() as chain:
        motion = governance.propose(env, chain, candidate)
        governance.simulate_votes(env, chain, motion, "split")
        final = motions.track(env, chain, motion, advance=True)
        assert final.state == "expired" and final.head == motion.proposed_block + 4  # type: ignore[operator]
        nay = final.members[1]  # split: the first member votes aye, the second nay
        assert (final.ayes, final.nays, final.closable) == ((final.members[0],), (nay,), False)
        refused = governance.enact(env, chain, candidate, motion, policy="no-nays")
        assert refused.outcome == "refused"
        assert f"1 member(s) voted against ({nay})" in refused.reason
        assert governance.enact(env, chain, candidate, motion, policy="never").outcome == "refused"

        no_sudo = net.env("nosudo", sudo="", extra="voting_blocks = 4")
        result = governance.enact(no_sudo, chain, candidate, motion, policy="always")
        assert result.outcome == "refused" and "no sudo key is configured" in result.reason

        remote = net.env(
            "remote",
            local=False,
            member='{ env = "GOV_TEST_UNSET" }',
            sudo='[sudo]\nenv = "GOV_TEST_UNSET"\n',
            extra="voting_blocks = 4",
        )
        unconfirmed = governance.enact(remote, chain, candidate, motion, policy="always")
        assert "needs an explicit confirmation" in unconfirmed.reason
        wrong = governance.enact(
            remote, chain, candidate, motion, policy="always", confirm_hash=HASH
        )
        assert wrong.outcome == "refused"
        assert (
            f"the confirmation names {HASH} but the candidate is {candidate.code_hash}"
            in wrong.reason
        )
        with pytest.raises(PipelineError, match="only on local environments"):
            governance.simulate_votes(remote, chain, motion, "approve")
        assert chain.query("Council", "Voting", [motion.proposal_hash]) is not None
    assert live(net) == (net.production_hash, 100)


@pytest.mark.chain
def test_bad_input_is_one_line_and_submits_nothing(net: Net) -> None:
    candidate = net.candidate()
    with net.chain() as chain:
        nonces = [chain.nonce(k.ss58_address) for k in (ALICE, DAVE)]
        with pytest.raises(PipelineError, match=rf"{DAVE.ss58_address} is not a member of Council"):
            governance.propose(net.env(member='{ dev = "//Dave" }'), chain, candidate)
        with pytest.raises(PipelineError, match="threshold 4 is above the 3 members"):
            governance.propose(net.env(extra="threshold = 4"), chain, candidate)
        with pytest.raises(PipelineError, match="no open motion on Council"):
            motions.find_motion(chain, "latest")
        with pytest.raises(PipelineError, match="already runs"):
            governance.propose(net.env(), chain, net.candidate(net.production_hash))
        motion = governance.propose(net.env(), chain, candidate)
        with pytest.raises(PipelineError, match=r"no open motion #7 on Council .*\(open: #0\)"):
            motions.find_motion(chain, 7)
        with pytest.raises(PipelineError, match="is not an index"):
            motions.find_motion(chain, "seven")
        other = governance.load_candidate(net.project, net.production_hash)
        with pytest.raises(PipelineError, match="pass the artifact the motion proposed"):
            governance.enact(net.env(), chain, other, motion)
        assert [chain.nonce(k.ss58_address) for k in (ALICE, DAVE)] == [nonces[0] + 1, nonces[1]]
    assert proposal_count(net) == 1


@pytest.mark.chain
def test_without_root_dispatch_the_motion_fails_bad_origin_and_enact_names_the_fix(
    net: Net,
) -> None:
    env = net.env(root_dispatch="")  # the proposal runs with the council's origin, not Root
    candidate = net.candidate()
    with net.chain() as chain:
        motion = governance.propose(env, chain, candidate)
        found = motions.find_motion(chain, motion.index)
        assert (found.proposal["call_module"], found.proposal["call_function"]) == (
            "Utility",
            "batch_all",
        )
        governance.simulate_votes(env, chain, motion, "approve")
        with pytest.raises(PipelineError) as info:
            governance.enact(env, chain, candidate, motion)
        assert str(info.value).endswith(
            "(Council.Executed: BadOrigin): set council.root_dispatch so the proposal runs as Root"
        )
        after = governance.enact(env, chain, candidate, motion)  # the motion is closed now
        assert after.outcome == "refused" and "is closed but" in after.reason
        assert chain.query("System", "AuthorizedUpgrade") is None
    assert live(net) == (net.production_hash, 100)


CRASHING_PROPOSE = """
import sys
from pathlib import Path
from pipeline import config, governance, ledger
from pipeline.chain import connect
from pipeline.policy import candidate_info
from pipeline.project import Project
root = Path(sys.argv[1])
project = Project(root=root, runtime_path="", runtime_package="example-runtime", suites={})
env = config.load_environment("gov", root)
with ledger.open_ledger(project.state_dir, "r1", create={"env": "gov"}) as journal:
    with connect(env) as chain:
        candidate = governance.load_candidate(project, sys.argv[2])
        governance.propose(env, chain, candidate, recorder=journal)
print("not killed")
"""


@pytest.mark.chain
def test_killed_right_after_broadcast_the_resume_finds_the_motion(net: Net) -> None:
    env = net.env()
    state = net.root / "state-crash"
    proc = subprocess.run(
        [sys.executable, "-c", CRASHING_PROPOSE, str(net.root), net.candidate_hash],
        cwd=REPO,
        env={
            **os.environ,
            "PIPELINE_CRASH_AT": "submit:propose:after-broadcast",
            "PIPELINE_STATE_DIR": str(state),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert proposal_count(net) == 1
    with ledger.open_ledger(state, "r1") as journal, net.chain() as chain:
        (pending,) = journal.state.intents.values()
        assert (pending.stage, pending.result) == ("propose", None)
        assert pending.extrinsic_hash is not None
        assert chain.state_nonce(pending.signer) > pending.nonce  # its nonce was used
        motion = governance.propose(env, chain, net.candidate(), recorder=journal)
        assert motion.reused and motion.index == 0
        assert len(journal.state.intents) == 1  # nothing new was submitted
    assert proposal_count(net) == 1


@pytest.mark.chain
def test_resumed_while_the_killed_run_s_proposal_still_waits_it_is_sent_with_the_same_nonce(
    net: Net,
) -> None:
    """A run killed while its proposal waited in the pool, not yet in a block; the resume does
    not find the motion, so it proposes again, with the waiting send's nonce (the pool's next
    nonce would let both land). One of the two lands: one motion, the nonce moved by one, the
    second send left unresolved, and the next resume finds the motion."""
    env = net.env()
    state = net.root / "state-waiting"

    def waiting_in_pool() -> int:
        """The pool, not the journal: a send is journaled before it reaches the node."""
        with net.chain() as chain:
            return len(chain.rpc("author_pendingExtrinsics", []))

    def when(condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 120
        while not condition():
            assert time.monotonic() < deadline, what
            time.sleep(0.05)

    before = proposal_count(net)
    with net.chain() as chain:
        chain.rpc("dev_setBlockBuildMode", ["Manual"])  # sends wait in the pool
    try:
        run = subprocess.Popen(
            [sys.executable, "-c", CRASHING_PROPOSE, str(net.root), net.candidate_hash],
            cwd=REPO,
            env={**os.environ, "PIPELINE_STATE_DIR": str(state)},
        )
        when(lambda: waiting_in_pool() == 1, "the run's proposal never reached the pool")
        run.kill()
        run.wait(timeout=30)
        with (
            ledger.open_ledger(state, "r1") as journal,
            Chain(net.endpoint, timeout=15) as chain,
        ):
            (waiting,) = journal.state.unresolved
            assert chain.state_nonce(waiting.signer) == waiting.nonce

            def build_a_block_once_sent_again() -> None:
                when(lambda: waiting_in_pool() == 2, "the resume's proposal never reached the pool")
                with net.chain() as builder:
                    builder.rpc("dev_newBlock", [])

            threading.Thread(target=build_a_block_once_sent_again, daemon=True).start()
            with pytest.raises(BroadcastUncertain, match="check on chain before sending again"):
                governance.propose(env, chain, net.candidate(), recorder=journal)
            assert [(i.nonce, i.result) for i in journal.state.intents.values()] == [
                (waiting.nonce, None),
                (waiting.nonce, None),
            ]
            assert chain.state_nonce(waiting.signer) == waiting.nonce + 1
    finally:
        with net.chain() as chain:
            chain.rpc("dev_setBlockBuildMode", ["Instant"])
    assert proposal_count(net) == before + 1
    with ledger.open_ledger(state, "r1") as journal, net.chain() as chain:
        motion = governance.propose(env, chain, net.candidate(), recorder=journal)
        assert motion.reused and len(journal.state.intents) == 2
    assert proposal_count(net) == before + 1


@pytest.mark.chain
def test_a_send_missed_twice_leaves_both_sends_open_until_one_lands(net: Net) -> None:
    """Not included in time with its nonce unused, a send is signed again with that nonce; the
    first may still wait in a pool, so it is not settled by the resend: both stay unresolved
    when the resend misses too, and the resume finds the one that landed."""
    env = net.env()
    state = net.root / "state-missed"
    before = proposal_count(net)
    with net.chain() as chain:
        chain.rpc("dev_setBlockBuildMode", ["Manual"])  # nothing is included until asked
    try:
        with (
            ledger.open_ledger(state, "r1", create={"env": "gov"}) as journal,
            Chain(net.endpoint, timeout=6) as chain,
        ):
            proposer = keys.signer(env, "council").ss58_address
            nonce = chain.state_nonce(proposer)
            with pytest.raises(BroadcastUncertain, match="check on chain before sending again"):
                governance.propose(env, chain, net.candidate(), recorder=journal)
            assert [(i.nonce, i.result) for i in journal.state.intents.values()] == [
                (nonce, None),
                (nonce, None),
            ]
            chain.rpc("dev_newBlock", [])  # both sends wait: one is included, one is stale
            assert chain.state_nonce(proposer) == nonce + 1
    finally:
        with net.chain() as chain:
            chain.rpc("dev_setBlockBuildMode", ["Instant"])
    assert proposal_count(net) == before + 1
    with ledger.open_ledger(state, "r1") as journal, net.chain() as chain:
        motion = governance.propose(env, chain, net.candidate(), recorder=journal)
        assert motion.reused and len(journal.state.intents) == 2
    assert proposal_count(net) == before + 1


@pytest.mark.chain
def test_set_code_motion_upgrades_when_closed(net: Net) -> None:
    env = net.env()
    candidate = net.candidate()
    with net.chain() as chain:
        motion = governance.propose(env, chain, candidate, method="set_code")
        assert motion.length_bound > candidate.blob.size
        found = motions.find_motion(chain, motion.index)
        assert proposal.source_from_motion(found.proposal)["code_hash"] == candidate.code_hash
        governance.simulate_votes(env, chain, motion, "approve")
        assert motions.track(env, chain, motion, advance=True).state == "approved"
        result = governance.enact(env, chain, candidate, motion)
    assert (result.outcome, len(result.steps)) == ("enacted", 1), result
    assert live(net) == (candidate.code_hash, 101)


class Proxy:
    """A TCP relay in front of the node, to drop connections for real."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            with self.lock:
                self.conns += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 1.0)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (b if sock is a else a).sendall(data)
        except OSError:
            return
        finally:
            for sock in (a, b):
                sock.close()

    def drop(self) -> None:
        """Cut every open connection; new ones are still accepted."""
        with self.lock:
            for sock in self.conns:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self.conns.clear()

    def stop(self) -> None:
        self.server.close()
        self.drop()


@pytest.mark.chain
def test_track_survives_a_dropped_connection_and_names_a_lost_endpoint(net: Net) -> None:
    proxy = Proxy(net.net.port)
    env = net.env()
    try:
        with net.chain() as direct:
            motion = governance.propose(env, direct, net.candidate())
        dropped = False

        def drop_once(status: MotionStatus) -> None:
            nonlocal dropped
            if status.head >= motion.end - 15 and not dropped:
                dropped = True
                proxy.drop()

        with net.chain(f"ws://127.0.0.1:{proxy.port}") as chain:
            final = motions.track(env, chain, motion, advance=True, on_update=drop_once)
            assert dropped and final.state == "expired"

            def lose(status: MotionStatus) -> None:
                proxy.stop()

            later = replace(motion, end=motion.end + 50)
            with pytest.raises(PipelineError) as info:
                motions.track(env, chain, later, deadline_block=later.end, on_update=lose)
        message = str(info.value)
        assert message.startswith(f"tracking motion #0 stopped at block #{final.head}: ")
        assert f"ws://127.0.0.1:{proxy.port}" in message and "\n" not in message
    finally:
        proxy.stop()


CLI = """
import sys
from invoke import Collection, Program
from pipeline.cli import council
ns = Collection(council.propose, council.track, council.enact)
ns.add_collection(council.ns)
Program(namespace=ns, binary="invoke").run(["invoke", *sys.argv[1:]])
"""


def invoke(net: Net, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """The council tasks as a user runs them, from the project dir (tasks.py wires the same)."""
    return subprocess.run(
        [sys.executable, "-c", CLI, *args],
        cwd=net.root,
        env={**os.environ, "PIPELINE_STATE_DIR": str(net.root / "state-cli")},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.chain
def test_commands_run_the_council_path_and_exit_non_zero_on_refusal(net: Net) -> None:
    net.env()
    net.env("remote", local=False, member='{ env = "GOV_TEST_UNSET" }', sudo="")
    bad = invoke(net, "propose", "--env", "gov", "--artifact", net.candidate_hash, "-m", "vote")
    assert (bad.returncode, bad.stderr.strip()) == (
        1,
        "error: unknown --method 'vote': use authorize or set_code",
    )
    proposed = invoke(net, "propose", "--env", "gov", "--artifact", net.candidate_hash)
    assert proposed.returncode == 0, proposed.stderr
    assert proposed.stdout.startswith("motion #0 proposed on Council: 0x")
    note = proposed.stdout.split("note for voters: ")[1].strip()
    assert net.candidate_hash in Path(note).read_text()

    refused = invoke(net, "council.simulate", "--env", "remote", "--scenario", "approve")
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: council.simulate votes with dev councillors, only")
    voted = invoke(net, "council.simulate", "--env", "gov", "--scenario", "reject")
    assert voted.returncode == 0 and voted.stdout.count(" voted nay") == 3, voted.stderr

    tracked = invoke(net, "track", "--env", "gov", "--json", "--advance")
    assert tracked.returncode == 0, tracked.stderr
    final = json.loads(tracked.stdout.splitlines()[-1])
    assert (final["state"], len(final["nays"]), final["closable"]) == ("disapproved", 3, True)

    enacted = invoke(net, "enact", "--env", "gov")
    assert enacted.returncode == 1
    assert enacted.stdout.startswith("refused: ")
    assert "3 member(s) voted against" in enacted.stderr and enacted.stderr.count("\n") == 1
    assert live(net) == (net.production_hash, 100)


# scenario -> (track's final state, enact's exit code, enact's outcome, code live afterwards)
STANDALONE = {
    "approve": ("approved", 0, "enacted", "candidate"),
    "reject": ("disapproved", 1, "refused", "production"),
    "silent": ("expired", 0, "fallback", "candidate"),
    "split": ("expired", 1, "refused", "production"),
}


@pytest.mark.chain
@pytest.mark.parametrize("scenario", list(STANDALONE))
def test_standalone_council_commands_complete_on_a_local_network(net: Net, scenario: str) -> None:
    """propose, council.simulate, track (no --advance) and enact, one by one as the README lists
    them: on a local environment time passes while track waits, as in a release."""
    net.env()
    state, code, outcome, live_after = STANDALONE[scenario]
    proposed = invoke(net, "propose", "--env", "gov", "--artifact", net.candidate_hash)
    assert proposed.returncode == 0, proposed.stderr
    voted = invoke(net, "council.simulate", "--env", "gov", "--scenario", scenario)
    assert voted.returncode == 0, voted.stderr
    tracked = invoke(net, "track", "--env", "gov", "--json", timeout=240)
    assert tracked.returncode == 0, tracked.stderr
    assert json.loads(tracked.stdout.splitlines()[-1])["state"] == state
    assert "lost" not in tracked.stderr, tracked.stderr
    enacted = invoke(net, "enact", "--env", "gov", "--policy", "no-nays", "--json")
    assert enacted.returncode == code, enacted.stderr
    assert json.loads(enacted.stdout)["outcome"] == outcome
    expected = net.candidate_hash if live_after == "candidate" else net.production_hash
    assert live(net)[0] == expected
