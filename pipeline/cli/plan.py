"""`invoke plan.new NAME`, `invoke plan.check NAME`: write and validate release plans.

`plan.check` also shows the live milestones table: planned deadlines against the actual dates
the release's ledger recorded, so a release manager sees and reports slips.
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from invoke.context import Context
from invoke.tasks import task

from pipeline.cli import friendly
from pipeline.cli.render import escape, make_console, render_milestones
from pipeline.project import load_project

if TYPE_CHECKING:
    from pipeline.config import Environment
    from pipeline.plan import Plan


@task(
    positional=["name"],
    help={
        "name": "plan name: writes releases/<name>.toml",
        "manager": "who manages the milestones (default: your user name)",
    },
)
@friendly
def new(c: Context, name: str, manager: str = "") -> None:
    """Write a commented release plan template with weekly deadlines from today."""
    from pipeline.plan import new_plan

    project = load_project()
    path = new_plan(name, project.root, datetime.now(UTC).date(), manager or getpass.getuser())
    make_console().print(
        f"wrote {escape(str(path))}: edit it, then run `invoke plan.check {escape(name)}`",
        soft_wrap=True,
    )


@task(positional=["name"], help={"name": "plan name: releases/<name>.toml"})
@friendly
def check(c: Context, name: str) -> None:
    """Validate a release plan and show its milestones, with actual dates once it has run."""
    from pipeline import ledger
    from pipeline.config import load_environment
    from pipeline.plan import load_plan
    from pipeline.schedule import done_from_ledger, milestone_table, overdue_warnings

    project = load_project()
    plan = load_plan(name, project.root)
    console = make_console()
    done: dict[str, datetime] = {}
    if plan.release in ledger.list_releases(project.state_dir):
        records, torn = ledger.read_records(project.state_dir, plan.release)
        if torn:
            console.print(f"[yellow]note:[/yellow] {escape(torn)}", soft_wrap=True)
        done = done_from_ledger(records, f"release {plan.release}")
    now = datetime.now(UTC)
    console.print(render_milestones(plan, milestone_table(plan, done, now)))
    for line in _summary(plan, now, load_environment(plan.env, project.root)):
        console.print(escape(line), soft_wrap=True)
    for warning in overdue_warnings(plan, done, now):
        console.print(f"[bold red]warning:[/bold red] {escape(warning)}", soft_wrap=True)


def _summary(plan: Plan, now: datetime, env: Environment) -> list[str]:
    from pipeline.schedule import format_span, release_deadline_blocks

    rule = plan.freeze
    voting = release_deadline_blocks(plan, now, env.block_time_estimate, env.local)
    exceptions = [*rule.exception_prefixes, *(f"label {label}" for label in rule.exception_labels)]
    lines = [
        f"freeze: after it only commits starting with {', '.join(rule.prefixes) or '(none)'} "
        f"or with trailer {', '.join(rule.trailers) or '(none)'}; exceptions: "
        f"{', '.join(exceptions) or 'none'}",
        f"council: voting window {format_span(plan.voting_window)}, fallback {plan.fallback}; "
        f"if proposed now, {voting.explanation}",
    ]
    lines += [
        f"sub-system {s.name}: owner {s.owner}, markers {', '.join(s.markers)}"
        for s in plan.subsystems
    ]
    return lines
