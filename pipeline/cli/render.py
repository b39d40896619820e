"""How commands show things: the one console factory (one width rule) and the tables that
more than one command prints."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime

from rich.console import Console
from rich.markup import escape
from rich.status import Status
from rich.table import Table

from pipeline.plan import MilestoneState, Plan
from pipeline.schedule import MilestoneRow, format_span

LOG_WIDTH = 200  # rich would use 80 columns when not on a terminal: too narrow for tables


_STYLES: dict[MilestoneState, str] = {
    "done": "green",
    "late": "yellow",
    "on time": "cyan",
    "missed": "bold red",
}


def render_milestones(plan: Plan, rows: Sequence[MilestoneRow]) -> Table:
    """The live milestones table; `invoke release` shows the same one."""
    table = Table(
        title=f"Release {plan.release}: {plan.candidate} as spec_version "
        f"{plan.spec_version} on {plan.env}"
    )
    for column in ("Milestone", "Stage", "Deadline (UTC)", "Actual (UTC)", "State", "Manager"):
        table.add_column(column, no_wrap=True)
    table.add_column("Team")
    for row in rows:
        state = row.state if row.slip is None else f"{row.state} +{format_span(row.slip)}"
        table.add_row(
            escape(row.name),
            row.stage,
            _utc(row.deadline),
            "—" if row.actual is None else _utc(row.actual),
            f"[{_STYLES[row.state]}]{state}[/]",
            escape(row.manager),
            escape(", ".join(row.team)),
        )
    return table


def _utc(moment: datetime) -> str:
    """One zone for the whole table keeps its columns comparable (and narrow)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def make_console(stderr: bool = False) -> Console:
    """A console at the terminal's width on a terminal, and wide enough for every table in
    logs, pipes and captured output."""
    probe = Console(stderr=stderr, highlight=False)
    if probe.is_terminal:
        return probe
    return Console(stderr=stderr, highlight=False, width=LOG_WIDTH)


@contextlib.contextmanager
def spinner() -> Iterator[Callable[[str], None]]:
    """A progress callback showing its latest line as a spinner on stderr, from the first line
    on (a cache hit shows nothing)."""
    status: Status | None = None

    def update(line: str) -> None:
        nonlocal status
        if status is None:
            status = make_console(stderr=True).status(escape(line))
            status.start()
        else:
            status.update(escape(line))

    try:
        yield update
    finally:
        if status is not None:
            status.stop()
