"""A runtime repo the pipeline was not written for, end to end: the example runtime without its
council (sudo governance only, its runtime workspace at the repo root) as a git repo of its own;
`runtime-pipeline init` (no file hand-written: HEAD is built as production's release), a
spec_version bump, then `runtime-pipeline release` on local networks, run as a user runs them.

Slow: two builds of a runtime this machine never built (the shared target volume keeps the
dependencies compiled; the runtime crate itself compiles twice).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import git
import pytest

from pipeline import metadata
from pipeline.chain import Chain
from pipeline.localnet import free_ports

pytestmark = [pytest.mark.slow, pytest.mark.docker, pytest.mark.chain]

REPO = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).parent / "runtime-pipeline"


def cut(text: str, start: str, end: str) -> str:
    """`text` without what runs from `start` up to (not including) `end`."""
    first = text.index(start)
    return text[:first] + text[text.index(end, first) :]


def without_council(root: Path) -> None:
    """The example runtime with no collective and no root dispatch: sudo alone upgrades it."""
    src = root / "runtime" / "src"
    configs = (src / "configs.rs").read_text()
    (src / "configs.rs").write_text(
        cut(configs, "parameter_types! {\n\t/// A motion", "impl pallet_notes")
    )
    lib = (src / "lib.rs").read_text()
    for pallet in ("Council = pallet_collective<Instance1>", "CouncilRoot = pallet_council_root"):
        lib = re.sub(
            rf"\t#\[runtime::pallet_index\(\d+\)\]\n\tpub type {re.escape(pallet)};\n\n", "", lib
        )
    (src / "lib.rs").write_text(lib)
    presets = (src / "genesis_config_presets.rs").read_text()
    presets = presets.replace(" CouncilConfig,", "")
    presets = cut(presets, "\tlet council: Vec<AccountId> =", "\tlet aura")
    presets = presets.replace(
        "\t\tcouncil: CouncilConfig { members: council, ..Default::default() },\n", ""
    )
    (src / "genesis_config_presets.rs").write_text(presets)
    assert "Council" not in lib.split("pub struct Runtime;")[1]


def commit_all(repo: git.Repo, message: str) -> None:
    repo.git.add(A=True)
    author = git.Actor("Release Manager", "rm@runtime-pipeline.invalid")
    repo.index.commit(message, author=author, committer=author)


def run(root: Path, *args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PIPELINE_STATE_DIR"}
    return subprocess.run(
        [str(SCRIPT), *args], cwd=root, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_adopt_a_council_free_runtime_and_release_it_by_sudo(tmp_path: Path) -> None:
    root = tmp_path / "solo-chain"
    shutil.copytree(
        REPO / "examples/runtime", root, ignore=shutil.ignore_patterns("target", "releases")
    )
    without_council(root)
    repo = git.Repo.init(root, initial_branch="main")
    commit_all(repo, "a solo chain runtime governed by sudo")

    init = run(root, "init")
    assert init.returncode == 0, init.stdout + init.stderr
    assert "note: governance: sudo (a Sudo pallet, no collective)" in init.stdout
    environment = root / "environments" / "local.toml"
    text = environment.read_text()
    for default, port in zip((9944, 9945, 9946), free_ports(3), strict=True):
        text = text.replace(f"port = {default}", f"port = {port}")  # beside anyone's 9944
    environment.write_text(text)
    production = int(re.search(r"\[networks.production\][^\[]*port = (\d+)", text)[1])  # type: ignore[index]
    commit_all(repo, "adopt the runtime pipeline")

    lib = root / "runtime" / "src" / "lib.rs"
    lib.write_text(lib.read_text().replace("spec_version: 101,", "spec_version: 102,"))
    commit_all(repo, "feat: spec_version 102")
    try:
        released = run(root, "release")
        assert released.returncode == 0, released.stdout + released.stderr
        report_path = next((root / ".pipeline" / "releases").glob("*/report.json"))
        report = json.loads(report_path.read_text())
        assert report["complete"] is True
        results = {s["stage"]: s["result"] for s in report["stages"]}
        assert results["propose"]["outcome"] == "no motion: production is upgraded by sudo"
        assert (results["enact"]["outcome"], results["enact"]["spec_version"]) == ("enacted", 102)
        assert results["suite-final"]["passed"] == 6 and results["suite-final"]["failed"] == 0
        with Chain(f"ws://127.0.0.1:{production}") as chain:
            assert chain.code_hash() == results["build"]["artifact"]
            assert "Council" not in metadata.chain_metadata(chain).pallet_names()
    finally:
        run(root, "net.down", timeout=120)
