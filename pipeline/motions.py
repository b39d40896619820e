"""A council motion's life on chain: the collective's storage (members, votes, the stored
proposal), the motion's state by pallet_collective's rules, and tracking it head by head until
it is decided. Reads only: what is submitted about a motion is `governance`'s."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

from scalecodec.utils.ss58 import ss58_decode
from substrateinterface.utils.hasher import xxh128

from pipeline import config, devrpc, metadata
from pipeline.chain import CONNECTION_ERRORS, Chain, NewHeads
from pipeline.config import CouncilSettings, Environment
from pipeline.errors import PipelineError
from pipeline.faults import crash_point, pause_point
from pipeline.progress import elapsed, until, waiting
from pipeline.proposal import source_from_motion
from pipeline.upgrade import Method

MotionState = Literal["open", "approved", "disapproved", "expired", "closed"]
IDLE_HEAD_S = 30.0  # no new head for this long on a live chain: the subscription is reopened


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


def public_key(address: str) -> str:
    """The hex public key of an SS58 address, so addresses in any ss58 format compare equal."""
    return str(ss58_decode(address)).lower().removeprefix("0x")


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
class OpenMotion:
    """A motion as the chain holds it while open."""

    index: int
    proposal_hash: str
    proposal: Mapping[str, Any]  # the decoded call
    votes: Mapping[str, Any]  # Voting: index, threshold, ayes, nays, end


def council_settings(env: Environment) -> CouncilSettings:
    if env.council is None:
        raise PipelineError(
            f"environment {env.name} has no [council] table: add one with member_key"
        )
    return env.council


def council_members(chain: Chain, collective: str) -> list[str]:
    members = chain.query(collective, "Members")
    return [str(m) for m in members or []]


def motion_votes(chain: Chain, collective: str, proposal_hash: str) -> dict[str, Any] | None:
    votes = chain.query(collective, "Voting", [proposal_hash])
    return dict(votes) if votes else None


def stored_proposal(chain: Chain, collective: str, proposal_hash: str) -> bytes | None:
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


def find_motion(chain: Chain, which: int | str, collective: str = "Council") -> OpenMotion:
    """An open motion by index, or the newest one (`latest`), with its decoded proposal."""
    hashes = [str(h) for h in chain.query(collective, "Proposals") or []]
    open_motions = {}
    for proposal_hash in hashes:
        votes = motion_votes(chain, collective, proposal_hash)
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
    raw = stored_proposal(chain, collective, found.proposal_hash) or b""
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
    votes = motion_votes(chain, motion.collective, motion.proposal_hash)
    members = tuple(council_members(chain, motion.collective))
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


def _subscribe_heads(env: Environment, chain: Chain) -> NewHeads:
    try:
        return NewHeads(chain.endpoint, connect_timeout=env.connect_timeout)
    except CONNECTION_ERRORS as exc:
        raise PipelineError(
            f"cannot subscribe to new heads of {chain.endpoint}: {exc}; is the node up?"
        ) from exc


def _check_can_advance(env: Environment) -> None:
    if not config.blocks_on_demand(env):
        raise PipelineError(
            f"production of {env.name} makes its own blocks at the chain's pace: "
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
    one block at a time, so the release drives time itself. The chain's `progress` hears the
    wait while it lasts: where the votes stand and the window's end.
    """
    if advance:
        _check_can_advance(env)
    started = time.monotonic()
    idle = IDLE_HEAD_S if advance else max(IDLE_HEAD_S, 5 * env.block_time_estimate)
    with contextlib.ExitStack() as stack:
        heads = stack.enter_context(_subscribe_heads(env, chain))
        status = motion_status(env, chain, motion, deadline_block=deadline_block)
        if on_update is not None:
            on_update(status)
        now_at = stack.enter_context(
            waiting(chain.progress, _voting(status), _window(status, timeout))
        )
        while not status.decided:
            if timeout is not None and time.monotonic() - started > timeout:
                raise PipelineError(
                    f"motion #{motion.index} is still open after {timeout:.0f}s "
                    f"(block #{status.head}, deadline #{status.deadline}): track it again later"
                )
            pause_point("track:between-heads")
            crash_point("track:between-heads")
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
            now_at(_voting(status))
    return status


def _voting(status: MotionStatus) -> str:
    """What tracking waits for, and where the votes stand."""
    return (
        f"motion #{status.index} to be decided ({status.state} at block #{status.head}: "
        f"{len(status.ayes)} aye / {len(status.nays)} nay of {status.threshold} needed)"
    )


def _window(status: MotionStatus, timeout: float | None) -> str:
    """Until when tracking waits: the voting deadline's block (and the caller's timeout)."""
    window = f"until block #{status.deadline}, ~{elapsed(status.seconds_left)} at the block time"
    return window if timeout is None else f"{window}; {until(timeout)}"


# --- the motion `invoke propose` opened, kept for the commands that follow it ------------------
def _record_path(state_dir: Path, env_name: str) -> Path:
    return state_dir / "council" / f"{env_name}.json"


def record_proposed(state_dir: Path, env_name: str, motion: Motion) -> None:
    """Keep the motion `invoke propose` opened, so track/enact/simulate find it by default."""
    record = _record_path(state_dir, env_name)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(motion.as_dict(), indent=1) + "\n")


def recorded_motion(state_dir: Path, env: Environment) -> Motion:
    """The motion `propose` recorded for the environment (read without connecting)."""
    path = _record_path(state_dir, env.name)
    try:
        return Motion.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise PipelineError(
            f"no motion recorded for {env.name} ({path}): run `invoke propose` or pass "
            "--motion INDEX"
        ) from None
    except ValueError as exc:
        raise PipelineError(f"{path} is not JSON ({exc}): delete it and pass --motion") from None


def chosen_motion(state_dir: Path, env: Environment, chain: Chain, which: str) -> Motion:
    """The motion named on the command line (an index or `latest`), else the one `propose`
    recorded."""
    if which:
        return motion_from_chain(env, chain, which)
    return recorded_motion(state_dir, env)
