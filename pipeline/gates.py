"""CI gates for a runtime repo's master: rustfmt and the unit tests (in the builder image), the
freeze rule, the spec_version bump, and the reproducible build hash. Each gate returns a
`GateResult`; `invoke gate` runs them all and fails when any fails, listing why.

"Production" is the newest release committed under `<runtime>/releases/<spec>/digest.json`
(its `commit` and `info.spec_version`), so the gates need no network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import (
    builder,
    builder_image,
    cargo_checks,
    config,
    diff,
    gitops,
    migrations,
    store,
    verdicts,
)
from pipeline.chain import connect
from pipeline.errors import PipelineError
from pipeline.freeze import check_freeze
from pipeline.policy import FreezeRule, spec_bump_required
from pipeline.project import Project


@dataclass(frozen=True)
class GateResult:
    gate: str
    ok: bool
    detail: str


def released_digest(project: Project) -> dict[str, Any]:
    """The digest of the newest committed release: what production runs."""
    path = store.released_folder(project) / store.DIGEST_FILE
    if not path.is_file():
        raise PipelineError(
            f"no {path}: the gates compare against production's build record; commit the"
            " digest.json of its release there"
        )
    content: dict[str, Any] = json.loads(path.read_text())
    return content


def released_blob(project: Project) -> Path:
    """The compressed runtime of the newest committed release, beside its digest."""
    return store.blob_in(store.released_folder(project))


def runtime_changed(project: Project, base: str, head: str) -> list[str]:
    """Runtime source files that differ between two commits (released artifacts and the
    pipeline's own files excluded)."""
    repo = gitops.open_repo(project.root)
    path = project.runtime_path
    released = f":(exclude){path}/{store.RELEASES_SUBDIR}"
    own = gitops.pipeline_pathspecs(project)
    out = repo.git.diff("--name-only", base, head, "--", path, released, *own)
    return [line for line in out.splitlines() if line]


def gate_cargo(
    project: Project,
    check: cargo_checks.Check,
    head: str,
    progress: builder_image.Progress = builder_image.logger.info,
) -> GateResult:
    """`cargo fmt --check` or `cargo test` of the runtime at `head`, in the builder image."""
    result = cargo_checks.run_check(project, check, head, progress)
    remembered = " (a remembered pass of this exact tree)" if result.cached else ""
    return GateResult(check, result.ok, result.detail + remembered)


def gate_freeze(project: Project, release_id: str, head: str, rule: FreezeRule) -> GateResult:
    check = check_freeze(
        gitops.open_repo(project.root),
        release_id,
        head,
        rule,
        project.runtime_path,
        gitops.pipeline_pathspecs(project),
    )
    return GateResult("freeze", check.ok, check.describe())


def gate_spec_bump(project: Project, head: str, candidate_spec: int) -> GateResult:
    released = released_digest(project)
    changed = runtime_changed(project, str(released["commit"]), head)
    production_spec = int(released["info"]["spec_version"])
    problem = spec_bump_required(bool(changed), candidate_spec, production_spec)
    if problem:
        shown = ", ".join(changed[:3]) + (" …" if len(changed) > 3 else "")
        return GateResult("spec-bump", False, f"{problem} (changed: {shown})")
    detail = (
        f"runtime unchanged since production's commit {str(released['commit'])[:12]}"
        if not changed
        else f"{len(changed)} runtime file(s) changed; spec_version {production_spec} ->"
        f" {candidate_spec}"
    )
    return GateResult("spec-bump", True, detail)


def gate_upgrade_diff(project: Project, candidate: Path) -> GateResult:
    """The diff's verdicts from production's release to the candidate: a storage layout change
    without a storage version bump, or a call change without a transaction_version bump, fails."""
    released = diff.load_runtime(project, str(released_blob(project)))
    new = diff.load_runtime(project, str(candidate))
    before, after = diff.summaries([released, new])
    found = diff.judge(before, after, diff.diff_summaries(before, after))
    problems = verdicts.problems(found)
    if problems:
        return GateResult("upgrade-diff", False, "; ".join(problems))
    migrations = ", ".join(
        f"{pallet} {m.storage_version[0]}->{m.storage_version[1]}"
        for pallet, m in found.migrations.items()
    )
    return GateResult(
        "upgrade-diff",
        True,
        f"compatible: {'yes' if found.compatible else 'no'}; transaction_version "
        f"{found.transaction_version[0]}->{found.transaction_version[1]}"
        + (f"; storage versions bumped: {migrations}" if migrations else ""),
    )


def gate_migrations(
    project: Project,
    env: config.Environment,
    head: str,
    network: str = "production",
    progress: builder_image.Progress = builder_image.logger.info,
) -> GateResult:
    """The migration gate (try-runtime of `head` on the network's finalized state) and the
    diff's missing-migration verdict against the code that network runs; a pass is remembered
    by its inputs (try-runtime blob, chain, block)."""
    report = migrations.gate_migrations(project, env, network, ref=head, progress=progress)
    with connect(env, network) as chain:
        problems = migrations.diff_problems(chain.code(), builder.build(project, head).compressed)
    if problems:
        return GateResult("migrations", False, f"migration missing: {problems[0]}")
    if report.problem is not None:
        return GateResult("migrations", False, report.problem)
    weight = report.weight_fraction or 0.0
    keys = ", ".join(f"{pallet} {n}" for pallet, n in report.keys_changed.items()) or "none"
    remembered = " (a remembered pass of these exact inputs)" if report.remembered else ""
    return GateResult(
        "migrations",
        True,
        f"spec_version {report.spec_version[0]} -> {report.spec_version[1]} on {network}:"
        f" pre/post-upgrade, decode and try-state pass; idempotent; weight {weight:.2%} of the"
        f" block; keys changed: {keys}{remembered}",
    )


def gate_reproducible(built_hash: str, expected: str | None) -> GateResult:
    if expected is None:
        return GateResult(
            "reproducible", True, f"built {built_hash} (nothing to compare: pass --expect)"
        )
    ok = built_hash == expected.lower()
    return GateResult(
        "reproducible", ok, f"built {built_hash}, release {expected}" + ("" if ok else ": MISMATCH")
    )


def run_gates(
    project: Project,
    *,
    head: str,
    release_id: str | None,
    rule: FreezeRule,
    expect: str | None,
    progress: builder_image.Progress = builder_image.logger.info,
) -> list[GateResult]:
    """Every gate for `head`, quickest first; the build runs once (hermetic, cached) for both
    spec and hash, and the unit tests last."""
    results = [gate_cargo(project, "fmt", head, progress)]
    if release_id is not None:
        results.append(gate_freeze(project, release_id, head, rule))
    build = builder.build(project, head, progress=progress)
    results.append(gate_spec_bump(project, head, build.compressed.version.spec_version))
    results.append(gate_upgrade_diff(project, store.blob_in(build.artifact_dir)))
    results.append(gate_reproducible(build.compressed.blake2_256, expect))
    results.append(gate_cargo(project, "test", head, progress))
    return results
