"""Where a release stands against its plan, and how long the council votes.

Pure functions of a plan (`pipeline.plan`), what the ledger says was done and a clock passed in:
the milestone table (planned versus actual), overdue warnings, failed tests by sub-system owner,
and the voting deadline, counted in blocks on a local network and by the clock elsewhere.

Voting deadline: on a real network the council votes until the later of the Release deadline and
the end of its voting window counted from the proposal, so sudo never cuts the promised window
short; blocks are only an estimate there. On a local network the dates are ignored: the window
becomes one block per started minute, at least 3 and at most 30, which chopsticks makes on demand
in seconds, so `invoke release` completes on its own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from pipeline.errors import PipelineError
from pipeline.ledger import replay
from pipeline.plan import (
    RELEASE_STAGE,
    SUBSYSTEM_STAGE,
    MilestoneState,
    Plan,
    Stage,
    format_when,
)

UNASSIGNED = "(no sub-system)"  # failed tests no sub-system's markers claim
LOCAL_MIN_BLOCKS = 3
LOCAL_MAX_BLOCKS = 30


# --- progress ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MilestoneRow:
    """One line of the live milestones table: planned versus actual."""

    name: str
    stage: Stage
    deadline: datetime
    actual: datetime | None  # when its stage completed, if it did
    manager: str
    team: tuple[str, ...]
    state: MilestoneState
    slip: timedelta | None  # late: actual - deadline; missed: now - deadline; else None


def milestone_state(deadline: datetime, actual: datetime | None, now: datetime) -> MilestoneState:
    """done/late by whether it finished by the deadline; on time/missed by whether it passed."""
    if actual is not None:
        return "done" if actual <= deadline else "late"
    return "on time" if now <= deadline else "missed"


def milestone_table(plan: Plan, done: Mapping[str, datetime], now: datetime) -> list[MilestoneRow]:
    """Every milestone's state, given when each stage finished (`done`) and the time `now`."""
    _require_zone(now, "now")
    rows = []
    for milestone in plan.milestones:
        actual = done.get(milestone.stage)
        if actual is not None:
            _require_zone(actual, f"the completion time of {milestone.stage}")
        state = milestone_state(milestone.deadline, actual, now)
        slip = None
        if state == "late" and actual is not None:
            slip = actual - milestone.deadline
        elif state == "missed":
            slip = now - milestone.deadline
        rows.append(
            MilestoneRow(
                name=milestone.name,
                stage=milestone.stage,
                deadline=milestone.deadline,
                actual=actual,
                manager=milestone.manager,
                team=milestone.team,
                state=state,
                slip=slip,
            )
        )
    return rows


def overdue_warnings(plan: Plan, done: Mapping[str, datetime], now: datetime) -> list[str]:
    """One line per missed milestone: who must report the slip, and by how much it slipped."""
    return [
        f"milestone {row.name!r} ({row.stage}) missed its deadline {format_when(row.deadline)} "
        f"by {format_span(row.slip or timedelta(0))}: {row.manager} "
        f"(team {', '.join(row.team)}) should report the slip and set a new date"
        for row in milestone_table(plan, done, now)
        if row.state == "missed"
    ]


def done_from_ledger(
    records: Sequence[Mapping[str, Any]], where: str = "ledger"
) -> dict[str, datetime]:
    """When each completed stage finished, from a release's ledger records.

    A stage done more than once counts from its latest completion, as `ledger.replay` keeps its
    latest result: that run is the one the release goes on with.
    """
    state = replay(records, where)  # refuses a journal that contradicts itself
    finished: dict[str, datetime] = {}
    for line, record in enumerate(records, start=1):
        if record.get("type") != "stage_done" or record.get("stage") not in state.done:
            continue
        at = record.get("at")
        try:
            when = datetime.fromisoformat(str(at))
        except ValueError:
            when = None
        if when is None or when.tzinfo is None:
            raise PipelineError(
                f"{where} line {line}: stage_done has no zoned `at` time ({at!r}): "
                "the record was not written by the ledger; restore the journal"
            )
        finished[str(record["stage"])] = when
    return finished


class Outstanding(NamedTuple):
    owner: str
    tests: list[str]  # pytest node ids, in the order they failed


def outstanding_by_subsystem(
    plan: Plan, failed_tests: Iterable[tuple[str, Iterable[str]]]
) -> dict[str, Outstanding]:
    """Failed tests (node id, markers) grouped by the sub-system owning a marker, plan order.

    A test marked for several sub-systems is outstanding for each; one no sub-system claims goes
    under UNASSIGNED, owned by the manager of the Sub-system Test milestone (else the Release's).
    """
    failed = [(nodeid, set(markers)) for nodeid, markers in failed_tests]
    outstanding: dict[str, Outstanding] = {}
    claimed: set[str] = set()
    for subsystem in plan.subsystems:
        tests = [nodeid for nodeid, markers in failed if markers & set(subsystem.markers)]
        if tests:
            outstanding[subsystem.name] = Outstanding(subsystem.owner, tests)
            claimed.update(tests)
    unassigned = [nodeid for nodeid, _ in failed if nodeid not in claimed]
    if unassigned:
        lead = plan.milestone(SUBSYSTEM_STAGE) or plan.milestone(RELEASE_STAGE)
        outstanding[UNASSIGNED] = Outstanding(lead.manager if lead else "", unassigned)
    return outstanding


# --- chain time --------------------------------------------------------------------------------


@dataclass(frozen=True)
class VotingDeadline:
    """When the council's vote is over, in the terms that bind on this kind of network."""

    local: bool
    blocks: int  # blocks after the proposal's block: binding locally, an estimate elsewhere
    ends_at: datetime  # wall time: binding on real networks, an estimate locally
    explanation: str  # one line for the user

    def passed(self, now: datetime, blocks_since_proposal: int) -> bool:
        """Whether voting is over, by blocks on a local network and by the clock elsewhere."""
        if self.local:
            return blocks_since_proposal >= self.blocks
        _require_zone(now, "now")
        return now >= self.ends_at


def release_deadline_blocks(
    plan: Plan, now: datetime, block_time_s: float, local: bool
) -> VotingDeadline:
    """The voting deadline of a motion proposed at `now`, and its length in blocks.

    Pass the proposal's time recorded in the ledger when resuming, so the deadline never moves.
    """
    _require_zone(now, "now")
    if block_time_s <= 0:
        raise PipelineError(f"block time {block_time_s}s must be positive: check the environment")
    window = format_span(plan.voting_window)
    if local:
        minutes = math.ceil(plan.voting_window.total_seconds() / 60)
        blocks = min(max(minutes, LOCAL_MIN_BLOCKS), LOCAL_MAX_BLOCKS)
        return VotingDeadline(
            local=True,
            blocks=blocks,
            ends_at=now + timedelta(seconds=blocks * block_time_s),
            explanation=(
                f"local network: voting ends {blocks} blocks after the proposal "
                f"(the {window} window at one block per minute, {LOCAL_MIN_BLOCKS} to "
                f"{LOCAL_MAX_BLOCKS} blocks)"
            ),
        )
    ends_at = max(now + plan.voting_window, plan.release_deadline)
    blocks = max(1, math.ceil((ends_at - now).total_seconds() / block_time_s))
    reason = (
        "the Release deadline"
        if ends_at == plan.release_deadline
        else f"the {window} voting window (later than the Release deadline)"
    )
    return VotingDeadline(
        local=False,
        blocks=blocks,
        ends_at=ends_at,
        explanation=(
            f"voting ends {format_when(ends_at)} at {reason}, about {blocks} blocks "
            f"at {block_time_s:g}s per block"
        ),
    )


def format_span(span: timedelta) -> str:
    """A duration for people: `3d 4h`, `2h 5m`, `7m`, `<1m`."""
    minutes = int(span.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m" if minutes else "<1m"


def _require_zone(moment: datetime, what: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, not {moment.isoformat()}")
