"""`invoke release` end to end on real local networks, run as a user runs it (a subprocess in
a clone of this repo), including SIGKILLs at stage boundaries and inside submissions.

Each test gets its own clone, state directory and ports, so production starts at spec 100.
The candidate is HEAD's runtime: the build cache serves it after the session's first build.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import git
import pytest
from fixtures.runtimes import candidate_build

from pipeline.chain import Chain
from pipeline.faults import CRASH_ENV, PAUSE_ENV, PAUSE_FILE_ENV
from pipeline.localnet import free_ports
from pipeline.plan import STAGES

# Each test has its own clone, state dir and ports: workers take them one by one.
pytestmark = [
    pytest.mark.chain,
    pytest.mark.docker,
    pytest.mark.independent,
    pytest.mark.usefixtures("candidate_built"),
]

REPO = Path(__file__).resolve().parents[1]
RELEASE_TIMEOUT_S = 900
INVOKE = [sys.executable, "-m", "invoke"]  # the user's command, with this test run's Python


# The shipped environments a test copies onto free ports: their ports for production, lts and
# reckless.
SHIPPED_PORTS = {"local": (9944, 9945, 9946), "local-nodes": (9954, 9955, 9956)}


def make_clone(
    tmp_path: Path, *, release: str, first_deadline: str, environment_of: str = "local"
) -> tuple[Path, int]:
    """A clone of HEAD with an environment (a copy of `environment_of`) on free ports and a plan
    for it; returns (clone, production port)."""
    clone = tmp_path / "repo"
    source = git.Repo(REPO)
    # the commit this test runs from (a clone of a git worktree would check out the main HEAD)
    source.clone(clone).git.checkout(source.head.commit.hexsha)
    (clone / "node_modules").symlink_to(REPO / "node_modules")  # as bootstrap would install it
    environment = (REPO / f"environments/{environment_of}.toml").read_text()
    ports = free_ports(3)
    for default, port in zip(SHIPPED_PORTS[environment_of], ports, strict=True):
        environment = environment.replace(f"port = {default}", f"port = {port}")
    production = ports[0]
    (clone / "environments/e2e.toml").write_text(environment)
    plan = (REPO / "releases/example.toml").read_text()
    plan = re.sub(r'^name = ".*?"', f'name = "{release}"', plan, count=1, flags=re.M)
    plan = plan.replace('env = "local"', 'env = "e2e"')
    plan = plan.replace("deadline = 2026-12-01T12:00:00+00:00", f"deadline = {first_deadline}")
    (clone / "releases/example.toml").unlink()
    (clone / "releases/e2e.toml").write_text(plan)
    return clone, production


def user_env(**hooks: str) -> dict[str, str]:
    """The environment a user has, plus the given fault hooks."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in (CRASH_ENV, PAUSE_ENV, PAUSE_FILE_ENV, "PIPELINE_STATE_DIR")
    }
    return {**env, **hooks}


def invoke(
    clone: Path, *args: str, crash_at: str | None = None, timeout: float = RELEASE_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*INVOKE, *args],
        cwd=clone,
        env=user_env(**({CRASH_ENV: crash_at} if crash_at else {})),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def chain_events(port: int) -> Counter[tuple[str, str]]:
    """Every event of the chain, from block 1 to the head, counted by (pallet, event)."""
    counts: Counter[tuple[str, str]] = Counter()
    with Chain(f"ws://127.0.0.1:{port}") as chain:
        for number in range(1, chain.block_number() + 1):
            for event in chain.events(chain.block_hash(number)):
                counts[(event.module, event.name)] += 1
    return counts


def production_up(clone: Path, production: int) -> Counter[tuple[str, str]]:
    """Start production (seeded) and count its events before the release."""
    up = invoke(clone, "net.up", "--env", "e2e", "-n", "production", timeout=600)
    assert up.returncode == 0, up.stdout + up.stderr
    return chain_events(production)


def stop_networks(clone: Path) -> None:
    invoke(clone, "net.down", "--env", "e2e")


@pytest.fixture
def candidate_hash() -> str:
    return candidate_build().compressed.blake2_256


# What one upgrade leaves on production, by how the council voted: approved and enacted
# (authorize, then apply), or silent and taken by the sudo fallback (set_code).
ONE_UPGRADE = {
    "approve": {
        ("System", "CodeUpdated"): 1,
        ("Council", "Proposed"): 1,
        ("Council", "Closed"): 1,
        ("System", "UpgradeAuthorized"): 1,
    },
    "silent": {("System", "CodeUpdated"): 1, ("Council", "Proposed"): 1},
}


def release_with_kills(
    tmp_path: Path,
    release: str,
    kill_at: tuple[str, ...],
    candidate: str,
    votes: str = "approve",
    prepare: Callable[[Path], None] | None = None,
    environment_of: str = "local",
    also: Callable[[Path, int], None] | None = None,
) -> None:
    """Kill the release at each point in turn (SIGKILL, no cleanup), resume, and check that
    production ends up upgraded with exactly one of each on-chain effect. `prepare` changes
    the clone first (e.g. a runtime edit, so that the build is not a cache hit); `also`
    checks more on the clone and production's port before the networks stop."""
    clone, production = make_clone(
        tmp_path,
        release=release,
        first_deadline="2026-12-01T12:00:00+00:00",
        environment_of=environment_of,
    )
    if prepare is not None:
        prepare(clone)
        candidate = ""  # a new runtime: its hash is whatever the release built
    try:
        before = production_up(clone, production)
        for point in kill_at:
            run = invoke(clone, "release", "--votes", votes, crash_at=point)
            assert run.returncode == -9, f"{point}: {run.returncode}\n{run.stdout}\n{run.stderr}"
        done = invoke(clone, "release", "--votes", votes)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"release {release} complete" in done.stdout
        real_time = environment_of != "local"
        check_one_upgrade(clone, release, production, before, candidate, votes, real_time)
        if also is not None:
            also(clone, production)
    finally:
        stop_networks(clone)


def check_one_upgrade(
    clone: Path,
    release: str,
    production: int,
    before: Counter[tuple[str, str]],
    candidate: str,
    votes: str = "approve",
    real_time: bool = False,
) -> None:
    """Production runs the candidate (default: what the release built), upgraded exactly
    once, every milestone done; resuming again does nothing. `real_time`: production makes
    blocks of its own (real nodes)."""
    report = json.loads((clone / f".pipeline/releases/{release}/report.json").read_text())
    assert report["complete"] is True
    assert [m["state"] for m in report["milestones"]] == ["done"] * 5
    built = next(s for s in report["stages"] if s["stage"] == "build")["result"]["artifact"]
    checked = next(s for s in report["stages"] if s["stage"] == "migrations")["result"]
    assert checked["migrations"]["ok"] and checked["migrations"]["idempotent"]
    folder = clone / f".pipeline/releases/{release}"
    assert "## Migrations" in (folder / "report.md").read_text()
    note = (folder / "proposal.md").read_text()
    assert "## Migration checks (try-runtime on production's state)" in note
    assert "- pass idempotency: a second on_runtime_upgrade leaves the storage root" in note
    with Chain(f"ws://127.0.0.1:{production}") as chain:
        assert chain.code_hash() == (candidate or built)
        assert int(chain.runtime_version()["specVersion"]) == 101

    events = chain_events(production)
    gained = events - before
    for event, count in ONE_UPGRADE[votes].items():
        assert gained[event] == count, (event, gained)
    # Resuming again finds nothing to do and submits nothing: on chopsticks no block is made,
    # on real nodes blocks go on but no signed transaction (each pays a fee) lands.
    again = invoke(clone, "release", "--votes", votes)
    assert again.returncode == 0
    after = chain_events(production)
    if real_time:
        fees = ("TransactionPayment", "TransactionFeePaid")
        assert after[fees] == events[fees]
        assert all(after[event] == events[event] for event in ONE_UPGRADE[votes])
    else:
        assert after == events


def test_release_survives_kills_and_enacts_exactly_once(
    tmp_path: Path, candidate_hash: str
) -> None:
    kill_at = (
        "after:deploy-reckless",  # a stage boundary
        "submit:propose:after-broadcast",  # sent, result not journaled
        "submit:apply-upgrade:after-intent",  # journaled, not sent
    )
    release_with_kills(tmp_path, "e2e-kill", kill_at, candidate_hash)


# Every stage boundary and both sides of every submission the local release makes.
SUBMISSIONS = ("deploy-reckless", "deploy-lts", "propose", "vote", "close", "apply-upgrade")
KILL_POINTS = [f"after:{stage}" for stage in STAGES] + [
    f"submit:{stage}:{side}"
    for stage in SUBMISSIONS
    for side in ("after-intent", "after-broadcast")
]


@pytest.mark.slow
@pytest.mark.parametrize("point", KILL_POINTS)
def test_release_killed_at_any_point_resumes_to_one_upgrade(
    tmp_path: Path, candidate_hash: str, point: str
) -> None:
    release_with_kills(tmp_path, "e2e-matrix", (point,), candidate_hash)


def edit_runtime(clone: Path) -> None:
    """Commit a change to the runtime's source, so that the release builds it: a change of its
    own, or the machine-wide build cache serves what an earlier run of this test built."""
    lib = clone / "examples/runtime/runtime/src/lib.rs"
    lib.write_text(lib.read_text() + f"\n// rebuilt by the crash matrix: {uuid.uuid4().hex}\n")
    repo = git.Repo(clone)
    repo.index.add([str(lib)])
    author = git.Actor("Crash Matrix", "matrix@runtime-pipeline.invalid")
    repo.index.commit("fix: rebuild the runtime", author=author, committer=author)


# Inside the long waits: a suite after one test made its state (its outcome not yet written),
# tracking between two heads (a silent council: the release waits for the deadline), and the
# build's container running (it runs on after the kill).
IN_WAITS = [
    pytest.param("suite:subsystem:in-test", "approve", None, id="suite:subsystem:in-test"),
    pytest.param("suite:final:in-test", "approve", None, id="suite:final:in-test"),
    pytest.param("track:between-heads", "silent", None, id="track:between-heads"),
    pytest.param("build:running", "approve", edit_runtime, id="build:running"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("point", "votes", "prepare"), IN_WAITS)
def test_release_killed_inside_a_long_wait_resumes_to_one_upgrade(
    tmp_path: Path,
    candidate_hash: str,
    point: str,
    votes: str,
    prepare: Callable[[Path], None] | None,
) -> None:
    release_with_kills(tmp_path, "e2e-waits", (point,), candidate_hash, votes, prepare)


def suite_processes(clone: Path) -> list[int]:
    """Pids of pytest processes running a suite of this clone."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"pytest" in command and any(str(clone).encode() in arg for arg in command):
            found.append(int(proc.name))
    return found


@pytest.mark.slow
def test_release_killed_from_outside_while_its_suite_runs_resumes(
    tmp_path: Path, candidate_hash: str
) -> None:
    """The release alone gets SIGKILL while the sub-system suite runs (its pytest is a child):
    the suite dies with it, and `release.resume` runs the suite again to one upgrade."""
    clone, production = make_clone(
        tmp_path, release="e2e-outside", first_deadline="2026-12-01T12:00:00+00:00"
    )
    log = clone / ".pipeline/releases/e2e-outside/suite-subsystem.log"
    release: subprocess.Popen[bytes] | None = None
    try:
        before = production_up(clone, production)
        release = subprocess.Popen(
            [*INVOKE, "release"],
            cwd=clone,
            env=user_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + RELEASE_TIMEOUT_S
        while not (log.exists() and b"test_" in log.read_bytes()):
            assert release.poll() is None, "the release ended before its sub-system suite"
            assert time.monotonic() < deadline, "the release never ran its sub-system suite"
            time.sleep(0.2)
        time.sleep(2.0)  # into the suite: tests have made state, some are on their way
        assert suite_processes(clone), "the suite is not running"
        release.kill()
        release.wait()
        time.sleep(1.0)
        assert suite_processes(clone) == [], "the suite outlived the release"
        resumed = invoke(clone, "release.resume")
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert "release e2e-outside complete" in resumed.stdout
        check_one_upgrade(clone, "e2e-outside", production, before, candidate_hash)
    finally:
        if release is not None and release.poll() is None:
            release.kill()
        stop_networks(clone)


def test_a_release_done_on_networks_since_reset_is_not_complete_until_rehearsed_again(
    tmp_path: Path, candidate_hash: str
) -> None:
    """Every stage journaled done is not enough: production must still run the artifact. After
    the networks are replaced, `invoke release` says so and how to rehearse; `net.reset`
    archives the environment's ledgers, and the release then runs again from the start."""
    clone, production = make_clone(
        tmp_path, release="e2e-again", first_deadline="2026-12-01T12:00:00+00:00"
    )
    try:
        first = invoke(clone, "release")
        assert first.returncode == 0, first.stdout + first.stderr
        assert "aye / 0 nay of" in first.stdout  # tracked; no attestations asked, none mentioned
        assert "members reproduced" not in first.stdout
        stop_networks(clone)  # the networks are thrown away behind the release's back
        shutil.rmtree(clone / ".pipeline/net")
        stale = invoke(clone, "release")
        assert stale.returncode == 1, stale.stdout + stale.stderr
        assert "complete" not in stale.stdout
        message = stale.stderr.strip().splitlines()[-1]
        assert message.startswith("error: release e2e-again: every stage is journaled done, but")
        assert "(spec_version 100), not the release's artifact" in message
        assert "`invoke net.reset --env e2e` (it archives" in message

        reset = invoke(clone, "net.reset", "--env", "e2e")
        assert reset.returncode == 0, reset.stdout + reset.stderr
        assert "archived release e2e-again: its ledger is now in " in reset.stdout
        assert not (clone / ".pipeline/releases/e2e-again").exists()
        again = invoke(clone, "release")
        assert again.returncode == 0, again.stdout + again.stderr
        assert "build: running" in again.stdout and "release e2e-again complete" in again.stdout
        with Chain(f"ws://127.0.0.1:{production}") as chain:
            assert chain.code_hash() == candidate_hash
    finally:
        stop_networks(clone)


def test_silent_council_takes_the_sudo_fallback_and_a_missed_deadline_shows(
    tmp_path: Path, candidate_hash: str
) -> None:
    clone, production = make_clone(
        tmp_path, release="e2e-silent", first_deadline="2026-11-01T12:00:00+00:00"
    )
    try:
        run = invoke(clone, "release", "--votes", "silent")
        assert run.returncode == 0, run.stdout + run.stderr
        report = json.loads((clone / ".pipeline/releases/e2e-silent/report.json").read_text())
        enact = next(s for s in report["stages"] if s["stage"] == "enact")
        assert enact["result"]["outcome"] == "fallback"
        assert enact["result"]["ayes"] == [] and enact["result"]["nays"] == []
        assert report["milestones"][0]["state"] == "late"
        assert [m["state"] for m in report["milestones"][1:]] == ["done"] * 4
        releases = clone / ".pipeline/releases"
        page = (releases / "e2e-silent/report.html").read_text()
        drawn = re.findall(r'<g class="milestone" data-state="([^"]+)"', page)
        assert drawn == ["late"] + ["done"] * 4
        assert 'Enactment: <span class="badge s-fallback">fallback</span>' in page
        assert '<a href="e2e-silent/report.html">' in (releases / "index.html").read_text()
        with Chain(f"ws://127.0.0.1:{production}") as chain:
            assert chain.code_hash() == candidate_hash
        status = invoke(clone, "release.status", "--json")
        assert status.returncode == 0
        assert all(s["state"] == "done" for s in json.loads(status.stdout)["stages"])
    finally:
        stop_networks(clone)


def test_production_node_restarted_during_tracking_is_reconnected_to(
    tmp_path: Path, candidate_hash: str
) -> None:
    """The release pauses between two heads while tracking the motion (its websockets open);
    production's node is stopped and started again meanwhile (its chain kept on disk). The
    release reconnects, sees the deadline pass with the council silent, and takes the
    fallback: one upgrade, one motion."""
    clone, production = make_clone(
        tmp_path, release="e2e-restart", first_deadline="2026-11-01T12:00:00+00:00"
    )
    pause = tmp_path / "paused"
    release: subprocess.Popen[str] | None = None
    try:
        up = invoke(clone, "net.up", "--env", "e2e", "-n", "production")
        assert up.returncode == 0, up.stdout + up.stderr
        before = chain_events(production)
        release = subprocess.Popen(
            [*INVOKE, "release", "--votes", "silent"],
            cwd=clone,
            env=user_env(**{PAUSE_ENV: "track:between-heads", PAUSE_FILE_ENV: str(pause)}),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + RELEASE_TIMEOUT_S
        while not pause.exists():
            assert release.poll() is None, "the release ended before tracking: " + "".join(
                release.communicate()
            )
            assert time.monotonic() < deadline, "the release never reached tracking"
            time.sleep(0.5)
        with Chain(f"ws://127.0.0.1:{production}") as chain:
            head_before_restart = chain.block_number()
        for step in ("net.down", "net.up"):
            run = invoke(clone, step, "--env", "e2e", "-n", "production")
            assert run.returncode == 0, run.stdout + run.stderr
        with Chain(f"ws://127.0.0.1:{production}") as chain:
            assert chain.block_number() == head_before_restart  # the same chain, restarted
        pause.unlink()
        out, err = release.communicate(timeout=RELEASE_TIMEOUT_S)
        assert release.returncode == 0, out + err
        assert "release e2e-restart complete" in out

        report = json.loads((clone / ".pipeline/releases/e2e-restart/report.json").read_text())
        enact = next(s for s in report["stages"] if s["stage"] == "enact")
        assert enact["result"]["outcome"] == "fallback"
        with Chain(f"ws://127.0.0.1:{production}") as chain:
            assert chain.code_hash() == candidate_hash
        gained = chain_events(production) - before
        assert gained[("System", "CodeUpdated")] == 1
        assert gained[("Council", "Proposed")] == 1
    finally:
        if release is not None and release.poll() is None:
            release.kill()
        stop_networks(clone)
