"""Source checks of the runtime in the builder image: `cargo fmt --check` and `cargo test`.

CI gates run them with the build's pinned toolchain, offline, against the same vendored crates
and the same exported tree, so what passes in CI passes for every engineer whatever their
rustup says, and a check never reads files the commit does not have. A pass is remembered by
its inputs (runtime tree, Cargo.lock, builder image, script): re-running a gate on an unchanged
tree needs no container. Failures are never remembered.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from pipeline import builder, builder_image, gitops
from pipeline.artifact import blake2_256
from pipeline.cache import read_entry
from pipeline.errors import PipelineError
from pipeline.project import Project, cache_dir, write_atomic

Check = Literal["fmt", "test"]


@dataclass(frozen=True)
class Recipe:
    """How a check runs in the builder."""

    script: str
    activity: str  # shown while it runs
    compiles: bool  # needs the shared target volume (and its lock)


# The wasm is the build gate's business: unit tests run natively, without building it.
RECIPES: Final[dict[Check, Recipe]] = {
    "fmt": Recipe("cargo fmt --all --check", "checking the runtime's formatting", False),
    "test": Recipe(
        "SKIP_WASM_BUILD=1 cargo test --locked --offline --workspace --no-fail-fast",
        "running the runtime's unit tests",
        True,
    ),
}

# rustfmt names each unformatted spot "Diff in <file>:<line>:" (older: "… at line N:").
_FMT_DIFF = re.compile(r"^Diff in (.+?)(?::\d+:| at line \d+:)\s*$", re.MULTILINE)
_TEST_FAILED = re.compile(r"^test (\S+) \.\.\. FAILED\s*$", re.MULTILINE)
_SHOWN: Final = 3  # names listed in a one-line detail


@dataclass(frozen=True)
class CheckResult:
    """One check of one tree: passed or why not, and the log a human reads next."""

    check: Check
    ok: bool
    detail: str
    commit: str
    log: str | None  # None when a remembered pass served it
    cached: bool = False


def unformatted_files(output: str) -> list[str]:
    """Files rustfmt would change, relative to the runtime directory, in order of appearance."""
    files: list[str] = []
    for path in _FMT_DIFF.findall(output):
        relative = path.removeprefix(builder.SRC_DIR).lstrip("/")
        if relative not in files:
            files.append(relative)
    return files


def failed_tests(output: str) -> list[str]:
    """Names of the tests that failed, in order of appearance."""
    return list(dict.fromkeys(_TEST_FAILED.findall(output)))


def _listed(names: list[str]) -> str:
    more = len(names) - _SHOWN
    return ", ".join(names[:_SHOWN]) + (f" (+{more} more)" if more > 0 else "")


def failure_detail(check: Check, output: str, runtime_path: str, log: Path) -> str:
    """One line naming what failed and what to do about it."""
    if check == "fmt":
        files = unformatted_files(output)
        if files:
            return (
                f"{len(files)} file(s) not formatted: {_listed(files)}; run `cargo fmt --all` in"
                f" {runtime_path} and commit"
            )
    else:
        tests = failed_tests(output)
        if tests:
            return f"{len(tests)} test(s) failed: {_listed(tests)}; output in {log}"
    return f"{builder_image.failure_summary(output)}; full log {log}"


def _remembered_pass(key: str) -> str | None:
    """The detail of an earlier pass with these exact inputs, if any."""
    try:
        data = json.loads(read_entry(cache_dir() / "checks" / f"{key}.json"))
    except (OSError, ValueError):
        return None
    return str(data["detail"]) if isinstance(data, dict) and data.get("ok") is True else None


def _remember_pass(key: str, check: Check, detail: str) -> None:
    record = json.dumps({"check": check, "ok": True, "detail": detail}) + "\n"
    write_atomic(cache_dir() / "checks" / f"{key}.json", record.encode())


def run_check(
    project: Project,
    check: Check,
    ref: str | None = None,
    progress: builder_image.Progress = builder_image.logger.info,
) -> CheckResult:
    """Run one check on the runtime tree of `ref` (default HEAD) in the builder image.

    Raises PipelineError when the check cannot run (no engine, stale Cargo.lock); a check that
    runs and fails is a result, not an error.
    """
    if check not in RECIPES:
        raise PipelineError(f"unknown check {check!r}: use one of {', '.join(RECIPES)}")
    recipe = RECIPES[check]
    repo = gitops.open_repo(project.root)
    revision = gitops.resolve_runtime(repo, project, ref)
    lock_hash = blake2_256(builder.cargo_lock(repo, revision, project.runtime_path))
    client = builder_image.docker_client()
    image_id = builder_image.ensure_builder_image(client, progress)
    # The build cache's content address, with the check in place of the build options.
    key = builder.cache_key(
        revision.source_tree,
        lock_hash,
        image_id,
        {"check": check, "script": recipe.script, "env": dict(builder.CONTAINER_ENV)},
    )
    remembered = _remembered_pass(key)
    if remembered is not None:
        return CheckResult(check, True, remembered, revision.commit, None, cached=True)
    log_path = project.state_dir / "logs" / f"{check}-{key[:16]}.log"
    with (
        builder_image.log_file(log_path) as log,
        builder.exported_workspace(repo, revision, lock_hash, log, log_path, progress) as workspace,
    ):
        volumes = builder.build_volumes(
            workspace.source,
            workspace.vendor,
            workspace.out,
            builder.TARGET_VOLUME if recipe.compiles else None,
        )
        log.write(f"$ {recipe.script}\n")
        log.flush()
        with (
            builder.target_volume_lock(client, progress)
            if recipe.compiles
            else contextlib.nullcontext()
        ):
            code = builder.run_in_builder(
                client,
                image_id,
                recipe.script,
                volumes,
                key,
                log,
                recipe.activity,
                progress,
                units_key=f"{check}:{lock_hash}",
            )
    output = log_path.read_text(errors="replace")
    if code != 0 and builder_image.lock_is_stale(output):
        raise builder_image.stale_lock_error(workspace.where)
    if code == 0:
        detail = _pass_detail(check, output)
        _remember_pass(key, check, detail)
        return CheckResult(check, True, detail, revision.commit, str(log_path))
    detail = failure_detail(check, output, project.runtime_path, log_path)
    return CheckResult(check, False, detail, revision.commit, str(log_path))


_TEST_SUMMARY = re.compile(r"^test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored", re.M)


def _pass_detail(check: Check, output: str) -> str:
    if check == "fmt":
        return "every file formatted as rustfmt.toml asks"
    passed = sum(int(m[0]) for m in _TEST_SUMMARY.findall(output))
    ignored = sum(int(m[2]) for m in _TEST_SUMMARY.findall(output))
    return f"{passed} test(s) passed" + (f", {ignored} ignored" if ignored else "")
