"""The release's next-stage decision, over plain ledger results (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.plan import STAGES
from pipeline.release import STAGE_ACTIONS, pending_stages, status_views

COMMIT = "a" * 40
FIXED = "b" * 40


def ran_all(artifact: str = "0xaa", commit: str = COMMIT) -> dict[str, dict[str, Any]]:
    done: dict[str, dict[str, Any]] = {"build": {"commit": commit, "artifact": artifact}}
    for stage in STAGES[1:]:
        done[stage] = {"artifact": artifact}
    return done


def test_nothing_done_runs_everything_in_order() -> None:
    assert pending_stages({}, COMMIT) == list(STAGES)


def test_everything_done_for_the_same_commit_leaves_nothing() -> None:
    assert pending_stages(ran_all(), COMMIT) == []


def test_interrupted_release_resumes_at_the_first_missing_stage() -> None:
    done = ran_all()
    for stage in ("propose", "track", "enact", "verify"):
        del done[stage]
    assert pending_stages(done, COMMIT) == ["propose", "track", "enact", "verify"]


def test_candidate_moved_reruns_build_and_every_artifact_stage_but_keeps_the_freeze_tag() -> None:
    pending = pending_stages(ran_all(), FIXED)
    assert pending == [stage for stage in STAGES if stage != "freeze"]


def test_rebuilt_artifact_makes_older_stage_results_stale() -> None:
    done = ran_all(artifact="0xold")
    done["build"] = {"commit": FIXED, "artifact": "0xnew"}
    assert pending_stages(done, FIXED) == [s for s in STAGES if s not in ("build", "freeze")]


@pytest.mark.parametrize("missing", [s for s in STAGES if s != "build"])
def test_a_single_missing_stage_is_the_only_pending_one(missing: str) -> None:
    done = ran_all()
    del done[missing]
    assert pending_stages(done, COMMIT) == [missing]


def test_missing_build_reruns_everything_but_the_freeze_tag() -> None:
    done = ran_all()
    del done["build"]
    assert pending_stages(done, COMMIT) == [s for s in STAGES if s != "freeze"]


def test_status_marks_next_stale_and_failed() -> None:
    done = ran_all(artifact="0xold")
    done["build"] = {"commit": COMMIT, "artifact": "0xnew"}
    views = {view.stage: view for view in status_views(done, COMMIT, failed="deploy-reckless")}
    assert views["build"].state == "done"
    assert views["freeze"].state == "done"
    assert views["deploy-reckless"].state == "stale"
    fresh = {view.stage: view for view in status_views({}, COMMIT, failed="build")}
    assert fresh["build"].state == "next" and "failed last time" in fresh["build"].detail
    assert fresh["verify"].state == "pending"


def test_every_stage_has_its_action_in_pipeline_order() -> None:
    assert tuple(STAGE_ACTIONS) == STAGES
