"""Release plans: the milestones a runtime release is run against, read and validated.

A plan is one TOML file, `releases/<name>.toml`, validated as a whole when it is loaded so that a
wrong date or stage is a one-line refusal naming the file, line and field, not a surprise in the
middle of a release. Where a release stands against its plan is `pipeline.schedule`'s concern.

File format (`invoke plan.new NAME` writes a commented one):

    name = "example-101"        # the release id (ledger); default: the file's name
    candidate = "HEAD"          # git ref of the runtime to release
    spec_version = 101          # the spec_version the candidate must carry
    env = "local"               # environments/<env>.toml; default "local"

    [[milestones]]              # in pipeline order, deadlines never going back in time
    name = "Spec Release"
    stage = "deploy-reckless"   # the pipeline stage whose completion reaches the milestone
    deadline = 2026-12-01T12:00:00+00:00   # with a zone: a bare date or local time is refused
    manager = "alice"
    team = ["alice", "bob"]     # default: the manager alone

    [freeze]                    # what may land after the freeze (policy.FreezeRule)
    prefixes = ["fix:", "fix("]
    trailers = ["Fixes:"]
    exception_labels = ["ui"]
    exception_prefixes = ["ui:"]

    [subsystems.balances]
    owner = "alice"
    markers = ["balances"]      # pytest markers of its tests; default: the sub-system's name

    [council]
    voting_window = "PT3M"      # ISO 8601 duration: PnW or PnDTnHnMnS (no years or months)
    fallback = "no-nays"        # never | no-nays | always; default "never"

Exactly one milestone must complete stage `enact` (the Release): its deadline is when an
unapproved upgrade may fall back to sudo. Fields of the n-th milestone are named
`milestones[n]` in errors, counting from 1.

"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal, cast, get_args

from pipeline.config import available_environments, load_environment
from pipeline.errors import PipelineError
from pipeline.policy import FALLBACK_POLICIES, FallbackPolicy, FreezeRule
from pipeline.tomlfile import TomlSource, join, parse

Stage = Literal[
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
]
STAGES: tuple[Stage, ...] = get_args(Stage)  # in pipeline order
RELEASE_STAGE: Stage = "enact"  # its milestone's deadline is when the sudo fallback may act
SUBSYSTEM_STAGE: Stage = "suite-subsystem"

MilestoneState = Literal["done", "late", "on time", "missed"]
MILESTONE_STATES: tuple[MilestoneState, ...] = get_args(MilestoneState)

RELEASES_DIR = "releases"
DEFAULT_ENV = "local"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # also a valid ledger release id
_SUBSYSTEM = re.compile(r"[A-Za-z0-9_-]+")
_MARKER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DURATION = re.compile(
    r"P(?:(?P<weeks>\d+)W|(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?)"
)
_TOP_KEYS = (
    "name",
    "candidate",
    "spec_version",
    "env",
    "milestones",
    "freeze",
    "subsystems",
    "council",
)
_MILESTONE_KEYS = ("name", "stage", "deadline", "manager", "team")
_FREEZE_KEYS = ("prefixes", "trailers", "exception_labels", "exception_prefixes")
_SUBSYSTEM_KEYS = ("owner", "markers")
_COUNCIL_KEYS = ("voting_window", "fallback")


@dataclass(frozen=True)
class Milestone:
    name: str
    stage: Stage
    deadline: datetime  # timezone-aware
    manager: str
    team: tuple[str, ...]


@dataclass(frozen=True)
class Subsystem:
    name: str
    owner: str
    markers: tuple[str, ...]  # pytest markers of the tests that exercise it


@dataclass(frozen=True)
class Plan:
    """A validated release plan."""

    name: str  # the file's name under releases/
    path: Path
    release: str  # release id: the ledger directory of this release
    candidate: str  # git ref
    spec_version: int
    env: str  # environment set name
    milestones: tuple[Milestone, ...]  # in pipeline order
    freeze: FreezeRule
    subsystems: tuple[Subsystem, ...]
    voting_window: timedelta
    fallback: FallbackPolicy

    def milestone(self, stage: str) -> Milestone | None:
        """The milestone a stage completes, if the plan tracks that stage."""
        return next((m for m in self.milestones if m.stage == stage), None)

    @property
    def release_deadline(self) -> datetime:
        release = self.milestone(RELEASE_STAGE)
        assert release is not None  # parse_plan refuses a plan without one
        return release.deadline


# --- files -------------------------------------------------------------------------------------


def releases_dir(root: Path | None = None) -> Path:
    return (root or Path.cwd()).resolve() / RELEASES_DIR


def available_plans(root: Path | None = None) -> list[str]:
    """Names of the plan files under the project root, sorted."""
    directory = releases_dir(root)
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("*.toml") if _NAME.fullmatch(p.stem))


def plan_path(name: str, root: Path | None = None) -> Path:
    if not _NAME.fullmatch(name):
        raise PipelineError(f"plan name {name!r} is not a plain name: use [A-Za-z0-9._-]")
    return releases_dir(root) / f"{name}.toml"


def load_plan(name: str, root: Path | None = None) -> Plan:
    """Read and validate `releases/<name>.toml` under the project root (default: cwd)."""
    path = plan_path(name, root)  # a name that is no plain name is refused as such
    available = available_plans(root)
    if name not in available:
        choices = ", ".join(available) or "none"
        raise PipelineError(
            f"unknown plan {name!r}: choose one of {choices} (files in {releases_dir(root)}) "
            f"or create it with `invoke plan.new {name}`"
        )
    return parse_plan(name, path.read_text(), path, (root or Path.cwd()).resolve())


def new_plan(name: str, root: Path, today: date, manager: str) -> Path:
    """Write a commented plan template for `name`; an existing plan is never overwritten."""
    path = plan_path(name, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("x") as file:
            file.write(plan_template(name, today, manager))
    except FileExistsError:
        raise PipelineError(
            f"plan {path} already exists: edit it, or choose another name"
        ) from None
    return path


def plan_template(name: str, today: date, manager: str, spec_version: int = 101) -> str:
    """A valid plan with weekly deadlines from `today`, every field explained."""
    noon = time(12, tzinfo=UTC)

    def deadline(weeks: int) -> str:
        return datetime.combine(today + timedelta(weeks=weeks), noon).isoformat()

    who = _toml_string(manager)
    return f"""\
# Release plan `{name}`: the milestones this runtime release is run against.
# `invoke plan.check {name}` validates it and shows planned versus actual dates.

# The release id, under which the ledger records this release.
name = {_toml_string(name)}
candidate = "HEAD"          # git ref of the runtime to release (branch, tag or commit)
spec_version = {spec_version:<13}# the spec_version the candidate must carry: above production's
env = "local"               # environments/<env>.toml the release goes through

# Milestones in pipeline order; each is reached when its `stage` completes. Stages:
# {", ".join(STAGES)}.
# Deadlines are ISO 8601 with a zone (a bare date or a local time is refused).
# Exactly one milestone completes `enact`: at its deadline an unapproved upgrade may go to sudo.
[[milestones]]
name = "Spec Release"
stage = "deploy-reckless"
deadline = {deadline(1)}
manager = {who}
team = [{who}]  # default: the manager alone

[[milestones]]
name = "Sub-system Test"
stage = "suite-subsystem"
deadline = {deadline(2)}
manager = {who}
team = [{who}]

[[milestones]]
name = "Final Test"
stage = "suite-final"
deadline = {deadline(3)}
manager = {who}
team = [{who}]

[[milestones]]
name = "Runtime Proposal"
stage = "propose"
deadline = {deadline(4)}
manager = {who}
team = [{who}]

[[milestones]]
name = "Release"
stage = "enact"
deadline = {deadline(5)}
manager = {who}
team = [{who}]

# After the freeze (the Sub-system Test) only bugfixes land: commits whose summary starts with a
# prefix or that carry a trailer, plus the named exceptions (PR labels, summary prefixes).
[freeze]
prefixes = ["fix:", "fix("]
trailers = ["Fixes:"]
exception_labels = []       # e.g. ["ui"]
exception_prefixes = []     # e.g. ["ui:"]

# Sub-systems, their owners and the pytest markers of their tests: a failed sub-system suite is
# reported per owner. Markers default to the sub-system's name.
# [subsystems.balances]
# owner = "alice"
# markers = ["balances"]

[council]
# How long the council may vote (ISO 8601 duration: P7D, PT12H, PT2M; no years or months).
# Real networks: voting ends at the later of the Release deadline and this window after the
# proposal. Local networks: one block per started minute, at least 3 and at most 30 blocks.
voting_window = "P3D"
# When voting ends unapproved: never | no-nays (sudo unless a councillor voted against) | always.
# no-nays and always need a sudo key in the environment.
fallback = "never"
"""


def _toml_string(text: str) -> str:
    """A TOML basic string; names are plain text, so escaping quotes and backslashes suffices."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


# --- validation --------------------------------------------------------------------------------


def parse_plan(name: str, text: str, path: Path, root: Path) -> Plan:
    """Validate the text of one plan; `path` names it in errors, `root` holds its environments."""
    source, data = parse(path, text)
    source.check_keys(data, "", _TOP_KEYS)
    release = source.string(data, "name")
    release = name if release is None else release
    if not _NAME.fullmatch(release):
        raise source.error("name", f"{release!r} is not a plain name: use [A-Za-z0-9._-]")
    candidate = _candidate(source, data)
    spec_version = source.integer(data, "spec_version", low=1, high=2**32 - 1)
    if spec_version is None:
        raise source.error("spec_version", "missing: the spec_version the candidate must carry")
    milestones = _milestones(source, data)
    council = source.table(data, "council")
    if council is None:
        raise source.error("council", 'missing: add [council] with voting_window = "P3D"')
    source.check_keys(council, "council", _COUNCIL_KEYS)
    fallback = _fallback(source, council)
    env = source.string(data, "env")
    env = DEFAULT_ENV if env is None else env
    _check_environment(source, env, fallback, root)
    return Plan(
        name=name,
        path=path,
        release=release,
        candidate=candidate,
        spec_version=spec_version,
        env=env,
        milestones=milestones,
        freeze=_freeze(source, data),
        subsystems=_subsystems(source, data),
        voting_window=_voting_window(source, council),
        fallback=fallback,
    )


def _candidate(source: TomlSource, data: dict[str, Any]) -> str:
    ref = source.string(data, "candidate")
    if ref is None:
        raise source.error("candidate", 'missing: the git ref to release, e.g. "HEAD" or a tag')
    if (
        not ref
        or ref.startswith("-")
        or ".." in ref
        or any(c.isspace() or ord(c) < 32 for c in ref)
    ):
        raise source.error(
            "candidate",
            f"{ref!r} is not one git ref: write a branch, tag or commit (no spaces, no ranges)",
        )
    return ref


def _milestones(source: TomlSource, data: dict[str, Any]) -> tuple[Milestone, ...]:
    tables = data.get("milestones")
    if tables is None or tables == []:
        raise source.error("milestones", "missing: add one [[milestones]] table per milestone")
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise source.wrong_type("milestones", tables, "an array of tables ([[milestones]])")
    milestones: list[Milestone] = []
    for number, table in enumerate(tables, start=1):
        field = f"milestones[{number}]"
        milestone = _milestone(source, table, field)
        for earlier in milestones:
            if earlier.name == milestone.name:
                raise source.error(
                    f"{field}.name", f"{milestone.name!r} is already a milestone: rename one"
                )
            if earlier.stage == milestone.stage:
                raise source.error(
                    f"{field}.stage",
                    f"{milestone.stage!r} is already completed by milestone {earlier.name!r}: "
                    "give each milestone its own stage",
                )
        if milestones:
            _check_order(source, field, milestones[-1], milestone)
        milestones.append(milestone)
    if not any(m.stage == RELEASE_STAGE for m in milestones):
        raise source.error(
            "milestones",
            f"no milestone completes stage {RELEASE_STAGE!r}: add the Release milestone "
            "(its deadline is when an unapproved upgrade may fall back to sudo)",
        )
    return tuple(milestones)


def _milestone(source: TomlSource, table: dict[str, Any], field: str) -> Milestone:
    source.check_keys(table, field, _MILESTONE_KEYS)
    name = _required_text(source, table, "name", field, "the milestone's name")
    stage = source.string(table, "stage", prefix=field)
    if stage not in STAGES:
        problem = "missing" if stage is None else f"{stage!r} is not a pipeline stage"
        raise source.error(f"{field}.stage", f"{problem}: use one of {', '.join(STAGES)}")
    manager = _required_text(source, table, "manager", field, "who manages this milestone")
    team = source.strings(table, "team", prefix=field)
    return Milestone(
        name=name,
        stage=cast(Stage, stage),
        deadline=_deadline(source, table, field),
        manager=manager,
        team=(manager,) if team is None else team,
    )


def _required_text(
    source: TomlSource, table: dict[str, Any], key: str, prefix: str, what: str
) -> str:
    value = source.string(table, key, prefix=prefix)
    if value is None or not value.strip():
        raise source.error(join(prefix, key), f"missing: {what}")
    return value.strip()


def _deadline(source: TomlSource, table: dict[str, Any], prefix: str) -> datetime:
    field = f"{prefix}.deadline"
    value = table.get("deadline")
    example = "2026-12-01T12:00:00+00:00"
    if value is None:
        raise source.error(field, f"missing: an ISO 8601 date and time with a zone, e.g. {example}")
    if isinstance(value, str):  # a quoted date is as good as a TOML one
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise source.error(
                field, f"{value!r} is not an ISO 8601 date and time: write e.g. {example}"
            ) from None
    if not isinstance(value, datetime):
        if isinstance(value, date):
            raise source.error(
                field, f"{value} has no time and zone: write e.g. {value}T12:00:00+00:00"
            )
        raise source.wrong_type(field, value, f"a date and time such as {example}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise source.error(
            field,
            f"{value.isoformat()} has no timezone: add one, e.g. {value.isoformat()}+00:00",
        )
    return value


def _check_order(source: TomlSource, field: str, previous: Milestone, milestone: Milestone) -> None:
    if STAGES.index(milestone.stage) < STAGES.index(previous.stage):
        raise source.error(
            f"{field}.stage",
            f"{milestone.stage!r} comes before {previous.stage!r} (milestone {previous.name!r}) "
            "in the pipeline: list milestones in pipeline order",
        )
    if milestone.deadline < previous.deadline:
        raise source.error(
            f"{field}.deadline",
            f"{format_when(milestone.deadline)} is before the deadline of {previous.name!r} "
            f"({format_when(previous.deadline)}): deadlines must not go back in time",
        )


def _freeze(source: TomlSource, data: dict[str, Any]) -> FreezeRule:
    table = source.table(data, "freeze")
    if table is None:
        return FreezeRule()
    source.check_keys(table, "freeze", _FREEZE_KEYS)
    given = {key: source.strings(table, key, prefix="freeze") for key in _FREEZE_KEYS}
    return FreezeRule(**{key: value for key, value in given.items() if value is not None})


def _subsystems(source: TomlSource, data: dict[str, Any]) -> tuple[Subsystem, ...]:
    tables = source.table(data, "subsystems")
    if tables is None:
        return ()
    subsystems: list[Subsystem] = []
    claimed: dict[str, str] = {}  # marker -> sub-system
    for name, table in tables.items():
        field = f"subsystems.{name}"
        if not _SUBSYSTEM.fullmatch(name):
            raise source.error(field, f"{name!r} is not a plain name: use [A-Za-z0-9_-]")
        if not isinstance(table, dict):
            raise source.wrong_type(field, table, "a table with owner and markers")
        source.check_keys(table, field, _SUBSYSTEM_KEYS)
        owner = _required_text(source, table, "owner", field, "who answers for its failures")
        markers = source.strings(table, "markers", prefix=field)
        if markers is None:
            if not _MARKER.fullmatch(name):
                raise source.error(
                    f"{field}.markers",
                    f"missing, and {name!r} is not a pytest marker name: list its markers",
                )
            markers = (name,)
        for marker in markers:
            if not _MARKER.fullmatch(marker):
                raise source.error(
                    f"{field}.markers", f"{marker!r} is not a pytest marker name: use [A-Za-z0-9_]"
                )
            if marker in claimed:
                raise source.error(
                    f"{field}.markers",
                    f"marker {marker!r} already belongs to sub-system {claimed[marker]!r}: "
                    "give each marker one owner",
                )
            claimed[marker] = name
        subsystems.append(Subsystem(name=name, owner=owner, markers=markers))
    return tuple(subsystems)


def _voting_window(source: TomlSource, council: dict[str, Any]) -> timedelta:
    text = source.string(council, "voting_window", prefix="council")
    if text is None:
        raise source.error(
            "council.voting_window", 'missing: how long the council may vote, e.g. "P3D"'
        )
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise source.error("council.voting_window", str(exc)) from None


def _fallback(source: TomlSource, council: dict[str, Any]) -> FallbackPolicy:
    value = source.string(council, "fallback", prefix="council")
    if value is None:
        return "never"
    if value not in FALLBACK_POLICIES:
        raise source.error(
            "council.fallback",
            f"{value!r} is not a fallback policy: use one of {', '.join(FALLBACK_POLICIES)}",
        )
    return value


def _check_environment(source: TomlSource, env: str, fallback: FallbackPolicy, root: Path) -> None:
    """The environment exists and can do what the fallback policy may ask of it."""
    available = available_environments(root)
    if env not in available:
        raise source.error(
            "env", f"unknown environment {env!r}: choose one of {', '.join(available) or 'none'}"
        )
    if fallback != "never" and load_environment(env, root).sudo_key is None:
        raise source.error(
            "council.fallback",
            f"{fallback!r} may upgrade through sudo but environment {env!r} has no sudo key: "
            f'add [sudo] to environments/{env}.toml or set fallback = "never"',
        )


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration (PnW or PnDTnHnMnS); years and months are refused as ambiguous."""
    match = _DURATION.fullmatch(text)
    if match is None or text in ("P", "PT") or not any(match.groupdict().values()):
        raise ValueError(
            f"{text!r} is not an ISO 8601 duration such as PT2M, PT12H or P7D "
            "(years and months are not allowed: their length varies)"
        )
    parts = {unit: float(value) for unit, value in match.groupdict().items() if value}
    try:
        duration = timedelta(**parts)
    except OverflowError:
        raise ValueError(f"{text!r} is too long: give the council days or weeks") from None
    if duration <= timedelta(0):
        raise ValueError(f"{text!r} is zero: give the council time to vote")
    return duration


def format_when(moment: datetime) -> str:
    """A zoned moment for people, to the minute: `2026-12-01 12:00+00:00`."""
    return moment.isoformat(sep=" ", timespec="minutes")
