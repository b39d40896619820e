"""`invoke build` and `invoke verify`: a hermetic runtime build, and an independent rebuild."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from pipeline.cli import friendly
from pipeline.cli.render import escape, make_console, spinner
from pipeline.errors import PipelineError
from pipeline.project import Project, load_project

if TYPE_CHECKING:
    from rich.console import Console

    from pipeline.builder import BuildResult
    from pipeline.verify import Verdict


@task(
    help={
        "ref": "git ref to build (branch, tag, commit); default HEAD",
        "no_cache": "build even when the build cache has this exact input",
        "dirty": "build the working tree with its uncommitted changes (recorded in the digest)",
        "json": "print digest.json instead of the summary table",
        "try_runtime": "build the try-runtime variant (migration checks only; never deployable)",
    },
)
@friendly
def build(
    c: Context,
    ref: str | None = None,
    no_cache: bool = False,
    dirty: bool = False,
    json_: bool = False,
    try_runtime: bool = False,
) -> None:
    """Build the runtime in the hermetic builder into artifacts/<blake2-256>/."""
    from pipeline import builder
    from pipeline.artifact import dumps_digest

    with spinner() as progress:
        result = builder.build(
            load_project(),
            ref,
            no_cache=no_cache,
            dirty=dirty,
            try_runtime=try_runtime,
            progress=progress,
        )
    if json_:
        sys.stdout.write(dumps_digest(result.digest))
        return
    _summary(result, make_console())


@task(
    help={
        "ref": "git ref to rebuild",
        "expect": "expected blake2-256 of the compressed runtime (0x…)",
        "digest": "digest.json to compare against (its hash and every other field)",
        "env": "environment whose chain to compare with (its :code, or --motion)",
        "network": "role or name of the network in --env (default production)",
        "motion": "council motion (index or 'latest'): rebuild its commit, compare its hash",
        "attest": "with --motion: post the verdict on chain from council.member_key "
        "(System.remark_with_event), for the other members and the release to count",
        "dossier": "with --motion: the proposal note you hold; says whether its dossier is the "
        "one the motion commits to (exit 1 if not)",
    },
)
@friendly
def verify(
    c: Context,
    ref: str | None = None,
    expect: str | None = None,
    digest: str | None = None,
    env: str | None = None,
    network: str = "production",
    motion: str | None = None,
    attest: bool = False,
    dossier: str | None = None,
) -> None:
    """Rebuild from source (clean) or read a chain: MATCH or MISMATCH, exit 1 unless equal."""
    from pipeline import verify as verification

    project = load_project()
    if dossier is not None and motion is None:
        raise PipelineError("--dossier goes with --env NAME --motion: a motion commits to it")
    # the note's dossier is hashed now: a note that is none is refused before the rebuild
    note = (dossier, _dossier_hash(Path(dossier))) if dossier is not None else None
    if attest:
        if env is None or motion is None or ref or expect or digest:
            raise PipelineError(
                "--attest goes with --env NAME --motion only: a statement names a motion"
            )
        _attest(project, env, network, motion, note)
        return
    expected = verification.expectation(
        project,
        ref=ref,
        expect=expect,
        digest=_load_digest(Path(digest)) if digest else None,
        env=env,
        network=network,
        motion=motion,
    )
    with spinner() as progress:
        verdict = verification.verify(
            project, expected, env=env, network=network, progress=progress
        )
    held = _print_verdict(verdict, make_console(), note)
    if not verdict.match or not held:
        raise Exit(code=1)


def _attest(
    project: Project, env_name: str, network: str, motion: str, note: tuple[str, str] | None
) -> None:
    """Rebuild the motion's runtime clean, print the verdict, post it as the member's statement
    (the key and membership are checked before the rebuild); exit 1 on MISMATCH."""
    from pipeline import verify as verification
    from pipeline.chain import connect
    from pipeline.config import load_environment

    environment = load_environment(env_name, project.root)
    with connect(environment, network) as chain:
        expected = verification.motion_expectation(environment, chain, motion)
        assert expected.motion is not None  # a motion's expectation names it
        keypair = verification.attester(environment, chain, expected.motion)
    with spinner() as progress:
        verdict = verification.verify(project, expected, progress=progress)
    console = make_console()
    held = _print_verdict(verdict, console, note)
    with connect(environment, network) as chain:  # a long rebuild: a fresh connection
        receipt = verification.attest(environment, chain, verdict, keypair)
    said = "MATCH" if verdict.match else "MISMATCH"
    console.print(
        f"attested {said} for motion #{expected.motion.index} as {keypair.ss58_address}: "
        + (f"block #{receipt.block_number}" if receipt else "already on chain, nothing sent"),
        soft_wrap=True,
    )
    if not verdict.match or not held:
        raise Exit(code=1)


def _print_verdict(verdict: Verdict, console: Console, note: tuple[str, str] | None) -> bool:
    """Print the verdict, and the dossier check of `note` (name, its dossier's hash); False: the
    note does not hold the dossier the motion commits to."""
    from pipeline import verify as verification

    for line in verification.report_lines(verdict):
        console.print(escape(line), soft_wrap=True, style="bold" if line[0] != " " else None)
    if note is None:
        return True
    held, line = verification.dossier_check(verdict.expected, note[1], note[0])
    console.print(escape(line), soft_wrap=True)
    return held


def _dossier_hash(path: Path) -> str:
    from pipeline.proposal import dossier_hash

    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise PipelineError(f"{path}: cannot read ({exc}): pass the proposal note") from None
    try:
        return dossier_hash(text)
    except PipelineError as exc:
        raise PipelineError(f"{path}: {exc}") from None


def _load_digest(path: Path) -> dict[str, Any]:
    try:
        content = json.loads(path.read_text())
    except OSError as exc:
        raise PipelineError(f"{path}: cannot read ({exc.strerror}): pass a digest.json") from None
    except ValueError as exc:
        raise PipelineError(f"{path}: not JSON ({exc}): pass a digest.json") from None
    if not isinstance(content, dict):
        raise PipelineError(f"{path}: not a digest (a JSON object expected)")
    return content


def _summary(result: BuildResult, console: Console) -> None:
    from rich.table import Table

    version = result.compressed.version
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("Artifact", str(result.artifact_dir))
    table.add_row("Blake2-256", result.compressed.blake2_256)
    table.add_row("Runtime", f"{version.spec_name} spec_version {version.spec_version}")
    if result.digest.get("try_runtime"):
        table.add_row("Build", "try-runtime: for migration checks only, never for a chain")
    table.add_row("Compressed", f"{result.compressed.size:,} bytes")
    table.add_row("Compact", f"{result.compact.size:,} bytes")
    table.add_row(
        "Commit", f"{result.digest['commit']}" + (" (dirty)" if result.digest["dirty"] else "")
    )
    if result.cached:
        table.add_row("Source", f"build cache, {result.seconds:.1f} s")
    else:
        table.add_row(
            "Source",
            f"built in {result.seconds:.1f} s ({result.container_seconds:.1f} s in the"
            f" container); log {result.log}",
        )
    console.print(table)
