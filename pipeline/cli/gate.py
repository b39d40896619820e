"""`invoke gate` and `gate.fmt|test|freeze|spec|diff|repro|migrations`: what CI on a runtime
repo's master enforces."""

from __future__ import annotations

from typing import TYPE_CHECKING

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from pipeline.cli import friendly
from pipeline.cli.render import make_console, spinner
from pipeline.project import Project, load_project

if TYPE_CHECKING:
    from pipeline.gates import GateResult
    from pipeline.policy import FreezeRule


def _release(
    project: Project, plan: str | None, release: str | None
) -> tuple[str | None, FreezeRule]:
    """The release whose freeze tag binds master, and its freeze rule (from its plan)."""
    from pipeline.plan import load_plan
    from pipeline.policy import FreezeRule

    if plan:
        loaded = load_plan(plan, project.root)
        return release or loaded.release, loaded.freeze
    return release, FreezeRule()


def _report(results: list[GateResult]) -> None:
    console = make_console()
    for result in results:
        mark = "[green]pass[/green]" if result.ok else "[bold red]FAIL[/bold red]"
        console.print(f"{mark} {result.gate}: {result.detail}", soft_wrap=True)
    failed = [r.gate for r in results if not r.ok]
    if failed:
        raise Exit(f"error: gate(s) failed: {', '.join(failed)}", code=1)


@task(
    default=True,
    help={
        "ref": "commit to check (default HEAD)",
        "plan": "release plan whose freeze rule and release id apply",
        "release": "release id whose freeze tag binds (default: the plan's)",
        "expect": "the release's code hash the build must reproduce (0x…)",
    },
)
@friendly
def all(
    c: Context,
    ref: str = "HEAD",
    plan: str | None = None,
    release: str | None = None,
    expect: str | None = None,
) -> None:
    """Every gate: rustfmt, freeze, spec_version bump, upgrade diff, reproducible hash, tests."""
    from pipeline import gates

    project = load_project()
    release_id, rule = _release(project, plan, release)
    with spinner() as progress:
        results = gates.run_gates(
            project, head=ref, release_id=release_id, rule=rule, expect=expect, progress=progress
        )
    _report(results)


@task(help={"ref": "commit to check (default HEAD)"})
@friendly
def fmt(c: Context, ref: str = "HEAD") -> None:
    """Fail, naming the files, when the runtime is not formatted as its rustfmt.toml asks."""
    from pipeline import gates

    with spinner() as progress:
        result = gates.gate_cargo(load_project(), "fmt", ref, progress)
    _report([result])


@task(help={"ref": "commit to check (default HEAD)"})
@friendly
def test(c: Context, ref: str = "HEAD") -> None:
    """Fail, naming the tests, when the runtime's `cargo test` fails (builder image, offline)."""
    from pipeline import gates

    with spinner() as progress:
        result = gates.gate_cargo(load_project(), "test", ref, progress)
    _report([result])


@task(help={"ref": "commit to check", "plan": "release plan", "release": "release id"})
@friendly
def freeze(
    c: Context, ref: str = "HEAD", plan: str | None = None, release: str | None = None
) -> None:
    """Fail, listing them, when non-bugfix commits landed after the release's freeze tag."""
    from pipeline import gates

    project = load_project()
    release_id, rule = _release(project, plan, release)
    if release_id is None:
        raise Exit("error: pass --plan NAME or --release ID: whose freeze?", code=1)
    _report([gates.gate_freeze(project, release_id, ref, rule)])


@task(help={"ref": "commit to check"})
@friendly
def spec(c: Context, ref: str = "HEAD") -> None:
    """Fail when the runtime changed against production without a spec_version bump."""
    from pipeline import builder, gates

    project = load_project()
    with spinner() as progress:
        build = builder.build(project, ref, progress=progress)
    _report([gates.gate_spec_bump(project, ref, build.compressed.version.spec_version)])


@task(name="diff", help={"ref": "commit to check"})
@friendly
def upgrade_diff(c: Context, ref: str = "HEAD") -> None:
    """Fail when storage changed without a storage version bump, or calls changed without a
    transaction_version bump, between production's release and `ref`."""
    from pipeline import builder, gates, store

    project = load_project()
    with spinner() as progress:
        build = builder.build(project, ref, progress=progress)
    _report([gates.gate_upgrade_diff(project, store.blob_in(build.artifact_dir))])


@task(
    name="migrations",
    help={
        "ref": "commit whose try-runtime build is checked",
        "env": "environment (environments/<env>.toml) whose network's state is used",
        "network": "role or name of that network (default production)",
    },
)
@friendly
def migrations_gate(
    c: Context, ref: str = "HEAD", env: str = "local", network: str = "production"
) -> None:
    """Fail when the migrations of `ref` fail try-runtime on the network's state (hooks,
    try-state, idempotency, weight) or a migration is missing."""
    from pipeline import config, gates

    project = load_project()
    environment = config.load_environment(env, project.root)
    with spinner() as progress:
        result = gates.gate_migrations(project, environment, ref, network, progress)
    _report([result])


@task(help={"ref": "commit to build", "expect": "the release's code hash (0x…)"})
@friendly
def repro(c: Context, expect: str, ref: str = "HEAD") -> None:
    """Fail unless a hermetic build of `ref` reproduces the release's code hash."""
    from pipeline import builder, gates

    with spinner() as progress:
        build = builder.build(load_project(), ref, progress=progress)
    _report(
        [gates.gate_reproducible(build.compressed.blake2_256, builder.expected_hash(expect, None))]
    )
