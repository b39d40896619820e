"""Local networks running the real runtime, on 127.0.0.1 only: chopsticks, or real nodes.

Each network is one process with its state in `<state_dir>/net/<name>/`: config, log, pid file
and, for a persistent one, its sqlite db and the raw chain spec it was born from. A chopsticks
network is pipeline/js/localnet.mjs (built from chopsticks' own pieces; it says why it is not
the chopsticks CLI); a network of real nodes is a zombienet process and its node processes
(pipeline/nodenet.py), started from a raw spec the pipeline makes (a preset's genesis, or a
fork-off of another network's finalized state). Processes run in their own session so they
outlive the `invoke` that started them; `down` stops them by pid with their process group.

The three local networks (environments/local.toml; local-nodes.toml runs them on real nodes):
- production: from the raw spec of the released runtime; its state survives down/up (db +
  resume); on its first start it is seeded through real signed extrinsics.
- staging-lts: a fork of local production at its head, made fresh on every up.
- staging-reckless: a fresh chain from production's genesis (same spec, no db).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import requests
from substrateinterface import Keypair

from pipeline import chainstate, config, devrpc, executor, metadata, nodenet, store
from pipeline.chain import CODE_KEY, Call, Chain, blake2_256_hex, is_local_endpoint
from pipeline.config import Environment
from pipeline.errors import PipelineError
from pipeline.keys import DEV_ACCOUNTS, local_dev_keypair
from pipeline.progress import until, waiting
from pipeline.project import DEFAULT_PRESET, Project, write_atomic

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
PRODUCTION, LTS, RECKLESS = "production", "staging-lts", "staging-reckless"
DEFAULT_PORTS = {PRODUCTION: 9944, LTS: 9945, RECKLESS: 9946}
READY_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 15.0

SPEC_FILE = "spec.json"
DB_FILE = "chain.sqlite"
SEEDED_MARK = "seeded"
SPEC_PRESET_FILE = "spec.preset"  # the genesis preset spec.json was made from
CONFIG_FILE = "chopsticks.json"
PID_FILE = "network.pid"
LOG_FILE = "network.log"


@dataclass(frozen=True)
class LocalNet:
    """How to run one local network. Plain data, so an environment config can describe it."""

    name: str
    port: int
    spec_owner: str | None = None  # chopsticks-genesis: the network whose dir holds the raw spec
    fork_endpoint: str | None = None  # chopsticks-fork: the chain to fork at its head
    depends_on: str | None = None  # a local network that must be up first (the fork's upstream)
    persistent: bool = False  # keep the chain in a db across down/up
    seeded: bool = False  # on first start, fill with realistic state via signed extrinsics
    validators: tuple[str, ...] = ()  # real nodes (by dev name) when set; chopsticks when empty
    preset: str = DEFAULT_PRESET  # the genesis preset of the spec a genesis network starts from

    @property
    def nodes(self) -> bool:
        """A network of real node processes (zombienet), not chopsticks."""
        return bool(self.validators)

    @property
    def kind(self) -> str:
        engine = "nodes" if self.nodes else "chopsticks"
        return f"{engine}-fork" if self.fork_endpoint else f"{engine}-genesis"

    @property
    def endpoint(self) -> str:
        return f"ws://{HOST}:{self.port}"


@dataclass(frozen=True)
class NetStatus:
    name: str
    endpoint: str
    pid: int | None
    alive: bool
    block: int | None = None
    spec_name: str | None = None
    spec_version: int | None = None
    note: str = ""  # why a live process gave no answer, or that it is stopped/dead
    finalized: int | None = None  # the finalized head (real nodes; chopsticks finalizes all)
    node: str | None = None  # what answers: `system_name` of a real node

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_networks(ports: Mapping[str, int] | None = None) -> dict[str, LocalNet]:
    """production; staging-lts, a fork of it; staging-reckless, from production's genesis."""
    port = {**DEFAULT_PORTS, **(ports or {})}
    production = LocalNet(
        PRODUCTION, port[PRODUCTION], spec_owner=PRODUCTION, persistent=True, seeded=True
    )
    return {
        PRODUCTION: production,
        LTS: LocalNet(LTS, port[LTS], fork_endpoint=production.endpoint, depends_on=PRODUCTION),
        RECKLESS: LocalNet(RECKLESS, port[RECKLESS], spec_owner=PRODUCTION),
    }


def networks_for(env: Environment, preset: str) -> dict[str, LocalNet]:
    """The local networks of an environment, by name (plain endpoints are not ours to run);
    genesis networks start from the runtime's genesis `preset` (the repo's, in pipeline.toml),
    or a node network's own.

    Production (and any `chopsticks-db` network) keeps its chain across restarts; in a local
    environment production is also seeded. Other genesis networks start from production's spec
    when production is a chopsticks genesis network too.
    """
    production = env.networks["production"]
    spec_source = production.name if production.chopsticks else None
    nets: dict[str, LocalNet] = {}
    for role, network in env.networks.items():
        if not network.local_process or network.port is None:
            continue
        validators, own_preset = network.validators, network.preset or preset
        if network.kind in config.FORK_KINDS:
            upstream = config.network(env, network.fork_of or "")
            nets[network.name] = LocalNet(
                network.name,
                network.port,
                fork_endpoint=upstream.endpoint,
                depends_on=upstream.name if upstream.local_process else None,
                validators=validators,
                preset=own_preset,
            )
            continue
        if validators:  # real nodes: a chain of its own, from its own preset's spec
            nets[network.name] = LocalNet(
                network.name,
                network.port,
                spec_owner=network.name,
                seeded=role == "production" and env.local,
                validators=validators,
                preset=own_preset,
            )
            continue
        persistent = role == "production" or network.kind == "chopsticks-db"
        nets[network.name] = LocalNet(
            network.name,
            network.port,
            spec_owner=spec_source or network.name,
            persistent=persistent,
            seeded=persistent and role == "production" and env.local,
            preset=preset,
        )
    return nets


def released_wasm(project: Project) -> Path:
    """The runtime 'in production': the newest committed release of the runtime."""
    return store.blob_in(store.released_folder(project))


def net_dir(project: Project, name: str) -> Path:
    return project.state_dir / "net" / name


# --- pure decisions ---------------------------------------------------------------------------
def start_order(nets: Mapping[str, LocalNet], names: Iterable[str]) -> list[str]:
    """Requested networks plus what they depend on, dependencies first, each once."""
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name not in nets:
            raise PipelineError(f"no local network {name!r}: choose from {', '.join(nets)}")
        if name in path:
            raise PipelineError(
                f"local networks depend on each other in a cycle: {' -> '.join((*path, name))}"
            )
        dependency = nets[name].depends_on
        if dependency:
            visit(dependency, (*path, name))
        if name not in order:
            order.append(name)

    for name in names:
        visit(name, ())
    return order


def start_waves(nets: Mapping[str, LocalNet], names: Iterable[str]) -> list[list[str]]:
    """start_order cut into waves that may start together: each network after what it forks."""
    waves: list[list[str]] = []
    wave_of: dict[str, int] = {}
    for name in start_order(nets, names):
        dependency = nets[name].depends_on
        wave = wave_of[dependency] + 1 if dependency in wave_of else 0
        wave_of[name] = wave
        if wave == len(waves):
            waves.append([])
        waves[wave].append(name)
    return waves


def stop_order(nets: Mapping[str, LocalNet], names: Iterable[str]) -> list[str]:
    """Requested networks plus those that fork them, dependents first, each once."""
    wanted: list[str] = []
    pending = list(names)
    while pending:
        name = pending.pop(0)
        if name not in nets:
            raise PipelineError(f"no local network {name!r}: choose from {', '.join(nets)}")
        if name not in wanted:
            wanted.append(name)
            pending.extend(n for n, net in nets.items() if net.depends_on == name)
    return [n for n in reversed(start_order(nets, wanted)) if n in wanted]


def chopsticks_config(
    net: LocalNet, *, spec: Path | None, db: Path | None, resume: bool
) -> dict[str, Any]:
    """The config file pipeline/js/localnet.mjs serves a network from (chopsticks' option names)."""
    config: dict[str, Any] = {
        "host": HOST,
        "port": net.port,
        "build-block-mode": "Instant",
        "runtime-log-level": 0,
    }
    if net.fork_endpoint:
        config["endpoint"] = net.fork_endpoint
    else:
        if spec is None:
            raise PipelineError(f"{net.name}: a genesis network needs a chain spec")
        config["genesis"] = str(spec)
    if db is not None:
        config["db"] = str(db)
        if resume:
            config["resume"] = True
    return config


def listening_inodes(proc_net_tcp: str, port: int) -> set[int]:
    """Socket inodes listening on `port`, from the text of /proc/net/tcp or /proc/net/tcp6."""
    inodes: set[int] = set()
    for line in proc_net_tcp.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != "0A":  # 0A = TCP_LISTEN
            continue
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        if local_port == port:
            inodes.add(int(fields[9]))
    return inodes


def describe_process(pid: int, cmdline: bytes) -> str:
    """`pid 42 (node localnet.mjs --config …)`, the command shortened to fit one line."""
    args = [part.decode(errors="replace") for part in cmdline.split(b"\0") if part]
    shown = " ".join([os.path.basename(args[0]), *args[1:]] if args else ["?"])
    return f"pid {pid} ({shown[:120]}{'…' if len(shown) > 120 else ''})"


def last_log_line(text: str) -> str:
    """The last line worth showing from a chopsticks log (errors beat the rest)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower() or "ERR" in line]
    chosen = errors[-1] if errors else (lines[-1] if lines else "(empty log)")
    return chosen[:300]


# --- ports and processes ----------------------------------------------------------------------
def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as node's server does
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


def free_ports(n: int, low: int = 20000, high: int = 32000) -> list[int]:
    """`n` distinct ports free right now, for networks beside a developer's 9944-9946 (tests,
    benches). Drawn below the kernel's ephemeral range, where outgoing connections would
    otherwise take a port between choosing it and listening on it."""
    candidates = random.sample(range(low, high), k=min(high - low, 64 * n))
    ports = [port for port in candidates if not port_in_use(port)][:n]
    if len(ports) < n:
        raise PipelineError(f"fewer than {n} free ports in {low}-{high}: stop some servers")
    return ports


def port_owner(port: int) -> str | None:
    """Who listens on the port, e.g. `pid 42 (node …)`; None when it cannot be told."""
    inodes: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            inodes |= listening_inodes(Path(table).read_text(), port)
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in wanted:
                        return describe_process(int(proc.name), (proc / "cmdline").read_bytes())
    return "a process this user cannot inspect"


def pid_running(pid: int) -> bool:
    """Some thread of the process still runs. Its main thread turns zombie before node's worker
    threads end, and until they do the process still holds its files and its port."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own dead child
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return False
    for task in tasks:
        with contextlib.suppress(OSError, IndexError):
            if (task / "stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
                return True
    return False


def process_alive(pid: int) -> bool:
    """A running local network with that pid (not some later process that reused the pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    engines = (executor.LOCALNET_SCRIPT.name.encode(), str(nodenet.ZOMBIENET_CLI).encode())
    return pid_running(pid) and any(engine in cmdline for engine in engines)


def read_pid(folder: Path) -> int | None:
    try:
        return int((folder / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def configured_port(folder: Path) -> int | None:
    try:
        return int(json.loads((folder / CONFIG_FILE).read_text())["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


# --- JSON-RPC over HTTP (chopsticks serves HTTP and ws on one port) ------------------------------


# --- chain specs ------------------------------------------------------------------------------
def code_hash_of_spec(spec_path: Path) -> str:
    """blake2-256 of the runtime a raw spec starts with."""
    top = json.loads(spec_path.read_text())["genesis"]["raw"]["top"]
    return blake2_256_hex(bytes.fromhex(top[CODE_KEY].removeprefix("0x")))


def write_spec(wasm: Path, out: Path, preset: str = DEFAULT_PRESET) -> Path:
    """Build the raw chain spec of `wasm` (no node binary needed) and write it to `out`."""
    write_atomic(out, json.dumps(executor.genesis_spec(wasm, preset), indent=1).encode())
    return out


def _has_state(folder: Path) -> bool:
    return (folder / DB_FILE).exists() or (folder / SEEDED_MARK).exists()


def ensure_spec(project: Project, owner: LocalNet, wasm: Path | None) -> Path:
    """The raw spec in the owner's dir, built from `wasm` (default: the released runtime) unless
    it is already there.

    A chain with state keeps reading untouched keys from the spec it was born from, so that spec
    is never swapped under it.
    """
    folder = net_dir(project, owner.name)
    spec = folder / SPEC_FILE
    made_with = folder / SPEC_PRESET_FILE
    have_preset = made_with.read_text().strip() if made_with.is_file() else None
    if spec.is_file() and have_preset not in (None, owner.preset):
        if _has_state(folder):
            raise PipelineError(
                f"{owner.name} was started from genesis preset {have_preset!r}, not"
                f" {owner.preset!r}: run `invoke net.reset` to start over from it"
            )
        spec.unlink()  # never started with state: made again from the preset asked for
    if spec.is_file() and wasm is None:
        return spec
    runtime = wasm or released_wasm(project)
    if not runtime.is_file():
        raise PipelineError(f"no runtime wasm at {runtime}: build it or pass --wasm")
    if spec.is_file():
        have, wanted = code_hash_of_spec(spec), blake2_256_hex(runtime.read_bytes())
        if have == wanted:
            return spec
        if _has_state(folder):
            raise PipelineError(
                f"{owner.name} was started from runtime {have}, not {runtime} ({wanted}): "
                "run `invoke net.reset` to start over from it"
            )
    log.info("building the %s chain spec from %s (preset %s)", owner.name, runtime, owner.preset)
    write_spec(runtime, spec, owner.preset)
    made_with.write_text(f"{owner.preset}\n")
    return spec


# --- starting and stopping ----------------------------------------------------------------------
def _running_pid(project: Project, name: str) -> int | None:
    pid = read_pid(net_dir(project, name))
    return pid if pid is not None and process_alive(pid) else None


def require_running(project: Project, net: LocalNet) -> str:
    """The endpoint of a network that is up; a clear error when its process is gone."""
    folder = net_dir(project, net.name)
    pid = read_pid(folder)
    if pid is None:
        raise PipelineError(f"{net.name} is not running: start it with `invoke net.up {net.name}`")
    if not process_alive(pid):
        raise PipelineError(
            f"{net.name} is dead (pid {pid} is gone; log: {folder / LOG_FILE}): "
            f"restart it with `invoke net.up {net.name}`"
        )
    port = configured_port(folder) or net.port
    return f"ws://{HOST}:{port}"


def _check_port_free(net: LocalNet) -> None:
    if port_in_use(net.port):
        owner = port_owner(net.port) or "another process"
        raise PipelineError(
            f"port {net.port} for {net.name} is in use by {owner}: "
            f"stop it or give {net.name} another port"
        )


def _wait_ready(
    net: LocalNet,
    proc: subprocess.Popen[bytes],
    log_path: Path,
    timeout: float,
    progress: Callable[[str], None],
) -> None:
    deadline = time.monotonic() + timeout
    what = f"{net.name} to answer on {net.endpoint} (chopsticks starting, pid {proc.pid})"
    with waiting(progress, what, until(timeout)):
        while True:
            _check_running(net, proc, log_path, "chopsticks", "answering")
            try:
                devrpc.rpc(net.endpoint, "chain_getHeader", timeout=2.0)
                return
            except (requests.RequestException, PipelineError, ValueError):
                pass
            if time.monotonic() >= deadline:
                _terminate(proc.pid)
                raise PipelineError(
                    f"{net.name}: chopsticks did not answer on {net.endpoint} within "
                    f"{timeout:.0f}s (log: {log_path}): the machine may be overloaded; "
                    f"try `invoke net.up {net.name}` again"
                )
            time.sleep(0.25)


def _launch(
    net: LocalNet, folder: Path, command: list[str], env: Mapping[str, str]
) -> subprocess.Popen[bytes]:
    """Start a network's process in its folder, in a session of its own (it outlives `invoke
    net.up`; `stop` ends it by pid with its group), appending to the network's log (kept across
    restarts: production's history) and recording its pid."""
    with (folder / LOG_FILE).open("ab") as log_file:
        log_file.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {net.name}\n".encode())
        log_file.flush()
        proc = subprocess.Popen(
            command,
            cwd=folder,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (folder / PID_FILE).write_text(f"{proc.pid}\n")
    return proc


def _check_running(
    net: LocalNet, proc: subprocess.Popen[bytes], log_path: Path, engine: str, before: str
) -> None:
    """Raise with the log's telling line when the network's process exited while starting."""
    code = proc.poll()
    if code is not None:
        this_start = log_path.read_text(errors="replace").rsplit("\n--- ", 1)[-1]
        raise PipelineError(
            f"{net.name}: {engine} exited with code {code} before {before}: "
            f"{last_log_line(this_start)} (log: {log_path})"
        )


def _spawn(
    project: Project,
    net: LocalNet,
    config: dict[str, Any],
    timeout: float,
    progress: Callable[[str], None],
) -> None:
    folder = net_dir(project, net.name)
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / CONFIG_FILE
    config_path.write_text(json.dumps(config, indent=1))
    log_path = folder / LOG_FILE
    # chopsticks reads a .env from its cwd, the network's folder
    command = executor.localnet_command(config_path.resolve())
    proc = _launch(net, folder, command, executor.node_env("info"))
    try:
        _wait_ready(net, proc, log_path, timeout, progress)
    except PipelineError:
        (folder / PID_FILE).unlink(missing_ok=True)
        raise


def _fork_off_spec(net: LocalNet, folder: Path) -> Path:
    """A raw spec of the upstream chain's finalized state, with this network's validators."""
    assert net.fork_endpoint is not None
    with Chain(net.fork_endpoint) as upstream:
        forked = chainstate.fork_off(
            upstream, name=net.name, chain_id=f"{net.name}-fork", preset=net.preset
        )
    log.info(
        "%s: forked off %s at finalized block #%d (%d live keys, %d fresh)",
        net.name,
        net.fork_endpoint,
        forked.number,
        forked.live_keys,
        forked.fresh_keys,
    )
    write_atomic(folder / SPEC_FILE, json.dumps(forked.spec, indent=1).encode())
    return folder / SPEC_FILE


def _spawn_nodes(
    project: Project,
    net: LocalNet,
    spec: Path,
    timeout: float,
    progress: Callable[[str], None],
) -> None:
    """Start the network's nodes through zombienet and wait for their first block."""
    folder = net_dir(project, net.name)
    binary = nodenet.find_binary(project)
    nodenet.prepare(folder, spec=spec, binary=binary, validators=net.validators, rpc_port=net.port)
    log_path = folder / LOG_FILE
    proc = _launch(net, folder, nodenet.spawn_command(folder), nodenet.node_env())

    def alive() -> None:
        _check_running(net, proc, log_path, "zombienet", "the nodes made a block")

    what = f"{net.name}'s first block on {net.endpoint} (zombienet starting, pid {proc.pid})"
    try:
        with waiting(progress, what, until(timeout)):
            nodenet.wait_producing(net.endpoint, alive, net.name, timeout)
    except PipelineError:
        _terminate(proc.pid)
        (folder / PID_FILE).unlink(missing_ok=True)
        raise


def _wait_answering(
    net: LocalNet, pid: int, timeout: float, progress: Callable[[str], None]
) -> None:
    """A running node network whose RPC node does not answer is restarting it (a node killed
    and started again, a busy machine): wait for it, bounded, instead of failing at once."""

    def alive() -> None:
        if not process_alive(pid):
            raise PipelineError(
                f"{net.name}: zombienet (pid {pid}) stopped while its RPC node was down: "
                "`invoke net.up` starts the network again"
            )

    what = f"{net.name}'s RPC node on {net.endpoint} to answer again (zombienet pid {pid})"
    with waiting(progress, what, until(timeout)):
        nodenet.wait_producing(net.endpoint, alive, net.name, timeout)


def start(
    project: Project,
    nets: Mapping[str, LocalNet],
    name: str,
    wasm: Path | None = None,
    *,
    ready_timeout: float = READY_TIMEOUT_S,
    progress: Callable[[str], None] = log.info,
) -> NetStatus:
    """Start one network (its dependencies must be up); no-op when it already runs (a node
    network's RPC node waited for when it is restarting). A genesis network starts from its spec
    owner's spec, built from `wasm` (default: the released runtime) when missing. `progress`
    hears a start-up that outlasts a heartbeat."""
    net = nets[name]
    folder = net_dir(project, name)
    pid = _running_pid(project, name)
    if pid is not None:
        if net.nodes and nodenet.producing(net.endpoint) is None:
            _wait_answering(net, pid, ready_timeout, progress)
        return status_of(project, net)
    _check_port_free(net)
    if net.depends_on:
        require_running(project, nets[net.depends_on])
    if net.nodes:
        folder.mkdir(parents=True, exist_ok=True)
        spec_path = (
            ensure_spec(project, net, wasm)
            if net.fork_endpoint is None
            else _fork_off_spec(net, folder)
        )
        _spawn_nodes(project, net, spec_path, ready_timeout, progress)
        _seed_once(project, net)
        return status_of(project, net)
    spec = db = None
    if net.fork_endpoint is None:
        spec = ensure_spec(project, nets[net.spec_owner or name], wasm)
    db = folder / DB_FILE if net.persistent else None
    resume = db is not None and db.exists() and (not net.seeded or (folder / SEEDED_MARK).exists())
    if db is not None and not resume:  # a half-seeded chain is worth less than a fresh one
        for path in (db, *(db.with_name(db.name + suffix) for suffix in ("-wal", "-shm"))):
            path.unlink(missing_ok=True)
        (folder / SEEDED_MARK).unlink(missing_ok=True)
    settings = chopsticks_config(net, spec=spec, db=db, resume=resume)
    _spawn(project, net, settings, ready_timeout, progress)
    if not resume:
        _seed_once(project, net)
    return status_of(project, net)


def _seed_once(project: Project, net: LocalNet) -> None:
    """Seed a seeded network that just started from genesis; stop it if seeding fails."""
    if not net.seeded:
        return
    try:
        seed(net.endpoint)
    except PipelineError as exc:
        stop(project, net)
        raise PipelineError(
            f"{net.name}: seeding failed ({exc}); it was stopped: fix the cause, then"
            " `invoke net.reset` starts the local networks over"
        ) from exc
    (net_dir(project, net.name) / SEEDED_MARK).write_text(
        f"seeded at block {devrpc.rpc(net.endpoint, 'chain_getHeader')['number']}\n"
    )


def up(
    project: Project,
    nets: Mapping[str, LocalNet],
    names: Iterable[str],
    wasm: Path | None = None,
    progress: Callable[[str], None] = log.info,
) -> list[NetStatus]:
    """Start the networks (and what they fork): chain specs first, then each wave of networks
    side by side (node's start-up dominates, so two starting at once finish sooner)."""
    waves = start_waves(nets, names)
    for name in (n for wave in waves for n in wave):
        if nets[name].fork_endpoint is None and _running_pid(project, name) is None:
            ensure_spec(project, nets[nets[name].spec_owner or name], wasm)
    statuses: dict[str, NetStatus] = {}
    for wave in waves:
        with ThreadPoolExecutor(max_workers=len(wave)) as pool:
            start_one = functools.partial(start, project, nets, wasm=wasm, progress=progress)
            started = pool.map(start_one, wave)
            statuses.update(zip(wave, started, strict=True))
    return [statuses[name] for wave in waves for name in wave]


def _db_head(db: Path) -> str | None:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1.0)) as conn:
        row = conn.execute("SELECT hash FROM block ORDER BY number DESC LIMIT 1").fetchone()
    return None if row is None else str(row[0])


def _wait_saved(net: LocalNet, db: Path, timeout: float = 5.0) -> None:
    """Chopsticks writes a block to its db just after announcing it: let the head land first."""
    try:
        head = devrpc.rpc(net.endpoint, "chain_getBlockHash", timeout=2.0)
    except (requests.RequestException, PipelineError, ValueError):
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(sqlite3.Error):
            if _db_head(db) == head:
                return
        time.sleep(0.1)
    log.warning("%s: head %s not yet in %s when stopping", net.name, head, db)


def _terminate(pid: int, timeout: float = STOP_TIMEOUT_S) -> None:
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not pid_running(pid):  # its cmdline empties while it exits: wait for the end
                return
            time.sleep(0.1)
    raise PipelineError(f"chopsticks pid {pid} does not stop: kill it by hand (kill -9 {pid})")


def stop(project: Project, net: LocalNet) -> bool:
    """Stop one network; True if it was running."""
    folder = net_dir(project, net.name)
    pid = read_pid(folder)
    running = pid is not None and process_alive(pid)
    if running and pid is not None:
        if net.persistent:
            _wait_saved(net, folder / DB_FILE)
        _terminate(pid)
    if net.nodes:  # nodes restarted by hand are in no group of ours; none may keep the ports
        nodenet.stop_nodes(folder, STOP_TIMEOUT_S)
    (folder / PID_FILE).unlink(missing_ok=True)
    return running


def down(project: Project, nets: Mapping[str, LocalNet], names: Iterable[str]) -> list[str]:
    """Stop the networks and those forking them; returns the names that were running."""
    return [name for name in stop_order(nets, names) if stop(project, nets[name])]


def reset(project: Project, nets: Mapping[str, LocalNet]) -> None:
    """Stop every local network and delete their state, so the next up starts (and seeds) anew."""
    down(project, nets, list(nets))
    root = project.state_dir / "net"
    if root.is_dir():
        for folder in root.iterdir():  # also networks no longer in `nets`
            pid = read_pid(folder)
            if pid is not None and process_alive(pid):
                _terminate(pid)
        shutil.rmtree(root)


# --- status -------------------------------------------------------------------------------------
def status_of(project: Project, net: LocalNet) -> NetStatus:
    folder = net_dir(project, net.name)
    pid = read_pid(folder)
    port = configured_port(folder) or net.port
    endpoint = f"ws://{HOST}:{port}"
    if pid is None:
        return NetStatus(net.name, endpoint, None, False, note="stopped")
    if not process_alive(pid):
        return NetStatus(
            net.name, endpoint, pid, False, note=f"dead: pid gone (log: {folder / LOG_FILE})"
        )
    try:
        heads = nodenet.heads(endpoint)
        version = devrpc.rpc(endpoint, "state_getRuntimeVersion")
    except (requests.RequestException, PipelineError, ValueError, KeyError, TypeError) as exc:
        return NetStatus(net.name, endpoint, pid, True, note=f"not answering: {exc}")
    return NetStatus(
        net.name,
        endpoint,
        pid,
        True,
        heads.best,
        version["specName"],
        int(version["specVersion"]),
        finalized=heads.finalized,
        node=heads.system_name,
    )


def status(project: Project, nets: Mapping[str, LocalNet]) -> list[NetStatus]:
    return [status_of(project, net) for net in nets.values()]


# --- seeding --------------------------------------------------------------------------------
UNIT = 10**12


def seed(endpoint: str) -> None:
    """Give a fresh local chain the kind of state a mirror must carry, through real signed
    extrinsics: transfers among dev accounts and, when the runtime has the pallets (the example
    runtime does, another may not), notes from several accounts and a council motion proposed,
    voted and closed. Only accounts the genesis preset funded send (a template's `development`
    preset funds Alice and Bob, not Charlie)."""
    if not is_local_endpoint(endpoint):
        raise PipelineError(f"refusing to seed {endpoint}: only local networks are seeded")
    keys = {name: local_dev_keypair(endpoint, name) for name in DEV_ACCOUNTS}
    with Chain(endpoint) as chain:
        pallets = set(metadata.chain_metadata(chain).pallet_names())
        for sender, receiver, amount in (
            ("Alice", "Dave", 1_000),
            ("Bob", "Eve", 500),
            ("Charlie", "Ferdie", 250),
        ):
            if _free(chain, keys[sender]) < 2 * amount * UNIT:
                log.info("seeding: %s holds too little to send %d units: skipped", sender, amount)
                continue
            dest = keys[receiver].ss58_address
            chain.submit(
                Call("Balances", "transfer_keep_alive", {"dest": dest, "value": amount * UNIT}),
                keys[sender],
            )
        for name in ("Alice", "Bob", "Dave", "Eve") if "Notes" in pallets else ():
            if _free(chain, keys[name]) < UNIT:
                continue
            chain.submit(
                Call("Notes", "set_note", {"text": f"note from {name}, seeded at genesis + 1"}),
                keys[name],
            )
        if "Council" in pallets:
            _seed_motion(chain, keys)


def _free(chain: Chain, keypair: Keypair) -> int:
    """The account's free balance, in plancks (0 for an account that does not exist)."""
    account = chain.query("System", "Account", [keypair.ss58_address])
    return int(account["data"]["free"]) if isinstance(account, Mapping) else 0


def _seed_motion(chain: Chain, keys: Mapping[str, Keypair]) -> None:
    """A council motion proposed, voted by three dev councillors and closed."""
    remark = Call("System", "remark_with_event", {"remark": "seeded council motion"})
    length = len(chain.compose(remark).data.data)
    receipt = chain.submit(
        Call("Council", "propose", {"threshold": 2, "proposal": remark, "length_bound": length}),
        keys["Alice"],
    )
    proposed = receipt.find("Council", "Proposed")
    if not proposed:
        raise PipelineError(
            "Council.propose did not emit Council.Proposed: is Council a pallet_collective?"
        )
    index = proposed[0].attributes["proposal_index"]
    proposal_hash = proposed[0].attributes["proposal_hash"]
    for voter, approve in (("Alice", True), ("Bob", True), ("Charlie", False)):
        vote = {"proposal": proposal_hash, "index": index, "approve": approve}
        chain.submit(Call("Council", "vote", vote), keys[voter])
    close = {
        "proposal_hash": proposal_hash,
        "index": index,
        "proposal_weight_bound": {"ref_time": 10**10, "proof_size": 10**6},
        "length_bound": length,
    }
    chain.submit(Call("Council", "close", close), keys["Alice"])
