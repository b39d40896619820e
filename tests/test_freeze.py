"""The freeze tag and the bugfix-only rule, against throwaway git repositories."""

from __future__ import annotations

from pathlib import Path

import git
import pytest

from pipeline.errors import PipelineError
from pipeline.freeze import check_freeze, frozen_commit, tag_freeze
from pipeline.policy import FreezeRule


def commit(repo: git.Repo, message: str) -> str:
    path = Path(repo.working_tree_dir or ".") / "runtime.rs"
    path.write_text(path.read_text() + message + "\n" if path.exists() else message + "\n")
    repo.index.add([str(path)])
    return str(repo.index.commit(message).hexsha)


@pytest.fixture
def repo(tmp_path: Path) -> git.Repo:
    repo = git.Repo.init(tmp_path)
    with repo.config_writer() as cfg:
        cfg.set_value("user", "name", "Test")
        cfg.set_value("user", "email", "test@example.invalid")
    commit(repo, "feat: the runtime")
    return repo


def test_before_the_freeze_anything_goes(repo: git.Repo) -> None:
    commit(repo, "feat: more")
    check = check_freeze(repo, "r1", "HEAD", FreezeRule())
    assert check.frozen_at is None and check.ok


def test_bugfixes_after_the_freeze_pass(repo: git.Repo) -> None:
    frozen = repo.head.commit.hexsha
    assert tag_freeze(repo, "r1", frozen, "0xabc") == "freeze/r1"
    commit(repo, "fix: off-by-one in notes")
    commit(repo, "Tune fees\n\nFixes: #12")
    check = check_freeze(repo, "r1", "HEAD", FreezeRule())
    assert check.ok and len(check.moved_by) == 2 and check.frozen_at == frozen


def test_a_feature_after_the_freeze_is_named(repo: git.Repo) -> None:
    tag_freeze(repo, "r1", repo.head.commit.hexsha, "0xabc")
    commit(repo, "fix: fine")
    bad = commit(repo, "feat: sneak in a pallet")
    check = check_freeze(repo, "r1", "HEAD", FreezeRule())
    assert not check.ok
    assert [c.sha for c in check.violations] == [bad]
    assert "feat: sneak in a pallet" in check.describe()


def test_named_exceptions_pass(repo: git.Repo) -> None:
    tag_freeze(repo, "r1", repo.head.commit.hexsha, "0xabc")
    commit(repo, "ui: new button colour")
    assert check_freeze(repo, "r1", "HEAD", FreezeRule(exception_prefixes=("ui:",))).ok
    assert not check_freeze(repo, "r1", "HEAD", FreezeRule()).ok


def test_tag_is_idempotent_and_never_moves(repo: git.Repo) -> None:
    first = repo.head.commit.hexsha
    tag_freeze(repo, "r1", first, "0xabc")
    tag_freeze(repo, "r1", first, "0xabc")
    assert frozen_commit(repo, "r1") == first
    tag = repo.tags["freeze/r1"].tag
    assert tag is not None and "Code hash: 0xabc" in str(tag.message)
    later = commit(repo, "fix: x")
    with pytest.raises(PipelineError, match="already marks"):
        tag_freeze(repo, "r1", later, "0xdef")
