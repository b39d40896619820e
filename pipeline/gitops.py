"""Git as the source of truth for a build: resolve a ref, name what it is, export its tree.

Everything here only reads the repository (no index refresh, no refs, no objects written), so
several engineers and CI jobs can build from the same checkout while others work in it. A build
names its source by the git tree object of the runtime directory, so two commits with the same
runtime tree are the same build input. Tags (freeze, release) will live here as well.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import git
from gitdb.exc import BadName, BadObject

from pipeline.config import ENVIRONMENTS_DIR
from pipeline.errors import PipelineError
from pipeline.plan import RELEASES_DIR
from pipeline.project import SETTINGS_FILE, WORKFLOW_FILE, Project

# Keep `git status` from rewriting the index's stat cache: building must not touch git state.
_READ_ONLY_ENV = {"GIT_OPTIONAL_LOCKS": "0"}
WORKTREE_PREFIX = "worktree:"  # source_tree of a dirty build: a content hash, not a git tree


@dataclass(frozen=True)
class Revision:
    """One resolved build input: which commit, what it is called, and the runtime tree's id."""

    ref: str  # as the user wrote it
    commit: str  # full hex sha
    tag: str | None
    branch: str | None
    dirty: bool  # the working tree is built, not the commit
    subdir: str  # runtime directory, relative to the repo root ("" for the root)
    source_tree: str  # git tree id of subdir at commit, or WORKTREE_PREFIX + blake2 if dirty
    excluded: tuple[str, ...] = ()  # repo-relative paths that are never source (see `resolve`)


def open_repo(path: Path) -> git.Repo:
    """The repository containing `path`."""
    try:
        return git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise PipelineError(
            f"not a git repository: {path}: builds come from git; run `git init` and commit"
            " the runtime"
        ) from None


def pipeline_pathspecs(project: Project) -> list[str]:
    """Git pathspecs leaving out what the pipeline keeps in the repo (its settings, environments,
    release plans, suites, the CI workflow `init` writes, .gitignore): not runtime source, even
    when the runtime's workspace is the repo root and they sit inside it."""
    own = [SETTINGS_FILE, ENVIRONMENTS_DIR, RELEASES_DIR, WORKFLOW_FILE, ".gitignore"]
    suites = [path for path in project.suites.values() if path.strip("/") not in ("", ".")]
    return [f":(exclude){path}" for path in (*own, *suites)]


def resolve_runtime(
    repo: git.Repo, project: Project, ref: str | None, dirty: bool = False
) -> Revision:
    """`resolve` for the project's runtime: the pipeline's own directories are never source."""
    return resolve(repo, ref, project.runtime_path, dirty, exclude=project.own_dirs)


def resolve(
    repo: git.Repo,
    ref: str | None,
    subdir: str,
    dirty: bool = False,
    *,
    exclude: Iterable[Path] = (),
) -> Revision:
    """Resolve `ref` (default HEAD) and check that it can be built as asked.

    Uncommitted changes under `subdir` only matter when building HEAD: they are refused, since
    the artifact would not match the commit it names, unless `dirty` builds the working tree.
    Paths in `exclude` (the pipeline's state and artifacts, written while it works) are never a
    change and never part of a dirty build, wherever they sit.
    """
    subdir = _normalise(subdir)
    excluded = _inside(repo, exclude)
    name = ref or "HEAD"
    commit = _commit(repo, name)
    if dirty and commit.hexsha != _head_sha(repo):
        raise PipelineError(
            f"--dirty builds the working tree, which is not at {name}: drop --ref or drop --dirty"
        )
    if commit.hexsha == _head_sha(repo) and not dirty:
        changed = uncommitted_paths(repo, subdir, excluded)
        if changed:
            shown = ", ".join(changed[:3]) + (" …" if len(changed) > 3 else "")
            raise PipelineError(
                f"uncommitted changes under {subdir or '.'} ({shown}): commit them, or pass"
                " --dirty to build the working tree (recorded as dirty in the digest)"
            )
    source_tree = (
        worktree_hash(repo, subdir, excluded) if dirty else tree_id(repo, commit.hexsha, subdir)
    )
    return Revision(
        ref=name,
        commit=commit.hexsha,
        tag=_tag_for(repo, name, commit.hexsha),
        branch=_branch_for(repo, name, commit.hexsha),
        dirty=dirty,
        subdir=subdir,
        source_tree=source_tree,
        excluded=excluded,
    )


def tree_id(repo: git.Repo, commit: str, subdir: str) -> str:
    """git's tree object id of `subdir` at `commit`: equal content gives an equal id anywhere."""
    tree = repo.commit(commit).tree
    if not subdir:
        return str(tree.hexsha)
    try:
        entry = tree / subdir
    except KeyError:
        raise PipelineError(
            f"{subdir} does not exist at commit {commit[:12]}: pick a ref that has the runtime"
            " or fix [runtime] path in pipeline.toml"
        ) from None
    if entry.type != "tree":
        raise PipelineError(
            f"{subdir} is not a directory at commit {commit[:12]}: fix [runtime] path"
        )
    return str(entry.hexsha)


def uncommitted_paths(repo: git.Repo, subdir: str, excluded: Iterable[str] = ()) -> list[str]:
    """Paths under `subdir`, but not under `excluded`, that differ from HEAD: staged, modified,
    deleted or untracked."""
    out = repo.git.status(
        "--porcelain=v1",
        "-z",
        "--untracked-files=all",
        "--",
        *_pathspecs(subdir, excluded),
        env=_READ_ONLY_ENV,
    )
    entries = [entry for entry in out.split("\0") if entry]
    paths: list[str] = []
    skip_next = False
    for entry in entries:
        if skip_next:  # the source path of a rename
            skip_next = False
            continue
        paths.append(entry[3:])
        skip_next = entry[0] in "RC"
    return paths


def worktree_hash(repo: git.Repo, subdir: str, excluded: Iterable[str] = ()) -> str:
    """A content hash of the working tree under `subdir`, as a dirty build exports it."""
    digest = hashlib.blake2b(digest_size=32)
    root = Path(str(repo.working_tree_dir))
    for rel in _worktree_files(repo, subdir, excluded):
        path = root / rel
        mode = path.lstat().st_mode
        content = os.readlink(path).encode() if stat.S_ISLNK(mode) else path.read_bytes()
        kind = "l" if stat.S_ISLNK(mode) else ("x" if mode & stat.S_IXUSR else "f")
        digest.update(f"{rel}\0{kind}\0{len(content)}\0".encode())
        digest.update(content)
    return WORKTREE_PREFIX + digest.hexdigest()


def read_file(repo: git.Repo, revision: Revision, relpath: str) -> bytes | None:
    """A file of the runtime directory as the build will see it; None when it is absent."""
    path = str(PurePosixPath(revision.subdir, relpath)) if revision.subdir else relpath
    if revision.dirty:
        full = Path(str(repo.working_tree_dir)) / path
        return full.read_bytes() if full.is_file() else None
    try:
        blob = repo.commit(revision.commit).tree / path
    except KeyError:
        return None
    return bytes(blob.data_stream.read()) if blob.type == "blob" else None


def export(repo: git.Repo, revision: Revision, dest: Path) -> None:
    """Write the runtime directory of `revision` into the empty directory `dest`.

    A commit is exported with `git archive` (exactly what is committed: no ignored or untracked
    files, no build output); a dirty build copies tracked and untracked, non-ignored files.
    """
    if revision.dirty:
        root = Path(str(repo.working_tree_dir))
        prefix = f"{revision.subdir}/" if revision.subdir else ""
        for rel in _worktree_files(repo, revision.subdir, revision.excluded):
            target = dest / rel[len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / rel, target, follow_symlinks=False)
        return
    treeish = f"{revision.commit}:{revision.subdir}" if revision.subdir else revision.commit
    buffer = io.BytesIO()
    repo.archive(buffer, treeish=treeish, format="tar")
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as archive:
        archive.extractall(dest, filter="data")


def _worktree_files(repo: git.Repo, subdir: str, excluded: Iterable[str] = ()) -> list[str]:
    """Tracked and untracked, non-ignored files under `subdir` but not `excluded`, that exist,
    sorted."""
    out = repo.git.ls_files(
        "-z",
        "--cached",
        "--others",
        "--exclude-standard",
        "--",
        *_pathspecs(subdir, excluded),
        env=_READ_ONLY_ENV,
    )
    root = Path(str(repo.working_tree_dir))
    return sorted(
        {
            rel
            for rel in out.split("\0")
            if rel and ((root / rel).is_symlink() or (root / rel).is_file())
        }
    )


def _inside(repo: git.Repo, paths: Iterable[Path]) -> tuple[str, ...]:
    """The paths inside the working tree, relative to it (others cannot touch its status)."""
    root = Path(str(repo.working_tree_dir)).resolve()
    inside = []
    for path in paths:
        try:
            inside.append(Path(path).resolve().relative_to(root).as_posix())
        except ValueError:
            continue
    return tuple(sorted(rel for rel in set(inside) if rel != "."))


def _pathspecs(subdir: str, excluded: Iterable[str]) -> list[str]:
    """git pathspecs for `subdir` without `excluded` (literal paths, not globs)."""
    return [subdir or ".", *(f":(exclude,literal){rel}" for rel in excluded)]


def _normalise(subdir: str) -> str:
    path = PurePosixPath(subdir)
    if path.is_absolute() or ".." in path.parts:
        raise PipelineError(f"runtime path {subdir!r} must be relative to the repo root, inside it")
    return "" if str(path) == "." else str(path)


def _commit(repo: git.Repo, ref: str) -> git.Commit:
    try:
        obj = repo.rev_parse(ref)
    except (BadName, BadObject, ValueError, git.GitCommandError):
        if ref == "HEAD":
            raise PipelineError(
                f"no commits yet in {repo.working_tree_dir}: commit the runtime, then build"
            ) from None
        raise PipelineError(
            f"unknown git ref {ref!r}: pass a branch, tag or commit of this repository"
            " (see `git tag`, `git branch -a`)"
        ) from None
    while isinstance(obj, git.TagObject):
        obj = obj.object
    if not isinstance(obj, git.Commit):
        raise PipelineError(f"git ref {ref!r} names a {obj.type}, not a commit: pass a commit")
    return obj


def _head_sha(repo: git.Repo) -> str | None:
    try:
        return str(repo.head.commit.hexsha)
    except ValueError:  # unborn HEAD
        return None


def _tag_for(repo: git.Repo, ref: str, commit: str) -> str | None:
    """The tag the user named, else the first tag (by name) pointing at the commit."""
    tags = sorted(t.name for t in repo.tags if t.commit.hexsha == commit)
    if ref in tags:
        return ref
    return tags[0] if tags else None


def _branch_for(repo: git.Repo, ref: str, commit: str) -> str | None:
    """The branch the user named, or HEAD's branch when building HEAD; None when detached."""
    heads = {h.name: h.commit.hexsha for h in repo.heads}
    if heads.get(ref) == commit:
        return ref
    if ref == "HEAD" and not repo.head.is_detached:
        return str(repo.active_branch.name)
    return None
