"""CI gates against throwaway git repositories: the freeze rule and the spec_version bump."""

from __future__ import annotations

import json
from pathlib import Path

import git
import pytest

from pipeline.freeze import tag_freeze
from pipeline.gates import gate_freeze, gate_reproducible, gate_spec_bump
from pipeline.policy import FreezeRule
from pipeline.project import Project, load_project


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


def test_reproducible_gate_compares_hashes() -> None:
    assert gate_reproducible("0xaa", "0xAA").ok
    assert not gate_reproducible("0xaa", "0xbb").ok
    assert "MISMATCH" in gate_reproducible("0xaa", "0xbb").detail
