"""Council upgrades: propose a motion, track its votes live, close and enact it, or fall back.

The production network upgrades through its council (a `pallet_collective` instance). A motion
proposes, by default, `root_dispatch(Utility.batch_all([System.remark(source),
System.authorize_upgrade(code_hash)]))`: the remark names the source the runtime was built from,
so a voter can rebuild it from what the chain alone says, and `root_dispatch` (an environment
setting) lifts the council's origin to Root, which upgrades need. Once approved, the motion is
closed and anyone applies the authorized code. Unapproved at the deadline, the release policy may
force the upgrade through sudo instead.

Every step looks at the chain for its effect before submitting (motion open, upgrade authorized,
code live), and every submission goes through `submission.submit_recorded`, so a resumed release
never submits twice. Decisions (thresholds, motion state, scenarios, the source remark) are pure
functions below; the rest talks to the chain.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal, get_args

from scalecodec.utils.ss58 import ss58_decode
from substrateinterface import Keypair
from substrateinterface.utils.hasher import xxh128

from pipeline import devrpc, diff, keys, metadata, store, upgrade
from pipeline.artifact import RuntimeBlob, blake2_256, dumps_digest
from pipeline.chain import (
    CONNECTION_ERRORS,
    Call,
    Chain,
    NewHeads,
    Receipt,
    compose_nested,
    is_local_endpoint,
)
from pipeline.config import CouncilSettings, Environment
from pipeline.errors import PipelineError
from pipeline.faults import pause_point
from pipeline.policy import (
    FallbackPolicy,
    Preflight,
    chain_info,
    check_signer_is_sudo,
    fallback_decision,
    preflight,
)
from pipeline.project import Project
from pipeline.submission import Recorder, submit_recorded
from pipeline.upgrade import METHODS, Candidate, Method

log = logging.getLogger(__name__)

MotionState = Literal["open", "approved", "disapproved", "expired", "closed"]
Scenario = Literal["approve", "reject", "silent", "split"]
Outcome = Literal["enacted", "fallback", "already-live", "refused", "waiting"]
SCENARIOS: tuple[Scenario, ...] = get_args(Scenario)

SOURCE_MARK = "runtime_source"  # key that tells a pipeline source remark from other remarks
SOURCE_VERSION = 1
SOURCE_FIELDS = ("commit", "tag", "digest", "builder_image")
REMARK_CALLS = frozenset({("System", "remark"), ("System", "remark_with_event")})
AUTHORIZE_CALLS = frozenset(
    {("System", "authorize_upgrade"), ("System", "authorize_upgrade_without_checks")}
)
SET_CODE_CALLS = frozenset({("System", "set_code"), ("System", "set_code_without_checks")})
IDLE_HEAD_S = 30.0  # no new head for this long on a live chain: the subscription is reopened

# Stages under which submissions are journalled (and crash points named: submit:<stage>:…).
STAGE_PROPOSE, STAGE_VOTE, STAGE_CLOSE = "propose", "vote", "close"
STAGE_APPLY, STAGE_SUDO = "apply-upgrade", "sudo-fallback"


# --- pure decisions -------------------------------------------------------------------------------
def source_remark(digest: Mapping[str, Any]) -> str:
    """The remark a motion carries: where the runtime came from, as small canonical JSON.

    `digest` is the blake2-256 of the artifact's digest.json in its canonical form, so equal
    sources give equal remarks and therefore the same proposal hash.
    """
    builder = digest.get("builder")
    source = {
        SOURCE_MARK: SOURCE_VERSION,
        "commit": digest.get("commit"),
        "tag": digest.get("tag"),
        "digest": blake2_256(dumps_digest(digest).encode()),
        "builder_image": builder.get("image") if isinstance(builder, Mapping) else None,
    }
    return json.dumps(source, sort_keys=True, separators=(",", ":"))


def parse_source_remark(data: bytes) -> dict[str, Any] | None:
    """The source named by a remark written by `source_remark`; None for any other remark."""
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(value, dict) or value.get(SOURCE_MARK) != SOURCE_VERSION:
        return None
    if any(name not in value for name in SOURCE_FIELDS):
        return None
    return {name: value[name] for name in SOURCE_FIELDS}


def value_bytes(value: Any) -> bytes:
    """A decoded `Vec<u8>` as bytes (substrate-interface gives text if it is UTF-8, else 0x-hex)."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, list):
        return bytes(value)
    if isinstance(value, str):
        if value.startswith("0x"):
            with contextlib.suppress(ValueError):
                return bytes.fromhex(value[2:])
        return value.encode()
    raise PipelineError(f"cannot read {type(value).__name__} as bytes: not a Vec<u8> value")


def call_args(call: Mapping[str, Any]) -> dict[str, Any]:
    """Arguments of a decoded call by name (substrate-interface lists them as name/value)."""
    args = call.get("call_args", {})
    if isinstance(args, Mapping):
        return dict(args)
    return {arg["name"]: arg["value"] for arg in args}


def walk_calls(call: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The call and every call nested in its arguments (batches, dispatch wrappers), depth first."""
    yield call
    for value in call_args(call).values():
        nested = value if isinstance(value, list) else [value]
        for item in nested:
            if isinstance(item, Mapping) and "call_function" in item:
                yield from walk_calls(item)


def source_from_motion(proposal: Mapping[str, Any]) -> dict[str, Any]:
    """What a voter needs to rebuild a proposal's runtime, read from the decoded proposal alone:
    {commit, tag, digest, builder_image, code_hash, method}."""
    sources: list[dict[str, Any]] = []
    upgrades: list[tuple[Method, str]] = []
    for call in walk_calls(proposal):
        name = (call.get("call_module"), call.get("call_function"))
        args = call_args(call)
        if name in REMARK_CALLS:
            source = parse_source_remark(value_bytes(args.get("remark", b"")))
            if source is not None:
                sources.append(source)
        elif name in AUTHORIZE_CALLS:
            upgrades.append(("authorize", "0x" + value_bytes(args["code_hash"]).hex()))
        elif name in SET_CODE_CALLS:
            upgrades.append(("set_code", blake2_256(value_bytes(args["code"]))))
    if len(upgrades) != 1:
        found = "no runtime upgrade" if not upgrades else f"{len(upgrades)} runtime upgrades"
        raise PipelineError(
            f"the motion's proposal holds {found}: it is not a single runtime upgrade; "
            "check the motion index"
        )
    if len(sources) != 1:
        raise PipelineError(
            "the motion's proposal carries no source remark of this pipeline: its source cannot "
            "be read from the chain; ask the proposer for the commit and digest"
            if not sources
            else "the motion's proposal carries several source remarks: it is ambiguous"
        )
    method, code_hash = upgrades[0]
    return {**sources[0], "code_hash": code_hash, "method": method}


def majority(members: int) -> int:
    """A simple majority: more than half of the seats."""
    return members // 2 + 1


def effective_threshold(configured: int | None, members: int, collective: str, env: str) -> int:
    """Ayes a motion needs: the configured number, or a simple majority of the members."""
    if members == 0:
        raise PipelineError(f"{collective} has no members: nobody could vote on a motion")
    threshold = majority(members) if configured is None else configured
    if threshold > members:
        raise PipelineError(
            f"council threshold {threshold} is above the {members} members of {collective}: "
            f"lower council.threshold in environments/{env}.toml"
        )
    if threshold < 2:
        raise PipelineError(
            f"a threshold of {threshold} makes {collective}.propose execute the proposal at once, "
            f"without a vote: set council.threshold to 2 or more in environments/{env}.toml"
        )
    return threshold


def motion_state(
    *, ayes: int, nays: int, threshold: int, members: int, head: int, deadline: int
) -> MotionState:
    """Where an open motion stands, by pallet_collective's own rules for an early close."""
    if ayes >= threshold:
        return "approved"
    if members - nays < threshold:
        return "disapproved"
    if head >= deadline:
        return "expired"
    return "open"


def scenario_votes(
    scenario: Scenario, members: Sequence[str], threshold: int
) -> list[tuple[str, bool]]:
    """Who votes how in a simulated council: (member, approve) in member order.

    approve: just enough ayes; reject: everyone nay; silent: nobody; split: ayes one short of
    the threshold and one nay, so the motion stays open until its deadline with a nay on it.
    """
    if scenario == "approve":
        return [(m, True) for m in members[:threshold]]
    if scenario == "reject":
        return [(m, False) for m in members]
    if scenario == "silent":
        return []
    if scenario == "split":
        ayes = max(threshold - 1, 0)
        return [(m, True) for m in members[:ayes]] + [(m, False) for m in members[ayes : ayes + 1]]
    raise PipelineError(f"unknown scenario {scenario!r}: use one of {', '.join(SCENARIOS)}")


def public_key(address: str) -> str:
    """The hex public key of an SS58 address, so addresses in any ss58 format compare equal."""
    return str(ss58_decode(address)).lower().removeprefix("0x")


# --- data -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Motion:
    """A council motion for one runtime: what the ledger stores between stages (see as_dict)."""

    collective: str
    index: int
    proposal_hash: str
    code_hash: str
    method: Method
    threshold: int
    end: int  # the block from which the pallet lets anyone close it
    length_bound: int
    proposed_block: int | None  # None when found already open (not proposed by this call)
    reused: bool  # it was already open: nothing was submitted
    note: str | None = None  # the proposal note written for voters

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Motion:
        names = {f.name for f in fields(cls)}
        missing = names - set(data) - {"note"}
        if missing:
            raise PipelineError(
                f"motion record lacks {', '.join(sorted(missing))}: it was not written by "
                "Motion.as_dict; propose again"
            )
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class MotionStatus:
    """A motion's votes at one block; `decided` once tracking may stop."""

    collective: str
    index: int
    proposal_hash: str
    state: MotionState
    threshold: int
    ayes: tuple[str, ...]
    nays: tuple[str, ...]
    members: tuple[str, ...]
    head: int
    end: int
    deadline: int
    block_time: float

    @property
    def not_voted(self) -> tuple[str, ...]:
        voted = {public_key(a) for a in (*self.ayes, *self.nays)}
        return tuple(m for m in self.members if public_key(m) not in voted)

    @property
    def decided(self) -> bool:
        return self.state != "open"

    @property
    def closable(self) -> bool:
        """pallet_collective closes early when decided, otherwise only from its end block."""
        return self.state in ("approved", "disapproved") or (
            self.state != "closed" and self.head >= self.end
        )

    @property
    def blocks_left(self) -> int:
        return max(0, self.deadline - self.head)

    @property
    def seconds_left(self) -> float:
        return self.blocks_left * self.block_time

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "not_voted": list(self.not_voted),
            "closable": self.closable,
            "blocks_left": self.blocks_left,
            "seconds_left": self.seconds_left,
        }


@dataclass(frozen=True)
class EnactResult:
    """What `enact` did, and why: the release report shows it."""

    outcome: Outcome
    reason: str
    code_hash: str
    motion_index: int
    policy: str
    ayes: tuple[str, ...] = ()
    nays: tuple[str, ...] = ()
    not_voted: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()  # what was submitted, in order, with its block
    upgraded_in_block: int | None = None
    spec_version: int | None = None  # live after the upgrade

    @property
    def ok(self) -> bool:
        return self.outcome in ("enacted", "fallback", "already-live")

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


@dataclass(frozen=True)
class Vote:
    member: str
    approve: bool
    submitted: bool  # False when the member had already voted that way


@dataclass(frozen=True)
class OpenMotion:
    """A motion as the chain holds it while open."""

    index: int
    proposal_hash: str
    proposal: Mapping[str, Any]  # the decoded call
    votes: Mapping[str, Any]  # Voting: index, threshold, ayes, nays, end


# --- artifacts and connections --------------------------------------------------------------------
def load_candidate(project: Project, ref: str) -> Candidate:
    """An artifact by code hash (`artifacts/<hash>/`), directory or blob path, whose digest.json
    is readable (checked first: voters need the build's source facts)."""
    path = store.resolve_artifact(project, ref)
    store.read_digest(path)
    return upgrade.load_candidate(path)


def council_settings(env: Environment) -> CouncilSettings:
    if env.council is None:
        raise PipelineError(
            f"environment {env.name} has no [council] table: add one with member_key"
        )
    return env.council


def _network_name(env: Environment) -> str:
    return env.networks["production"].name


def _members(chain: Chain, collective: str) -> list[str]:
    members = chain.query(collective, "Members")
    return [str(m) for m in members or []]


def _voting(chain: Chain, collective: str, proposal_hash: str) -> dict[str, Any] | None:
    votes = chain.query(collective, "Voting", [proposal_hash])
    return dict(votes) if votes else None


def _raw_proposal(chain: Chain, collective: str, proposal_hash: str) -> bytes | None:
    """The encoded proposal (`ProposalOf` is an Identity-hashed map of the proposal hash)."""
    prefix: bytes = xxh128(collective.encode()) + xxh128(b"ProposalOf")
    return chain.storage("0x" + prefix.hex() + proposal_hash.removeprefix("0x"))


def proposal_weight_bound(chain: Chain, collective: str) -> dict[str, int]:
    """The weight bound `close` declares: the collective's MaxProposalWeight, which `propose`
    already held every open proposal to (the unused part is refunded after dispatch)."""
    bound = metadata.chain_metadata(chain).constant(collective, "MaxProposalWeight")
    if not isinstance(bound, Mapping):
        raise PipelineError(
            f"{collective} has no MaxProposalWeight constant: is it a pallet_collective instance "
            "(council.collective)?"
        )
    return {"ref_time": int(bound["ref_time"]), "proof_size": int(bound["proof_size"])}


def _failures(chain: Chain, receipt: Receipt) -> list[str]:
    """Dispatch errors reported inside a successful extrinsic (motion, sudo, root dispatch)."""
    found = []
    for event in receipt.events:
        attributes = event.attributes if isinstance(event.attributes, Mapping) else {}
        for key in ("result", "sudo_result"):
            result = attributes.get(key)
            if isinstance(result, Mapping) and "Err" in result:
                error = chain.dispatch_error(result["Err"])
                found.append(f"{event.module}.{event.name}: {error}")
    return found


def _code_updated(receipt: Receipt) -> bool:
    return bool(receipt.find("System", "CodeUpdated"))


# --- propose --------------------------------------------------------------------------------------
def upgrade_proposal(
    settings: CouncilSettings, candidate: Candidate, method: Method
) -> tuple[Call, str]:
    """The call the council votes on, and the source remark inside it."""
    if method not in METHODS:
        raise PipelineError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    remark = source_remark(candidate.digest)
    upgrade = (
        Call("System", "authorize_upgrade", {"code_hash": candidate.code_hash})
        if method == "authorize"
        else Call("System", "set_code", {"code": "0x" + candidate.blob.raw.hex()})
    )
    batch = Call(
        "Utility",
        "batch_all",
        {"calls": [Call("System", "remark", {"remark": "0x" + remark.encode().hex()}), upgrade]},
    )
    if not settings.root_dispatch:
        return batch, remark
    module, function = settings.root_dispatch.split(".", 1)
    return Call(module, function, {"call": batch}), remark


def check_preflight(chain: Chain, candidate: Candidate, method: Method) -> Preflight:
    """deploy's preflight against the chain's runtime. With set_code the blob rides in the
    motion itself, a normal-class extrinsic, so it must also fit that class's block length."""
    block_length = metadata.chain_metadata(chain).constant("System", "BlockLength")
    limit = upgrade.code_size_limit(block_length)
    if method == "set_code" and isinstance(block_length, Mapping):
        normal = block_length.get("max", {}).get("normal")
        if isinstance(normal, int):
            limit = min(limit, normal - upgrade.CODE_SIZE_OVERHEAD)
    result = preflight(
        candidate.info, chain_info(chain.runtime_version(), len(chain.code())), limit
    )
    if not result.ok:
        raise PipelineError(
            f"preflight refused {candidate.code_hash} against {chain.endpoint}: "
            + "; ".join(result.errors)
        )
    return result


def propose(
    env: Environment,
    chain: Chain,
    candidate: Candidate,
    *,
    method: Method = "authorize",
    note_path: Path | None = None,
    recorder: Recorder | None = None,
) -> Motion:
    """Open the council motion for `candidate`, or find the one already open for it.

    Refuses (nothing submitted) when the proposer is no member, the threshold cannot be met,
    the preflight fails, or the upgrade is already authorized or live.
    """
    settings = council_settings(env)
    collective = settings.collective
    proposer = keys.signer(env, "council")
    members = _members(chain, collective)
    if public_key(proposer.ss58_address) not in {public_key(m) for m in members}:
        raise PipelineError(
            f"{proposer.ss58_address} is not a member of {collective} on {chain.endpoint} "
            f"(members: {', '.join(members) or 'none'}): set council.member_key of "
            f"environment {env.name} to a councillor's key"
        )
    threshold = effective_threshold(settings.threshold, len(members), collective, env.name)
    if candidate.digest.get("dirty") and not env.local:
        raise PipelineError(
            f"{candidate.code_hash} was built from uncommitted changes: voters cannot rebuild "
            "it from a commit; commit them and build again"
        )
    if chain.code_hash() == candidate.code_hash:
        raise PipelineError(
            f"{chain.endpoint} already runs {candidate.code_hash}: there is nothing to propose"
        )
    if metadata.authorized_upgrade(chain) == candidate.code_hash:
        raise PipelineError(
            f"{candidate.code_hash} is already authorized on {chain.endpoint}: "
            "apply it with `invoke enact`"
        )
    checked = check_preflight(chain, candidate, method)
    proposal, remark = upgrade_proposal(settings, candidate, method)
    try:
        composed = compose_nested(chain, proposal)
    except PipelineError as exc:
        raise PipelineError(
            f"{exc}; check council.root_dispatch ({settings.root_dispatch or 'unset'}) "
            f"of environment {env.name} against the runtime"
        ) from exc
    data = bytes(composed.data.data)
    proposal_hash = blake2_256(data)
    votes = _voting(chain, collective, proposal_hash)
    proposed_block = None
    if votes is None:
        log.info("proposing %s to %s (threshold %d)", candidate.code_hash, collective, threshold)
        receipt = submit_recorded(
            chain,
            Call(
                collective,
                "propose",
                {"threshold": threshold, "proposal": composed, "length_bound": len(data)},
            ),
            proposer,
            recorder=recorder,
            stage=STAGE_PROPOSE,
            network=_network_name(env),
            summary=f"{collective}.propose {method} {candidate.code_hash}",
        )
        proposed = [
            e
            for e in receipt.find(collective, "Proposed")
            if str(e.attributes["proposal_hash"]) == proposal_hash
        ]
        if not proposed:
            raise PipelineError(
                f"{collective}.propose was included in block #{receipt.block_number} without "
                f"opening motion {proposal_hash}: inspect that block"
            )
        proposed_block = receipt.block_number
        votes = _voting(chain, collective, proposal_hash)
        if votes is None:
            raise PipelineError(f"motion {proposal_hash} vanished right after it was proposed")
    else:
        log.info("motion #%s for %s is already open: reusing it", votes["index"], proposal_hash)
    motion = Motion(
        collective=collective,
        index=int(votes["index"]),
        proposal_hash=proposal_hash,
        code_hash=candidate.code_hash,
        method=method,
        threshold=int(votes["threshold"]),
        end=int(votes["end"]),
        length_bound=len(data),
        proposed_block=proposed_block,
        reused=proposed_block is None,
        note=str(note_path) if note_path else None,
    )
    if note_path is not None:
        note_path.parent.mkdir(parents=True, exist_ok=True)
        note_path.write_text(
            proposal_note(
                env_name=env.name,
                motion=motion,
                candidate=candidate,
                changes=_diff_lines(chain, candidate),
                warnings=checked.warnings,
                remark=remark,
                members=len(members),
                block_time=env.block_time_estimate,
            )
        )
    return motion


def _diff_lines(chain: Chain, candidate: Candidate) -> list[str]:
    """`invoke diff` of production's code against the candidate, for the voters' note."""
    production = diff.Runtime(
        f"production ({chain.endpoint})", RuntimeBlob.from_bytes(chain.code()), None
    )
    proposed = diff.Runtime("candidate", candidate.blob, candidate.path)
    before, after = diff.summaries([production, proposed])
    return diff.render(production.label, proposed.label, before, after)


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def proposal_note(
    *,
    env_name: str,
    motion: Motion,
    candidate: Candidate,
    changes: Sequence[str],
    warnings: Sequence[str],
    remark: str,
    members: int,
    block_time: float,
) -> str:
    """Markdown for voters: what is proposed, where it came from, how to reproduce it."""
    digest = candidate.digest
    builder = _table(digest, "builder")
    toolchain = _table(builder, "toolchain")
    options = _table(_table(digest, "reproducibility"), "build_options")
    version = candidate.blob.version
    commit = digest.get("commit") or "(unknown)"
    how = (
        "`System.authorize_upgrade(code_hash)`; once approved anyone applies the code with "
        "`System.apply_authorized_upgrade`"
        if motion.method == "authorize"
        else "`System.set_code(code)` with the runtime inline"
    )
    lines = [
        f"# Runtime upgrade proposal: {version.spec_name} spec_version {version.spec_version}",
        "",
        f"Motion #{motion.index} on {motion.collective} ({env_name}), "
        f"proposal hash `{motion.proposal_hash}`.",
        f"It needs {motion.threshold} of {members} ayes; the council can close it from block "
        f"#{motion.end} (about {block_time:g}s per block).",
        "",
        "## What is proposed",
        f"- Code hash (blake2-256 of the compressed runtime): `{candidate.code_hash}`",
        f"- Upgrade: {how}",
        f"- Size: {candidate.blob.size:,} bytes compressed",
        f"- Source remark in the proposal: `{remark}`",
        "",
        "## Where it came from",
        f"- Commit: `{commit}`" + (" (dirty: uncommitted changes)" if digest.get("dirty") else ""),
        f"- Tag: `{digest.get('tag') or '(none)'}`, branch: `{digest.get('branch') or '(none)'}`",
        f"- Builder image: `{builder.get('image', '(unknown)')}`",
        f"- rustc: `{digest.get('rustc', '(unknown)')}`",
    ]
    lines += [f"- {name}: `{value}`" for name, value in sorted(toolchain.items())]
    lines += [f"- Build option {name}: `{value}`" for name, value in sorted(options.items())]
    lines += [
        f"- digest.json blake2-256: `{blake2_256(dumps_digest(digest).encode())}`",
        "",
        "## Reproduce the hash",
        "```",
        f"invoke verify --ref {commit} --expect {candidate.code_hash}",
        "```",
        f"or from the chain alone: `invoke verify --env {env_name} --motion {motion.index}` "
        "(reads the commit from the motion's remark, rebuilds it and compares).",
        "",
        "## Against production (`invoke diff`)",
        "```",
        *changes,
        "```",
    ]
    lines += [f"- warning: {warning}" for warning in warnings]
    return "\n".join(lines) + "\n"


# --- motions on chain -----------------------------------------------------------------------------
def find_motion(chain: Chain, which: int | str, collective: str = "Council") -> OpenMotion:
    """An open motion by index, or the newest one (`latest`), with its decoded proposal."""
    hashes = [str(h) for h in chain.query(collective, "Proposals") or []]
    open_motions = {}
    for proposal_hash in hashes:
        votes = _voting(chain, collective, proposal_hash)
        if votes is not None:
            open_motions[int(votes["index"])] = (proposal_hash, votes)
    if not open_motions:
        raise PipelineError(
            f"no open motion on {collective} at {chain.endpoint}: propose one, or check --env"
        )
    if which == "latest":
        index = max(open_motions)
    else:
        try:
            index = int(which)
        except ValueError:
            raise PipelineError(
                f"motion {which!r} is not an index: pass a number or 'latest'"
            ) from None
        if index not in open_motions:
            listed = ", ".join(f"#{i}" for i in sorted(open_motions))
            raise PipelineError(
                f"no open motion #{index} on {collective} at {chain.endpoint} (open: {listed}): "
                "closed motions leave the chain; pass an open one"
            )
    proposal_hash, votes = open_motions[index]
    proposal = chain.query(collective, "ProposalOf", [proposal_hash])
    if proposal is None:
        raise PipelineError(f"motion #{index} has no proposal stored: the chain is inconsistent")
    return OpenMotion(index, proposal_hash, proposal, votes)


def motion_from_chain(env: Environment, chain: Chain, which: int | str) -> Motion:
    """A Motion for an open motion proposed by anyone (the ledger's copy is preferred)."""
    collective = council_settings(env).collective
    found = find_motion(chain, which, collective)
    source = source_from_motion(found.proposal)
    raw = _raw_proposal(chain, collective, found.proposal_hash) or b""
    return Motion(
        collective=collective,
        index=found.index,
        proposal_hash=found.proposal_hash,
        code_hash=source["code_hash"],
        method=source["method"],
        threshold=int(found.votes["threshold"]),
        end=int(found.votes["end"]),
        length_bound=len(raw),
        proposed_block=None,
        reused=True,
    )


def voting_deadline(env: Environment, motion: Motion, deadline_block: int | None = None) -> int:
    """The block at which voting counts as over for the fallback: given, else the proposal block
    plus council.voting_blocks, else the motion's end."""
    if deadline_block is not None:
        return deadline_block
    blocks = council_settings(env).voting_blocks
    if blocks is not None and motion.proposed_block is not None:
        return motion.proposed_block + blocks
    return motion.end


def motion_status(
    env: Environment, chain: Chain, motion: Motion, *, deadline_block: int | None = None
) -> MotionStatus:
    """The motion's votes and state at the current head."""
    head = chain.block_number()
    votes = _voting(chain, motion.collective, motion.proposal_hash)
    members = tuple(_members(chain, motion.collective))
    deadline = voting_deadline(env, motion, deadline_block)
    if votes is None:
        return MotionStatus(
            motion.collective,
            motion.index,
            motion.proposal_hash,
            "closed",
            motion.threshold,
            (),
            (),
            members,
            head,
            motion.end,
            deadline,
            env.block_time_estimate,
        )
    ayes = tuple(str(a) for a in votes["ayes"])
    nays = tuple(str(n) for n in votes["nays"])
    threshold, end = int(votes["threshold"]), int(votes["end"])
    state = motion_state(
        ayes=len(ayes),
        nays=len(nays),
        threshold=threshold,
        members=len(members),
        head=head,
        deadline=deadline,
    )
    return MotionStatus(
        motion.collective,
        int(votes["index"]),
        motion.proposal_hash,
        state,
        threshold,
        ayes,
        nays,
        members,
        head,
        end,
        deadline,
        env.block_time_estimate,
    )


# --- tracking -------------------------------------------------------------------------------------
def _subscribe_heads(env: Environment, chain: Chain) -> NewHeads:
    try:
        return NewHeads(chain.endpoint, connect_timeout=env.connect_timeout)
    except CONNECTION_ERRORS as exc:
        raise PipelineError(
            f"cannot subscribe to new heads of {chain.endpoint}: {exc}; is the node up?"
        ) from exc


def _check_can_advance(env: Environment) -> None:
    if not env.local:
        raise PipelineError(
            f"environment {env.name} is not local: its blocks come at the chain's own pace; "
            "track without advancing"
        )


def track(
    env: Environment,
    chain: Chain,
    motion: Motion,
    *,
    deadline_block: int | None = None,
    advance: bool = False,
    on_update: Callable[[MotionStatus], None] | None = None,
    timeout: float | None = None,
) -> MotionStatus:
    """Follow the motion head by head until it is decided (approved, disapproved, expired at
    the deadline, or closed); `on_update` sees every change. On a local network `advance` makes
    one block at a time, so the release drives time itself.
    """
    if advance:
        _check_can_advance(env)
    started = time.monotonic()
    idle = IDLE_HEAD_S if advance else max(IDLE_HEAD_S, 5 * env.block_time_estimate)
    with _subscribe_heads(env, chain) as heads:
        status = motion_status(env, chain, motion, deadline_block=deadline_block)
        if on_update is not None:
            on_update(status)
        while not status.decided:
            if timeout is not None and time.monotonic() - started > timeout:
                raise PipelineError(
                    f"motion #{motion.index} is still open after {timeout:.0f}s "
                    f"(block #{status.head}, deadline #{status.deadline}): track it again later"
                )
            pause_point("track:between-heads")
            try:
                if advance:
                    devrpc.produce_blocks(chain.endpoint, 1)
                heads.next(idle)  # None after a quiet spell or a reconnect: read the state anyway
                current = motion_status(env, chain, motion, deadline_block=deadline_block)
            except PipelineError as exc:
                raise PipelineError(
                    f"tracking motion #{motion.index} stopped at block #{status.head}: {exc}"
                ) from exc
            if on_update is not None and current != status:
                on_update(current)
            status = current
    return status


# --- local councillors ----------------------------------------------------------------------------
def require_simulation_allowed(env: Environment, endpoint: str | None = None) -> None:
    """Only local environments (and loopback nodes) have councillors the pipeline may vote for."""
    if not env.local or (endpoint is not None and not is_local_endpoint(endpoint)):
        raise PipelineError(
            f"council.simulate votes with dev councillors, only on local environments: "
            f"{env.name} is not local, its councillors vote themselves"
        )


def simulate_votes(
    env: Environment,
    chain: Chain,
    motion: Motion,
    scenario: Scenario,
    *,
    recorder: Recorder | None = None,
) -> list[Vote]:
    """Make the local dev councillors vote as `scenario` says; refused on non-local chains."""
    require_simulation_allowed(env, chain.endpoint)
    votes = _voting(chain, motion.collective, motion.proposal_hash)
    if votes is None:
        raise PipelineError(
            f"motion #{motion.index} ({motion.proposal_hash}) is not open on {chain.endpoint}: "
            "propose it first"
        )
    members = _members(chain, motion.collective)
    dev = {
        kp.public_key.hex(): kp
        for kp in (keys.dev_keypair(env, name) for name in keys.DEV_ACCOUNTS)
    }
    ayes = {public_key(str(a)) for a in votes["ayes"]}
    nays = {public_key(str(n)) for n in votes["nays"]}
    cast = []
    for member, approve in scenario_votes(scenario, members, int(votes["threshold"])):
        keypair = dev.get(public_key(member))
        if keypair is None:
            raise PipelineError(
                f"{member} of {motion.collective} is not a dev account: council.simulate can "
                "only vote for dev councillors (//Alice …)"
            )
        if public_key(member) in (ayes if approve else nays):
            cast.append(Vote(member, approve, submitted=False))
            continue
        submit_recorded(
            chain,
            Call(
                motion.collective,
                "vote",
                {"proposal": motion.proposal_hash, "index": motion.index, "approve": approve},
            ),
            keypair,
            recorder=recorder,
            stage=STAGE_VOTE,
            network=_network_name(env),
            summary=f"{motion.collective}.vote #{motion.index} {'aye' if approve else 'nay'}",
        )
        cast.append(Vote(member, approve, submitted=True))
    return cast


# --- enact ----------------------------------------------------------------------------------------
def _live_block(env: Environment, chain: Chain, candidate: Candidate, produce: bool) -> None:
    """When the head is the block that set the candidate's code (an earlier run stopped right
    after submitting), wait for the next one: new code runs its migrations there, not before."""
    head = chain.block_number()
    if head > 0 and chain.code_hash(chain.block_hash(head - 1)) != candidate.code_hash:
        upgrade.next_block(chain, head, produce, env.inclusion_timeout)


def check_live(chain: Chain, candidate: Candidate) -> int:
    """deploy's post-upgrade checks at the head; the live spec_version, or raise."""
    live = upgrade.check_live(chain, candidate)
    if live.problems:
        raise PipelineError(f"{chain.endpoint} at block #{live.head}: " + "; ".join(live.problems))
    return live.spec_version


def _apply_authorized(
    env: Environment,
    chain: Chain,
    candidate: Candidate,
    signer: Keypair,
    recorder: Recorder | None,
) -> Receipt:
    receipt = submit_recorded(
        chain,
        Call("System", "apply_authorized_upgrade", {"code": "0x" + candidate.blob.raw.hex()}),
        signer,
        recorder=recorder,
        stage=STAGE_APPLY,
        network=_network_name(env),
        summary=f"System.apply_authorized_upgrade {candidate.code_hash}",
    )
    rejected = receipt.find("System", "RejectedInvalidAuthorizedUpgrade")
    if rejected:
        error = chain.dispatch_error(rejected[0].attributes.get("error"))
        raise PipelineError(
            f"the chain rejected authorized upgrade {candidate.code_hash} in block "
            f"#{receipt.block_number} ({error}) and dropped the authorization: build a runtime "
            "with a higher spec_version and propose again"
        )
    if not _code_updated(receipt):
        raise PipelineError(
            f"System.apply_authorized_upgrade in block #{receipt.block_number} emitted no "
            "System.CodeUpdated: inspect that block"
        )
    return receipt


def _close(
    env: Environment,
    chain: Chain,
    motion: Motion,
    signer: Keypair,
    recorder: Recorder | None,
) -> Receipt:
    raw = _raw_proposal(chain, motion.collective, motion.proposal_hash)
    if raw is None:
        raise PipelineError(f"motion #{motion.index} has no stored proposal: it closed meanwhile")
    receipt = submit_recorded(
        chain,
        Call(
            motion.collective,
            "close",
            {
                "proposal_hash": motion.proposal_hash,
                "index": motion.index,
                "proposal_weight_bound": proposal_weight_bound(chain, motion.collective),
                "length_bound": len(raw),
            },
        ),
        signer,
        recorder=recorder,
        stage=STAGE_CLOSE,
        network=_network_name(env),
        summary=f"{motion.collective}.close #{motion.index}",
    )
    failures = _failures(chain, receipt)
    if failures:
        hint = (
            "set council.root_dispatch so the proposal runs as Root"
            if not council_settings(env).root_dispatch and any("BadOrigin" in f for f in failures)
            else "fix the proposal and propose again"
        )
        raise PipelineError(
            f"motion #{motion.index} was approved but its proposal failed in block "
            f"#{receipt.block_number} ({'; '.join(failures)}): {hint}"
        )
    return receipt


def enact(
    env: Environment,
    chain: Chain,
    candidate: Candidate,
    motion: Motion,
    *,
    policy: FallbackPolicy = "no-nays",
    confirm_hash: str | None = None,
    deadline_block: int | None = None,
    recorder: Recorder | None = None,
    produce_blocks: bool | None = None,
) -> EnactResult:
    """Bring `candidate` live: apply an authorized upgrade, close an approved motion and apply
    it, or take the sudo fallback when the policy allows it. Never submits a step whose effect is
    already on chain; returns outcome `refused` or `waiting` (with why) when nothing may be done.

    `produce_blocks` (default: on local environments) makes the block in which new code is live.
    """
    produce = env.local if produce_blocks is None else produce_blocks
    if candidate.code_hash != motion.code_hash:
        raise PipelineError(
            f"motion #{motion.index} is for {motion.code_hash}, the artifact is "
            f"{candidate.code_hash}: pass the artifact the motion proposed"
        )
    result = _Results(candidate.code_hash, motion.index, policy)
    if chain.code_hash() == candidate.code_hash:
        _live_block(env, chain, candidate, produce)
        return result(
            "already-live",
            f"{chain.endpoint} already runs {candidate.code_hash}: nothing to do",
            spec_version=check_live(chain, candidate),
        )
    if metadata.authorized_upgrade(chain) == candidate.code_hash:
        applied = _apply_authorized(env, chain, candidate, keys.signer(env, "council"), recorder)
        upgrade.next_block(chain, applied.block_number, produce, env.inclusion_timeout)
        return result(
            "enacted",
            f"{candidate.code_hash} was already authorized: applied it",
            steps=(f"System.apply_authorized_upgrade in block #{applied.block_number}",),
            upgraded_in_block=applied.block_number,
            spec_version=check_live(chain, candidate),
        )
    status = motion_status(env, chain, motion, deadline_block=deadline_block)
    if status.state == "closed":
        return result(
            "refused",
            f"motion #{motion.index} is closed but {candidate.code_hash} is neither authorized "
            "nor live: the council rejected it or its proposal failed; propose again",
        )
    result = result.with_votes(status)
    decision = fallback_decision(
        policy,
        # a disapproved motion is decided: the pallet itself lets anyone close it early
        deadline_passed=status.head >= status.deadline or status.state == "disapproved",
        approved=status.state == "approved",
        ayes=status.ayes,
        nays=status.nays,
        members=status.members,
        local=env.local,
        confirm_hash=confirm_hash,
        code_hash=candidate.code_hash,
        has_sudo_key=env.sudo_key is not None,
    )
    if decision.action == "wait":
        return result(
            "waiting",
            f"{decision.reason} (block #{status.head}, deadline #{status.deadline}): "
            "follow it with `invoke track`",
        )
    if decision.action == "refuse":
        return result("refused", decision.reason)
    if decision.action == "sudo":
        return _sudo_fallback(env, chain, candidate, decision.reason, result, recorder, produce)
    council_key = keys.signer(env, "council")  # close and apply: any signed origin will do
    closed = _close(env, chain, motion, council_key, recorder)
    steps = [f"{motion.collective}.close #{motion.index} in block #{closed.block_number}"]
    upgraded = closed
    if motion.method == "authorize":
        if metadata.authorized_upgrade(chain) != candidate.code_hash:
            raise PipelineError(
                f"motion #{motion.index} closed in block #{closed.block_number} but "
                f"{candidate.code_hash} is not authorized: inspect that block's events"
            )
        upgraded = _apply_authorized(env, chain, candidate, council_key, recorder)
        steps.append(f"System.apply_authorized_upgrade in block #{upgraded.block_number}")
    elif not _code_updated(closed):
        raise PipelineError(
            f"motion #{motion.index} closed in block #{closed.block_number} without "
            "System.CodeUpdated: inspect that block"
        )
    upgrade.next_block(chain, upgraded.block_number, produce, env.inclusion_timeout)
    return result(
        "enacted",
        decision.reason,
        steps=tuple(steps),
        upgraded_in_block=upgraded.block_number,
        spec_version=check_live(chain, candidate),
    )


@dataclass(frozen=True)
class _Results:
    """Builds EnactResults sharing the candidate, motion, policy and (once read) the votes."""

    code_hash: str
    motion_index: int
    policy: str
    votes: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] = ((), (), ())

    def with_votes(self, status: MotionStatus) -> _Results:
        return replace(self, votes=(status.ayes, status.nays, status.not_voted))

    def __call__(
        self,
        outcome: Outcome,
        reason: str,
        *,
        steps: tuple[str, ...] = (),
        upgraded_in_block: int | None = None,
        spec_version: int | None = None,
    ) -> EnactResult:
        ayes, nays, not_voted = self.votes
        return EnactResult(
            outcome=outcome,
            reason=reason,
            code_hash=self.code_hash,
            motion_index=self.motion_index,
            policy=self.policy,
            ayes=ayes,
            nays=nays,
            not_voted=not_voted,
            steps=steps,
            upgraded_in_block=upgraded_in_block,
            spec_version=spec_version,
        )


def _sudo_fallback(
    env: Environment,
    chain: Chain,
    candidate: Candidate,
    reason: str,
    result: _Results,
    recorder: Recorder | None,
    produce: bool,
) -> EnactResult:
    sudo = keys.signer(env, "sudo")
    problem = check_signer_is_sudo(sudo.ss58_address, chain.query("Sudo", "Key"))
    if problem is not None:
        return result("refused", f"the sudo fallback is impossible: {problem}")
    set_code = Call("System", "set_code", {"code": "0x" + candidate.blob.raw.hex()})
    receipt = submit_recorded(
        chain,
        Call(
            "Sudo",
            "sudo_unchecked_weight",
            {"call": set_code, "weight": upgrade.UNCHECKED_WEIGHT},  # as deploy does, and why
        ),
        sudo,
        recorder=recorder,
        stage=STAGE_SUDO,
        network=_network_name(env),
        summary=f"Sudo.sudo_unchecked_weight(System.set_code {candidate.code_hash})",
    )
    failures = _failures(chain, receipt)
    if failures or not _code_updated(receipt):
        raise PipelineError(
            f"the sudo fallback in block #{receipt.block_number} did not set the code "
            f"({'; '.join(failures) or 'no System.CodeUpdated'}): inspect that block"
        )
    upgrade.next_block(chain, receipt.block_number, produce, env.inclusion_timeout)
    return result(
        "fallback",
        reason,
        steps=(f"Sudo.sudo_unchecked_weight(System.set_code) in block #{receipt.block_number}",),
        upgraded_in_block=receipt.block_number,
        spec_version=check_live(chain, candidate),
    )
