"""Release policies, table by table: council fallback, freeze, preflight, spec bump gate."""

from __future__ import annotations

from typing import Any

import pytest
from substrateinterface import Keypair

from pipeline.artifact import RuntimeApi, RuntimeVersion
from pipeline.errors import PipelineError
from pipeline.policy import (
    CandidateInfo,
    CommitInfo,
    Decision,
    FreezeRule,
    candidate_info,
    chain_info,
    check_signer_is_sudo,
    fallback_decision,
    freeze_violations,
    governance_problem,
    preflight,
    spec_bump_required,
)

# ---------------------------------------------------------------- council fallback

HASH = "0x" + "ab" * 32
OTHER = "0x" + "cd" * 32
MEMBERS = ["alice", "bob", "charlie"]


def decide(policy: str = "no-nays", **overrides: Any) -> Decision:
    inputs: dict[str, Any] = {
        "deadline_passed": True,
        "approved": False,
        "ayes": ["alice"],
        "nays": [],
        "members": MEMBERS,
        "local": True,
        "confirm_hash": None,
        "code_hash": HASH,
        "has_sudo_key": True,
    }
    return fallback_decision(policy, **{**inputs, **overrides})  # type: ignore[arg-type]


FALLBACK = [
    # (case, policy, overrides, action, reason fragment)
    ("approved enacts", "never", {"approved": True, "deadline_passed": False}, "enact", "approved"),
    ("approved after deadline enacts", "always", {"approved": True}, "enact", "close the motion"),
    ("open vote waits", "always", {"deadline_passed": False}, "wait", "2 member(s) have not"),
    (
        "open vote with nays waits",
        "no-nays",
        {"deadline_passed": False, "nays": ["bob"]},
        "wait",
        "1 member",
    ),
    (
        "all voted decides early",
        "no-nays",
        {"deadline_passed": False, "ayes": ["alice", "bob", "charlie"]},
        "sudo",
        "every member voted",
    ),
    ("never refuses", "never", {}, "refuse", "policy is 'never'"),
    ("never refuses without votes", "never", {"ayes": []}, "refuse", "'never'"),
    ("no-nays falls back", "no-nays", {}, "sudo", "the voting period ended"),
    ("no-nays with no votes at all", "no-nays", {"ayes": []}, "sudo", "allows the sudo fallback"),
    (
        "no-nays refuses criticism",
        "no-nays",
        {"nays": ["charlie", "bob"]},
        "refuse",
        "2 member(s) voted against (bob, charlie)",
    ),
    ("non-member nay is no criticism", "no-nays", {"nays": ["mallory"]}, "sudo", "allows"),
    ("always ignores nays", "always", {"nays": ["bob", "charlie"]}, "sudo", "'always'"),
    ("no sudo key", "always", {"has_sudo_key": False}, "refuse", "no sudo key is configured"),
    ("live needs confirmation", "always", {"local": False}, "refuse", f"rerun confirming {HASH}"),
    (
        "live with other hash",
        "no-nays",
        {"local": False, "confirm_hash": OTHER},
        "refuse",
        f"names {OTHER} but the candidate is {HASH}",
    ),
    ("live confirmed", "no-nays", {"local": False, "confirm_hash": HASH}, "sudo", "allows"),
    (
        "live confirmed, any case, no 0x",
        "always",
        {"local": False, "confirm_hash": HASH[2:].upper()},
        "sudo",
        "allows",
    ),
    (
        "live nays beat confirmation",
        "no-nays",
        {"local": False, "confirm_hash": HASH, "nays": ["bob"]},
        "refuse",
        "voted against",
    ),
    (
        "live never beats confirmation",
        "never",
        {"local": False, "confirm_hash": HASH},
        "refuse",
        "'never'",
    ),
    (
        "live approved needs no confirmation",
        "never",
        {"local": False, "approved": True},
        "enact",
        "approved",
    ),
]


@pytest.mark.parametrize(
    ("policy", "overrides", "action", "reason"),
    [c[1:] for c in FALLBACK],
    ids=[c[0] for c in FALLBACK],
)
def test_fallback_decision(
    policy: str, overrides: dict[str, Any], action: str, reason: str
) -> None:
    decision = decide(policy, **overrides)
    assert decision.action == action
    assert reason in decision.reason


def test_unknown_fallback_policy_is_refused() -> None:
    with pytest.raises(
        PipelineError,
        match="unknown fallback policy 'sometimes': use one of never, no-nays, always",
    ):
        decide("sometimes")


# ---------------------------------------------------------------- code freeze


def commit(summary: str, body: str = "", labels: tuple[str, ...] = ()) -> CommitInfo:
    message = f"{summary}\n\n{body}" if body else summary
    return CommitInfo(sha=summary[:7], summary=summary, message=message, labels=labels)


DEFAULT = FreezeRule()
WITH_EXCEPTIONS = FreezeRule(
    exception_labels=("release-blocker",), exception_prefixes=("chore(release):",)
)
FREEZE = [
    # (case, commit, rule, allowed)
    ("fix prefix", commit("fix: overflow in fee calc"), DEFAULT, True),
    ("scoped fix", commit("fix(balances): rounding"), DEFAULT, True),
    ("feature", commit("feat: new pallet"), DEFAULT, False),
    ("fix without colon is not conventional", commit("fix typo"), DEFAULT, False),
    ("prefix is case-sensitive", commit("Fix: typo"), DEFAULT, False),
    ("fix mentioned later", commit("feat: fix: nested"), DEFAULT, False),
    ("Fixes trailer", commit("balances: rounding", "Explain.\n\nFixes: #123"), DEFAULT, True),
    ("trailer key any case", commit("rounding", "fixes: #12"), DEFAULT, True),
    (
        "trailer among others",
        commit("rounding", "Why.\n\nSigned-off-by: A <a@x>\nFixes: #7"),
        DEFAULT,
        True,
    ),
    ("empty trailer value", commit("rounding", "Fixes:"), DEFAULT, False),
    (
        "Fixes not in the last paragraph",
        commit("feat: x", "Fixes: #1\n\nMore text."),
        DEFAULT,
        False,
    ),
    ("Fixes in the summary is no trailer", commit("Fixes: #1"), DEFAULT, False),
    ("label exception", commit("feat: hotfix", labels=("release-blocker",)), WITH_EXCEPTIONS, True),
    ("label without rule", commit("feat: hotfix", labels=("release-blocker",)), DEFAULT, False),
    ("prefix exception", commit("chore(release): v1.2"), WITH_EXCEPTIONS, True),
    ("other label", commit("feat: x", labels=("bug",)), WITH_EXCEPTIONS, False),
    ("custom prefixes", commit("bugfix: x"), FreezeRule(prefixes=("bugfix:",)), True),
    ("custom prefixes replace fix", commit("fix: x"), FreezeRule(prefixes=("bugfix:",)), False),
    ("custom trailer", commit("x", "Closes: #1"), FreezeRule(trailers=("Closes:",)), True),
]


@pytest.mark.parametrize(
    ("one", "rule", "allowed"), [c[1:] for c in FREEZE], ids=[c[0] for c in FREEZE]
)
def test_freeze_rule(one: CommitInfo, rule: FreezeRule, allowed: bool) -> None:
    assert freeze_violations([one], rule) == ([] if allowed else [one])


def test_freeze_violations_keep_commit_order() -> None:
    commits = [commit("feat: a"), commit("fix: b"), commit("docs: c"), commit("fix(x): d")]
    assert [c.summary for c in freeze_violations(commits, DEFAULT)] == ["feat: a", "docs: c"]


# ---------------------------------------------------------------- preflight

CORE, METADATA, BABE = "0xdf6acb689907609b", "0x37e397fc7c91f5e4", "0xcbca25e39f142387"


def info(**overrides: Any) -> CandidateInfo:
    fields: dict[str, Any] = {
        "spec_name": "example",
        "spec_version": 101,
        "transaction_version": 1,
        "state_version": 1,
        "apis": {CORE: 4, METADATA: 2, BABE: 2},
        "size": 500_000,
    }
    return CandidateInfo(**{**fields, **overrides})


CURRENT = info(spec_version=100)
PREFLIGHT = [
    # (case, candidate, limit, errors, warnings)
    ("clean upgrade", info(), 1_000_000, [], []),
    ("added API is fine", info(apis={CORE: 4, METADATA: 2, BABE: 2, "0x01": 1}), 1_000_000, [], []),
    (
        "other chain",
        info(spec_name="other"),
        1_000_000,
        ["spec_name 'other' differs from the chain's 'example'"],
        [],
    ),
    (
        "same spec",
        info(spec_version=100),
        1_000_000,
        ["spec_version 100 is not greater than the chain's 100"],
        [],
    ),
    ("older spec", info(spec_version=99), 1_000_000, ["spec_version 99 is not greater"], []),
    (
        "too big",
        info(size=1_000_001),
        1_000_000,
        ["1000001 bytes, over the chain's limit of 1000000"],
        [],
    ),
    ("exactly the limit", info(size=1_000_000), 1_000_000, [], []),
    (
        "tx version",
        info(transaction_version=2),
        1_000_000,
        [],
        ["transaction_version changes 1 -> 2"],
    ),
    ("state version", info(state_version=0), 1_000_000, [], ["state_version changes 1 -> 0"]),
    (
        "removed API",
        info(apis={CORE: 4, METADATA: 2}),
        1_000_000,
        [],
        [f"runtime API {BABE} v2 is removed"],
    ),
    (
        "changed API",
        info(apis={CORE: 5, METADATA: 2, BABE: 2}),
        1_000_000,
        [],
        [f"runtime API {CORE} changes v4 -> v5"],
    ),
    (
        "everything at once",
        info(spec_name="x", spec_version=1, size=9, transaction_version=3, apis={CORE: 3}),
        8,
        ["spec_name", "spec_version 1", "9 bytes"],
        [
            "transaction_version",
            f"{METADATA} v2 is removed",  # APIs in id order
            f"{BABE} v2 is removed",
            f"{CORE} changes v4 -> v3",
        ],
    ),
]


@pytest.mark.parametrize(
    ("candidate", "limit", "errors", "warnings"),
    [c[1:] for c in PREFLIGHT],
    ids=[c[0] for c in PREFLIGHT],
)
def test_preflight(
    candidate: CandidateInfo, limit: int, errors: list[str], warnings: list[str]
) -> None:
    result = preflight(candidate, CURRENT, limit)
    assert len(result.errors) == len(errors) and len(result.warnings) == len(warnings)
    assert all(e in got for e, got in zip(errors, result.errors, strict=True))
    assert all(w in got for w, got in zip(warnings, result.warnings, strict=True))
    assert result.ok == (not errors)


def test_candidate_info_from_a_runtime_version_names_the_apis() -> None:
    apis = (RuntimeApi(CORE.upper(), "Core", 5), RuntimeApi(METADATA, None, 2))  # ids normalised
    version = RuntimeVersion("example", "example-node", 1, 102, 0, apis, 1, system_version=2)
    candidate = candidate_info(version, size=400_000)
    assert candidate == CandidateInfo(
        "example", 102, 1, 1, {CORE: 5, METADATA: 2}, 400_000, {CORE: "Core"}
    )
    warnings = preflight(candidate, CURRENT, 1_000_000).warnings
    assert f"runtime API Core ({CORE}) changes v4 -> v5: check its clients" in warnings
    assert f"runtime API {BABE} v2 is removed: clients using it break" in warnings


def test_chain_info_from_state_get_runtime_version() -> None:
    rpc = {
        "specName": "example",
        "implName": "example-node",
        "authoringVersion": 1,
        "specVersion": 100,
        "implVersion": 0,
        "apis": [[CORE, 4], [METADATA, 2], [BABE, 2]],
        "transactionVersion": 1,
        "stateVersion": 1,
    }
    assert chain_info(rpc, size=500_000) == CURRENT
    newer = {**rpc, "systemVersion": 2}  # polkadot-sdk stable2409 renamed the field
    del newer["stateVersion"]
    assert chain_info(newer, size=1).state_version == 1
    assert chain_info({**rpc, "stateVersion": 0}, size=1).state_version == 0


ALICE = Keypair.create_from_uri("//Alice")
BOB = Keypair.create_from_uri("//Bob")


@pytest.mark.parametrize(
    ("signer", "sudo", "problem"),
    [
        (ALICE.ss58_address, ALICE.ss58_address, None),
        (Keypair.create_from_uri("//Alice", ss58_format=0).ss58_address, ALICE.ss58_address, None),
        (ALICE.ss58_address, "0x" + ALICE.public_key.hex(), None),
        (
            BOB.ss58_address,
            ALICE.ss58_address,
            f"the signer {BOB.ss58_address} is not the chain's sudo key",
        ),
        (ALICE.ss58_address, None, "the chain has no sudo key"),
        ("not-an-address", ALICE.ss58_address, "'not-an-address' is not an SS58 address"),
        (ALICE.ss58_address[:-1] + "Z", ALICE.ss58_address, "is not an SS58 address"),
    ],
)
def test_check_signer_is_sudo(signer: str, sudo: str | None, problem: str | None) -> None:
    result = check_signer_is_sudo(signer, sudo)
    assert (result is None) == (problem is None)
    assert problem is None or (result is not None and problem in result)


# ---------------------------------------------------------------- spec bump gate


@pytest.mark.parametrize(
    ("changed", "candidate", "production", "message"),
    [
        (False, 100, 100, None),
        (False, 99, 100, None),  # unchanged code: nothing to bump
        (True, 101, 100, None),
        (True, 150, 100, None),
        (
            True,
            100,
            100,
            "runtime changed against production but spec_version is 100 (production: 100): "
            "bump spec_version to at least 101",
        ),
        (True, 90, 100, "spec_version is 90"),
    ],
)
def test_spec_bump_required(
    changed: bool, candidate: int, production: int, message: str | None
) -> None:
    result = spec_bump_required(changed, candidate, production)
    assert (result is None) == (message is None)
    assert message is None or (result is not None and message in result)


EXAMPLE_PALLETS = ("System", "Balances", "Sudo", "Council", "CouncilRoot", "Utility")
SOLO_PALLETS = ("System", "Balances", "Sudo", "Template")


@pytest.mark.parametrize(
    ("governance", "pallets", "collective", "root_dispatch", "problem"),
    [
        ("sudo", SOLO_PALLETS, None, None, None),
        ("collective", EXAMPLE_PALLETS, "Council", "CouncilRoot.dispatch_as_root", None),
        ("collective", EXAMPLE_PALLETS, "Council", None, None),
        (
            "sudo",
            ("System", "Council"),
            None,
            None,
            'prod has no Sudo pallet, so governance "sudo" cannot upgrade it: set governance = '
            '"collective" and a [council] naming its collective (pallets: Council, System)',
        ),
        (
            "collective",
            SOLO_PALLETS,
            "Council",
            "CouncilRoot.dispatch_as_root",
            "prod has no pallet Council (council.collective), CouncilRoot (council.root_dispatch):"
            " name its own in [council] (pallets: Balances, Sudo, System, Template); or, as it "
            'has Sudo, governance = "sudo"',
        ),
        (
            "collective",
            ("System", "TechCommittee"),
            "Council",
            None,
            "prod has no pallet Council (council.collective): name its own in [council] "
            "(pallets: System, TechCommittee)",
        ),
    ],
)
def test_governance_problem_names_what_the_chain_lacks(
    governance: str,
    pallets: tuple[str, ...],
    collective: str | None,
    root_dispatch: str | None,
    problem: str | None,
) -> None:
    found = governance_problem(
        governance, pallets, network="prod", collective=collective, root_dispatch=root_dispatch
    )
    assert found == problem
