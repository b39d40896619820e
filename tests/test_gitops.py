"""pipeline.gitops against real throwaway repositories: refs, dirty refusal, tree ids, export."""

from __future__ import annotations

from pathlib import Path

import git
import pytest

from pipeline import gitops
from pipeline.errors import PipelineError
from pipeline.project import Project

RUNTIME = "examples/runtime"
FILES = {
    f"{RUNTIME}/Cargo.toml": "[workspace]\nmembers = ['runtime']\n",
    f"{RUNTIME}/Cargo.lock": "version = 4\n",
    f"{RUNTIME}/runtime/src/lib.rs": "#![no_std]\n",
    "README.md": "outside the runtime\n",
    ".gitignore": "target/\n",
}


def commit(repo: git.Repo, files: dict[str, str], message: str) -> str:
    root = Path(str(repo.working_tree_dir))
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    repo.index.add(list(files))
    author = git.Actor("t", "t@example.invalid")
    return str(repo.index.commit(message, author=author, committer=author).hexsha)


@pytest.fixture
def repo(tmp_path: Path) -> git.Repo:
    repository = git.Repo.init(tmp_path / "repo", initial_branch="main")
    commit(repository, FILES, "first")
    return repository


def files_under(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in root.rglob("*") if p.is_file()}


def test_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="not a git repository"):
        gitops.open_repo(tmp_path)


def test_repository_without_commits(tmp_path: Path) -> None:
    empty = git.Repo.init(tmp_path / "empty")
    with pytest.raises(PipelineError, match="no commits yet"):
        gitops.resolve(empty, None, RUNTIME)


@pytest.mark.parametrize("ref", ["nope", "v9.9.9", "0123456789abcdef0123", "main~5"])
def test_unknown_ref(repo: git.Repo, ref: str) -> None:
    with pytest.raises(PipelineError, match=r"unknown git ref .*: pass a branch, tag or commit"):
        gitops.resolve(repo, ref, RUNTIME)


def test_missing_runtime_dir_at_ref(repo: git.Repo) -> None:
    with pytest.raises(PipelineError, match="does not exist at commit"):
        gitops.resolve(repo, None, "no/such/dir")


@pytest.mark.parametrize(
    ("path", "content"),
    [
        (f"{RUNTIME}/runtime/src/lib.rs", "#![no_std]\n// edited\n"),  # modified
        (f"{RUNTIME}/runtime/src/new.rs", "fn f() {}\n"),  # untracked
    ],
)
def test_uncommitted_changes_under_runtime_are_refused(
    repo: git.Repo, path: str, content: str
) -> None:
    (Path(str(repo.working_tree_dir)) / path).write_text(content)
    with pytest.raises(
        PipelineError, match=r"uncommitted changes under examples/runtime .*--dirty"
    ):
        gitops.resolve(repo, None, RUNTIME)
    with pytest.raises(PipelineError, match="uncommitted changes"):
        gitops.resolve(repo, "main", RUNTIME)  # names the same commit as HEAD
    dirty = gitops.resolve(repo, None, RUNTIME, dirty=True)
    assert dirty.dirty
    assert dirty.source_tree.startswith(gitops.WORKTREE_PREFIX)


def test_staged_deletion_is_uncommitted(repo: git.Repo) -> None:
    repo.index.remove([f"{RUNTIME}/Cargo.lock"], working_tree=True)
    assert gitops.uncommitted_paths(repo, RUNTIME) == [f"{RUNTIME}/Cargo.lock"]


def test_changes_elsewhere_or_ignored_do_not_count(repo: git.Repo) -> None:
    root = Path(str(repo.working_tree_dir))
    (root / "README.md").write_text("edited\n")
    (root / RUNTIME / "target").mkdir()
    (root / RUNTIME / "target" / "junk").write_text("build output\n")
    revision = gitops.resolve(repo, None, RUNTIME)
    assert not revision.dirty
    assert revision.branch == "main"


def test_older_ref_builds_despite_dirty_worktree(repo: git.Repo) -> None:
    first = repo.head.commit.hexsha
    commit(repo, {f"{RUNTIME}/runtime/src/lib.rs": "#![no_std]\n// v2\n"}, "second")
    (Path(str(repo.working_tree_dir)) / RUNTIME / "runtime/src/lib.rs").write_text("wip\n")
    revision = gitops.resolve(repo, first, RUNTIME)
    assert revision.commit == first
    assert not revision.dirty
    with pytest.raises(PipelineError, match="--dirty builds the working tree"):
        gitops.resolve(repo, first, RUNTIME, dirty=True)


def test_tree_id_depends_on_runtime_content_only_not_on_path(
    repo: git.Repo, tmp_path: Path
) -> None:
    before = gitops.resolve(repo, None, RUNTIME)
    commit(repo, {"README.md": "only outside\n"}, "docs")
    same_runtime = gitops.resolve(repo, None, RUNTIME)
    assert same_runtime.commit != before.commit
    assert same_runtime.source_tree == before.source_tree
    clone = git.Repo.clone_from(str(repo.working_tree_dir), tmp_path / "elsewhere" / "clone")
    assert gitops.resolve(clone, None, RUNTIME).source_tree == before.source_tree
    commit(repo, {f"{RUNTIME}/Cargo.lock": "version = 4\n# changed\n"}, "lock")
    assert gitops.resolve(repo, None, RUNTIME).source_tree != before.source_tree


def test_worktree_hash_depends_on_content_not_on_path(repo: git.Repo, tmp_path: Path) -> None:
    clone = git.Repo.clone_from(str(repo.working_tree_dir), tmp_path / "other")
    for checkout in (repo, clone):
        (Path(str(checkout.working_tree_dir)) / RUNTIME / "runtime/src/new.rs").write_text("x\n")
    first = gitops.worktree_hash(repo, RUNTIME)
    assert first == gitops.worktree_hash(clone, RUNTIME)
    (Path(str(clone.working_tree_dir)) / RUNTIME / "runtime/src/new.rs").write_text("y\n")
    assert gitops.worktree_hash(clone, RUNTIME) != first


def test_names_of_a_revision(repo: git.Repo) -> None:
    sha = repo.head.commit.hexsha
    repo.create_tag("v1.0.0", message="annotated")
    repo.create_tag("a-light")
    by_tag = gitops.resolve(repo, "v1.0.0", RUNTIME)
    assert (by_tag.commit, by_tag.tag, by_tag.branch) == (sha, "v1.0.0", None)
    by_head = gitops.resolve(repo, None, RUNTIME)
    assert (by_head.ref, by_head.tag, by_head.branch) == ("HEAD", "a-light", "main")
    repo.git.checkout("--detach")
    assert gitops.resolve(repo, sha[:10], RUNTIME).branch is None


def test_export_is_the_committed_runtime_dir_only(repo: git.Repo, tmp_path: Path) -> None:
    root = Path(str(repo.working_tree_dir))
    (root / RUNTIME / "target").mkdir()
    (root / RUNTIME / "target" / "junk").write_text("ignored\n")
    dest = tmp_path / "export"
    dest.mkdir()
    gitops.export(repo, gitops.resolve(repo, None, RUNTIME), dest)
    prefix = f"{RUNTIME}/"
    assert files_under(dest) == {
        k[len(prefix) :]: v for k, v in FILES.items() if k.startswith(prefix)
    }


def test_export_of_an_older_commit(repo: git.Repo, tmp_path: Path) -> None:
    first = repo.head.commit.hexsha
    commit(repo, {f"{RUNTIME}/runtime/src/lib.rs": "#![no_std]\n// v2\n"}, "second")
    dest = tmp_path / "export"
    dest.mkdir()
    gitops.export(repo, gitops.resolve(repo, first, RUNTIME), dest)
    assert (dest / "runtime/src/lib.rs").read_text() == "#![no_std]\n"


def test_dirty_export_is_the_working_tree(repo: git.Repo, tmp_path: Path) -> None:
    root = Path(str(repo.working_tree_dir))
    (root / RUNTIME / "runtime/src/lib.rs").write_text("edited\n")
    (root / RUNTIME / "runtime/src/new.rs").write_text("new\n")
    (root / RUNTIME / "target").mkdir()
    (root / RUNTIME / "target" / "junk").write_text("ignored\n")
    revision = gitops.resolve(repo, None, RUNTIME, dirty=True)
    dest = tmp_path / "export"
    dest.mkdir()
    gitops.export(repo, revision, dest)
    exported = files_under(dest)
    assert exported["runtime/src/lib.rs"] == "edited\n"
    assert exported["runtime/src/new.rs"] == "new\n"
    assert not any(name.startswith("target/") for name in exported)
    assert gitops.read_file(repo, revision, "runtime/src/lib.rs") == b"edited\n"


def test_read_file_at_a_commit(repo: git.Repo) -> None:
    revision = gitops.resolve(repo, None, RUNTIME)
    assert gitops.read_file(repo, revision, "Cargo.lock") == b"version = 4\n"
    assert gitops.read_file(repo, revision, "missing.lock") is None
    assert gitops.read_file(repo, revision, "runtime") is None  # a directory, not a file


def test_resolving_does_not_touch_the_index(repo: git.Repo) -> None:
    index = Path(repo.git_dir) / "index"
    before = index.stat().st_mtime_ns
    (Path(str(repo.working_tree_dir)) / RUNTIME / "Cargo.toml").touch()
    gitops.resolve(repo, None, RUNTIME)
    assert index.stat().st_mtime_ns == before


def test_pipeline_state_never_makes_a_root_runtime_dirty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A runtime at the repo root (`path = "."`): the pipeline's own state and artifacts, written
    inside that tree by the first build, neither refuse the second build nor enter a dirty one;
    a real source change still does."""
    monkeypatch.delenv("PIPELINE_STATE_DIR", raising=False)
    root = tmp_path / "solo"
    repository = git.Repo.init(root, initial_branch="main")
    commit(repository, {"Cargo.toml": "[workspace]\n", "runtime/src/lib.rs": "#![no_std]\n"}, "c")
    project = Project(root=root, runtime_path=".", runtime_package="solo-runtime", suites={})
    first = gitops.resolve_runtime(repository, project, None)
    (root / ".pipeline" / "logs").mkdir(parents=True)
    (root / ".pipeline" / "logs" / "build-0123.log").write_text("compiling\n")
    (root / "artifacts" / "ab12").mkdir(parents=True)
    (root / "artifacts" / "ab12" / "digest.json").write_text("{}\n")
    second = gitops.resolve_runtime(repository, project, None)
    assert second.source_tree == first.source_tree and not second.dirty
    assert second.excluded == (".pipeline", "artifacts")
    # the same files under a name that is not the pipeline's are a change
    (root / "pipeline-notes.txt").write_text("mine\n")
    with pytest.raises(PipelineError, match=r"uncommitted changes under \. \(pipeline-notes"):
        gitops.resolve_runtime(repository, project, None)
    dirty = gitops.resolve_runtime(repository, project, None, dirty=True)
    out = tmp_path / "out"
    out.mkdir()
    gitops.export(repository, dirty, out)
    assert sorted(files_under(out)) == ["Cargo.toml", "pipeline-notes.txt", "runtime/src/lib.rs"]
    (root / ".pipeline" / "logs" / "build-4567.log").write_text("another build\n")
    again = gitops.resolve_runtime(repository, project, None, dirty=True)
    assert again.source_tree == dirty.source_tree  # the state is not part of the dirty hash


def test_state_outside_the_repo_excludes_nothing(
    repo: git.Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_STATE_DIR", str(tmp_path / "elsewhere"))
    root = Path(str(repo.working_tree_dir))
    project = Project(root=root, runtime_path=RUNTIME, runtime_package="r", suites={})
    assert gitops.resolve_runtime(repo, project, None).excluded == ("artifacts",)
