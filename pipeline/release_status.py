"""`release.status`: a release as its ledger, the candidate as it is now, the plan and the
chain say it stands. Observing only: nothing here acts on a chain or writes the ledger."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from pipeline import gitops, motions, statements
from pipeline.attestation import Tally
from pipeline.chain import connect
from pipeline.config import load_environment
from pipeline.errors import PipelineError
from pipeline.ledger import read_records, replay
from pipeline.plan import Plan, load_plan
from pipeline.project import Project
from pipeline.release import ReleaseSettings, StageView, status_views
from pipeline.schedule import MilestoneRow, done_from_ledger, milestone_table, overdue_warnings


@dataclass(frozen=True)
class ReleaseStatus:
    """A release as `release.status` shows it: its ledger replayed against the candidate as it
    is now, with the plan's milestones."""

    release_id: str
    settings: ReleaseSettings
    candidate_commit: str
    aborted: str | None
    stages: tuple[StageView, ...]
    plan: Plan | None
    milestones: tuple[MilestoneRow, ...]
    late: tuple[str, ...]  # missed milestones
    warnings: tuple[str, ...]  # the ledger's
    torn: str | None  # a torn last ledger line, when there is one
    attestations: Tally | None = None  # the motion's, read from production now
    attestations_unread: str | None = None  # why they could not be read

    def as_dict(self) -> dict[str, Any]:
        return {
            "release": self.release_id,
            "settings": self.settings.ledger_fields(),
            "candidate_commit": self.candidate_commit,
            "aborted": self.aborted,
            "stages": [asdict(view) for view in self.stages],
            "milestones": [
                {
                    "name": r.name,
                    "deadline": r.deadline.isoformat(),
                    "actual": r.actual.isoformat() if r.actual else None,
                    "state": r.state,
                    "manager": r.manager,
                }
                for r in self.milestones
            ],
            "attestations": self.attestations.as_dict() if self.attestations else None,
            "warnings": list(self.warnings)
            + [w for w in (self.torn, self.attestations_unread) if w],
        }


def chain_attestations(
    project: Project, settings: ReleaseSettings, done: Mapping[str, Mapping[str, Any]]
) -> tuple[Tally | None, str | None]:
    """The proposed motion's attestations, read from production now (the ledger says only which
    motion and from which block): (tally, None), (None, why not), or (None, None) before the
    proposal or where the environment asks for none and no member gave one."""
    proposed = done.get("propose")
    if proposed is None or "motion" not in proposed:  # not proposed yet, or sudo governance
        return None, None
    motion = motions.Motion.from_dict(proposed["motion"])
    try:
        env = load_environment(settings.env, project.root)
        with connect(env) as chain:
            tally = statements.Attestations(chain, motion).tally(chain)
    except PipelineError as exc:
        return None, f"attestations not read from the chain: {exc}"
    asked = motions.council_settings(env).attestations
    return (tally if asked or not tally.empty else None), None


def release_status(project: Project, release_id: str, now: datetime) -> ReleaseStatus:
    """What the ledger says each stage did, what runs next, and the milestones at `now`."""
    records, torn = read_records(project.state_dir, release_id)
    state = replay(records)
    settings = ReleaseSettings.from_ledger(release_id, state.release)
    repo = gitops.open_repo(project.root)
    commit = gitops.resolve_runtime(repo, project, settings.candidate).commit
    failed = state.last_failure.stage if state.last_failure else None
    plan = load_plan(settings.plan, project.root) if settings.plan else None
    done = done_from_ledger(records)
    attested, unread = chain_attestations(project, settings, state.done)
    return ReleaseStatus(
        release_id=release_id,
        settings=settings,
        candidate_commit=commit,
        aborted=state.aborted,
        stages=tuple(status_views(state.done, commit, failed)),
        plan=plan,
        milestones=tuple(milestone_table(plan, done, now)) if plan else (),
        late=tuple(overdue_warnings(plan, done, now)) if plan else (),
        warnings=tuple(state.warnings()),
        torn=torn,
        attestations=attested,
        attestations_unread=unread,
    )
