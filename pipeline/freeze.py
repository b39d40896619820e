"""The freeze: an annotated tag on the commit whose sub-system suite passed, and the rule for
what may land after it (seed KR5: only bugfixes, with named exceptions).

`invoke gate.freeze` and the release both ask `check_freeze`; the pure judgement is
`policy.freeze_violations`, this module only reads and writes git.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import git

from pipeline.errors import PipelineError
from pipeline.policy import CommitInfo, FreezeRule, freeze_violations

TAG_PREFIX = "freeze/"


def freeze_tag_name(release_id: str) -> str:
    return f"{TAG_PREFIX}{release_id}"


def tag_freeze(repo: git.Repo, release_id: str, commit: str, code_hash: str) -> str:
    """Create the annotated freeze tag at `commit` (idempotent: an equal tag is reused).

    A tag of that name on another commit is refused: the freeze point of a release never moves.
    """
    name = freeze_tag_name(release_id)
    existing = next((tag for tag in repo.tags if tag.name == name), None)
    if existing is not None:
        if existing.commit.hexsha != commit:
            raise PipelineError(
                f"freeze tag {name} already marks {existing.commit.hexsha[:12]}, not {commit[:12]}:"
                f" a release freezes once; start a new release id to freeze elsewhere"
            )
        return name
    repo.create_tag(
        name,
        ref=commit,
        message=(
            f"Freeze of release {release_id}\n\nSub-system suite passed.\nCode hash: {code_hash}\n"
        ),
    )
    return name


def frozen_commit(repo: git.Repo, release_id: str) -> str | None:
    """The commit the release froze at, if it has frozen."""
    name = freeze_tag_name(release_id)
    tag = next((tag for tag in repo.tags if tag.name == name), None)
    return None if tag is None else str(tag.commit.hexsha)


def commits_since(
    repo: git.Repo, base: str, head: str, path: str = "", exclude: Sequence[str] = ()
) -> list[CommitInfo]:
    """Commits reachable from `head` but not from `base` that touch `path` other than in the
    `exclude` pathspecs, oldest first."""
    paths = [path or ".", *exclude] if exclude else path or ""
    try:
        commits = list(repo.iter_commits(f"{base}..{head}", paths=paths, reverse=True))
    except git.GitCommandError:
        raise PipelineError(
            f"cannot list commits {base[:12]}..{head}: is {head} a valid ref?"
        ) from None
    return [
        CommitInfo(sha=c.hexsha, summary=str(c.summary), message=str(c.message)) for c in commits
    ]


@dataclass(frozen=True)
class FreezeCheck:
    frozen_at: str | None  # None: the release has not frozen yet
    moved_by: list[CommitInfo]  # commits after the freeze point
    violations: list[CommitInfo]  # of those, the ones the rule refuses

    @property
    def ok(self) -> bool:
        return not self.violations

    def describe(self) -> str:
        if self.frozen_at is None:
            return "not frozen yet"
        if not self.moved_by:
            return f"frozen at {self.frozen_at[:12]}; nothing landed since"
        if self.ok:
            return f"frozen at {self.frozen_at[:12]}; {len(self.moved_by)} bugfix commit(s) since"
        listed = "; ".join(f"{c.sha[:12]} {c.summary}" for c in self.violations)
        return (
            f"{len(self.violations)} non-bugfix commit(s) after the freeze at"
            f" {self.frozen_at[:12]}: {listed}"
        )


def check_freeze(
    repo: git.Repo,
    release_id: str,
    head: str,
    rule: FreezeRule,
    path: str = "",
    exclude: Sequence[str] = (),
) -> FreezeCheck:
    """What landed on `head` under `path` (the runtime) since the release froze, by the rule.

    Only commits touching the runtime count (less the `exclude` pathspecs: the pipeline's own
    files): in a repo that holds more than the runtime, work elsewhere does not change what is
    being released.
    """
    frozen = frozen_commit(repo, release_id)
    if frozen is None:
        return FreezeCheck(None, [], [])
    moved = commits_since(repo, frozen, head, path, exclude)
    return FreezeCheck(frozen, moved, freeze_violations(moved, rule))
