"""`init` in a runtime repo it was not written for: the runtime crate found among cargo
manifests, governance read from the runtime's own metadata (the committed example release, run
in this process), and the files written by the installed `runtime-pipeline init`."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import git
import pytest

from pipeline import adopt, diff
from pipeline.adopt import RuntimeCrate
from pipeline.artifact import RuntimeBlob
from pipeline.config import load_environment
from pipeline.errors import PipelineError
from pipeline.plan import load_plan

REPO = Path(__file__).resolve().parents[1]
RELEASE_100 = REPO / "examples/runtime/releases/100"
EXAMPLE = REPO / "examples/runtime"
WASM_BUILDER = {"build-dependencies": {"substrate-wasm-builder": {"workspace": True}}}


def package(name: str, **more: Any) -> dict[str, Any]:
    return {"package": {"name": name}, **more}


@pytest.mark.parametrize(
    ("manifests", "expected"),
    [
        (  # the solochain template's shape: a virtual workspace at the root, node beside runtime
            {
                ".": {"workspace": {"members": ["node", "pallets/*", "runtime"]}},
                "node": package("solochain-template-node"),
                "pallets/template": package("pallet-template"),
                "runtime": package("solochain-template-runtime", **WASM_BUILDER),
            },
            [RuntimeCrate(".", "solochain-template-runtime")],
        ),
        (  # the example's: the workspace in a subdirectory, its node a workspace of its own
            {
                "examples/runtime": {"workspace": {"members": ["runtime", "pallets/notes"]}},
                "examples/runtime/runtime": package("example-runtime", **WASM_BUILDER),
                "examples/runtime/pallets/notes": package("pallet-notes"),
                "examples/node": {"workspace": {}, **package("example-node")},
            },
            [RuntimeCrate("examples/runtime", "example-runtime")],
        ),
        (  # renamed, target-specific, and a crate that is its own workspace
            {
                "rt": package(
                    "rt",
                    target={
                        "cfg(unix)": {
                            "build-dependencies": {"swb": {"package": adopt.WASM_BUILDER}}
                        }
                    },
                ),
            },
            [RuntimeCrate("rt", "rt")],
        ),
        (  # an excluded member does not count
            {
                ".": {"workspace": {"members": ["*"], "exclude": ["old"]}},
                "old": package("old-runtime", **WASM_BUILDER),
                "new": package("new-runtime", **WASM_BUILDER),
            },
            [RuntimeCrate(".", "new-runtime"), RuntimeCrate("old", "old-runtime")],
        ),
    ],
    ids=["solochain-template", "example", "renamed", "excluded"],
)
def test_runtime_crates_are_the_members_built_with_the_wasm_builder(
    manifests: dict[str, dict[str, Any]], expected: list[RuntimeCrate]
) -> None:
    assert adopt.runtime_crates(manifests) == expected


def test_no_runtime_crate_or_several_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "Cargo.toml").write_text('[package]\nname = "lib"\n')
    with pytest.raises(
        PipelineError, match=r"no crate under .* builds with substrate-wasm-builder"
    ):
        adopt.find_runtime_crate(tmp_path)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "Cargo.toml").write_text(
            f'[package]\nname = "{name}-runtime"\n'
            '[build-dependencies]\nsubstrate-wasm-builder = "26"\n'
        )
    with pytest.raises(PipelineError) as info:
        adopt.find_runtime_crate(tmp_path)
    assert "several runtime crates" in str(info.value) and "a-runtime (a), b-runtime (b)" in str(
        info.value
    )


@pytest.fixture(scope="module")
def example_summary() -> diff.RuntimeSummary:
    blob = RELEASE_100 / "example_runtime.compact.compressed.wasm"
    return diff.summary_of(diff.Runtime(str(blob), RuntimeBlob.load(blob), blob))


def without(summary: diff.RuntimeSummary, *pallets: str) -> diff.RuntimeSummary:
    """The same runtime's metadata as if it had not these pallets."""
    kept = {k: v for k, v in summary.pallets.items() if k not in pallets}
    items = {
        kind: {k: e for k, e in entries.items() if k.split(".", 1)[0] in kept}
        for kind, entries in summary.items.items()
    }
    return dataclasses.replace(summary, pallets=kept, items=items)


def test_governance_read_from_the_runtime_metadata(example_summary: diff.RuntimeSummary) -> None:
    found = adopt.governance_of(example_summary)
    assert (found.kind, found.collective, found.root_dispatch) == (
        "collective",
        "Council",
        "CouncilRoot.dispatch_as_root",
    )
    assert any(n.startswith("council.root_dispatch: guessed") for n in found.notes)
    no_lift = adopt.governance_of(without(example_summary, "CouncilRoot"))
    assert (no_lift.kind, no_lift.root_dispatch) == ("collective", None)
    assert any("could not tell which call lifts a motion" in n for n in no_lift.notes)
    sudo = adopt.governance_of(without(example_summary, "Council", "CouncilRoot"))
    assert (sudo.kind, sudo.collective) == ("sudo", None)
    neither = adopt.governance_of(without(example_summary, "Council", "CouncilRoot", "Sudo"))
    assert neither.kind is None and "found neither a Sudo pallet nor" in neither.notes[0]


def test_written_environments_load_with_the_governance_found(
    tmp_path: Path, example_summary: diff.RuntimeSummary
) -> None:
    for summary, name in (
        (example_summary, "collective"),
        (without(example_summary, "Council", "CouncilRoot"), "sudo"),
    ):
        (tmp_path / "environments").mkdir(exist_ok=True)
        text = adopt.environment_toml(adopt.governance_of(summary))
        (tmp_path / "environments" / f"{name}.toml").write_text(text)
        env = load_environment(name, tmp_path)
        assert env.local and env.governance == name
        assert (env.council is not None) == (name == "collective")


def run_script(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "runtime-pipeline"), *args],
        cwd=cwd,
        env={k: v for k, v in os.environ.items() if k != "PIPELINE_STATE_DIR"},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_init_in_a_repo_with_the_runtime_at_its_root(tmp_path: Path) -> None:
    """The example runtime's workspace as a repo of its own (the runtime at the root, no
    pipeline.toml): init writes everything from its manifests and the released runtime."""
    root = tmp_path / "chain"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("target", "releases"))
    repo = git.Repo.init(root, initial_branch="main")
    repo.git.add(A=True)
    author = git.Actor("t", "t@example.invalid")
    repo.index.commit("runtime", author=author, committer=author)

    done = run_script(root / "runtime", "init", "--production", str(RELEASE_100))
    assert done.returncode == 0, done.stdout + done.stderr
    settings = tomllib.loads((root / "pipeline.toml").read_text())
    assert settings["runtime"] == {"path": ".", "package": "example-runtime"}
    assert (root / "releases/100/example_runtime.compact.compressed.wasm").is_file()
    assert (root / "releases/100/digest.json").is_file()
    env = load_environment("local", root)
    assert (env.governance, env.council and env.council.collective) == ("collective", "Council")
    plan = load_plan("example-runtime-101", root)
    assert (plan.spec_version, plan.env) == (101, "local")
    assert (
        "from pipeline.upgrade_suite import *"
        in (root / adopt.SUITE_DIR / "test_upgrade.py").read_text()
    )
    assert "/.pipeline/" in (root / ".gitignore").read_text().splitlines()
    assert "note: council.root_dispatch: guessed CouncilRoot.dispatch_as_root" in done.stdout

    again = run_script(root, "init")
    assert again.returncode == 0, again.stderr
    assert "kept pipeline.toml (exists)" in again.stdout and "wrote" not in again.stdout
    checked = run_script(root, "plan.check", "example-runtime-101")
    assert checked.returncode == 0, checked.stderr
