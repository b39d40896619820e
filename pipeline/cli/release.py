"""`invoke release` and `release.status|resume|abort`: the release manager's commands.

`invoke release` runs every stage still pending, in order; run it again (or `release.resume`)
after any interruption and it continues where it stopped. `release.status` shows what the
ledger says and what would run next, without acting.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

from invoke.context import Context
from invoke.tasks import task
from rich.console import Console
from rich.table import Table

from pipeline import ledger as journal
from pipeline.cli import friendly
from pipeline.cli.plan import console_for_tables, render_milestones
from pipeline.errors import PipelineError
from pipeline.gitops import open_repo, resolve
from pipeline.plan import (
    Plan,
    available_plans,
    done_from_ledger,
    load_plan,
    milestone_table,
    overdue_warnings,
)
from pipeline.policy import FallbackPolicy
from pipeline.project import Project, load_project
from pipeline.release import Release, ReleaseSettings, Votes, release_dir, status_views

POLICIES = ("never", "no-nays", "always")
VOTES = ("approve", "reject", "silent", "split")


def _default_plan(project: Project, plan: str | None) -> Plan | None:
    """The named plan, or the repo's only plan when there is exactly one."""
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
    console = Console(highlight=False, stderr=False)
    create = None if fields_from_ledger else settings.ledger_fields()
    with journal.open_ledger(project.state_dir, settings.release_id, create=create) as ledger:
        if ledger.repaired:
            console.print(f"[yellow]ledger:[/yellow] {ledger.repaired}", soft_wrap=True)

        def progress(line: str) -> None:
            console.print(f"[dim]{datetime.now(UTC):%H:%M:%S}[/dim] {line}", soft_wrap=True)

        release = Release(project, settings, ledger, progress)
        try:
            release.run()
        finally:
            report = release.write_report()
            _show(project, settings.release_id, console)
            console.print(f"report: {report}", soft_wrap=True)
    console.print(f"[bold green]release {settings.release_id} complete[/bold green]")


def _show(project: Project, release_id: str, console: Console, as_json: bool = False) -> None:
    records, torn = journal.read_records(project.state_dir, release_id)
    state = journal.replay(records)
    settings = ReleaseSettings.from_ledger(release_id, state.release)
    repo = open_repo(project.root)
    commit = resolve(repo, settings.candidate, project.runtime_path).commit
    failed = state.last_failure.stage if state.last_failure else None
    views = status_views(state.done, commit, failed)
    plan = load_plan(settings.plan, project.root) if settings.plan else None
    now = datetime.now(UTC)
    rows = milestone_table(plan, done_from_ledger(records), now) if plan else []
    if as_json:
        data = {
            "release": release_id,
            "settings": settings.ledger_fields(),
            "candidate_commit": commit,
            "aborted": state.aborted,
            "stages": [view.__dict__ for view in views],
            "milestones": [
                {
                    "name": r.name,
                    "deadline": r.deadline.isoformat(),
                    "actual": r.actual.isoformat() if r.actual else None,
                    "state": r.state,
                    "manager": r.manager,
                }
                for r in rows
            ],
            "warnings": state.warnings(),
        }
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    table = Table(
        title=f"Release {release_id}: {settings.candidate} ({commit[:12]}) on {settings.env}"
    )
    for column in ("Stage", "State", "Detail"):
        table.add_column(column)
    style = {"done": "green", "stale": "yellow", "next": "bold cyan", "pending": "dim"}
    for view in views:
        table.add_row(view.stage, f"[{style[view.state]}]{view.state}[/]", view.detail)
    tables = console_for_tables()
    tables.print(table)
    if plan is not None:
        tables.print(render_milestones(plan, rows))
        for warning in overdue_warnings(plan, done_from_ledger(records), now):
            console.print(f"[yellow]late:[/yellow] {warning}", soft_wrap=True)
    for warning in state.warnings():
        console.print(f"[yellow]warning:[/yellow] {warning}", soft_wrap=True)
    if torn:
        console.print(f"[yellow]ledger:[/yellow] {torn}", soft_wrap=True)
    if state.aborted:
        console.print(f"[red]aborted:[/red] {state.aborted}", soft_wrap=True)


def _release_id(project: Project, release_id: str | None, plan: str | None) -> str:
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
    _show(project, _release_id(project, id, plan), Console(highlight=False), as_json=json)


@task(help={"id": "release id", "confirm_hash": "non-local sudo fallback: the code hash"})
@friendly
def resume(c: Context, id: str | None = None, confirm_hash: str | None = None) -> None:
    """Continue a release with the settings it was started with."""
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
    project = load_project()
    rid = _release_id(project, id, None)
    with journal.open_ledger(project.state_dir, rid) as ledger:
        ledger.aborted(reason)
    Console(highlight=False).print(f"release {rid} aborted; see {release_dir(project, rid)}")
