"""Local networks: pure decisions (table-driven) and real chopsticks processes (marked `chain`).

The chain tests run their own three networks in a temporary state dir on free ports, so a
developer's networks on 9944-9946 are left alone.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from invoke.context import Context
from invoke.exceptions import Exit

from pipeline import chainstate, config, devrpc, executor, keys, localnet, nodenet, wasm_exec
from pipeline.artifact import RuntimeBlob
from pipeline.chain import Call, Chain, blake2_256_hex
from pipeline.cli import deploy as deploy_cli
from pipeline.cli import inspect as inspect_cli
from pipeline.errors import PipelineError
from pipeline.project import DEFAULT_PRESET, Project, load_project
from pipeline.shorthash import short_hash

REPO = Path(__file__).resolve().parent.parent

# --- pure parts ---------------------------------------------------------------------------------
PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:26B0 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1
   1: 0100007F:26B0 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 4343 1
   2: 00000000:26B1 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4444 1
   3: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4545 1
"""
PROC_NET_TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:26B0 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5151 1
"""  # noqa: E501


@pytest.mark.parametrize(
    ("text", "port", "expected"),
    [
        (PROC_NET_TCP, 9904, {4242}),  # listening; the established connection (st 01) is not
        (PROC_NET_TCP, 9905, {4444}),  # 0.0.0.0 counts too
        (PROC_NET_TCP, 8080, {4545}),
        (PROC_NET_TCP, 9944, set()),
        (PROC_NET_TCP6, 9904, {5151}),
        ("  sl  local_address\n", 9904, set()),  # header only
    ],
)
def test_listening_inodes(text: str, port: int, expected: set[int]) -> None:
    assert localnet.listening_inodes(text, port) == expected


@pytest.mark.parametrize(
    ("cmdline", "expected"),
    [
        (b"/x/node_modules/.bin/node\0/x/localnet.mjs\0--config\0c.json\0",
         "pid 7 (node /x/localnet.mjs --config c.json)"),
        (b"python3\0-m\0http.server\0", "pid 7 (python3 -m http.server)"),
        (b"", "pid 7 (?)"),
        (b"x" * 200, "pid 7 (" + "x" * 120 + "…)"),
    ],
)  # fmt: skip
def test_describe_process(cmdline: bytes, expected: str) -> None:
    assert localnet.describe_process(7, cmdline) == expected


NETS = localnet.default_networks({"production": 1, "staging-lts": 2, "staging-reckless": 3})


@pytest.mark.parametrize(
    ("names", "start", "stop"),
    [
        (["staging-lts"], ["production", "staging-lts"], ["staging-lts"]),
        (["production"], ["production"], ["staging-lts", "production"]),
        (["staging-reckless"], ["staging-reckless"], ["staging-reckless"]),
        (
            ["staging-reckless", "staging-lts", "production"],
            ["staging-reckless", "production", "staging-lts"],
            ["staging-lts", "production", "staging-reckless"],
        ),
        ([], [], []),
    ],
)
def test_start_and_stop_order(names: list[str], start: list[str], stop: list[str]) -> None:
    assert localnet.start_order(NETS, names) == start
    assert sorted(localnet.stop_order(NETS, names)) == sorted(stop)
    # forks stop before what they fork
    order = localnet.stop_order(NETS, names)
    if "staging-lts" in order and "production" in order:
        assert order.index("staging-lts") < order.index("production")


@pytest.mark.parametrize(
    ("names", "waves"),
    [
        (
            ["staging-lts", "staging-reckless"],
            [["production", "staging-reckless"], ["staging-lts"]],
        ),
        (["staging-reckless"], [["staging-reckless"]]),
        (["production", "staging-lts"], [["production"], ["staging-lts"]]),
        ([], []),
    ],
)
def test_start_waves_start_forks_after_their_upstream(
    names: list[str], waves: list[list[str]]
) -> None:
    assert localnet.start_waves(NETS, names) == waves


def test_unknown_network_names_the_choices() -> None:
    with pytest.raises(PipelineError, match="no local network 'prod': choose from production"):
        localnet.start_order(NETS, ["prod"])


def test_dependency_cycle_is_refused() -> None:
    cyclic = {
        "a": localnet.LocalNet("a", 1, fork_endpoint="ws://127.0.0.1:2", depends_on="b"),
        "b": localnet.LocalNet("b", 2, fork_endpoint="ws://127.0.0.1:1", depends_on="a"),
    }
    with pytest.raises(PipelineError, match="cycle: a -> b -> a"):
        localnet.start_order(cyclic, ["a"])


@pytest.mark.parametrize(
    ("net", "spec", "db", "resume", "expected"),
    [
        (
            NETS["production"], Path("/s/spec.json"), Path("/s/chain.sqlite"), True,
            {"genesis": "/s/spec.json", "db": "/s/chain.sqlite", "resume": True},
        ),
        (
            NETS["production"], Path("/s/spec.json"), Path("/s/chain.sqlite"), False,
            {"genesis": "/s/spec.json", "db": "/s/chain.sqlite"},
        ),
        (NETS["staging-reckless"], Path("/s/spec.json"), None, False, {"genesis": "/s/spec.json"}),
        (NETS["staging-lts"], None, None, False, {"endpoint": "ws://127.0.0.1:1"}),
    ],
)  # fmt: skip
def test_chopsticks_config(
    net: localnet.LocalNet,
    spec: Path | None,
    db: Path | None,
    resume: bool,
    expected: dict[str, object],
) -> None:
    got = localnet.chopsticks_config(net, spec=spec, db=db, resume=resume)
    base = {
        "host": "127.0.0.1",
        "port": net.port,
        "build-block-mode": "Instant",
        "runtime-log-level": 0,
    }
    assert got == {**base, **expected}


def test_genesis_network_without_spec_is_refused() -> None:
    with pytest.raises(PipelineError, match="needs a chain spec"):
        localnet.chopsticks_config(NETS["production"], spec=None, db=None, resume=False)


@pytest.mark.parametrize(
    ("log", "expected"),
    [
        ("a\nb\n\n", "b"),
        ("start\nError: listen EADDRINUSE :::9944\nbye\n", "Error: listen EADDRINUSE :::9944"),
        ("", "(empty log)"),
    ],
)
def test_last_log_line(log: str, expected: str) -> None:
    assert localnet.last_log_line(log) == expected


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("ws://127.0.0.1:9944", "http://127.0.0.1:9944"),
        ("wss://rpc.example.org/path", "https://rpc.example.org/path"),
        ("http://127.0.0.1:1", "http://127.0.0.1:1"),
    ],
)
def test_http_url(endpoint: str, expected: str) -> None:
    assert devrpc.http_url(endpoint) == expected


@pytest.mark.parametrize(
    "endpoint", ["wss://rpc.example.org", "ws://10.1.2.3:9944", "ws://node:9944"]
)
def test_produce_blocks_refuses_non_local_endpoints(endpoint: str) -> None:
    with pytest.raises(PipelineError, match="refusing to produce blocks"):
        devrpc.produce_blocks(endpoint, 1)


def test_networks_for_the_local_environment() -> None:
    env = config.load_environment("local", REPO)
    nets = localnet.networks_for(env, DEFAULT_PRESET)
    production, lts, reckless = (nets[n] for n in ("production", "staging-lts", "staging-reckless"))
    assert (production.port, lts.port, reckless.port) == (9944, 9945, 9946)
    assert production.persistent and production.seeded and production.kind == "chopsticks-genesis"
    assert lts.kind == "chopsticks-fork" and lts.fork_endpoint == production.endpoint
    assert lts.depends_on == "production" and not lts.persistent
    assert reckless.spec_owner == "production" and not reckless.persistent and not reckless.seeded
    assert nets == localnet.default_networks()


def test_networks_for_the_local_nodes_environment() -> None:
    """Real nodes: each genesis network has its own spec and preset; lts forks production."""
    environment = config.load_environment("local-nodes", REPO)
    nets = localnet.networks_for(environment, DEFAULT_PRESET)
    production, lts, reckless = (
        nets[f"nodes-{n}"] for n in ("production", "staging-lts", "staging-reckless")
    )
    assert production.nodes and production.kind == "nodes-genesis"
    assert (production.validators, production.preset) == (("alice", "bob"), "local_testnet")
    assert production.spec_owner == production.name and production.seeded
    assert not production.persistent  # real nodes start over from their spec on every up
    assert lts.kind == "nodes-fork" and lts.fork_endpoint == production.endpoint
    assert lts.depends_on == production.name and lts.validators == ("alice",)
    assert reckless.spec_owner == reckless.name and reckless.preset == "development"
    assert not reckless.seeded and not lts.seeded


def test_zombienet_network_file_names_the_raw_spec_and_each_validator(tmp_path: Path) -> None:
    text = nodenet.network_file(
        spec=tmp_path / "spec.json",
        binary=Path("/opt/example-node"),
        validators=("alice", "bob"),
        rpc_port=9954,
    )
    parsed = tomllib.loads(text)
    assert parsed["settings"]["provider"] == "native"
    relay = parsed["relaychain"]
    assert relay["chain_spec_path"] == str(tmp_path / "spec.json")
    assert relay["default_command"] == "/opt/example-node"
    assert "--database=paritydb" in relay["default_args"]
    assert [(n["name"], n["validator"], n.get("rpc_port")) for n in relay["nodes"]] == [
        ("alice", True, 9954),  # the network's endpoint
        ("bob", True, None),  # a free port of zombienet's choice
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("v22.23.3\n", (22, 23, 3)), ("v20.20.2", (20, 20, 2)), ("22.0.0-nightly", (22, 0, 0))],
)
def test_parse_node_version(text: str, expected: tuple[int, int, int]) -> None:
    assert executor.parse_node_version(text) == expected


def test_parse_node_version_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="not a node version"):
        executor.parse_node_version("bash: node: command not found")


def test_missing_node_names_the_install_command(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"not installed .*: run `bash /.*/scripts/node-up.sh`"):
        executor._checked_node(tmp_path / "node")


def test_missing_chopsticks_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(executor, "JS_ROOT", tmp_path)  # a checkout where npm ci never ran
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "node-up.sh").touch()
    hint = f"run `bash {tmp_path}/scripts/node-up.sh`"
    with pytest.raises(PipelineError, match=rf"chopsticks is not installed .*{re.escape(hint)}"):
        executor.localnet_command(tmp_path / "chopsticks.json")


def test_a_pipeline_installed_from_a_wheel_says_where_its_js_part_comes_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(executor, "JS_ROOT", tmp_path)  # site-packages: no checkout around it
    with pytest.raises(PipelineError, match=r"chopsticks is not installed .* installed without"):
        executor.localnet_command(tmp_path / "chopsticks.json")


def test_old_node_is_refused_with_the_install_command(tmp_path: Path) -> None:
    old = tmp_path / "node"
    old.write_text("#!/bin/sh\necho v20.20.2\n")
    old.chmod(0o755)
    with pytest.raises(PipelineError, match=r"Node v20.20.2, chopsticks needs >= 22: .*node-up.sh"):
        executor._checked_node(old)


MERGE_CASES: list[tuple[object, object, object]] = [
    ({"a": 1}, {"b": 2}, {"a": 1, "b": 2}),
    (  # nested objects merge key by key; the preset's sudo key replaces the default's
        {"balances": {"balances": [["A", 1]]}, "sudo": {"key": None}},
        {"sudo": {"key": "5Grw"}},
        {"balances": {"balances": [["A", 1]]}, "sudo": {"key": "5Grw"}},
    ),
    ({"x": [1, 2]}, {"x": [3]}, {"x": [3]}),  # arrays are replaced, not concatenated
    ({"x": 1}, {"x": {"y": 2}}, {"x": {"y": 2}}),
    ({"x": {"y": 2}}, {"x": 1}, {"x": 1}),
    (
        {"x": {"y": 2}},
        {"x": None},
        {"x": None},
    ),  # null replaces (Substrate's merge deletes nothing)
    ({"a": {"b": {"c": 1, "d": 2}}}, {"a": {"b": {"d": 3}}}, {"a": {"b": {"c": 1, "d": 3}}}),
    ({"a": 1}, {}, {"a": 1}),
]


def test_genesis_preset_merge() -> None:
    """The JSON merge in pipeline/js/merge.mjs (genesis.mjs uses it), run by the project's node."""
    script = (
        f"import {{ mergeJson }} from {json.dumps((executor.JS_DIR / 'merge.mjs').as_uri())};"
        "let d = ''; process.stdin.on('data', (c) => (d += c)).on('end', () => {"
        "  const cases = JSON.parse(d);"
        "  const out = cases.map(([a, b]) => { const before = JSON.stringify(a);"
        "    const m = mergeJson(a, b); return [m, JSON.stringify(a) === before]; });"
        "  process.stdout.write(JSON.stringify(out)); });"
    )
    proc = subprocess.run(
        [str(executor.node_binary()), "--input-type=module", "-e", script],
        input=json.dumps([[a, b] for a, b, _ in MERGE_CASES]),
        capture_output=True,
        text=True,
        check=True,
    )
    results = json.loads(proc.stdout)
    for (_, _, expected), (merged, base_untouched) in zip(MERGE_CASES, results, strict=True):
        assert merged == expected
        assert base_untouched


def test_genesis_preset_merge_in_process_is_the_same() -> None:
    """wasm_exec's merge (in-code storage versions) agrees with merge.mjs (chain specs)."""
    for base, patch, expected in MERGE_CASES:
        before = json.dumps(base)
        assert wasm_exec.merge_json(base, patch) == expected
        assert json.dumps(base) == before


@pytest.mark.parametrize("preset", ["development", "local_testnet"])
def test_genesis_in_process_is_the_chain_specs(preset: str) -> None:
    """The genesis wasm_exec builds (storage versions) is the one chopsticks starts from."""
    wasm = runtime_wasm()
    state = wasm_exec.genesis_storage(
        wasm_exec.RuntimeInstance(RuntimeBlob.load(wasm).wasm), preset
    )
    spec = executor.genesis_spec(wasm, preset)["genesis"]["raw"]["top"]
    spec.pop("0x" + b":code".hex())
    assert {"0x" + k.hex(): "0x" + v.hex() for k, v in state.items()} == spec


def test_free_ports_are_distinct_free_and_not_ephemeral() -> None:
    ports = localnet.free_ports(5)
    assert len(set(ports)) == 5
    assert all(20000 <= p < 32000 and not localnet.port_in_use(p) for p in ports)


def test_port_owner_names_the_listening_process() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert localnet.port_in_use(port)
        owner = localnet.port_owner(port)
        assert owner is not None and owner.startswith(f"pid {os.getpid()} (")
    assert not localnet.port_in_use(port)
    assert localnet.port_owner(port) is None


# --- real chopsticks networks -------------------------------------------------------------------
def runtime_wasm() -> Path:
    """The released runtime (spec 100); PIPELINE_TEST_WASM overrides it (before it is committed)."""
    override = os.environ.get("PIPELINE_TEST_WASM")
    if override:
        return Path(override)
    project = Project(root=REPO, runtime_path="examples/runtime", runtime_package="", suites={})
    return localnet.released_wasm(project)


class Nets:
    """Three networks in a private state dir, on free ports."""

    def __init__(self, root: Path) -> None:
        self.project = Project(root=root, runtime_path="", runtime_package="", suites={})
        ports = localnet.free_ports(3)
        self.nets = localnet.default_networks(dict(zip(localnet.DEFAULT_PORTS, ports, strict=True)))
        self.wasm = runtime_wasm()

    def up(self, *names: str) -> list[localnet.NetStatus]:
        return localnet.up(self.project, self.nets, names or list(self.nets), self.wasm)

    def endpoint(self, name: str) -> str:
        return self.nets[name].endpoint

    def status(self, name: str) -> localnet.NetStatus:
        return localnet.status_of(self.project, self.nets[name])


@pytest.fixture(scope="module")
def nets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nets]:
    os.environ.pop("PIPELINE_STATE_DIR", None)
    n = Nets(tmp_path_factory.mktemp("localnet"))
    try:
        n.up()
        yield n
    finally:
        localnet.reset(n.project, n.nets)


def storage_at(endpoint: str, block_hash: str, limit: int = 1000) -> dict[str, str]:
    """Every storage key (up to `limit`) and value at a block, via state_getKeysPaged."""
    result: dict[str, str] = {}
    start: str | None = None
    while len(result) < limit:
        keys = devrpc.rpc(endpoint, "state_getKeysPaged", ["0x", 200, start, block_hash])
        if not keys:
            break
        for key in keys:
            result[key] = devrpc.rpc(endpoint, "state_getStorage", [key, block_hash])
        start = keys[-1]
    return result


NOTES_PREFIX = chainstate.storage_prefix("Notes", "Notes")


@pytest.mark.chain
def test_every_network_runs_the_released_runtime_and_makes_blocks(nets: Nets) -> None:
    for name in nets.nets:
        status = nets.status(name)
        assert status.alive and status.pid is not None, status
        assert (status.spec_version, status.block is not None) == (100, True), status
        head = devrpc.produce_blocks(nets.endpoint(name), 2)
        assert head == status.block + 2  # type: ignore[operator]


@pytest.mark.chain
def test_inspect_and_diff_read_a_plain_endpoint_at_a_block(
    nets: Nets,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    production = nets.endpoint("production")
    released = RuntimeBlob.load(nets.wasm)
    genesis = devrpc.rpc(production, "chain_getBlockHash", [0])
    monkeypatch.chdir(tmp_path)  # an endpoint needs no project
    inspect_cli.inspect(Context(), f"{production}@0", json_=True)
    details = json.loads(capsys.readouterr().out)
    assert (details["spec_version"], details["blake2_256"]) == (100, released.blake2_256)
    deploy_cli.diff(Context(), f"{production}@{genesis}", production)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"A: {production} @{short_hash(genesis)}: example-runtime")
    assert lines[1].startswith(f"B: {production}: example-runtime 100")
    assert "no differences" in lines
    beyond = int(devrpc.rpc(production, "chain_getHeader")["number"], 16) + 1000
    with pytest.raises(Exit) as refused:
        inspect_cli.inspect(Context(), f"{production}@{beyond}")
    assert str(refused.value.message) == (
        f"error: {production} has no block #{beyond}: ask for a block at or below the head"
    )


@pytest.mark.chain
def test_production_is_seeded_and_lts_mirrors_it_at_the_fork_block(nets: Nets) -> None:
    production, lts = nets.endpoint("production"), nets.endpoint("staging-lts")
    localnet.down(nets.project, nets.nets, ["staging-lts"])
    nets.up("staging-lts")  # a fresh fork at production's current head
    fork_hash = devrpc.rpc(lts, "chain_getBlockHash")
    assert fork_hash == devrpc.rpc(production, "chain_getBlockHash")
    mirrored, original = storage_at(lts, fork_hash), storage_at(production, fork_hash)
    assert len(original) >= 40
    assert mirrored == original
    notes = [k for k in original if k.startswith(NOTES_PREFIX)]
    assert len(notes) == 4  # seeded by signed Notes.set_note from four accounts
    # and the fork goes its own way: a block on lts leaves production where it was
    devrpc.produce_blocks(lts, 1)
    assert devrpc.rpc(production, "chain_getBlockHash") == fork_hash


@pytest.mark.chain
def test_reckless_starts_at_production_genesis_without_seeded_state(nets: Nets) -> None:
    localnet.down(nets.project, nets.nets, ["staging-reckless"])
    nets.up("staging-reckless")
    reckless = nets.endpoint("staging-reckless")
    assert int(devrpc.rpc(reckless, "chain_getHeader")["number"], 16) <= 1
    state = storage_at(reckless, devrpc.rpc(reckless, "chain_getBlockHash"))
    assert not [k for k in state if k.startswith(NOTES_PREFIX)]
    spec = json.loads((localnet.net_dir(nets.project, "production") / "spec.json").read_text())
    assert state["0x3a636f6465"] == spec["genesis"]["raw"]["top"]["0x3a636f6465"]
    with Chain(reckless) as chain:
        assert chain.query("Council", "ProposalCount") == 0
    with Chain(nets.endpoint("production")) as chain:
        assert chain.query("Council", "ProposalCount") == 1  # the seeded motion


@pytest.mark.chain
def test_production_keeps_its_chain_across_down_and_up(nets: Nets) -> None:
    production = nets.endpoint("production")
    devrpc.produce_blocks(production, 3)
    genesis = devrpc.rpc(production, "chain_getBlockHash", [0])
    head = devrpc.rpc(production, "chain_getBlockHash")
    before = storage_at(production, head)
    alice = keys.local_dev_keypair(production, "Alice")
    stopped = localnet.down(nets.project, nets.nets, ["production"])
    assert stopped == ["staging-lts", "production"]  # its fork goes with it
    assert not nets.status("production").alive
    nets.up("production")
    assert devrpc.rpc(production, "chain_getBlockHash") == head
    assert storage_at(production, head) == before
    # still linked to its genesis: signatures (which commit to the genesis hash) are accepted
    assert devrpc.rpc(production, "chain_getBlockHash", [0]) == genesis
    with Chain(production) as chain:
        receipt = chain.submit(Call("System", "remark", {"remark": "after restart"}), alice)
        assert receipt.block_number == int(devrpc.rpc(production, "chain_getHeader")["number"], 16)
    nets.up()


@pytest.mark.chain
def test_killed_network_shows_dead_and_fails_clearly(nets: Nets) -> None:
    nets.up("staging-reckless")
    net = nets.nets["staging-reckless"]
    pid = nets.status("staging-reckless").pid
    assert pid is not None
    with Chain(net.endpoint, connect_timeout=5, reconnect_attempts=2) as chain:
        assert chain.block_number() >= 0
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while localnet.process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        status = nets.status("staging-reckless")
        assert (status.alive, status.pid) == (False, pid)
        assert status.note.startswith("dead: pid gone")
        started = time.monotonic()
        with pytest.raises(PipelineError, match=rf"cannot reach {net.endpoint}: .*invoke net.up"):
            chain.block_number()
        assert time.monotonic() - started < 60
    with pytest.raises(PipelineError, match=rf"staging-reckless is dead \(pid {pid} is gone"):
        localnet.require_running(nets.project, net)
    nets.up("staging-reckless")  # up replaces the dead process
    assert nets.status("staging-reckless").alive


@pytest.mark.chain
def test_port_in_use_names_the_process_holding_it(nets: Nets) -> None:
    localnet.down(nets.project, nets.nets, ["staging-reckless"])
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", nets.nets["staging-reckless"].port))
        sock.listen()
        with pytest.raises(PipelineError, match=rf"in use by pid {os.getpid()} \("):
            nets.up("staging-reckless")
    nets.up("staging-reckless")


def test_genesis_spec_holds_the_runtime_and_the_preset() -> None:
    """Built by the wasm executor alone (no chopsticks network)."""
    wasm_path = runtime_wasm()
    spec = executor.genesis_spec(wasm_path)
    top = spec["genesis"]["raw"]["top"]
    wasm = wasm_path.read_bytes()
    assert bytes.fromhex(top["0x3a636f6465"][2:]) == wasm
    assert blake2_256_hex(bytes.fromhex(top["0x3a636f6465"][2:])) == blake2_256_hex(wasm)
    assert list(top) == sorted(top)
    for pallet, item in [
        ("System", "Account"),
        ("Aura", "Authorities"),
        ("Sudo", "Key"),
        ("Balances", "TotalIssuance"),
        ("Council", "Members"),
    ]:
        assert any(k.startswith(chainstate.storage_prefix(pallet, item)) for k in top), (
            pallet,
            item,
        )
    assert spec["properties"] == {"tokenSymbol": "UNIT", "tokenDecimals": 12, "ss58Format": 42}
    assert spec["genesis"]["raw"]["childrenDefault"] == {}


def test_runtime_without_genesis_presets_is_refused_clearly(tmp_path: Path) -> None:
    not_wasm = tmp_path / "runtime.compact.compressed.wasm"
    not_wasm.write_bytes(b"\0asm\x01\0\0\0")
    with pytest.raises(PipelineError, match=r"chain spec from .* failed: "):
        executor.genesis_spec(not_wasm)


@pytest.mark.chain
def test_a_fork_off_spec_carries_production_state_with_its_own_sudo_and_consensus(
    nets: Nets,
) -> None:
    """`net.fork-off`: production's state (accounts, notes, council, code) over a fresh spec of
    its runtime; a network started from it runs with the fresh sudo key and runs
    on_runtime_upgrade on its first block."""
    production = nets.endpoint("production")
    alice, bob = (keys.local_dev_keypair(production, who) for who in ("//Alice", "//Bob"))
    try:
        devrpc.set_storage(production, {"Sudo": {"Key": bob.ss58_address}})
        devrpc.produce_blocks(production, 1)
        with Chain(production) as chain:
            forked = chainstate.fork_off(chain, name="production fork-off", chain_id="prod-fork")
            live = {
                "0x" + k.hex(): "0x" + v.hex()
                for k, v in chainstate.snapshot(chain, forked.block).items()
            }
            alice_account = chain.query("System", "Account", [alice.ss58_address])
            genesis = chain.block_hash(0)
    finally:
        devrpc.set_storage(production, {"Sudo": {"Key": alice.ss58_address}})
    top = forked.spec["genesis"]["raw"]["top"]
    assert forked.spec["id"] == "prod-fork" and forked.live_keys > 20 and forked.fresh_keys > 5
    carried = ("Notes", "Council", "Balances")
    for key, value in live.items():
        if key.startswith(tuple(chainstate.storage_prefix(p) for p in carried)) or key in (
            "0x3a636f6465",
            *[k for k in live if k.startswith(chainstate.storage_prefix("System", "Account"))],
        ):
            assert top[key] == value, key
    assert chainstate.storage_prefix("System", "LastRuntimeUpgrade") not in top
    origin = forked.spec["properties"][chainstate.FORKED_FROM]
    assert origin == {"genesis": genesis, "block": forked.block, "number": forked.number}

    fork = localnet.LocalNet("fork-off", localnet.free_ports(1)[0])
    spec_file = localnet.net_dir(nets.project, fork.name) / localnet.SPEC_FILE
    spec_file.parent.mkdir(parents=True, exist_ok=True)
    spec_file.write_text(json.dumps(forked.spec))
    try:
        localnet.up(nets.project, {fork.name: fork}, [fork.name])
        with Chain(fork.endpoint) as chain:
            assert chain.query("Sudo", "Key") == alice.ss58_address  # the fresh spec's, not Bob
            notes = chain.rpc("state_getKeysPaged", [NOTES_PREFIX, 100, None])
            assert len(notes) == 4  # production's seeded notes
            assert chain.query("System", "Account", [alice.ss58_address]) == alice_account
            assert chain.query("System", "LastRuntimeUpgrade")["spec_version"] == 100
            assert chain.code_hash() == blake2_256_hex(bytes.fromhex(live["0x3a636f6465"][2:]))
    finally:
        localnet.stop(nets.project, fork)


def test_a_spec_follows_the_preset_until_its_chain_has_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A preset changed in pipeline.toml is used by the next start (the spec is made again),
    unless the chain already has state: then one line says to reset."""
    monkeypatch.setenv("PIPELINE_STATE_DIR", str(tmp_path / "state"))
    project = load_project(REPO)
    net = localnet.LocalNet("p", 1, spec_owner="p", preset="development")
    first = json.loads(localnet.ensure_spec(project, net, None).read_text())
    assert first["id"].endswith("_development")
    other = dataclasses.replace(net, preset="local_testnet")
    second = json.loads(localnet.ensure_spec(project, other, None).read_text())
    assert second["id"].endswith("_local_testnet")
    (localnet.net_dir(project, "p") / localnet.SEEDED_MARK).write_text("seeded\n")
    with pytest.raises(PipelineError, match=r"preset 'local_testnet', not 'development': run"):
        localnet.ensure_spec(project, net, None)
