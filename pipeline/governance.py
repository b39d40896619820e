"""Council upgrades, the actions: propose a motion, vote as local councillors, close and enact
it, or fall back to sudo. The motion's reads and tracking are `motions`', the proposal's codec
(source remark, decoded calls) is `proposal`'s, the voters' dossier `dossier`'s, and the
members' attestations, which may hold back close, enact and fallback, `statements`'.

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
functions; the rest talks to the chain.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal, get_args

from substrateinterface import Keypair

from pipeline import config, dossier, keys, metadata, statements, store, upgrade
from pipeline.artifact import blake2_256
from pipeline.chain import (
    Call,
    Chain,
    Receipt,
    compose_nested,
    is_local_endpoint,
)
from pipeline.config import Environment
from pipeline.errors import PipelineError
from pipeline.motions import (
    Motion,
    MotionStatus,
    council_members,
    council_settings,
    effective_threshold,
    motion_status,
    motion_votes,
    proposal_weight_bound,
    public_key,
    stored_proposal,
)
from pipeline.policy import (
    FallbackPolicy,
    Preflight,
    chain_info,
    check_signer_is_sudo,
    fallback_decision,
    preflight,
)
from pipeline.project import Project
from pipeline.proposal import upgrade_proposal
from pipeline.submission import Recorder, submit_recorded
from pipeline.upgrade import Candidate, Method

log = logging.getLogger(__name__)

Scenario = Literal["approve", "reject", "silent", "split"]
Outcome = Literal["enacted", "fallback", "already-live", "refused", "waiting"]
SCENARIOS: tuple[Scenario, ...] = get_args(Scenario)

# Stages under which submissions are journalled (and crash points named: submit:<stage>:…).
STAGE_PROPOSE, STAGE_VOTE, STAGE_CLOSE = "propose", "vote", "close"
STAGE_APPLY, STAGE_SUDO = "apply-upgrade", "sudo-fallback"


# --- pure decisions -------------------------------------------------------------------------------


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


# --- data -----------------------------------------------------------------------------------------


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
    attestations: Mapping[str, Any] | None = None  # the members' statements, as counted

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


# --- artifacts and connections --------------------------------------------------------------------
def load_candidate(project: Project, ref: str) -> Candidate:
    """An artifact by code hash (`artifacts/<hash>/`), directory or blob path, whose digest.json
    is readable (checked first: voters need the build's source facts)."""
    path = store.resolve_artifact(project, ref)
    store.read_digest(path)
    return upgrade.load_candidate(path, project.preset)


def _network_name(env: Environment) -> str:
    return env.networks["production"].name


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
    checks: Sequence[str] = (),
) -> Motion:
    """Open the council motion for `candidate`, or find the one already open for it.

    `checks`: lines of the migration gate for the voters' dossier (the release passes them).

    Refuses (nothing submitted) when the proposer is no member, the threshold cannot be met,
    the preflight fails, or the upgrade is already authorized or live.
    """
    settings = council_settings(env)
    collective = settings.collective
    proposer = keys.signer(env, "council")
    members = council_members(chain, collective)
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
    voters = dossier.render(
        env_name=env.name,
        candidate=candidate,
        method=method,
        changes=dossier.diff_lines(chain, candidate),
        warnings=checked.warnings,
        checks=checks,
    )
    proposal, remark = upgrade_proposal(settings, candidate, method, blake2_256(voters.encode()))
    try:
        composed = compose_nested(chain, proposal)
    except PipelineError as exc:
        raise PipelineError(
            f"{exc}; check council.root_dispatch ({settings.root_dispatch or 'unset'}) "
            f"of environment {env.name} against the runtime"
        ) from exc
    data = bytes(composed.data.data)
    proposal_hash = blake2_256(data)
    votes = motion_votes(chain, collective, proposal_hash)
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
        votes = motion_votes(chain, collective, proposal_hash)
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
            dossier.proposal_note(
                env_name=env.name,
                motion=motion,
                candidate=candidate,
                dossier=voters,
                remark=remark,
                members=len(members),
                block_time=env.block_time_estimate,
            )
        )
    return motion


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
    votes = motion_votes(chain, motion.collective, motion.proposal_hash)
    if votes is None:
        raise PipelineError(
            f"motion #{motion.index} ({motion.proposal_hash}) is not open on {chain.endpoint}: "
            "propose it first"
        )
    members = council_members(chain, motion.collective)
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


def check_live(env: Environment, chain: Chain, candidate: Candidate, produce: bool) -> int:
    """deploy's post-upgrade checks at the head, once multi-block migrations are over; the live
    spec_version, or raise."""
    upgrade.wait_for_migrations(chain, produce, env.inclusion_timeout)
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
    raw = stored_proposal(chain, motion.collective, motion.proposal_hash)
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

    `produce_blocks` (default: when production makes blocks on demand) makes the block in which
    new code is live.
    """
    produce = config.blocks_on_demand(env) if produce_blocks is None else produce_blocks
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
            spec_version=check_live(env, chain, candidate, produce),
        )
    if metadata.authorized_upgrade(chain) == candidate.code_hash:
        applied = _apply_authorized(env, chain, candidate, keys.signer(env, "council"), recorder)
        upgrade.next_block(chain, applied.block_number, produce, env.inclusion_timeout)
        return result(
            "enacted",
            f"{candidate.code_hash} was already authorized: applied it",
            steps=(f"System.apply_authorized_upgrade in block #{applied.block_number}",),
            upgraded_in_block=applied.block_number,
            spec_version=check_live(env, chain, candidate, produce),
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
    found, blocked = statements.gate(env, chain, motion)  # before close, apply and fallback
    result = replace(result, attestations=found.as_dict())
    if blocked is not None:
        return result("refused" if found.mismatches else "waiting", blocked)
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
        spec_version=check_live(env, chain, candidate, produce),
    )


@dataclass(frozen=True)
class _Results:
    """Builds EnactResults sharing the candidate, motion, policy and (once read) the votes."""

    code_hash: str
    motion_index: int
    policy: str
    votes: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] = ((), (), ())
    attestations: Mapping[str, Any] | None = None

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
            attestations=self.attestations,
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
        spec_version=check_live(env, chain, candidate, produce),
    )
