"""`invoke deploy`, `invoke diff`, `invoke test`: staging upgrades, runtime diffs, chain suites."""

from __future__ import annotations

import json as jsonlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from invoke.context import Context
from invoke.tasks import task

from pipeline.cli import friendly
from pipeline.cli.render import escape, make_console, stderr_lines
from pipeline.errors import PipelineError
from pipeline.project import load_project
from pipeline.shorthash import shorten_hashes

if TYPE_CHECKING:
    from rich.console import Console

    from pipeline.deploy import DeployResult

ENV_HELP = "environment (environments/<env>.toml)"


@task(
    help={
        "env": ENV_HELP,
        "network": "network role or name to upgrade: reckless (default) or lts; production "
        'only under governance = "sudo"',
        "artifact": "artifact hash (a directory under artifacts/) or blob path; "
        "default: the newest build of HEAD's runtime",
        "method": "set_code (Sudo.sudo_unchecked_weight(System.set_code)) or authorize "
        "(Sudo.sudo(System.authorize_upgrade) then System.apply_authorized_upgrade)",
        "dry_run": "rehearse on a throwaway chopsticks fork; the network itself is untouched",
        "preset": "genesis preset whose storage gives the in-code storage versions (default: "
        "pipeline.toml's [runtime] preset)",
        "json": "print the result as JSON",
        "confirm_hash": "sudo-governed production of a non-local environment: its code hash",
    }
)
@friendly
def deploy(
    c: Context,
    env: str = "local",
    network: str = "reckless",
    artifact: str = "",
    method: str = "set_code",
    dry_run: bool = False,
    preset: str = "",
    json_: bool = False,
    confirm_hash: str | None = None,
) -> None:
    """Upgrade a staging network to an artifact with the sudo key, then verify the chain."""
    from pipeline import config, store, upgrade
    from pipeline import deploy as deployment

    if method not in upgrade.METHODS:
        raise PipelineError(f"unknown method {method!r}: use set_code or authorize")
    project = load_project()
    environment = config.load_environment(env, project.root)
    path = store.resolve_artifact(project, artifact or None)
    try:
        result = deployment.deploy(
            environment,
            network,
            path,
            method=method,  # narrowed to a Method by the check above
            dry_run=dry_run,
            preset=preset or project.preset,
            confirm_hash=confirm_hash,
            progress=stderr_lines(),
        )
    except deployment.DeployVerificationError as exc:
        _print_result(exc.result, make_console())
        raise
    if json_:
        sys.stdout.write(jsonlib.dumps(result.as_dict(), indent=2, default=str) + "\n")
    else:
        _print_result(result, make_console())


def _print_result(result: DeployResult, console: Console) -> None:
    what = "dry run on a fork of" if result.dry_run else "deployed to"
    if result.skipped:
        console.print(f"{result.network} already runs {result.code_hash}: nothing submitted")
    else:
        console.print(
            f"{what} {result.network} ({result.endpoint}): spec_version {result.spec_before} -> "
            f"{result.spec_after}, code {result.code_hash}, included in #{result.block}, "
            f"live from #{result.activated_at} ({result.activation_seconds or 0:.1f}s)"
        )
    for warning in result.warnings:
        console.print(f"warning: {escape(warning)}")
    for event in result.events:
        console.print(f"  event {escape(event)}")
    if result.weight:
        console.print(f"  weight {escape(jsonlib.dumps(result.weight, default=str))}")
    if result.storage_versions:
        from rich.table import Table

        table = Table(title="storage versions")
        for column in ("pallet", "on chain", "in code", ""):
            table.add_column(column)
        for row in result.storage_versions:
            mark = "ok" if row.ok else "[red]PENDING MIGRATION[/red]"
            table.add_row(row.pallet, str(row.on_chain), str(row.in_code), mark)
        console.print(table)
    for line in result.logs:
        console.print(f"  runtime log: {escape(line)}")


@task(
    positional=["a", "b"],
    help={
        "a": "runtime A: blob path, artifact hash, or the code on a chain: env:NAME[:role] or "
        "ws://HOST:PORT, optionally @BLOCK (a number or a 0x block hash)",
        "b": "runtime B, the same forms",
        "json": "print the changes as JSON",
    },
)
@friendly
def diff(c: Context, a: str, b: str, json_: bool = False) -> None:
    """Versions, runtime APIs and metadata (pallets, calls, events, storage, constants) A -> B."""
    from pipeline import diff as runtime_diff

    first = runtime_diff.load_runtime(None, a)  # a project only where a name needs one
    second = runtime_diff.load_runtime(None, b)
    if json_:
        sys.stdout.write(jsonlib.dumps(runtime_diff.report(first, second), indent=2) + "\n")
        return
    summary_a, summary_b = runtime_diff.summaries([first, second])
    for line in runtime_diff.render(first.label, second.label, summary_a, summary_b):
        print(shorten_hashes(line))  # --json has the hashes whole


@task(
    help={
        "suite": "suite name from pipeline.toml [suites]: subsystem or final",
        "env": ENV_HELP,
        "network": "network role or name (default: reckless for subsystem, lts for final)",
        "out": "directory for junit-<suite>.xml and suite-<suite>.json "
        "(default: <state dir>/suites/<env>)",
        "artifact": "the runtime the network should run (hash, directory or blob), for the "
        "generic upgrade checks",
    }
)
@friendly
def test(
    c: Context, suite: str, env: str = "local", network: str = "", out: str = "", artifact: str = ""
) -> None:
    """Run a chain test suite against a network; JUnit XML and a summary JSON are written."""
    from pipeline import config, store, suites

    project = load_project()
    environment = config.load_environment(env, project.root)
    out_dir = Path(out) if out else project.state_dir / "suites" / env
    blob = store.resolve_artifact(project, artifact) if artifact else None
    result = suites.run_suite(
        project, environment, suite, out_dir, network=network or None, echo=True, artifact=blob
    )
    console = make_console()
    console.print(
        f"suite {suite} on {result.network}: {result.passed} passed, {result.failed} failed, "
        f"{result.skipped} skipped in {result.seconds:.1f}s (JUnit {result.junit}, "
        f"summary {result.summary})"
    )
    for failure in result.failures:
        markers = ", ".join(failure.markers) or "no marker"
        console.print(f"  FAILED {escape(failure.nodeid)} [{markers}]: {escape(failure.message)}")
    if not result.ok:
        raise PipelineError(
            f"suite {suite} on {result.network} is not green ({result.failed} failed, "
            f"{result.passed} passed, pytest exit {result.exit_code}): see {result.junit}"
        )
