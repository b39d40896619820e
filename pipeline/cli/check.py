"""`invoke check.migrations`: the migration safety gate (try-runtime) on a fork of a network."""

from __future__ import annotations

import json
import sys

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from pipeline.cli import friendly
from pipeline.cli.render import escape, make_console, spinner
from pipeline.project import load_project


@task(
    help={
        "env": "environment (environments/<env>.toml)",
        "network": "role or name of the network whose finalized state is forked (production)",
        "artifact": "a try-runtime build (hash, directory or path); default: build HEAD's",
        "ref": "git ref whose try-runtime build is checked (default HEAD; not with --artifact)",
        "json": "print the report as JSON",
    }
)
@friendly
def migrations(
    c: Context,
    env: str = "local",
    network: str = "production",
    artifact: str = "",
    ref: str | None = None,
    json_: bool = False,
) -> None:
    """Run the candidate's migrations with try-runtime on a fork of the network's finalized
    head: pre/post hooks, try-state, idempotency, weight, keys changed; exit 1 on a failure."""
    from pipeline import config
    from pipeline.migrations import gate_migrations

    project = load_project()
    environment = config.load_environment(env, project.root)
    with spinner() as progress:
        report = gate_migrations(
            project, environment, network, artifact=artifact or None, ref=ref, progress=progress
        )
    if json_:
        sys.stdout.write(json.dumps(report.as_dict(), indent=2, sort_keys=True) + "\n")
    else:
        console = make_console()
        for line in report.lines():
            console.print(escape(line), soft_wrap=True)
    if report.problem is not None:
        raise Exit(f"error: migrations refused: {report.problem}", code=1)
