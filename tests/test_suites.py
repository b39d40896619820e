"""Suite runner: outcome merging (table-driven) and real pytest processes on a small suite.

The example runtime's own suites run against real chains in test_deploy.py; here a suite
written on the spot shows what the runner records: counts, markers of failures, JUnit, the
variables a suite receives, and that secrets stay off command lines.
"""

from __future__ import annotations

import json
import textwrap
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pipeline import config, suites
from pipeline.errors import PipelineError
from pipeline.project import Project, load_project
from pipeline.suites import TestOutcome, final_outcomes


def rec(
    nodeid: str, outcome: str, message: str = "", markers: tuple[str, ...] = ()
) -> dict[str, object]:
    return {"nodeid": nodeid, "outcome": outcome, "message": message, "markers": list(markers)}


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        ([rec("t::a", "passed", markers=("notes",))], [TestOutcome("t::a", "passed", ("notes",))]),
        (  # an error in teardown fails a test whose call passed
            [rec("t::a", "passed", markers=("sudo",)), rec("t::a", "failed", "boom")],
            [TestOutcome("t::a", "failed", ("sudo",), "boom")],
        ),
        (  # a skip in setup: no call phase at all
            [rec("t::b", "skipped", "not local")],
            [TestOutcome("t::b", "skipped", (), "not local")],
        ),
        (  # failure outranks skip, order of first appearance is kept
            [rec("t::c", "skipped", "s"), rec("t::a", "passed"), rec("t::c", "failed", "f")],
            [TestOutcome("t::c", "failed", (), "f"), TestOutcome("t::a", "passed", ())],
        ),
        ([], []),
    ],
)  # fmt: skip
def test_final_outcomes(records: list[dict[str, object]], expected: list[TestOutcome]) -> None:
    assert final_outcomes(records) == expected


SECRET = "0x" + "5e" * 32  # the environment's sudo seed, given through a variable only

DEMO_CONFTEST = """
import pytest

def pytest_configure(config):
    config.addinivalue_line("markers", "balances: demo sub-system")
    config.addinivalue_line("markers", "notes: demo sub-system")

@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")
"""
DEMO_TESTS = """
import os
from pathlib import Path

import pytest

from pipeline import config, keys, suites


@pytest.mark.balances
def test_passes_with_the_network_from_variables():
    root = Path(os.environ[suites.ROOT_VAR])
    env = config.load_environment(os.environ[suites.ENVIRONMENT_VAR], root)
    network = config.network(env, os.environ[suites.NETWORK_VAR])
    assert os.environ[suites.ENDPOINT_VAR] == network.endpoint
    key = keys.signer(env, "sudo")  # resolved inside the suite, from the environment's settings
    for pid in ("self", os.getppid()):  # neither this process nor the one that started it
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert key.ss58_address and os.environ["DEMO_SUDO_SEED"].encode() not in cmdline


@pytest.mark.notes
@pytest.mark.balances
def test_fails():
    assert 1 == 2, "one is not two"


def test_skips():
    pytest.skip("not on this network")


@pytest.mark.notes
def test_setup_error(broken):
    pass
"""
ENV = """
local = true
ss58_format = 42
[networks.production]
name = "production"
kind = "chopsticks-genesis"
port = 19101
[networks.lts]
name = "staging-lts"
kind = "chopsticks-fork"
fork_of = "production"
port = 19102
[networks.reckless]
name = "staging-reckless"
kind = "chopsticks-genesis"
port = 19103
[sudo]
env = "DEMO_SUDO_SEED"
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    (tmp_path / "pipeline.toml").write_text(
        textwrap.dedent(
            """
            [runtime]
            path = "runtime"
            package = "example-runtime"
            [suites]
            demo = "checks/demo"
            empty = "checks/empty"
            broken = "checks/broken"
            """
        )
    )
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "demo.toml").write_text(ENV)
    demo = tmp_path / "checks" / "demo"
    demo.mkdir(parents=True)
    (demo / "conftest.py").write_text(DEMO_CONFTEST)
    (demo / "test_demo.py").write_text(DEMO_TESTS)
    (tmp_path / "checks" / "empty").mkdir()
    (tmp_path / "checks" / "broken").mkdir()
    (tmp_path / "checks" / "broken" / "test_broken.py").write_text("import no_such_module\n")
    monkeypatch.setenv("DEMO_SUDO_SEED", SECRET)
    return load_project(tmp_path)


def test_a_suite_run_records_counts_markers_and_junit(project: Project, tmp_path: Path) -> None:
    env = config.load_environment("demo", project.root)
    out = tmp_path / "release"
    result = suites.run_suite(project, env, "demo", out, network="lts")
    assert (result.passed, result.failed, result.skipped) == (1, 2, 1)
    assert (result.network, result.endpoint) == ("staging-lts", "ws://127.0.0.1:19102")
    assert not result.ok and result.exit_code == 1
    failures = {f.nodeid.rsplit("::", 1)[1]: f for f in result.failures}
    assert failures["test_fails"].markers == ("balances", "notes")
    assert "one is not two" in failures["test_fails"].message
    assert failures["test_setup_error"].markers == ("notes",)
    assert "fixture broke" in failures["test_setup_error"].message
    summary = json.loads((out / "suite-demo.json").read_text())
    assert summary == json.loads(json.dumps(result.as_dict()))
    assert summary["ok"] is False
    junit = ET.parse(out / "junit-demo.xml").getroot()
    cases = junit.iter("testcase")
    assert sorted(case.get("name") or "" for case in cases) == [
        "test_fails",
        "test_passes_with_the_network_from_variables",
        "test_setup_error",
        "test_skips",
    ]
    assert not list(out.glob(".outcomes-*"))  # the plugin's scratch file is gone
    assert "1 failed, 1 passed, 1 skipped, 1 error" in (out / "suite-demo.log").read_text()
    assert (
        SECRET not in (out / "junit-demo.xml").read_text() + (out / "suite-demo.json").read_text()
    )


def test_the_default_network_of_a_suite(project: Project, tmp_path: Path) -> None:
    env = config.load_environment("demo", project.root)
    result = suites.run_suite(project, env, "demo", tmp_path / "o", pytest_args=["-k", "passes"])
    assert (result.network, result.passed, result.failed, result.ok) == (
        "staging-reckless", 1, 0, True,
    )  # fmt: skip


def test_a_suite_that_runs_nothing_is_not_green(project: Project, tmp_path: Path) -> None:
    env = config.load_environment("demo", project.root)
    result = suites.run_suite(project, env, "empty", tmp_path / "o")
    assert (result.passed, result.failed, result.exit_code, result.ok) == (0, 0, 5, False)


def test_a_suite_that_does_not_import_fails(project: Project, tmp_path: Path) -> None:
    env = config.load_environment("demo", project.root)
    result = suites.run_suite(project, env, "broken", tmp_path / "o")
    assert result.failed == 1 and not result.ok
    assert "no_such_module" in result.failures[0].message


def test_unknown_suite_names_the_known_ones(project: Project, tmp_path: Path) -> None:
    env = config.load_environment("demo", project.root)
    with pytest.raises(PipelineError, match=r"unknown suite 'nope': .* broken, demo, empty"):
        suites.run_suite(project, env, "nope", tmp_path)


def test_the_example_suites_are_configured_and_left_out_of_the_projects_own_run() -> None:
    project = load_project(Path(__file__).resolve().parent.parent)
    for name in ("subsystem", "final"):
        assert suites.suite_path(project, name).is_dir()
    collected = config_norecursedirs(project.root)
    assert any(pattern.rstrip("/").endswith("tests/suites") for pattern in collected), collected


def config_norecursedirs(root: Path) -> list[str]:
    options = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    return list(options.get("norecursedirs", []))
