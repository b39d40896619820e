"""CI gates against throwaway git repositories: the freeze rule, the spec_version bump, and
rustfmt and `cargo test` in the builder image."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import git
import pytest
from fixtures.runtimes import runtime_wasm

from pipeline.freeze import tag_freeze
from pipeline.gates import (
    gate_cargo,
    gate_freeze,
    gate_reproducible,
    gate_spec_bump,
    gate_upgrade_diff,
)
from pipeline.policy import FreezeRule
from pipeline.project import Project, load_project

REPO = Path(__file__).resolve().parents[1]


def commit(repo: git.Repo, files: dict[str, str], message: str) -> str:
    root = Path(repo.working_tree_dir or ".")
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    repo.index.add(list(files))
    return str(repo.index.commit(message).hexsha)


@pytest.fixture
def project(tmp_path: Path) -> tuple[Project, git.Repo]:
    repo = git.Repo.init(tmp_path)
    with repo.config_writer() as cfg:
        cfg.set_value("user", "name", "Test")
        cfg.set_value("user", "email", "test@example.invalid")
    settings = '[runtime]\npath = "runtime"\npackage = "rt"\n'
    released = commit(repo, {"runtime/src/lib.rs": "spec 100\n", "pipeline.toml": settings}, "feat")
    digest = {"commit": released, "info": {"spec_version": 100}, "wasm": "rt.wasm"}
    commit(repo, {"runtime/releases/100/digest.json": json.dumps(digest)}, "chore: release 100")
    return load_project(tmp_path), repo


def test_unchanged_runtime_needs_no_bump(project: tuple[Project, git.Repo]) -> None:
    proj, repo = project
    commit(repo, {"README.md": "docs\n"}, "docs: readme")
    assert gate_spec_bump(proj, "HEAD", 100).ok


def test_runtime_change_without_bump_fails_and_names_the_files(
    project: tuple[Project, git.Repo],
) -> None:
    proj, repo = project
    commit(repo, {"runtime/src/lib.rs": "spec 100, new logic\n"}, "feat: logic")
    result = gate_spec_bump(proj, "HEAD", 100)
    assert not result.ok
    assert "bump spec_version to at least 101" in result.detail
    assert "runtime/src/lib.rs" in result.detail
    assert gate_spec_bump(proj, "HEAD", 101).ok


def test_the_pipelines_own_files_are_no_runtime_change_with_the_runtime_at_the_root(
    tmp_path: Path,
) -> None:
    """init's files sit inside a runtime workspace at the repo root: committing them (or a plan
    edit after the freeze) neither asks for a spec_version bump nor breaks the freeze."""
    repo = git.Repo.init(tmp_path)
    with repo.config_writer() as cfg:
        cfg.set_value("user", "name", "Test")
        cfg.set_value("user", "email", "test@example.invalid")
    released = commit(repo, {"src/lib.rs": "spec 100\n", "Cargo.toml": "[workspace]\n"}, "feat")
    digest = {"commit": released, "info": {"spec_version": 100}, "wasm": "rt.wasm"}
    settings = '[runtime]\npath = "."\npackage = "rt"\n[suites]\nfinal = "suites/upgrade"\n'
    adopted = {
        "releases/100/digest.json": json.dumps(digest),
        "pipeline.toml": settings,
        "environments/local.toml": "local = true\n",
        "releases/rt-101.toml": "# plan\n",
        "suites/upgrade/test_upgrade.py": "# suite\n",
        ".github/workflows/runtime-pipeline.yml": "name: gates\n",
        ".gitignore": "/.pipeline/\n",
    }
    commit(repo, adopted, "adopt the runtime pipeline")
    proj = load_project(tmp_path)
    result = gate_spec_bump(proj, "HEAD", 100)
    assert result.ok and "unchanged" in result.detail, result.detail
    tag_freeze(repo, "r1", repo.head.commit.hexsha, "0xabc")
    commit(repo, {"releases/rt-101.toml": "# plan, moved a date\n"}, "chore: plan")
    assert gate_freeze(proj, "r1", "HEAD", FreezeRule()).ok
    commit(repo, {"src/lib.rs": "spec 100, new logic\n"}, "feat: logic")
    assert not gate_freeze(proj, "r1", "HEAD", FreezeRule()).ok
    result = gate_spec_bump(proj, "HEAD", 100)
    assert not result.ok and "(changed: src/lib.rs)" in result.detail, result.detail


def test_freeze_gate_fails_on_a_feature_and_ignores_work_outside_the_runtime(
    project: tuple[Project, git.Repo],
) -> None:
    proj, repo = project
    tag_freeze(repo, "r1", repo.head.commit.hexsha, "0xabc")
    commit(repo, {"docs/notes.md": "x\n"}, "feat: docs outside the runtime")
    commit(repo, {"runtime/src/lib.rs": "fix\n"}, "fix: overflow")
    assert gate_freeze(proj, "r1", "HEAD", FreezeRule()).ok
    commit(repo, {"runtime/src/lib.rs": "feature\n"}, "feat: new call")
    result = gate_freeze(proj, "r1", "HEAD", FreezeRule())
    assert not result.ok and "feat: new call" in result.detail


def released_as(root: Path, blob: Path, spec: int) -> Project:
    """A project whose newest committed release is `blob` (production runs it)."""
    folder = root / "runtime" / "releases" / str(spec)
    folder.mkdir(parents=True)
    (folder / blob.name).write_bytes(blob.read_bytes())
    (folder / "digest.json").write_text(json.dumps({"info": {"spec_version": spec}}))
    return Project(root=root, runtime_path="runtime", runtime_package="rt", suites={})


def test_upgrade_diff_gate_passes_a_migration_with_its_storage_version_bump(
    tmp_path: Path,
) -> None:
    result = gate_upgrade_diff(released_as(tmp_path, runtime_wasm(100), 100), runtime_wasm(101))
    assert result.ok, result.detail
    assert "storage versions bumped: Notes 0->1" in result.detail


def test_upgrade_diff_gate_fails_a_storage_change_without_a_storage_version_bump(
    tmp_path: Path,
) -> None:
    """101 -> 100: Notes' layout changes back while its storage version goes 1 -> 0."""
    result = gate_upgrade_diff(released_as(tmp_path, runtime_wasm(101), 101), runtime_wasm(100))
    assert not result.ok
    assert result.detail.startswith("storage of Notes changed (Notes.Notes) but its storage")


def test_reproducible_gate_compares_hashes() -> None:
    assert gate_reproducible("0xaa", "0xAA").ok
    assert not gate_reproducible("0xaa", "0xbb").ok
    assert "MISMATCH" in gate_reproducible("0xaa", "0xbb").detail


# --- rustfmt and unit tests of the runtime, in the builder image -------------------------------

CRATE_MANIFEST = '[package]\nname = "rt"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n'
CRATE_LOCK = (
    "# This file is automatically @generated by Cargo.\n"
    "# It is not intended for manual editing.\n"
    'version = 4\n\n[[package]]\nname = "rt"\nversion = "0.1.0"\n'
)
FORMATTED = "pub fn answer() -> u32 {\n\t42\n}\n"
UNFORMATTED = "pub fn answer()->u32{42}\n"


def unit_test(expected: int) -> str:
    """A rustfmt-clean test module asserting that `answer()` is `expected`."""
    return (
        "\n#[cfg(test)]\nmod tests {\n\t#[test]\n\tfn answers() {\n"
        f"\t\tassert_eq!(super::answer(), {expected});\n\t}}\n}}\n"
    )


@pytest.fixture
def crate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Project, git.Repo]:
    """A throwaway runtime repo: one crate `rt` (no dependencies) with the house rustfmt.toml."""
    monkeypatch.setenv("PIPELINE_CACHE_DIR", str(tmp_path / "cache"))  # no remembered passes
    root = tmp_path / "repo"
    repo = git.Repo.init(root)
    with repo.config_writer() as cfg:
        cfg.set_value("user", "name", "Test")
        cfg.set_value("user", "email", "test@example.invalid")
    commit(
        repo,
        {
            "pipeline.toml": '[runtime]\npath = "rt"\npackage = "rt"\n',
            "rt/Cargo.toml": CRATE_MANIFEST,
            "rt/Cargo.lock": CRATE_LOCK,
            "rt/rustfmt.toml": 'edition = "2021"\nhard_tabs = true\n',
            "rt/src/lib.rs": FORMATTED + unit_test(42),
        },
        "feat: the answer",
    )
    return load_project(root), repo


@pytest.mark.docker
def test_fmt_gate_names_the_unformatted_file_and_passes_once_formatted(
    crate: tuple[Project, git.Repo],
) -> None:
    proj, repo = crate
    bad = commit(repo, {"rt/src/lib.rs": UNFORMATTED}, "feat: squeeze")
    result = gate_cargo(proj, "fmt", "HEAD")
    assert not result.ok
    assert result.detail.startswith("1 file(s) not formatted: src/lib.rs;"), result.detail
    assert "run `cargo fmt --all` in rt" in result.detail
    commit(repo, {"rt/src/lib.rs": FORMATTED}, "fix: format")
    fixed = gate_cargo(proj, "fmt", "HEAD")
    assert fixed.ok, fixed.detail
    assert "remembered" not in fixed.detail
    assert "remembered" in gate_cargo(proj, "fmt", "HEAD").detail  # no second container
    assert not gate_cargo(proj, "fmt", bad).ok  # failures are never remembered


@pytest.mark.docker
def test_test_gate_names_the_failing_test_and_passes_after_the_fix(
    crate: tuple[Project, git.Repo],
) -> None:
    proj, repo = crate
    commit(repo, {"rt/src/lib.rs": FORMATTED + unit_test(41)}, "feat: wrong expectation")
    result = gate_cargo(proj, "test", "HEAD")
    assert not result.ok
    assert result.detail.startswith("1 test(s) failed: tests::answers;"), result.detail
    commit(repo, {"rt/src/lib.rs": FORMATTED + unit_test(42)}, "fix: expectation")
    fixed = gate_cargo(proj, "test", "HEAD")
    assert fixed.ok and fixed.detail == "1 test(s) passed", fixed.detail


@pytest.mark.docker
def test_test_gate_names_a_compile_error(crate: tuple[Project, git.Repo]) -> None:
    proj, repo = crate
    commit(repo, {"rt/src/lib.rs": 'pub fn answer() -> u32 {\n\t"42"\n}\n'}, "feat: oops")
    result = gate_cargo(proj, "test", "HEAD")
    assert not result.ok
    assert "error[E0308]: mismatched types" in result.detail, result.detail
    assert "full log" in result.detail


@pytest.mark.docker
def test_gate_tasks_fail_with_one_line_and_exit_1(crate: tuple[Project, git.Repo]) -> None:
    """`invoke gate.fmt` as a runtime repo's CI runs it: from the repo, with this pipeline."""
    proj, repo = crate
    commit(repo, {"rt/src/lib.rs": UNFORMATTED}, "feat: squeeze")
    run = subprocess.run(
        [sys.executable, "-m", "invoke", "--search-root", str(REPO), "gate.fmt"],
        cwd=proj.root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "FAIL fmt: 1 file(s) not formatted: src/lib.rs" in run.stdout
    assert run.stderr.strip().splitlines()[-1] == "error: gate(s) failed: fmt"
