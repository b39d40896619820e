"""The migration gate on a real production network (chopsticks, spec 100, seeded notes) with
real try-runtime builds: HEAD's passes; generated broken variants are each refused with one
line naming the pallet and the check."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.runtimes import REPO, runtime_wasm
from fixtures.variants import variant_build
from test_deploy import Repo

from pipeline import (
    builder,
    chainstate,
    deploy,
    diff,
    gates,
    localnet,
    migrations,
    store,
    upgrade,
    verdicts,
)
from pipeline.artifact import RuntimeBlob
from pipeline.chain import Chain
from pipeline.errors import PipelineError
from pipeline.project import load_project
from pipeline.runtime_info import describe
from pipeline.trie import state_root

INVOKE = [sys.executable, "-m", "invoke", "--search-root", str(REPO)]
HEARTBEAT = re.compile(r"\[(\d+h\d+m|(\d+m)?\d+s)\] ")  # `[45s] `, `[4m10s] `: a long step's beat


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repo]:
    os.environ.pop("PIPELINE_STATE_DIR", None)
    r = Repo(tmp_path_factory.mktemp("migrations-repo"))
    try:
        localnet.up(r.project, r.nets, ["production"], runtime_wasm(100))
        yield r
    finally:
        localnet.reset(r.project, r.nets)


@pytest.fixture(scope="module")
def try_runtime_blob() -> Path:
    """HEAD's try-runtime build: the same commit as the release build, a second artifact."""
    built = builder.build(load_project(REPO), try_runtime=True)
    assert built.digest["try_runtime"] is True
    assert built.digest["reproducibility"]["build_options"]["features"] == ["try-runtime"]
    return store.blob_in(built.artifact_dir)


@pytest.mark.chain
def test_our_state_root_is_the_one_in_the_genesis_header(production: Repo) -> None:
    with Chain(production.endpoint("production")) as chain:
        genesis = chain.block_hash(0)
        state = chainstate.snapshot(chain, genesis)
        header = chain.rpc("chain_getHeader", [genesis])
    assert b":code" in state and len(state) > 20
    assert "0x" + state_root(state, 1).hex() == header["stateRoot"]
    assert state_root(state, 0) != state_root(state, 1)  # :code is a hashed value in V1 only


@pytest.mark.docker
def test_a_try_runtime_build_is_marked_and_never_reaches_a_chain(
    try_runtime_blob: Path, tmp_path: Path
) -> None:
    assert describe(RuntimeBlob.load(try_runtime_blob))["try_runtime"] is True
    assert describe(RuntimeBlob.load(runtime_wasm(101)))["try_runtime"] is False
    shown = subprocess.run(
        [*INVOKE, "inspect", str(try_runtime_blob)], capture_output=True, text=True, timeout=300
    )
    assert "Build                   try-runtime (checks only; deploy/propose/enact refuse)" in (
        shown.stdout
    )
    with pytest.raises(PipelineError, match=r"is a try-runtime build .* must never reach a chain"):
        upgrade.load_candidate(try_runtime_blob)
    env = Repo(tmp_path).env  # nothing listens there: the refusal comes first
    with pytest.raises(PipelineError, match="is a try-runtime build"):
        deploy.deploy(env, "reckless", try_runtime_blob)
    proc = subprocess.run(
        [*INVOKE, "propose", "--env", "test", "--artifact", str(try_runtime_blob)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("error: ") and "is a try-runtime build" in line


@pytest.mark.docker
@pytest.mark.chain
def test_heads_migrations_pass_with_weight_keys_and_idempotency(
    production: Repo, try_runtime_blob: Path
) -> None:
    report = migrations.gate_migrations(load_project(REPO), production.env, "production")
    assert report.ok and report.problem is None and not report.remembered
    assert report.spec_version == (100, 101) and report.idempotent is True
    assert report.keys_changed["Notes"] >= 2  # the seeded notes and the storage version
    assert report.weight is not None and 0 < report.weight[0] < report.weight[1]
    assert [line.check for line in report.checks] == [
        "pre_upgrade",
        "post_upgrade",
        "decode",
        "try_state",
        "weight",
        "idempotency",
        "keys",
    ]
    print(f"check.migrations wall time on the local fork: {report.seconds:.2f}s")
    again = migrations.check_migrations(
        production.env, "production", try_runtime_blob, ["System", "Notes"]
    )
    assert again.remembered and again.ok
    with pytest.raises(PipelineError, match="is a release build"):
        migrations.check_migrations(production.env, "production", runtime_wasm(101), [])
    gate = gates.gate_migrations(load_project(REPO), production.env, "HEAD")
    assert gate.ok and "idempotent; weight 0.0" in gate.detail
    assert gate.detail.endswith("(a remembered pass of these exact inputs)")


REFUSALS = {
    "failing-post-upgrade": "post_upgrade: post_upgrade of Notes failed",
    "over-weight": "weight: ",  # then "… of the block's maximum): …, migrating Notes; …"
    "not-idempotent": "idempotency: a second on_runtime_upgrade changed 1 key(s) of Notes (1)",
    "type-change-without-version-bump": "decode: decode of the migrated state failed",
}


@pytest.mark.slow
@pytest.mark.docker
@pytest.mark.chain
@pytest.mark.parametrize("name", list(REFUSALS))
def test_a_broken_migration_is_refused_with_one_line(
    production: Repo, name: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    blob = variant_build(name, tmp_path_factory.mktemp(name))
    proc = subprocess.run(
        [*INVOKE, "check.migrations", "--env", "test", "--artifact", str(blob)],
        cwd=production.root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # one line of error; a long wait (a loaded machine) adds heartbeat lines before it
    [line] = [s for s in proc.stderr.strip().splitlines() if not HEARTBEAT.match(s)] or [""]
    assert line.startswith(f"error: migrations refused: {REFUSALS[name]}"), proc.stderr
    assert "Notes" in line


@pytest.mark.slow
@pytest.mark.docker
def test_a_storage_type_change_without_version_bump_is_a_missing_migration(
    tmp_path: Path,
) -> None:
    blob = variant_build("type-change-without-version-bump", tmp_path, try_runtime=False)
    project = load_project(REPO)
    before, after = diff.summaries(
        [diff.load_runtime(project, str(runtime_wasm(100))), diff.load_runtime(project, str(blob))]
    )
    found = diff.judge(before, after, diff.diff_summaries(before, after))
    assert found.migration_missing == ("Notes",)
    [problem] = verdicts.problems(found)
    assert problem.startswith("storage of Notes changed (Notes.Notes) but its storage version")
