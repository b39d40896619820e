"""The generic upgrade suite (`pipeline.upgrade_suite`, what `init`'s starter suite runs) against
a real chain: red while the chain still runs the old runtime, green once it runs the artifact."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_governance import Net, chain_project, net
from test_sudo_governance import sudo_env

from pipeline import deploy, suites
from pipeline.adopt import STARTER_SUITE
from pipeline.project import Project

__all__ = ["chain_project", "net"]  # the fixtures, used here by name


@pytest.mark.chain
def test_generic_suite_fails_before_the_upgrade_and_passes_after(net: Net, tmp_path: Path) -> None:
    env = sudo_env(net, "solo")
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_upgrade.py").write_text(STARTER_SUITE)
    project = Project(net.root, "examples/runtime", "example-runtime", {"final": str(suite)})
    candidate = net.candidate()

    def run(out: str) -> suites.SuiteResult:
        return suites.run_suite(
            project, env, "final", tmp_path / out, network="production", artifact=candidate.path
        )

    before = run("before")
    failed = sorted(f.nodeid.rsplit("::", 1)[1] for f in before.failures)
    assert failed == [
        "test_code_and_version_are_the_artifacts",
        "test_metadata_decodes_with_the_artifacts_pallets",
        "test_pallets_are_at_their_in_code_storage_versions",
    ], before.failures
    deploy.deploy(env, "production", candidate)
    after = run("after")
    assert (after.ok, after.passed, after.failed, after.skipped) == (True, 6, 0, 0), after.failures
