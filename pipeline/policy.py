"""Release policies as pure decisions: council fallback, code freeze, preflight, spec bump gate.

Each function takes plain data observed elsewhere (chain, git, artifact) and returns a decision
with its reason, so every rule is table-tested and the same inputs always give the same answer.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, get_args

from pipeline.errors import PipelineError

FallbackPolicy = Literal["never", "no-nays", "always"]
Action = Literal["wait", "enact", "sudo", "refuse"]
FALLBACK_POLICIES: tuple[FallbackPolicy, ...] = get_args(FallbackPolicy)


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str


def fallback_decision(
    policy: FallbackPolicy,
    *,
    deadline_passed: bool,
    approved: bool,
    ayes: Sequence[str],
    nays: Sequence[str],
    members: Sequence[str],
    local: bool,
    confirm_hash: str | None,
    code_hash: str,
    has_sudo_key: bool,
) -> Decision:
    """What to do with a council motion for `code_hash`: keep waiting, enact it, or fall back.

    `no-nays` means no legitimate criticism: no member voted against (votes of non-members do
    not count either way). The motion is decided once the deadline passed or every member voted.
    On a non-local environment the sudo fallback also needs a confirmation naming `code_hash`.
    """
    if policy not in FALLBACK_POLICIES:
        raise PipelineError(
            f"unknown fallback policy {policy!r}: use one of {', '.join(FALLBACK_POLICIES)}"
        )
    if approved:
        return Decision("enact", f"the council approved {code_hash}: close the motion and enact")
    everyone_voted = set(members) <= set(ayes) | set(nays)
    if not deadline_passed and not everyone_voted:
        missing = len(set(members) - set(ayes) - set(nays))
        return Decision("wait", f"voting is open: {missing} member(s) have not voted yet")
    ended = "the voting period ended" if deadline_passed else "every member voted"
    member_nays = sorted(set(nays) & set(members))
    if policy == "never":
        return Decision(
            "refuse",
            f"{ended} without approval and the fallback policy is 'never': "
            "address the council's concerns and propose again",
        )
    if policy == "no-nays" and member_nays:
        return Decision(
            "refuse",
            f"{ended} without approval and {len(member_nays)} member(s) voted against "
            f"({', '.join(member_nays)}): policy 'no-nays' allows no sudo fallback; "
            "address their concerns and propose again",
        )
    if not has_sudo_key:
        return Decision(
            "refuse",
            f"{ended} without approval and no sudo key is configured: nothing to fall back on",
        )
    unconfirmed = None if local else confirmation_problem(confirm_hash, code_hash)
    if unconfirmed is not None:
        return Decision(
            "refuse",
            f"{ended} without approval; the sudo fallback on a non-local environment {unconfirmed}",
        )
    return Decision(
        "sudo", f"{ended} without approval and policy {policy!r} allows the sudo fallback"
    )


def confirmation_problem(confirm_hash: str | None, code_hash: str) -> str | None:
    """Why a sudo upgrade of a real chain is not confirmed (it must name the code it sets), as
    the end of a sentence about that upgrade; None when it is."""
    if confirm_hash is None:
        return f"needs an explicit confirmation: rerun confirming {code_hash} (--confirm-hash)"
    if _normal_hash(confirm_hash) != _normal_hash(code_hash):
        return (
            f"is refused: the confirmation names {confirm_hash} but the candidate is {code_hash}: "
            "confirm the hash being enacted"
        )
    return None


def check_confirmation(confirm_hash: str, code_hash: str | None) -> None:
    """Refuse a malformed `--confirm-hash`, or one naming another code than the known one,
    before anything connects: `code_hash` is None when only the chain can tell it.
    """
    if not _HASH.fullmatch(_normal_hash(confirm_hash)):
        raise PipelineError(
            f"--confirm-hash {confirm_hash!r} is not a code hash: pass 0x and 64 hex digits"
        )
    if code_hash is not None and _normal_hash(confirm_hash) != _normal_hash(code_hash):
        raise PipelineError(
            f"--confirm-hash names {confirm_hash} but the candidate is {code_hash}: "
            "confirm the hash being enacted"
        )


_HASH = re.compile(r"0x[0-9a-f]{64}")


def _normal_hash(value: str) -> str:
    text = value.strip().lower()
    return text if text.startswith("0x") else f"0x{text}"


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    summary: str  # first line of the message
    message: str  # the whole message, summary included
    labels: tuple[str, ...] = ()  # labels of the pull request that brought the commit


@dataclass(frozen=True)
class FreezeRule:
    """Which commits may land after the freeze tag: bugfixes, and named exceptions."""

    prefixes: tuple[str, ...] = ("fix:", "fix(")
    trailers: tuple[str, ...] = ("Fixes:",)
    exception_labels: tuple[str, ...] = ()
    exception_prefixes: tuple[str, ...] = ()


def freeze_violations(commits: Sequence[CommitInfo], rule: FreezeRule) -> list[CommitInfo]:
    """Commits after the freeze tag that are neither bugfixes nor named exceptions, in order."""
    return [commit for commit in commits if not _allowed_after_freeze(commit, rule)]


def _allowed_after_freeze(commit: CommitInfo, rule: FreezeRule) -> bool:
    summary = commit.summary.strip()
    if summary.startswith(rule.prefixes + rule.exception_prefixes):
        return True
    if set(commit.labels) & set(rule.exception_labels):
        return True
    keys = tuple(trailer.lower() for trailer in rule.trailers)
    return any(
        line.lower().startswith(keys) and line.split(":", 1)[1].strip()
        for line in _trailer_lines(commit.message)
    )


def _trailer_lines(message: str) -> list[str]:
    """Lines of the message's last paragraph, where git puts trailers (never the summary)."""
    paragraphs = [p for p in message.strip().split("\n\n") if p.strip()]
    if len(paragraphs) < 2:
        return []
    return [line.strip() for line in paragraphs[-1].splitlines() if ":" in line]


@dataclass(frozen=True)
class CandidateInfo:
    """The facts of a runtime the preflight compares; also used for the chain's current one."""

    spec_name: str
    spec_version: int
    transaction_version: int
    state_version: int
    apis: Mapping[str, int]  # runtime API id (0x-hex of 8 bytes) -> version
    size: int  # bytes of the blob that goes into :code (compressed)
    api_names: Mapping[str, str] = field(default_factory=dict)  # id -> name, when known


class _RuntimeApi(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def version(self) -> int: ...


class RuntimeVersionLike(Protocol):
    """The shape of `pipeline.artifact.RuntimeVersion` that the preflight reads."""

    @property
    def spec_name(self) -> str: ...
    @property
    def spec_version(self) -> int: ...
    @property
    def transaction_version(self) -> int: ...
    @property
    def system_version(self) -> int: ...
    @property
    def apis(self) -> Sequence[_RuntimeApi]: ...


def candidate_info(version: RuntimeVersionLike, size: int) -> CandidateInfo:
    """A runtime's preflight facts from its decoded version."""
    return CandidateInfo(
        spec_name=version.spec_name,
        spec_version=version.spec_version,
        transaction_version=version.transaction_version,
        state_version=_state_version(version.system_version),
        apis={_api_id(api.id): api.version for api in version.apis},
        size=size,
        api_names={_api_id(api.id): api.name for api in version.apis if api.name},
    )


def chain_info(rpc_version: Mapping[str, Any], size: int) -> CandidateInfo:
    """A runtime's preflight facts from `state_getRuntimeVersion` (camelCase JSON)."""
    system_version = rpc_version.get("systemVersion", rpc_version.get("stateVersion", 0))
    return CandidateInfo(
        spec_name=rpc_version["specName"],
        spec_version=int(rpc_version["specVersion"]),
        transaction_version=int(rpc_version["transactionVersion"]),
        state_version=_state_version(int(system_version)),
        apis={_api_id(api_id): int(version) for api_id, version in rpc_version["apis"]},
        size=size,
    )


def _state_version(system_version: int) -> int:
    """The trie layout: system_version 0 is state V0, every later one keeps V1 (sp-version)."""
    return min(system_version, 1)


def _api_id(value: str) -> str:
    return "0x" + value.lower().removeprefix("0x")


@dataclass(frozen=True)
class Preflight:
    errors: list[str]
    warnings: list[str]

    @property
    def ok(self) -> bool:
        return not self.errors


def preflight(candidate: CandidateInfo, current: CandidateInfo, code_size_limit: int) -> Preflight:
    """Offline checks of a candidate against the chain's runtime, before any upgrade is sent."""
    errors: list[str] = []
    warnings: list[str] = []
    if candidate.spec_name != current.spec_name:
        errors.append(
            f"spec_name {candidate.spec_name!r} differs from the chain's {current.spec_name!r}: "
            "this runtime is for another chain"
        )
    if candidate.spec_version <= current.spec_version:
        errors.append(
            f"spec_version {candidate.spec_version} is not greater than the chain's "
            f"{current.spec_version}: bump spec_version in the runtime"
        )
    if candidate.size > code_size_limit:
        errors.append(
            f"the runtime blob is {candidate.size} bytes, over the chain's limit of "
            f"{code_size_limit}: shrink the runtime"
        )
    if candidate.transaction_version != current.transaction_version:
        warnings.append(
            f"transaction_version changes {current.transaction_version} -> "
            f"{candidate.transaction_version}: wallets and signers must update their encoding"
        )
    if candidate.state_version != current.state_version:
        warnings.append(
            f"state_version changes {current.state_version} -> {candidate.state_version}: "
            "the state trie layout changes; plan the migration"
        )
    names = {**current.api_names, **candidate.api_names}
    for api_id, version in sorted(current.apis.items()):
        label = f"{names[api_id]} ({api_id})" if api_id in names else api_id
        new_version = candidate.apis.get(api_id)
        if new_version is None:
            warnings.append(f"runtime API {label} v{version} is removed: clients using it break")
        elif new_version != version:
            warnings.append(
                f"runtime API {label} changes v{version} -> v{new_version}: check its clients"
            )
    return Preflight(errors, warnings)


def governance_problem(
    governance: str,
    pallets: Collection[str],
    *,
    network: str,
    collective: str | None = None,
    root_dispatch: str | None = None,
) -> str | None:
    """What `network` lacks for the governance its environment names, as one line with the
    fix; None when the chain has it. `root_dispatch` is a `Module.function` call."""
    shown = ", ".join(sorted(pallets))
    has_sudo = "Sudo" in pallets
    if governance == "sudo":
        if has_sudo:
            return None
        return (
            f'{network} has no Sudo pallet, so governance "sudo" cannot upgrade it: set governance'
            f' = "collective" and a [council] naming its collective (pallets: {shown})'
        )
    wanted = [("council.collective", collective)]
    if root_dispatch:
        wanted.append(("council.root_dispatch", root_dispatch.split(".", 1)[0]))
    missing = [f"{name} ({field})" for field, name in wanted if name and name not in pallets]
    if not missing:
        return None
    instead = '; or, as it has Sudo, governance = "sudo"' if has_sudo else ""
    return (
        f"{network} has no pallet {', '.join(missing)}: name its own in [council] "
        f"(pallets: {shown}){instead}"
    )


def check_signer_is_sudo(signer_address: str, sudo_address: str | None) -> str | None:
    """An error if the signer is not the chain's sudo key (compared by public key), else None."""
    from scalecodec.utils.ss58 import ss58_decode  # here: plans import this module, not this

    if sudo_address is None:
        return "the chain has no sudo key: upgrade it through governance instead"
    keys = []
    for address in (signer_address, sudo_address):
        try:
            keys.append(ss58_decode(address).lower().removeprefix("0x"))
        except ValueError:
            return f"{address!r} is not an SS58 address or public key: check the configured keys"
    if keys[0] != keys[1]:
        return (
            f"the signer {signer_address} is not the chain's sudo key {sudo_address}: "
            "configure this environment's sudo key"
        )
    return None


def spec_bump_required(
    runtime_changed: bool, candidate_spec: int, production_spec: int
) -> str | None:
    """The CI gate: a runtime that differs from production's must raise spec_version."""
    if runtime_changed and candidate_spec <= production_spec:
        return (
            f"the runtime changed against production but spec_version is {candidate_spec} "
            f"(production: {production_spec}): bump spec_version to at least {production_spec + 1}"
        )
    return None
