"""`invoke release` on networks of real nodes (the example node, spawned by zombienet): blocks
every 6 s whatever the pipeline does, GRANDPA finality lagging the best block, node processes
that die and come back. Run as a user runs it, in a clone, on free ports.

The node binary comes from `invoke node.build` (cached by content; about 16 minutes cold).
Each test is a group of its own (`--dist loadgroup`), so the two run side by side on two workers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from test_release_e2e import (
    INVOKE,
    chain_events,
    check_one_upgrade,
    make_clone,
    production_up,
    release_with_kills,
    stop_networks,
    user_env,
)

from pipeline import nodenet
from pipeline.chain import Chain
from pipeline.faults import PAUSE_ENV, PAUSE_FILE_ENV

pytestmark = [
    pytest.mark.nodes,
    pytest.mark.docker,
    pytest.mark.timeout(7200),  # a fresh machine builds the node first
    pytest.mark.usefixtures("node_binary_for_networks", "candidate_built"),  # in this order
]

NODES_TIMEOUT_S = 2400  # real blocks: every wait is real time
PRODUCTION = "nodes-production"


def finalized_state(port: int) -> tuple[str, str, int]:
    """What answers on production and what it runs at its finalized head: (system_name,
    :code hash, spec_version)."""
    with Chain(f"ws://127.0.0.1:{port}") as chain:
        head = str(chain.rpc("chain_getFinalizedHead"))
        return (
            str(chain.rpc("system_name")),
            chain.code_hash(head),
            int(chain.runtime_version(head)["specVersion"]),
        )


def every_effect_finalized(clone: Path, release: str) -> list[dict[str, object]]:
    """The release's submissions as its report lists them; each must say finalized."""
    report = json.loads((clone / f".pipeline/releases/{release}/report.json").read_text())
    return [s for s in report["submissions"] if s["outcome"] is not None]


def check_real_nodes(release: str, candidate: str) -> Callable[[Path, int], None]:
    def check(clone: Path, production: int) -> None:
        name, code, spec = finalized_state(production)
        assert name == "example-node"  # not chopsticks
        assert (code, spec) == (candidate, 101)
        landed = every_effect_finalized(clone, release)
        assert landed and all(s["finalized"] for s in landed if s["outcome"]), landed
        report = (clone / f".pipeline/releases/{release}/report.md").read_text()
        assert " finalized |" in report

    return check


@pytest.fixture
def candidate_hash() -> str:
    from fixtures.runtimes import candidate_build

    return candidate_build().compressed.blake2_256


@pytest.mark.xdist_group("nodes-a")
def test_release_on_real_nodes_survives_kills_and_lands_finalized(
    tmp_path: Path, candidate_hash: str
) -> None:
    """The whole release on real nodes, killed at a stage boundary and on both sides of a
    submission, resumed: production runs the candidate at its finalized head, upgraded once,
    and every effect in the report is finalized."""
    kill_at = (
        "after:deploy-reckless",
        "submit:propose:after-broadcast",
        "submit:apply-upgrade:after-intent",
    )
    release = "nodes-e2e"
    release_with_kills(
        tmp_path,
        release,
        kill_at,
        candidate_hash,
        environment_of="local-nodes",
        also=check_real_nodes(release, candidate_hash),
    )


def restart_node(folder: Path, name: str, down_for: float = 0.0) -> int:
    """SIGKILL one node of a network and, `down_for` seconds later, start it again with the
    same command line (same base path: its database and keystore); returns the new pid."""
    pid = nodenet.node_pids(folder)[name]
    argv = (Path(f"/proc/{pid}/cmdline").read_bytes()).split(b"\0")[:-1]
    cwd = os.readlink(f"/proc/{pid}/cwd")
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(down_for)
    log = open(folder / "nodes" / f"{name}.restarted.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [a.decode() for a in argv],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return proc.pid


@pytest.mark.xdist_group("nodes-a")
def test_a_command_run_while_the_rpc_node_restarts_waits_for_it(tmp_path: Path) -> None:
    """A node network whose engine runs but whose RPC node is down (restarting): a command that
    needs the network waits for the node, bounded and saying so, instead of failing at once on a
    refused connection. A release resumed right after that node's restart meets this."""
    clone, production = make_clone(
        tmp_path,
        release="nodes-wait",
        first_deadline="2026-12-01T12:00:00+00:00",
        environment_of="local-nodes",
    )
    endpoint = f"http://127.0.0.1:{production}"
    try:
        production_up(clone, production)
        restart = threading.Thread(
            target=restart_node,
            args=(clone / ".pipeline/net" / PRODUCTION, "alice"),
            kwargs={"down_for": 15.0},
        )
        restart.start()
        deadline = time.monotonic() + 30
        while nodenet.producing(endpoint) is not None:
            assert time.monotonic() < deadline, "alice was not killed"
            time.sleep(0.1)
        up = subprocess.run(
            [*INVOKE, "net.up", "--env", "e2e", "-n", "production"],
            cwd=clone,
            env=user_env(PIPELINE_HEARTBEAT_S="2"),
            capture_output=True,
            text=True,
            timeout=600,
        )
        restart.join(timeout=60)
        assert up.returncode == 0, up.stdout + up.stderr
        assert nodenet.producing(endpoint) is not None  # it returned once alice answered
        assert "nodes-production's RPC node" in up.stdout + up.stderr, up.stdout + up.stderr
    finally:
        stop_networks(clone)


@pytest.mark.xdist_group("nodes-b")
def test_validator_killed_while_tracking_and_rpc_node_restarted_mid_submission(
    tmp_path: Path, candidate_hash: str
) -> None:
    """Two faults of a real network in one release: alice (the node the pipeline talks to) is
    killed and restarted between the proposal's broadcast and its inclusion, and bob (the
    other production validator) is killed with SIGKILL while the release tracks a silent
    council through its voting window in real blocks, and restarted 20 s later (finality
    stalls meanwhile: two authorities need both). The release, resumed where it has to be,
    takes the sudo fallback at the deadline: exactly one motion and one upgrade."""
    release = "nodes-faults"
    clone, production = make_clone(
        tmp_path,
        release=release,
        first_deadline="2026-12-01T12:00:00+00:00",
        environment_of="local-nodes",
    )
    folder = clone / ".pipeline/net" / PRODUCTION
    ledger = clone / f".pipeline/releases/{release}/ledger.jsonl"
    pause = tmp_path / "paused"
    try:
        before = production_up(clone, production)

        def kill_rpc_node_once_proposal_is_sent() -> None:
            deadline = time.monotonic() + NODES_TIMEOUT_S
            while time.monotonic() < deadline:
                if proposal_sent(ledger):
                    restart_node(folder, "alice")
                    return
                time.sleep(0.05)

        killer = threading.Thread(target=kill_rpc_node_once_proposal_is_sent, daemon=True)
        killer.start()
        restarted_bob = False
        outputs = []
        # A broadcast cut off by alice's restart ends that run (the extrinsic's fate unknown):
        # the next run resumes, looking for the proposal on chain instead of sending it again.
        for _ in range(3):
            run = subprocess.Popen(
                [*INVOKE, "release", "--votes", "silent"],
                cwd=clone,
                env=user_env(**{PAUSE_ENV: "track:between-heads", PAUSE_FILE_ENV: str(pause)}),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            deadline = time.monotonic() + NODES_TIMEOUT_S
            while run.poll() is None and time.monotonic() < deadline:
                if pause.exists() and not restarted_bob:
                    # blocks go on in alice's slots; finality waits for bob
                    restart_node(folder, "bob", down_for=20.0)
                    restarted_bob = True
                    pause.unlink()
                time.sleep(0.2)
            outputs.append(run.communicate(timeout=60)[0])
            if run.returncode == 0:
                break
            assert "check on chain" in outputs[-1], outputs[-1][-3000:]
        output = "\n".join(outputs)
        killer.join(timeout=5)
        assert run.returncode == 0, output[-3000:]
        assert restarted_bob, output[-3000:]
        check_one_upgrade(
            clone, release, production, before, candidate_hash, "silent", real_time=True
        )
        check_real_nodes(release, candidate_hash)(clone, production)
        assert (
            chain_events(production)[("Council", "Proposed")] == before[("Council", "Proposed")] + 1
        )
    finally:
        stop_networks(clone)


def proposal_sent(ledger: Path) -> bool:
    """The ledger says the proposal left this machine and has no result yet."""
    if not ledger.is_file():
        return False
    records = [json.loads(line) for line in ledger.read_text().splitlines() if line.strip()]
    proposals = {r["id"] for r in records if r["type"] == "intent" and r["stage"] == "propose"}
    sent = {r["intent"] for r in records if r["type"] == "submitted"} & proposals
    return bool(sent - {r["intent"] for r in records if r["type"] == "result"})
