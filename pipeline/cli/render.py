"""How commands show things: the one console factory (one width rule) and the tables that
more than one command prints."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # every command imports this module: consoles, tables and plans load where used
    from rich.console import Console
    from rich.status import Status
    from rich.table import Table

    from pipeline.plan import MilestoneState, Plan
    from pipeline.schedule import MilestoneRow

LOG_WIDTH = 200  # rich would use 80 columns when not on a terminal: too narrow for tables


def escape(text: str) -> str:
    """rich's markup escape, with rich loaded on first use: every command module imports this
    one, and commands that print JSON or plain lines never need rich."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


_STYLES: dict[MilestoneState, str] = {
    "done": "green",
    "late": "yellow",
    "on time": "cyan",
    "missed": "bold red",
}


def render_milestones(plan: Plan, rows: Sequence[MilestoneRow]) -> Table:
    """The live milestones table; `invoke release` shows the same one."""
    from rich.table import Table

    from pipeline.schedule import format_span

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
    from rich.console import Console

    probe = Console(stderr=stderr, highlight=False)
    if probe.is_terminal:
        return probe
    return Console(stderr=stderr, highlight=False, width=LOG_WIDTH)


def stderr_lines() -> Callable[[str], None]:
    """A progress callback printing each line on stderr: where a command's waits on a chain
    report (stdout keeps the command's result)."""
    err = make_console(stderr=True)
    return lambda line: err.print(escape(line), soft_wrap=True)


@contextlib.contextmanager
def spinner(heartbeat_s: float | None = None) -> Iterator[Callable[[str], None]]:
    """A progress callback for long steps, from the first line on (a cache hit shows nothing).

    On a terminal: the latest line as a spinner on stderr with the time so far, every second.
    Otherwise (CI logs, pipes): the first line at once, then the latest one every `heartbeat_s`
    (default: `progress.heartbeat_s()`).
    """
    from pipeline.progress import Heartbeat

    console = make_console(stderr=True)
    if not console.is_terminal:

        def emit(line: str) -> None:
            console.print(escape(line), soft_wrap=True)

        with Heartbeat(emit, heartbeat_s) as beat:
            yield beat
        return
    status: Status | None = None

    def show(line: str) -> None:
        nonlocal status
        if status is None:
            status = console.status(escape(line))
            status.start()
        else:
            status.update(escape(line))

    try:
        with Heartbeat(show, interval=1.0) as ticking:

            def update(line: str) -> None:
                ticking(line)
                show(ticking.stamped())

            yield update
    finally:
        if status is not None:
            status.stop()
