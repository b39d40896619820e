"""Networks of real nodes on this machine: the example node's processes, spawned by zombienet.

Zombienet (npm `@zombienet/cli`, native provider) is the ecosystem's engine for networks of
nodes, and the network file written here runs unchanged on its kubernetes provider for teams
with a cluster. One network is one zombienet process in its own session (it outlives the
`invoke` that started it) with its nodes as children: stopping it ends the process group.

The chain spec handed to zombienet is always raw and made by the pipeline (a built runtime's
genesis preset, or a fork-off of another network's finalized state), so zombienet changes
nothing in the chain: it writes each validator's keystore (`alice` gets //Alice's Aura and
GRANDPA keys, which the presets name as authorities), starts the nodes with bootnodes to each
other and checks they run. The first validator's RPC port is the network's endpoint; the other
nodes take free ports.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import requests

from pipeline import devrpc, executor, gitops
from pipeline.cache import mark_used
from pipeline.errors import PipelineError
from pipeline.project import Project, cache_dir

ZOMBIENET_CLI: Final = Path("node_modules") / "@zombienet" / "cli" / "dist" / "cli.js"
NETWORK_FILE: Final = "zombienet.toml"
NODES_DIR: Final = "nodes"  # zombienet's own files: node base paths, keystores, node logs
# Every node: ParityDb (the node is built without RocksDB) and the pool's progress in its log.
# zombienet adds the rest: --no-mdns, bootnodes, p2p on 127.0.0.1, RPC on loopback, keys.
NODE_ARGS: Final = ("--database=paritydb", "-lsync=warn,txpool=info")
SPAWN_TIMEOUT_S: Final = 300  # zombienet's own bound on starting every node
NODE_SOURCES: Final = "examples/node"  # the example node's cargo workspace
BINARY: Final = "example-node"
BUILD_RECORD: Final = "build.json"  # written beside each built binary, with its source tree
NODE_BINARY_ENV: Final = "PIPELINE_NODE_BINARY"  # a node binary of the user's own, for networks


@dataclass(frozen=True)
class NodeHeads:
    """Where a network of real nodes stands: best and finalized blocks, who answers."""

    best: int
    finalized: int
    system_name: str
    peers: int


def zombienet_cli() -> Path:
    """The zombienet CLI the lockfile pins (run with the pipeline's Node)."""
    cli = executor.JS_ROOT / ZOMBIENET_CLI
    if not cli.is_file():
        raise PipelineError(f"zombienet is not installed ({cli}): {executor.install_hint()}")
    return cli


def _toml_value(value: object) -> str:
    return json.dumps(value)  # strings, numbers, booleans and lists of them: TOML's syntax too


def network_file(*, spec: Path, binary: Path, validators: Sequence[str], rpc_port: int) -> str:
    """zombienet's network definition: the raw `spec`, one validator per dev name, the first
    one listening for RPC on `rpc_port`. Pure."""
    lines = [
        "# Written by the pipeline for zombienet's native provider; the spec is raw, so",
        "# zombienet only starts the nodes and writes their keystores.",
        "[settings]",
        'provider = "native"',
        f"timeout = {SPAWN_TIMEOUT_S}",
        "",
        "[relaychain]",
        f"default_command = {_toml_value(str(binary))}",
        f"chain_spec_path = {_toml_value(str(spec))}",
        f"default_args = {_toml_value(list(NODE_ARGS))}",
    ]
    for index, name in enumerate(validators):
        lines += ["", "[[relaychain.nodes]]", f"name = {_toml_value(name)}", "validator = true"]
        if index == 0:
            lines.append(f"rpc_port = {rpc_port}")
    return "\n".join(lines) + "\n"


def spawn_command(folder: Path) -> list[str]:
    """The command that starts the network described in `folder` (in the foreground)."""
    return [
        str(executor.node_binary()),
        str(zombienet_cli()),
        "spawn",
        "--provider=native",
        "--logType=text",
        "--force",
        f"--dir={folder / NODES_DIR}",
        str(folder / NETWORK_FILE),
    ]


def prepare(
    folder: Path, *, spec: Path, binary: Path, validators: Sequence[str], rpc_port: int
) -> None:
    """Write the network file; remove the nodes of an earlier start (a network of real nodes
    starts over from its spec each time it is brought up)."""
    shutil.rmtree(folder / NODES_DIR, ignore_errors=True)
    (folder / NETWORK_FILE).write_text(
        network_file(spec=spec, binary=binary, validators=validators, rpc_port=rpc_port)
    )


def heads(endpoint: str, timeout: float = 2.0) -> NodeHeads:
    """Best and finalized block numbers of the node at `endpoint` (HTTP JSON-RPC)."""
    best = int(devrpc.rpc(endpoint, "chain_getHeader", timeout=timeout)["number"], 16)
    finalized_hash = devrpc.rpc(endpoint, "chain_getFinalizedHead", timeout=timeout)
    finalized = devrpc.rpc(endpoint, "chain_getHeader", [finalized_hash], timeout=timeout)
    health: Mapping[str, Any] = devrpc.rpc(endpoint, "system_health", timeout=timeout)
    return NodeHeads(
        best=best,
        finalized=int(finalized["number"], 16),
        system_name=str(devrpc.rpc(endpoint, "system_name", timeout=timeout)),
        peers=int(health.get("peers", 0)),
    )


def producing(endpoint: str) -> NodeHeads | None:
    """The node's heads once it answers and has authored past genesis, else None."""
    try:
        found = heads(endpoint)
    except (requests.RequestException, PipelineError, ValueError, KeyError, TypeError):
        return None
    return found if found.best >= 1 else None


def node_pids(folder: Path) -> dict[str, int]:
    """The running node processes of the network in `folder`, by node name: those whose
    `--base-path` lies under the network's directory (read from /proc)."""
    base = (folder / NODES_DIR).resolve()
    found: dict[str, int] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = [
                a.decode(errors="replace") for a in (proc / "cmdline").read_bytes().split(b"\0")
            ]
        except OSError:
            continue
        name, base_path = _flag(args, "--name"), _flag(args, "--base-path")
        if name is not None and base_path is not None and Path(base_path).is_relative_to(base):
            found[name] = int(proc.name)
    return found


def stop_nodes(folder: Path, timeout: float) -> None:
    """End every node process of the network in `folder`: SIGTERM, then SIGKILL after
    `timeout`; returns once none is left (their ports are free again)."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        pids = node_pids(folder)
        for pid in pids.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while node_pids(folder) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not node_pids(folder):
            return
    raise PipelineError(
        f"nodes {sorted(node_pids(folder).values())} of {folder.name} do not stop: kill them"
    )


def _flag(args: Sequence[str], flag: str) -> str | None:
    """The value of `flag` in an argv (`--flag value` or `--flag=value`)."""
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def wait_producing(
    endpoint: str, alive: Callable[[], None], what: str, timeout: float
) -> NodeHeads:
    """Wait until the network's first node answers and has made a block; `alive()` raises (with
    the engine's reason) when the spawning process died."""
    deadline = time.monotonic() + timeout
    while True:
        alive()
        found = producing(endpoint)
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            raise PipelineError(
                f"{what}: no block on {endpoint} within {timeout:.0f}s: the machine may be "
                "overloaded; try again"
            )
        time.sleep(1.0)


def node_env() -> dict[str, str]:
    """zombienet's environment: the pipeline's Node first on PATH (zombienet runs `node` for
    helpers), no colours in the log."""
    env = executor.node_env("info")
    env["PATH"] = f"{executor.node_binary().parent}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    return env


class NodeBinaryMissing(PipelineError):
    """No node binary for networks of real nodes yet: one has to be built (or named)."""


def built_nodes() -> Path:
    """Where built node binaries are kept, one folder per build key."""
    return cache_dir() / "nodes"


def node_tree(repo: Any, commit: str) -> str | None:
    """The git tree id of the node's own sources (examples/node) at `commit`."""
    try:
        return str((repo.commit(commit).tree / NODE_SOURCES).hexsha)
    except KeyError:
        return None


def find_binary(project: Project) -> Path:
    """The node binary that runs networks of real nodes, without building one.

    `PIPELINE_NODE_BINARY` names one (a team's own node); otherwise the example node. A node
    binary runs any runtime from its chain spec, so a runtime change needs no new node: the
    newest built binary of HEAD's node sources serves."""
    named = os.environ.get(NODE_BINARY_ENV)
    if named:
        path = Path(named)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise PipelineError(f"{NODE_BINARY_ENV}={named} is not an executable file: fix it")
        return path
    repo = gitops.open_repo(project.root)
    wanted = node_tree(repo, repo.head.commit.hexsha)
    if wanted is None:
        raise PipelineError(
            f"no {NODE_SOURCES} in this repository: networks of real nodes need a node binary;"
            f" set {NODE_BINARY_ENV} to your chain's node"
        )
    builds = []
    for record_path in built_nodes().glob(f"*/{BUILD_RECORD}"):
        record = json.loads(record_path.read_text())
        binary = record_path.parent / BINARY
        if record.get("node_tree") == wanted and binary.is_file():
            builds.append((record_path.stat().st_mtime, binary))
    if not builds:
        raise NodeBinaryMissing(
            f"no {BINARY} built from this commit's {NODE_SOURCES}: run `invoke node.build`"
            f" (about 16 minutes cold) or set {NODE_BINARY_ENV} to a node of your chain"
        )
    binary = max(builds)[1]
    mark_used(binary.parent)  # the record's mtime says which build is newest: it stays
    return binary
