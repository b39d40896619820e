"""The installed `runtime-pipeline` script, run as a user runs it in a runtime repo that has no
`tasks.py` (from a subdirectory, too); and `invoke` with the one-line `tasks.py` beside it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import git
import pytest

REPO = Path(__file__).resolve().parents[1]
RELEASED = REPO / "examples/runtime/releases/100/example_runtime.compact.compressed.wasm"
BIN = Path(sys.executable).parent
SCRIPT = BIN / "runtime-pipeline"


def run(command: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert (BIN / command).is_file(), f"{BIN / command} missing: run `pip install -e .` again"
    return subprocess.run(
        [str(BIN / command), *args],
        cwd=cwd,
        env={k: v for k, v in os.environ.items() if k != "PIPELINE_STATE_DIR"},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def solo(tmp_path: Path) -> Path:
    """A runtime repo of its own: the runtime at the root, no tasks.py, no pipeline checkout."""
    root = tmp_path / "solo"
    (root / "runtime" / "src").mkdir(parents=True)
    (root / "pipeline.toml").write_text('[runtime]\npath = "."\npackage = "solo-runtime"\n')
    (root / "Cargo.toml").write_text('[workspace]\nmembers = ["runtime"]\n')
    (root / "runtime" / "src" / "lib.rs").write_text("#![no_std]\n")
    repo = git.Repo.init(root, initial_branch="main")
    repo.index.add(["pipeline.toml", "Cargo.toml", "runtime/src/lib.rs"])
    author = git.Actor("t", "t@example.invalid")
    repo.index.commit("runtime", author=author, committer=author)
    return root


def test_script_serves_every_command_from_inside_the_repo(solo: Path) -> None:
    listed = run("runtime-pipeline", solo, "--list")
    assert listed.returncode == 0, listed.stderr
    for command in ("build", "release.run (release)", "net.up", "gate.freeze", "propose"):
        assert f"  {command} " in listed.stdout
    inside = solo / "runtime" / "src"
    inspected = run("runtime-pipeline", inside, "inspect", str(RELEASED), "--json")
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["spec_version"] == 100
    frozen = run("runtime-pipeline", inside, "gate.freeze", "--release", "solo-2")
    assert (frozen.returncode, frozen.stdout.strip()) == (0, "pass freeze: not frozen yet")
    # the pipeline's state went to the repo's .pipeline/ (found upwards), not the subdirectory
    assert not (inside / ".pipeline").exists()


def test_invoke_with_a_one_line_tasks_py_serves_the_same(solo: Path) -> None:
    (solo / "tasks.py").write_text("from pipeline.cli.main import ns  # noqa: F401\n")
    ours = run("runtime-pipeline", solo, "--list").stdout
    theirs = run("invoke", solo / "runtime", "--list")
    assert theirs.returncode == 0, theirs.stderr
    # the same commands; only the heading differs (invoke's "Available tasks:")
    assert theirs.stdout.splitlines()[1:] == ours.splitlines()[1:]
    refused = run("invoke", solo, "release")
    assert (refused.returncode, refused.stderr.strip()) == (
        1,
        "error: no release plan and no --id: pass --plan NAME (releases/NAME.toml) or --id NAME",
    )


def test_outside_a_runtime_repo_one_line_and_exit_1(tmp_path: Path) -> None:
    outside = run("runtime-pipeline", tmp_path, "release.status")
    assert outside.returncode == 1
    assert outside.stderr.strip() == (
        f"error: no pipeline.toml in {tmp_path.resolve()} or above: run the command inside the "
        "runtime repo, or write one there with `runtime-pipeline init`"
    )
