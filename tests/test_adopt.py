"""`init` in a runtime repo it was not written for: the runtime crate found among cargo
manifests, governance read from the runtime's own metadata (the committed example release, run
in this process), and the files written by the installed `runtime-pipeline init`."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import git
import pytest
import yaml

from pipeline import adopt, diff, localnet, upgrade
from pipeline.adopt import RuntimeCrate
from pipeline.artifact import RuntimeBlob
from pipeline.chain import Chain
from pipeline.config import load_environment
from pipeline.errors import PipelineError
from pipeline.plan import load_plan
from pipeline.project import load_project

REPO = Path(__file__).resolve().parents[1]
RELEASE_100 = REPO / "examples/runtime/releases/100"
BLOB_100 = RELEASE_100 / "example_runtime.compact.compressed.wasm"
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
    return diff.summary_of(diff.Runtime(str(BLOB_100), RuntimeBlob.load(BLOB_100), BLOB_100))


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


@pytest.mark.parametrize(
    ("offered", "chosen", "note"),
    [
        (["development", "local_testnet"], "development", "development (the runtime offers"),
        (["local_testnet", "staging"], "local_testnet", "local_testnet (the runtime offers"),
        (["mainnet"], None, "offers none of development, local_testnet (it has: mainnet)"),
        ([], None, "(it has: none): set [runtime] preset"),
        (None, None, "could not read the runtime's presets"),
    ],
)
def test_local_preset_is_one_with_dev_keys_the_runtime_offers(
    offered: list[str] | None, chosen: str | None, note: str
) -> None:
    preset, said = adopt.local_preset(offered)
    assert preset == chosen and note in said


def repo_with_preset(root: Path, preset: str) -> Path:
    """A runtime repo whose pipeline.toml names `preset`, with init's local environment."""
    (root / "environments").mkdir(parents=True)
    (root / "pipeline.toml").write_text(
        f'[runtime]\npath = "."\npackage = "example-runtime"\npreset = "{preset}"\n'
    )
    sudo = adopt.Governance("sudo")
    (root / "environments" / "local.toml").write_text(adopt.environment_toml(sudo))
    return root


def test_local_networks_start_from_the_preset_pipeline_toml_names(tmp_path: Path) -> None:
    project = load_project(repo_with_preset(tmp_path, "local_testnet"))
    assert project.preset == "local_testnet"
    nets = localnet.networks_for(load_environment("local", tmp_path), project.preset)
    assert {net.preset for net in nets.values()} == {"local_testnet"}
    spec = json.loads(localnet.ensure_spec(project, nets["production"], BLOB_100).read_text())
    assert spec["id"] == "example-runtime_local_testnet" and spec["chainType"] == "Local"
    (tmp_path / "pipeline.toml").write_text('[runtime]\npath = "."\npackage = "x"\npreset = 1\n')
    with pytest.raises(PipelineError, match=r"\[runtime\] preset names a genesis preset"):
        load_project(tmp_path)


@pytest.mark.chain
def test_production_starts_from_the_preset_pipeline_toml_names(tmp_path: Path) -> None:
    """local_testnet makes Alice and Bob Aura authorities, development Alice alone."""
    root = repo_with_preset(tmp_path, "local_testnet")
    shutil.copytree(RELEASE_100, root / "releases" / "100")
    environment = root / "environments" / "local.toml"
    text = environment.read_text()
    ports = localnet.free_ports(3)
    for default, port in zip((9944, 9945, 9946), ports, strict=True):
        text = text.replace(f"port = {default}", f"port = {port}")
    environment.write_text(text)
    try:
        done = run_script(root, "net.up", "--name", "production")
        assert done.returncode == 0, done.stdout + done.stderr
        with Chain(f"ws://127.0.0.1:{ports[0]}") as chain:
            assert len(chain.query("Aura", "Authorities")) == 2
    finally:
        run_script(root, "net.down")


def test_a_preset_the_runtime_lacks_is_one_line_naming_those_it_has(tmp_path: Path) -> None:
    said = "the runtime has no genesis preset 'local' (it has: development, local_testnet): set"
    with pytest.raises(PipelineError, match=re.escape(said)):
        upgrade.load_candidate(BLOB_100, "local")
    done = run_script(repo_with_preset(tmp_path, "local"), "net.spec", str(BLOB_100))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip() == f"error: {said} [runtime] preset in pipeline.toml to one of them"


@pytest.mark.parametrize(
    ("direct_url", "requirement"),
    [
        (
            {"url": "https://example.invalid/p.git", "vcs_info": {"vcs": "git", "commit_id": "ab"}},
            "runtime-pipeline @ git+https://example.invalid/p.git@ab",
        ),
        (
            {"url": "https://example.invalid/p.tar.gz", "archive_info": {}},
            "runtime-pipeline @ https://example.invalid/p.tar.gz",
        ),
        ({"url": "file:///work/p", "dir_info": {}}, None),  # a runner has no such path
        (None, None),  # installed from an index, or pip recorded nothing
    ],
    ids=["git", "archive", "local-path", "unknown"],
)
def test_ci_installs_the_pipeline_as_it_was_installed_here(
    direct_url: dict[str, Any] | None, requirement: str | None
) -> None:
    assert adopt.pipeline_requirement(direct_url) == requirement


def commands_in(workflow: dict[str, Any]) -> list[str]:
    """The `runtime-pipeline` subcommands the workflow's steps run."""
    runs = [step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]]
    return [m for run in runs for m in re.findall(r"^\s*runtime-pipeline (\S+)", run, re.M)]


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
    assert settings["runtime"] == {
        "path": ".",
        "package": "example-runtime",
        "preset": "development",
    }
    assert "note: genesis preset: development (the runtime offers: development, local_testnet)" in (
        done.stdout
    )
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
    workflow = yaml.safe_load((root / adopt.WORKFLOW).read_text())
    job = workflow["jobs"]["gates"]
    assert job["env"]["RELEASE_PLAN"] == "example-runtime-101"
    assert "hashFiles('Cargo.lock')" in str(job["steps"])  # the runtime workspace's lock
    assert commands_in(workflow) == ["gate"]
    assert "note: CI: could not tell where a runner installs the pipeline from" in done.stdout
    for command in commands_in(workflow):
        known = run_script(root, "--help", command)
        assert known.returncode == 0, known.stderr
    assert run_script(root, "--help", "no-such-gate").returncode != 0
    assert "note: council.root_dispatch: guessed CouncilRoot.dispatch_as_root" in done.stdout

    again = run_script(root, "init")
    assert again.returncode == 0, again.stderr
    assert "kept pipeline.toml (exists)" in again.stdout and "wrote" not in again.stdout
    checked = run_script(root, "plan.check", "example-runtime-101")
    assert checked.returncode == 0, checked.stderr
