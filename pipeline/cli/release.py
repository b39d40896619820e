"""`invoke release` and `release.status|resume|abort`: the release manager's commands.

`invoke release` runs every stage still pending, in order; run it again (or `release.resume`)
after any interruption and it continues where it stopped. `release.status` shows what the
ledger says and what would run next, without acting.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from invoke.context import Context
from invoke.tasks import task

from pipeline.cli import friendly
from pipeline.cli.render import escape, make_console, render_milestones
from pipeline.errors import PipelineError
from pipeline.project import Project, load_project
from pipeline.shorthash import shorten_hashes

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from pipeline.plan import Plan
    from pipeline.policy import FallbackPolicy
    from pipeline.release import ReleaseSettings, StageView, Votes

POLICIES = ("never", "no-nays", "always")
VOTES = ("approve", "reject", "silent", "split")


def _default_plan(project: Project, plan: str | None) -> Plan | None:
    """The named plan, or the repo's only plan when there is exactly one."""
    from pipeline.plan import available_plans, load_plan

    if plan:
        return load_plan(plan, project.root)
    plans = available_plans(project.root)
    return load_plan(plans[0], project.root) if len(plans) == 1 else None


def _settings(
    project: Project,
    *,
    plan_name: str | None,
    release_id: str | None,
    candidate: str | None,
    env_set: str | None,
    policy: str | None,
    votes: str,
    confirm_hash: str | None,
) -> ReleaseSettings:
    from pipeline.release import ReleaseSettings

    plan = _default_plan(project, plan_name)
    if policy is not None and policy not in POLICIES:
        raise PipelineError(f"unknown --policy {policy}: use one of {', '.join(POLICIES)}")
    if votes not in VOTES:
        raise PipelineError(f"unknown --votes {votes}: use one of {', '.join(VOTES)}")
    candidate = candidate or (plan.candidate if plan else "HEAD")
    rid = release_id or (plan.release if plan else None)
    if rid is None:
        raise PipelineError(
            "no release plan and no --id: pass --plan NAME (releases/NAME.toml) or --id NAME"
        )
    chosen: FallbackPolicy = (
        policy if policy is not None else (plan.fallback if plan else "no-nays")  # type: ignore[assignment]
    )
    chosen_votes: Votes = votes  # type: ignore[assignment]
    return ReleaseSettings(
        release_id=rid,
        candidate=candidate,
        env=env_set or (plan.env if plan else "local"),
        policy=chosen,
        plan=plan.name if plan else None,
        votes=chosen_votes,
        confirm_hash=confirm_hash,
    )


def _run(project: Project, settings: ReleaseSettings, fields_from_ledger: bool) -> None:
    from pipeline import ledger as journal
    from pipeline.release import Release

    console = make_console()
    create = None if fields_from_ledger else settings.ledger_fields()
    with journal.open_ledger(project.state_dir, settings.release_id, create=create) as ledger:
        if ledger.repaired:
            console.print(f"[yellow]ledger:[/yellow] {ledger.repaired}", soft_wrap=True)

        def progress(line: str) -> None:
            shown = shorten_hashes(line)  # whole in the ledger and the report
            console.print(f"[dim]{datetime.now(UTC):%H:%M:%S}[/dim] {shown}", soft_wrap=True)

        release = Release(project, settings, ledger, progress)
        try:
            release.run()
        finally:
            report = release.write_report()
            _show(project, settings.release_id, console)
            console.print(f"report: {report}", soft_wrap=True)
    console.print(f"[bold green]release {settings.release_id} complete[/bold green]")


def _show(project: Project, release_id: str, console: Console, as_json: bool = False) -> None:
    from pipeline.release_status import release_status

    status = release_status(project, release_id, datetime.now(UTC))
    if as_json:
        sys.stdout.write(json.dumps(status.as_dict(), indent=2) + "\n")
        return
    settings = status.settings
    title = (
        f"Release {release_id}: {settings.candidate} ({status.candidate_commit[:12]}) "
        f"on {settings.env}"
    )
    console.print(stage_table(title, status.stages))
    if status.plan is not None:
        console.print(render_milestones(status.plan, status.milestones))
    if status.attestations is not None:
        for line in status.attestations.describe():
            console.print(f"attestations: {escape(line)}", soft_wrap=True)
    if status.attestations_unread:
        console.print(f"[yellow]warning:[/yellow] {escape(status.attestations_unread)}")
    for warning in status.late:
        console.print(f"[yellow]late:[/yellow] {warning}", soft_wrap=True)
    for warning in status.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", soft_wrap=True)
    if status.torn:
        console.print(f"[yellow]ledger:[/yellow] {status.torn}", soft_wrap=True)
    if status.aborted:
        console.print(f"[red]aborted:[/red] {status.aborted}", soft_wrap=True)


def stage_table(title: str, views: Sequence[StageView]) -> Table:
    """Each stage's state and result, hashes shortened to fit 80 columns (--json has them whole)."""
    from rich.table import Table

    table = Table(title=escape(title))
    for column in ("Stage", "State", "Detail"):
        table.add_column(column)
    style = {"done": "green", "stale": "yellow", "next": "bold cyan", "pending": "dim"}
    for view in views:
        table.add_row(
            view.stage, f"[{style[view.state]}]{view.state}[/]", escape(shorten_hashes(view.detail))
        )
    return table


def _release_id(project: Project, release_id: str | None, plan: str | None) -> str:
    from pipeline import ledger as journal

    if release_id:
        return release_id
    chosen = _default_plan(project, plan)
    if chosen is not None:
        return chosen.release
    known = journal.list_releases(project.state_dir)
    if len(known) == 1:
        return known[0]
    raise PipelineError(
        f"which release? pass --id (known: {', '.join(known) or 'none'}) or --plan NAME"
    )


@task(
    default=True,
    help={
        "plan": "release plan releases/NAME.toml (default: the only plan in releases/)",
        "id": "release id (default: the plan's name)",
        "candidate": "git ref of the runtime to release (default: the plan's, else HEAD)",
        "env_set": "environments/NAME.toml (default: the plan's, else local)",
        "policy": "sudo fallback at the deadline: never | no-nays | always",
        "votes": "local councillors: approve | reject | silent | split (local only)",
        "confirm_hash": "non-local sudo fallback: the code hash you confirm (0x…)",
    },
)
@friendly
def run(
    c: Context,
    plan: str | None = None,
    id: str | None = None,
    candidate: str | None = None,
    env_set: str | None = None,
    policy: str | None = None,
    votes: str = "approve",
    confirm_hash: str | None = None,
) -> None:
    """Run the release: build, staging deploys and suites, freeze, council, enactment, verify."""
    project = load_project()
    settings = _settings(
        project,
        plan_name=plan,
        release_id=id,
        candidate=candidate,
        env_set=env_set,
        policy=policy,
        votes=votes,
        confirm_hash=confirm_hash,
    )
    _run(project, settings, fields_from_ledger=False)


@task(help={"id": "release id", "plan": "or the plan whose release it is", "json": "as JSON"})
@friendly
def status(c: Context, id: str | None = None, plan: str | None = None, json: bool = False) -> None:
    """What the ledger says each stage did, what runs next, and the milestones."""
    project = load_project()
    _show(project, _release_id(project, id, plan), make_console(), as_json=json)


@task(help={"id": "release id", "confirm_hash": "non-local sudo fallback: the code hash"})
@friendly
def resume(c: Context, id: str | None = None, confirm_hash: str | None = None) -> None:
    """Continue a release with the settings it was started with."""
    from pipeline import ledger as journal
    from pipeline.release import ReleaseSettings

    project = load_project()
    rid = _release_id(project, id, None)
    records, _ = journal.read_records(project.state_dir, rid)
    settings = ReleaseSettings.from_ledger(rid, journal.replay(records).release)
    if confirm_hash:
        settings = ReleaseSettings(**{**settings.__dict__, "confirm_hash": confirm_hash})
    _run(project, settings, fields_from_ledger=True)


@task(help={"id": "release id", "reason": "why (journaled)"})
@friendly
def abort(c: Context, reason: str, id: str | None = None) -> None:
    """Stop a release for good: it will not resume; on-chain effects already made stay."""
    from pipeline import ledger as journal
    from pipeline.release import release_dir

    project = load_project()
    rid = _release_id(project, id, None)
    with journal.open_ledger(project.state_dir, rid) as ledger:
        ledger.aborted(reason)
    make_console().print(f"release {rid} aborted; see {release_dir(project, rid)}")
