"""Release plans: the shipped one loads, every mistake is one located line, and the milestone,
ownership and voting-deadline computations are pure functions of plan, progress and clock."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from invoke.context import Context
from invoke.exceptions import Exit

from pipeline import ledger
from pipeline.cli import plan as plan_cli
from pipeline.errors import PipelineError
from pipeline.plan import STAGES, MilestoneState, Plan, load_plan, new_plan, parse_duration
from pipeline.policy import FreezeRule
from pipeline.schedule import (
    UNASSIGNED,
    Outstanding,
    done_from_ledger,
    format_span,
    milestone_state,
    milestone_table,
    outstanding_by_subsystem,
    overdue_warnings,
    release_deadline_blocks,
)

REPO = Path(__file__).resolve().parents[1]

VALID = """\
name = "rel-1"
candidate = "v1.0"
spec_version = 101

[[milestones]]
name = "Spec Release"
stage = "deploy-reckless"
deadline = 2026-12-01T12:00:00+00:00
manager = "alice"
team = ["alice", "bob"]

[[milestones]]
name = "Sub-system Test"
stage = "suite-subsystem"
deadline = 2026-12-04T13:00:00+01:00
manager = "bob"

[[milestones]]
name = "Final Test"
stage = "suite-final"
deadline = "2026-12-09T12:00:00Z"
manager = "carol"
team = ["carol", "dave"]

[[milestones]]
name = "Release"
stage = "enact"
deadline = 2026-12-18T12:00:00+00:00
manager = "alice"

[freeze]
exception_labels = ["ui"]

[subsystems.balances]
owner = "bob"

[subsystems.governance]
owner = "carol"
markers = ["council", "motions"]

[council]
voting_window = "PT2M"
fallback = "no-nays"
"""

NO_SUDO = """\
local = true
[networks.production]
kind = "chopsticks-genesis"
port = 9944
[networks.lts]
kind = "chopsticks-fork"
fork_of = "production"
port = 9945
[networks.reckless]
kind = "chopsticks-genesis"
port = 9946
"""


def at(day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A project root: the repo's settings and environments, plus one without a sudo key."""
    shutil.copy(REPO / "pipeline.toml", tmp_path / "pipeline.toml")
    shutil.copytree(REPO / "environments", tmp_path / "environments")
    (tmp_path / "environments" / "nosudo.toml").write_text(NO_SUDO)
    (tmp_path / "releases").mkdir()
    return tmp_path


def load_text(root: Path, text: str, name: str = "test") -> Plan:
    (root / "releases" / f"{name}.toml").write_text(text)
    return load_plan(name, root=root)


def edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def line_of(text: str, marker: str) -> int:
    """The line where `marker` (possibly several lines long) first starts."""
    return text[: text.index(marker)].count("\n") + 1


@pytest.fixture
def plan(root: Path) -> Plan:
    return load_text(root, VALID)


# --- loading -------------------------------------------------------------------------------------


def test_valid_plan_loads_every_field(plan: Plan, root: Path) -> None:
    assert (plan.name, plan.release, plan.candidate, plan.spec_version, plan.env) == (
        "test",
        "rel-1",
        "v1.0",
        101,
        "local",
    )
    assert plan.path == root / "releases" / "test.toml"
    assert [(m.name, m.stage, m.manager, m.team) for m in plan.milestones] == [
        ("Spec Release", "deploy-reckless", "alice", ("alice", "bob")),
        ("Sub-system Test", "suite-subsystem", "bob", ("bob",)),  # team defaults to the manager
        ("Final Test", "suite-final", "carol", ("carol", "dave")),
        ("Release", "enact", "alice", ("alice",)),
    ]
    # TOML dates and quoted ISO strings both load, keeping their zone
    assert [m.deadline for m in plan.milestones] == [at(1), at(4), at(9), at(18)]
    assert plan.milestones[1].deadline.utcoffset() == timedelta(hours=1)
    assert plan.release_deadline == at(18)
    assert plan.freeze == FreezeRule(exception_labels=("ui",))  # the rest keeps its defaults
    assert [(s.name, s.owner, s.markers) for s in plan.subsystems] == [
        ("balances", "bob", ("balances",)),  # markers default to the sub-system's name
        ("governance", "carol", ("council", "motions")),
    ]
    assert plan.voting_window == timedelta(minutes=2)
    assert plan.fallback == "no-nays"
    assert plan.milestone("suite-final") is plan.milestones[2]
    assert plan.milestone("build") is None


def test_defaults_name_env_and_fallback(root: Path) -> None:
    text = edit(VALID, 'name = "rel-1"\n', "")
    text = edit(text, 'fallback = "no-nays"\n', "")
    plan = load_text(root, text, name="other")
    assert (plan.release, plan.env, plan.fallback) == ("other", "local", "never")


def test_shipped_example_plan() -> None:
    plan = load_plan("example", root=REPO)
    assert (plan.release, plan.candidate, plan.spec_version, plan.env) == (
        "example-101",
        "HEAD",
        101,
        "local",
    )
    assert [m.name for m in plan.milestones] == [
        "Spec Release",
        "Sub-system Test",
        "Final Test",
        "Runtime Proposal",
        "Release",
    ]
    for milestone in plan.milestones:
        assert (milestone.deadline.year, milestone.deadline.month) == (2026, 12)
        assert milestone.deadline.utcoffset() == timedelta(0)
    assert "ui" in plan.freeze.exception_labels
    assert plan.fallback == "no-nays"
    # a local demo votes for a few blocks only
    local = release_deadline_blocks(plan, at(1), 6.0, local=True)
    assert local.blocks == 3


def test_unknown_plan_lists_the_available_ones(root: Path) -> None:
    load_text(root, VALID, name="alpha")
    with pytest.raises(PipelineError) as info:
        load_plan("beta", root=root)
    assert str(info.value) == (
        f"unknown plan 'beta': choose one of alpha (files in {root.resolve() / 'releases'}) "
        "or create it with `invoke plan.new beta`"
    )


def test_malformed_toml_names_file_line_and_fix(root: Path) -> None:
    with pytest.raises(PipelineError) as info:
        load_text(root, edit(VALID, 'manager = "bob"', 'manager = = "bob"'))
    message = str(info.value)
    line = line_of(VALID, 'manager = "bob"')
    assert message.startswith(f"{root.resolve() / 'releases' / 'test.toml'}: ")
    assert f"line {line}" in message
    assert message.endswith("fix the TOML syntax")


NO_MILESTONES = VALID[: VALID.index("[[milestones]]")] + VALID[VALID.index("[freeze]") :]

# (case, text, field, problem, marker: text starting on the reported line, None for no line)
INVALID = [
    (
        "unknown top key",
        "colour = 1\n" + VALID,
        "colour",
        "unknown key: expected one of name, candidate, spec_version",
        "colour",
    ),
    (
        "unknown milestone key",
        edit(VALID, 'manager = "carol"', 'manager = "carol"\nowner = "x"'),
        "milestones[3].owner",
        "unknown key: expected one of name, stage, deadline, manager, team",
        'owner = "x"',
    ),
    (
        "unknown council key",
        edit(VALID, 'fallback = "no-nays"', 'fallback = "no-nays"\nquorum = 3'),
        "council.quorum",
        "unknown key",
        "quorum",
    ),
    (
        "unknown freeze key",
        edit(VALID, 'exception_labels = ["ui"]', 'labels = ["ui"]'),
        "freeze.labels",
        "unknown key: expected one of prefixes, trailers, exception_labels, exception_prefixes",
        "labels",
    ),
    (
        "unknown sub-system key",
        edit(VALID, 'owner = "bob"', 'owner = "bob"\nteam = ["x"]'),
        "subsystems.balances.team",
        "unknown key: expected one of owner, markers",
        'team = ["x"]',
    ),
    (
        "deadlines out of order",
        edit(VALID, '"2026-12-09T12:00:00Z"', "2026-12-03T12:00:00Z"),
        "milestones[3].deadline",
        "2026-12-03 12:00+00:00 is before the deadline of 'Sub-system Test' "
        "(2026-12-04 13:00+01:00): deadlines must not go back in time",
        "2026-12-03T12:00:00Z",
    ),
    (
        "deadline order compares instants, not wall clocks",
        edit(VALID, "2026-12-04T13:00:00+01:00", "2026-12-01T12:30:00+01:00"),
        "milestones[2].deadline",
        "is before the deadline of 'Spec Release'",
        "2026-12-01T12:30:00+01:00",
    ),
    (
        "milestone without stage",
        edit(VALID, 'stage = "suite-final"\n', ""),
        "milestones[3].stage",
        "missing: use one of build, migrations, deploy-reckless, suite-subsystem, freeze, "
        "deploy-lts, suite-final, propose, track, enact, verify",
        '[[milestones]]\nname = "Final Test"',
    ),
    (
        "unknown stage",
        edit(VALID, 'stage = "suite-final"', 'stage = "final-suite"'),
        "milestones[3].stage",
        "'final-suite' is not a pipeline stage: use one of build,",
        "final-suite",
    ),
    (
        "two milestones claim one stage",
        edit(VALID, 'stage = "suite-final"', 'stage = "suite-subsystem"'),
        "milestones[3].stage",
        "'suite-subsystem' is already completed by milestone 'Sub-system Test': "
        "give each milestone its own stage",
        'stage = "suite-subsystem"\ndeadline = "2026-12-09',
    ),
    (
        "stages out of pipeline order",
        edit(VALID, 'stage = "suite-final"', 'stage = "build"'),
        "milestones[3].stage",
        "'build' comes before 'suite-subsystem' (milestone 'Sub-system Test') in the pipeline: "
        "list milestones in pipeline order",
        'stage = "build"',
    ),
    (
        "timezone-less date and time",
        edit(VALID, "2026-12-18T12:00:00+00:00", "2026-12-18T12:00:00"),
        "milestones[4].deadline",
        "2026-12-18T12:00:00 has no timezone: add one, e.g. 2026-12-18T12:00:00+00:00",
        "2026-12-18T12:00:00",
    ),
    (
        "bare date",
        edit(VALID, "2026-12-18T12:00:00+00:00", "2026-12-18"),
        "milestones[4].deadline",
        "2026-12-18 has no time and zone: write e.g. 2026-12-18T12:00:00+00:00",
        "2026-12-18",
    ),
    (
        "quoted zoneless date",
        edit(VALID, '"2026-12-09T12:00:00Z"', '"2026-12-09T12:00"'),
        "milestones[3].deadline",
        "has no timezone",
        "2026-12-09T12:00",
    ),
    (
        "deadline not a date",
        edit(VALID, '"2026-12-09T12:00:00Z"', '"next friday"'),
        "milestones[3].deadline",
        "'next friday' is not an ISO 8601 date and time",
        "next friday",
    ),
    (
        "deadline missing",
        edit(VALID, "deadline = 2026-12-18T12:00:00+00:00\n", ""),
        "milestones[4].deadline",
        "missing: an ISO 8601 date and time with a zone",
        '[[milestones]]\nname = "Release"',
    ),
    (
        "no Release milestone",
        VALID.replace(
            '[[milestones]]\nname = "Release"\nstage = "enact"\n'
            'deadline = 2026-12-18T12:00:00+00:00\nmanager = "alice"\n\n',
            "",
        ),
        "milestones",
        "no milestone completes stage 'enact': add the Release milestone",
        "[[milestones]]",
    ),
    (
        "no milestones",
        NO_MILESTONES,
        "milestones",
        "missing: add one [[milestones]] table per milestone",
        None,
    ),
    (
        "milestones not an array of tables",
        edit(NO_MILESTONES, "spec_version = 101", 'spec_version = 101\nmilestones = ["a"]'),
        "milestones",
        "must be an array of tables",
        'milestones = ["a"]',
    ),
    (
        "duplicate milestone name",
        edit(VALID, 'name = "Final Test"', 'name = "Spec Release"'),
        "milestones[3].name",
        "'Spec Release' is already a milestone: rename one",
        'name = "Spec Release"\nstage = "suite-final"',
    ),
    (
        "milestone without manager",
        edit(VALID, 'manager = "bob"\n', ""),
        "milestones[2].manager",
        "missing: who manages this milestone",
        '[[milestones]]\nname = "Sub-system Test"',
    ),
    (
        "team not a list",
        edit(VALID, 'team = ["carol", "dave"]', 'team = "carol"'),
        "milestones[3].team",
        "must be a list of strings, not 'carol'",
        'team = "carol"',
    ),
    (
        "candidate is a range",
        edit(VALID, 'candidate = "v1.0"', 'candidate = "main..dev"'),
        "candidate",
        "'main..dev' is not one git ref: write a branch, tag or commit",
        "candidate",
    ),
    (
        "candidate looks like an option",
        edit(VALID, 'candidate = "v1.0"', 'candidate = "--all"'),
        "candidate",
        "is not one git ref",
        "candidate",
    ),
    (
        "candidate missing",
        edit(VALID, 'candidate = "v1.0"\n', ""),
        "candidate",
        "missing: the git ref to release",
        None,
    ),
    (
        "spec_version zero",
        edit(VALID, "spec_version = 101", "spec_version = 0"),
        "spec_version",
        "0 is out of range (1-4294967295)",
        "spec_version",
    ),
    (
        "spec_version a string",
        edit(VALID, "spec_version = 101", 'spec_version = "101"'),
        "spec_version",
        "must be an integer, not '101'",
        "spec_version",
    ),
    (
        "release name not plain",
        edit(VALID, 'name = "rel-1"', 'name = "rel 1"'),
        "name",
        "'rel 1' is not a plain name",
        'name = "rel 1"',
    ),
    (
        "voting window in months",
        edit(VALID, '"PT2M"', '"P1M"'),
        "council.voting_window",
        "'P1M' is not an ISO 8601 duration such as PT2M, PT12H or P7D "
        "(years and months are not allowed: their length varies)",
        "voting_window",
    ),
    (
        "voting window in words",
        edit(VALID, '"PT2M"', '"2 minutes"'),
        "council.voting_window",
        "is not an ISO 8601 duration",
        "voting_window",
    ),
    (
        "voting window zero",
        edit(VALID, '"PT2M"', '"PT0S"'),
        "council.voting_window",
        "'PT0S' is zero: give the council time to vote",
        "voting_window",
    ),
    (
        "voting window missing",
        edit(VALID, 'voting_window = "PT2M"\n', ""),
        "council.voting_window",
        "missing: how long the council may vote",
        "[council]",
    ),
    (
        "no council table",
        VALID[: VALID.index("[council]")],
        "council",
        "missing: add [council]",
        None,
    ),
    (
        "unknown fallback policy",
        edit(VALID, 'fallback = "no-nays"', 'fallback = "sometimes"'),
        "council.fallback",
        "'sometimes' is not a fallback policy: use one of never, no-nays, always",
        "fallback",
    ),
    (
        "fallback needs a sudo key the environment lacks",
        edit(VALID, "spec_version = 101", 'spec_version = 101\nenv = "nosudo"'),
        "council.fallback",
        "'no-nays' may upgrade through sudo but environment 'nosudo' has no sudo key: "
        'add [sudo] to environments/nosudo.toml or set fallback = "never"',
        "fallback",
    ),
    (
        "unknown environment",
        edit(VALID, "spec_version = 101", 'spec_version = 101\nenv = "mainnet"'),
        "env",
        "unknown environment 'mainnet': choose one of example-live, local, local-nodes, nosudo",
        'env = "mainnet"',
    ),
    (
        "marker not an identifier",
        edit(VALID, 'markers = ["council", "motions"]', 'markers = ["council", "not-a-marker"]'),
        "subsystems.governance.markers",
        "'not-a-marker' is not a pytest marker name",
        "markers",
    ),
    (
        "marker owned twice",
        edit(VALID, 'markers = ["council", "motions"]', 'markers = ["council", "balances"]'),
        "subsystems.governance.markers",
        "marker 'balances' already belongs to sub-system 'balances': give each marker one owner",
        "markers",
    ),
    (
        "sub-system name is no marker",
        edit(VALID, "[subsystems.balances]", "[subsystems.token-balances]"),
        "subsystems.token-balances.markers",
        "missing, and 'token-balances' is not a pytest marker name: list its markers",
        "[subsystems.token-balances]",
    ),
    (
        "sub-system without owner",
        edit(VALID, 'owner = "bob"\n', ""),
        "subsystems.balances.owner",
        "missing: who answers for its failures",
        "[subsystems.balances]",
    ),
]


@pytest.mark.parametrize(
    ("text", "field", "problem", "marker"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_plan_is_one_located_line(
    root: Path, text: str, field: str, problem: str, marker: str | None
) -> None:
    with pytest.raises(PipelineError) as info:
        load_text(root, text)
    message = str(info.value)
    path = root.resolve() / "releases" / "test.toml"
    where = f"{path}:{line_of(text, marker)}" if marker else str(path)
    assert message.startswith(f"{where}: {field}: "), message
    assert problem in message, message
    assert "\n" not in message


def test_plan_name_must_be_plain(root: Path) -> None:
    with pytest.raises(PipelineError, match=r"plan name '\.\./x' is not a plain name"):
        new_plan("../x", root, date(2026, 11, 25), "alice")


@pytest.mark.parametrize("name", ["../../etc/passwd", "a b", "/abs", ""])
def test_checking_a_plan_that_is_no_plain_name_suggests_nothing(root: Path, name: str) -> None:
    load_text(root, VALID, name="alpha")
    with pytest.raises(PipelineError) as info:
        load_plan(name, root=root)
    assert str(info.value) == f"plan name {name!r} is not a plain name: use [A-Za-z0-9._-]"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT2M", timedelta(minutes=2)),
        ("PT90S", timedelta(seconds=90)),
        ("PT1.5S", timedelta(seconds=1.5)),
        ("PT1H30M", timedelta(hours=1, minutes=30)),
        ("P7D", timedelta(days=7)),
        ("P1DT12H", timedelta(days=1, hours=12)),
        ("P2W", timedelta(weeks=2)),
    ],
)
def test_iso_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "P", "PT", "P1DT", "P1M", "P1Y", "2M", "pt2m", "PT-2M", "P1W2D", "P0D", "PT0M0S"]
)
def test_not_iso_durations(text: str) -> None:
    with pytest.raises(ValueError, match=repr(text)):
        parse_duration(text)


# --- milestone state ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actual", "now", "state"),
    [
        (at(1, 11), at(1, 11), "done"),  # finished before the deadline
        (at(1, 12), at(5), "done"),  # finished exactly at the deadline
        (at(1, 12, 1), at(5), "late"),
        (None, at(1, 11), "on time"),
        (None, at(1, 12), "on time"),  # the deadline has not passed yet at the deadline
        (None, at(1, 12, 1), "missed"),
    ],
)
def test_milestone_state(actual: datetime | None, now: datetime, state: MilestoneState) -> None:
    assert milestone_state(at(1), actual, now) == state


def test_milestone_table_planned_versus_actual(plan: Plan) -> None:
    done = {
        "deploy-reckless": at(1, 9),  # on time
        "suite-subsystem": at(4, 15),  # 3h after 12:00 UTC (13:00+01:00)
        "build": at(1, 1),  # a stage the plan does not track
    }
    rows = milestone_table(plan, done, now=at(10, 14))
    assert [(r.name, r.actual, r.state, r.slip) for r in rows] == [
        ("Spec Release", at(1, 9), "done", None),
        ("Sub-system Test", at(4, 15), "late", timedelta(hours=3)),
        ("Final Test", None, "missed", timedelta(days=1, hours=2)),
        ("Release", None, "on time", None),
    ]
    assert [(r.stage, r.deadline, r.manager, r.team) for r in rows][2] == (
        "suite-final",
        at(9),
        "carol",
        ("carol", "dave"),
    )


def test_milestone_table_needs_zoned_times(plan: Plan) -> None:
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        milestone_table(plan, {}, datetime(2026, 12, 1))
    with pytest.raises(ValueError, match="completion time of deploy-reckless"):
        milestone_table(plan, {"deploy-reckless": datetime(2026, 12, 1)}, at(2))


def test_overdue_warnings_one_line_per_missed_milestone(plan: Plan) -> None:
    assert overdue_warnings(plan, {"deploy-reckless": at(1, 9)}, now=at(9, 12, 45)) == [
        "milestone 'Sub-system Test' (suite-subsystem) missed its deadline "
        "2026-12-04 13:00+01:00 by 5d: bob (team bob) should report the slip and set a new date",
        "milestone 'Final Test' (suite-final) missed its deadline 2026-12-09 12:00+00:00 "
        "by 45m: carol (team carol, dave) should report the slip and set a new date",
    ]
    assert overdue_warnings(plan, {}, now=at(1)) == []


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (timedelta(seconds=59), "<1m"),
        (timedelta(minutes=7), "7m"),
        (timedelta(hours=2), "2h"),
        (timedelta(hours=2, minutes=5), "2h 5m"),
        (timedelta(days=3), "3d"),
        (timedelta(days=3, hours=4, minutes=59), "3d 4h"),
    ],
)
def test_format_span(span: timedelta, text: str) -> None:
    assert format_span(span) == text


def release_record() -> dict[str, object]:
    return {
        "schema": 1,
        "type": "release",
        "release": "rel-1",
        "created": "2026-11-30T00:00:00+00:00",
    }


def test_done_from_ledger_records_latest_completion() -> None:
    records: list[dict[str, object]] = [
        release_record(),
        {"type": "stage_started", "stage": "build", "at": "2026-11-30T10:00:00+00:00"},
        {"type": "stage_done", "stage": "build", "result": {}, "at": "2026-11-30T11:00:00+00:00"},
        {
            "type": "stage_done",
            "stage": "deploy-reckless",
            "result": {},
            "at": "2026-12-01T08:00:00+00:00",
        },
        {
            "type": "stage_failed",
            "stage": "suite-subsystem",
            "error": "x",
            "at": "2026-12-02T00:00:00+00:00",
        },
        {"type": "stage_done", "stage": "build", "result": {}, "at": "2026-12-02T09:30:00+01:00"},
    ]
    assert done_from_ledger(records) == {
        "build": datetime(2026, 12, 2, 8, 30, tzinfo=UTC),  # the rerun the release went on with
        "deploy-reckless": at(1, 8),
    }


@pytest.mark.parametrize("bad", [None, "yesterday", "2026-12-01T08:00:00"])
def test_done_from_ledger_refuses_records_without_a_zoned_time(bad: str | None) -> None:
    record: dict[str, object] = {"type": "stage_done", "stage": "build", "result": {}}
    if bad is not None:
        record["at"] = bad
    with pytest.raises(PipelineError, match=r"^rel line 2: stage_done has no zoned `at` time"):
        done_from_ledger([release_record(), record], "rel")


def test_done_from_a_real_ledger(tmp_path: Path, plan: Plan) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    with ledger.open_ledger(tmp_path, "rel-1", create={"plan": "test"}) as journal:
        journal.stage_started("deploy-reckless")
        journal.stage_done("deploy-reckless", {"network": "staging-reckless"})
        records = journal.records
    done = done_from_ledger(records)
    assert list(done) == ["deploy-reckless"]
    assert before <= done["deploy-reckless"] <= datetime.now(UTC)


# --- failed tests by owner ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failed", "expected"),
    [
        ([], {}),
        (
            [("t.py::test_transfer", ["balances"]), ("t.py::test_vote", ["council", "slow"])],
            {
                "balances": Outstanding("bob", ["t.py::test_transfer"]),
                "governance": Outstanding("carol", ["t.py::test_vote"]),
            },
        ),
        (  # plan order, whatever order they failed in; one owner for several markers
            [("t.py::a", ["motions"]), ("t.py::b", ["council"]), ("t.py::c", ["balances"])],
            {
                "balances": Outstanding("bob", ["t.py::c"]),
                "governance": Outstanding("carol", ["t.py::a", "t.py::b"]),
            },
        ),
        (  # a test for two sub-systems is outstanding for both
            [("t.py::fees", ["balances", "council"])],
            {
                "balances": Outstanding("bob", ["t.py::fees"]),
                "governance": Outstanding("carol", ["t.py::fees"]),
            },
        ),
        (  # unclaimed failures go to the Sub-system Test milestone's manager
            [("t.py::misc", []), ("t.py::other", ["slow"])],
            {UNASSIGNED: Outstanding("bob", ["t.py::misc", "t.py::other"])},
        ),
    ],
)
def test_outstanding_by_subsystem(
    plan: Plan, failed: list[tuple[str, list[str]]], expected: dict[str, Outstanding]
) -> None:
    result = outstanding_by_subsystem(plan, failed)
    assert result == expected
    assert list(result) == list(expected)


# --- voting deadline ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "blocks"),
    [("PT30S", 3), ("PT2M", 3), ("PT3M", 3), ("PT10M", 10), ("PT10M1S", 11), ("P3D", 30)],
)
def test_local_voting_window_is_a_few_blocks(root: Path, window: str, blocks: int) -> None:
    plan = load_text(root, edit(VALID, '"PT2M"', f'"{window}"'))
    deadline = release_deadline_blocks(plan, at(20), 0.5, local=True)
    assert deadline.blocks == blocks
    assert deadline.ends_at == at(20) + timedelta(seconds=blocks * 0.5)
    assert f"voting ends {blocks} blocks after the proposal" in deadline.explanation
    # locally only blocks count: the clock (far past the Release deadline) does not
    assert not deadline.passed(at(31), blocks - 1)
    assert deadline.passed(at(20), blocks)


@pytest.mark.parametrize(
    ("window", "proposed", "ends_at", "blocks", "reason"),
    [
        ("PT2M", at(11), at(18), 7 * 24 * 600, "at the Release deadline"),
        ("P7D", at(11, 12, 1), at(18, 12, 1), 7 * 24 * 600, "at the 7d voting window"),
        ("P2D", at(17), at(19), 2 * 24 * 600, "at the 2d voting window"),
        ("PT2M", at(18, 11, 59), at(18, 12, 1), 20, "at the 2m voting window"),
    ],
)
def test_real_network_votes_until_the_later_of_deadline_and_window(
    root: Path, window: str, proposed: datetime, ends_at: datetime, blocks: int, reason: str
) -> None:
    plan = load_text(root, edit(VALID, '"PT2M"', f'"{window}"'))
    deadline = release_deadline_blocks(plan, proposed, 6.0, local=False)
    assert (deadline.ends_at, deadline.blocks) == (ends_at, blocks)
    assert deadline.explanation.startswith(
        f"voting ends {ends_at.isoformat(' ', 'minutes')} {reason}"
    )
    assert f"about {blocks} blocks at 6s per block" in deadline.explanation
    # on a real network the clock binds, whatever the block count
    assert not deadline.passed(ends_at - timedelta(seconds=1), blocks * 10)
    assert deadline.passed(ends_at, 0)


def test_voting_deadline_in_another_zone(plan: Plan) -> None:
    proposed = datetime(2026, 12, 18, 14, 0, tzinfo=timezone(timedelta(hours=3)))  # 11:00 UTC
    deadline = release_deadline_blocks(plan, proposed, 12.0, local=False)
    assert deadline.ends_at == at(18) and deadline.blocks == 300


def test_voting_deadline_refuses_bad_clock_or_block_time(plan: Plan) -> None:
    with pytest.raises(PipelineError, match="block time 0s must be positive"):
        release_deadline_blocks(plan, at(1), 0, local=True)
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        release_deadline_blocks(plan, datetime(2026, 12, 1), 6.0, local=False)


# --- commands ----------------------------------------------------------------------------------


@pytest.fixture
def project(root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Commands run from the project root; the release state lives inside it."""
    monkeypatch.chdir(root)
    monkeypatch.setenv("PIPELINE_STATE_DIR", str(root / ".pipeline"))
    yield root


def test_plan_new_then_check_round_trip(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan_cli.new(Context(), "r1", manager="Alice Q")
    path = project / "releases" / "r1.toml"
    assert f"wrote {path}" in capsys.readouterr().out
    text = path.read_text()
    assert text.startswith("# Release plan `r1`")

    plan = load_plan("r1", root=project)
    today = datetime.now(UTC).date()
    assert [m.stage for m in plan.milestones] == [
        "deploy-reckless",
        "suite-subsystem",
        "suite-final",
        "propose",
        "enact",
    ]
    assert [m.deadline.date() for m in plan.milestones] == [
        today + timedelta(weeks=n) for n in range(1, 6)
    ]
    assert all(m.manager == "Alice Q" for m in plan.milestones)
    assert (plan.release, plan.env, plan.fallback) == ("r1", "local", "never")

    plan_cli.check(Context(), "r1")
    out = capsys.readouterr().out
    for name in ("Spec Release", "Sub-system Test", "Final Test", "Runtime Proposal", "Release"):
        assert name in out
    assert out.count("on time") == 5 and "warning" not in out

    with pytest.raises(Exit) as info:  # never overwrites a plan
        plan_cli.new(Context(), "r1")
    assert (
        info.value.message == f"error: plan {path} already exists: edit it, or choose another name"
    )
    assert path.read_text() == text


def test_plan_check_shows_the_ledger_progress_and_slips(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new_plan("late", project, date(2026, 1, 1), "bob")  # every deadline is long past
    with ledger.open_ledger(project / ".pipeline", "late", create={"plan": "late"}) as journal:
        journal.stage_done("deploy-reckless", {})
    plan_cli.check(Context(), "late")
    out = capsys.readouterr().out
    assert out.count("late +") == 1  # deploy-reckless finished today, after its January deadline
    assert out.count("missed +") == 4
    assert out.count("warning:") == 4
    assert "milestone 'Release' (enact) missed its deadline 2026-02-05 12:00+00:00" in out


def test_plan_check_refuses_an_invalid_plan(project: Path) -> None:
    (project / "releases" / "bad.toml").write_text(edit(VALID, "+00:00", ""))
    with pytest.raises(Exit) as info:
        plan_cli.check(Context(), "bad")
    message = str(info.value.message)
    assert message.startswith(f"error: {project / 'releases' / 'bad.toml'}:")
    assert "milestones[1].deadline: 2026-12-01T12:00:00 has no timezone" in message


def test_stages_are_the_pipeline_order() -> None:
    assert STAGES == (
        "build",
        "migrations",
        "deploy-reckless",
        "suite-subsystem",
        "freeze",
        "deploy-lts",
        "suite-final",
        "propose",
        "track",
        "enact",
        "verify",
    )
