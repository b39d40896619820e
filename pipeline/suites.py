"""Run a runtime's chain test suite (pytest) against one network of an environment.

The suite runs in its own pytest process, so a runtime repo's suites stay plain pytest: the
network reaches them through environment variables (endpoint, environment name, network, repo
root), never secrets; the suite's conftest resolves keys itself through `pipeline.keys`. JUnit
XML and a summary JSON (counts, and every failed test with its markers, which the release plan
maps to sub-systems) are written to the output directory.

This module is also the pytest plugin (`-p pipeline.suites`) that records each test's outcome
and markers for the summary; it is inert unless the results variable is set.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from pipeline import config
from pipeline.config import Environment
from pipeline.errors import PipelineError
from pipeline.faults import crash_point
from pipeline.project import Project

if TYPE_CHECKING:  # pytest runs the suites; the pipeline itself does not need it imported
    import pytest

ENDPOINT_VAR: Final = "PIPELINE_SUITE_ENDPOINT"
ENVIRONMENT_VAR: Final = "PIPELINE_SUITE_ENVIRONMENT"
NETWORK_VAR: Final = "PIPELINE_SUITE_NETWORK"  # the network's role (reckless, lts, production)
ROOT_VAR: Final = "PIPELINE_SUITE_ROOT"  # the repo whose environments/ the suite reads
RESULTS_VAR: Final = "PIPELINE_SUITE_RESULTS"  # where this plugin writes per-test outcomes
ARTIFACT_VAR: Final = "PIPELINE_SUITE_ARTIFACT"  # the blob the network should run, when known
DEFAULT_NETWORKS: Final = {"subsystem": "reckless", "final": "lts"}
DEFAULT_TIMEOUT: Final = 1800.0
MESSAGE_WIDTH: Final = 300
PR_SET_PDEATHSIG: Final = 1  # prctl option (linux/prctl.h)


@dataclass(frozen=True)
class TestOutcome:
    __test__ = False  # not a pytest test class, whatever its name

    nodeid: str
    outcome: str  # passed, failed, skipped
    markers: tuple[str, ...]
    message: str = ""


@dataclass(frozen=True)
class SuiteResult:
    suite: str
    environment: str
    network: str
    endpoint: str
    exit_code: int
    passed: int
    failed: int
    skipped: int
    seconds: float
    failures: tuple[TestOutcome, ...]
    junit: str
    summary: str

    @property
    def ok(self) -> bool:
        """Green: pytest succeeded, nothing failed, and something actually ran."""
        return self.exit_code == 0 and self.failed == 0 and self.passed > 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


_RANK: Final = {"passed": 0, "skipped": 1, "failed": 2}


def final_outcomes(records: Sequence[Mapping[str, Any]]) -> list[TestOutcome]:
    """One outcome per test from its phase reports (setup, call, teardown), in first-seen order:
    failed if any phase failed, else skipped if one skipped, else passed."""
    order: list[str] = []
    merged: dict[str, TestOutcome] = {}
    for record in records:
        nodeid = str(record["nodeid"])
        markers = tuple(record.get("markers", ()))
        outcome, message = str(record["outcome"]), str(record.get("message", ""))
        previous = merged.get(nodeid)
        if previous is None:
            order.append(nodeid)
            merged[nodeid] = TestOutcome(nodeid, outcome, markers, message)
        elif _RANK[outcome] > _RANK[previous.outcome]:
            merged[nodeid] = TestOutcome(nodeid, outcome, previous.markers, message)
    return [merged[nodeid] for nodeid in order]


def suite_path(project: Project, suite: str) -> Path:
    """The suite's directory from `pipeline.toml` [suites]."""
    relative = project.suites.get(suite)
    if relative is None:
        known = ", ".join(sorted(project.suites)) or "none"
        raise PipelineError(
            f"unknown suite {suite!r}: pipeline.toml [suites] defines {known}; add "
            f'`{suite} = "path/to/suite"` there'
        )
    path = project.root / relative
    if not path.is_dir():
        raise PipelineError(
            f"suite {suite!r} points at {path}, which is not a directory: fix [suites]"
        )
    return path


def run_suite(
    project: Project,
    env: Environment,
    suite: str,
    out_dir: Path,
    *,
    network: str | None = None,
    pytest_args: Sequence[str] = (),
    timeout: float = DEFAULT_TIMEOUT,
    echo: bool = False,
    artifact: Path | None = None,
) -> SuiteResult:
    """Run `suite` against `network` (role or name; default: reckless for subsystem, lts for
    final) of `env`, writing `junit-<suite>.xml` and `suite-<suite>.json` into `out_dir`.

    pytest's own output goes to `suite-<suite>.log` there, or to this terminal with `echo`.
    `artifact` is the blob the network should run (the generic upgrade checks compare with it).
    """
    path = suite_path(project, suite)
    net = config.network(env, network or DEFAULT_NETWORKS.get(suite, "reckless"))
    out_dir.mkdir(parents=True, exist_ok=True)
    junit = out_dir / f"junit-{suite}.xml"
    summary = out_dir / f"suite-{suite}.json"
    results = out_dir / f".outcomes-{suite}.json"
    results.unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(path),
        "-p",
        __name__,
        "-p",
        "no:cacheprovider",
        f"--confcutdir={path.parent}",  # the suite's own conftests, not the repo's test suite's
        f"--junitxml={junit}",
        "-o",
        f"junit_suite_name={suite}",
        *pytest_args,
    ]
    variables = {
        ENDPOINT_VAR: net.endpoint,
        ENVIRONMENT_VAR: env.name,
        NETWORK_VAR: net.role,
        ROOT_VAR: str(project.root),
        RESULTS_VAR: str(results),
        **({ARTIFACT_VAR: str(artifact)} if artifact else {}),
    }
    output = out_dir / f"suite-{suite}.log"
    started = time.monotonic()
    try:
        with output.open("wb") as log:
            proc = subprocess.run(
                command,
                cwd=project.root,
                env={**os.environ, **variables},
                stdout=None if echo else log,
                stderr=None if echo else subprocess.STDOUT,
                timeout=timeout,
                preexec_fn=_die_with_parent,
            )
    except subprocess.TimeoutExpired:
        raise PipelineError(
            f"suite {suite} on {net.name} ran over {timeout:.0f}s: look for a test waiting on a "
            f"block that never comes (output so far: {output})"
        ) from None
    seconds = time.monotonic() - started
    try:
        outcomes = final_outcomes(json.loads(results.read_text()))
    except (OSError, ValueError) as exc:
        raise PipelineError(
            f"suite {suite} left no results ({exc}; pytest exit code {proc.returncode}): "
            f"see {output} or run it by hand with pytest"
        ) from None
    finally:
        results.unlink(missing_ok=True)
    counts = {
        kind: sum(o.outcome == kind for o in outcomes) for kind in ("passed", "failed", "skipped")
    }
    result = SuiteResult(
        suite=suite,
        environment=env.name,
        network=net.name,
        endpoint=net.endpoint,
        exit_code=proc.returncode,
        passed=counts["passed"],
        failed=counts["failed"],
        skipped=counts["skipped"],
        seconds=seconds,
        failures=tuple(o for o in outcomes if o.outcome == "failed"),
        junit=str(junit),
        summary=str(summary),
    )
    summary.write_text(json.dumps(result.as_dict(), indent=2) + "\n")
    return result


def _die_with_parent() -> None:
    """In the suite's process, before pytest starts: be killed when the process that runs the
    suite dies. A killed release must not leave its suite running on, signing transactions
    next to the resumed release's own run of the suite."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


# --- the pytest plugin side (loaded in the suite's process with -p pipeline.suites) --------------
class _Recorder:
    """Collects each test phase's outcome with the test's markers; writes them at the end."""

    def __init__(self, path: Path, suite: str) -> None:
        self.path = path
        self.suite = suite
        self.markers: dict[str, tuple[str, ...]] = {}
        self.records: list[dict[str, Any]] = []

    def pytest_itemcollected(self, item: pytest.Item) -> None:
        self.markers[item.nodeid] = tuple(dict.fromkeys(m.name for m in item.iter_markers()))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:  # an import error: the whole module counts as one failed test
            self._add(report.nodeid or "<collection>", "failed", report)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or report.outcome != "passed":
            self._add(report.nodeid, report.outcome, report)
        if report.when == "call":  # a test ran, its outcome is not written: a kill mid-suite
            crash_point(f"suite:{self.suite}:in-test", with_parent=True)

    def _add(
        self, nodeid: str, outcome: str, report: pytest.TestReport | pytest.CollectReport
    ) -> None:
        self.records.append(
            {
                "nodeid": nodeid,
                "outcome": outcome,
                "markers": list(self.markers.get(nodeid, ())),
                "message": "" if outcome == "passed" else _message(report)[:MESSAGE_WIDTH],
            }
        )

    def pytest_sessionfinish(self) -> None:
        self.path.write_text(json.dumps(self.records))


def _message(report: pytest.TestReport | pytest.CollectReport) -> str:
    """The one line that says why: the exception, the skip reason, or the last `E` line."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message).splitlines()[0]
    if isinstance(report.longrepr, tuple):  # a skip: (path, line, reason)
        return str(report.longrepr[2])
    lines = [line for line in report.longreprtext.splitlines() if line.strip()]
    errors = [line[1:].strip() for line in lines if line.startswith("E ")]
    return (errors or lines or [""])[-1]


def pytest_configure(config: pytest.Config) -> None:
    path = os.environ.get(RESULTS_VAR)
    if path:
        suite = str(config.getini("junit_suite_name"))
        config.pluginmanager.register(_Recorder(Path(path), suite), "pipeline-suite-recorder")
