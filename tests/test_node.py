"""pipeline.nodebuild: the node build's decisions, and (marked `docker`) the real node: built
natively in the node image, cached by content, running a chain of our released runtime on
loopback, authoring with Aura and finalizing with GRANDPA."""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import git
import pytest
import requests
from substrateinterface import Keypair

from pipeline import builder_image, devrpc, localnet, nodebuild, nodenet
from pipeline.chain import BroadcastUncertain, Call, Chain
from pipeline.errors import PipelineError
from pipeline.ledger import open_ledger
from pipeline.project import Project, load_project
from pipeline.submission import submit_recorded

REPO = Path(__file__).resolve().parents[1]
RELEASED = REPO / "examples/runtime/releases/100"
ALICE = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
BUILDER_ID = "sha256:" + "1" * 64
T = TypeVar("T", bound=Callable[..., object])


# ---------------------------------------------------------------- pure


def test_node_image_follows_the_builder_image() -> None:
    assert nodebuild.node_image_tag(BUILDER_ID) == nodebuild.node_image_tag(BUILDER_ID)
    assert nodebuild.node_image_tag(BUILDER_ID) != nodebuild.node_image_tag("sha256:" + "2" * 64)
    assert nodebuild.node_image_tag(BUILDER_ID).startswith("runtime-pipeline-node:")


def test_node_image_context_is_not_the_builder_context() -> None:
    # The runtime builder's tag hashes dockerfiles/: the node's Dockerfile must not move it.
    assert nodebuild.CONTEXT != builder_image.DOCKERFILES
    assert not (builder_image.DOCKERFILES / nodebuild.DOCKERFILE).exists()
    assert (nodebuild.CONTEXT / nodebuild.DOCKERFILE).is_file()


def test_node_dockerfile_pins_protoc_exactly() -> None:
    text = (nodebuild.CONTEXT / nodebuild.DOCKERFILE).read_text()
    assert "ARG PROTOBUF_VERSION=3.21.12-3+deb12u1" in text
    assert '"protobuf-compiler=${PROTOBUF_VERSION}"' in text


def test_build_script_skips_the_wasm_and_stays_offline() -> None:
    script = nodebuild.build_script()
    assert script.splitlines()[0] == "export SKIP_WASM_BUILD=1"
    assert "cd /build/examples/node" in script
    assert "cargo build --locked --offline --profile testnet --timings --bin example-node" in script
    assert "cp /target/testnet/example-node /out/" in script


def test_build_options_change_with_the_recipe() -> None:
    assert nodebuild.build_options() == nodebuild.build_options()
    assert nodebuild.build_options()["recipe"] != nodebuild.build_options("other")["recipe"]


def test_the_node_lock_is_its_own_and_builds_with_rustc_1_85() -> None:
    node = (REPO / "examples/node/Cargo.toml").read_text()
    assert "[workspace]" in node and 'rust-version = "1.85"' in node
    assert "default-features = false" in node.split("sc-cli")[1].splitlines()[0]
    lock = (REPO / "examples/node/Cargo.lock").read_text()
    assert 'name = "example-node"' in lock and 'name = "example-runtime"' in lock
    for left_out in (
        "librocksdb-sys",
        "frame-benchmarking-cli",
        "tikv-jemalloc-sys",
        "wasm-opt-sys",
    ):
        assert f'name = "{left_out}"' not in lock
    runtime_lock = (REPO / "examples/runtime/Cargo.lock").read_text()
    assert 'name = "example-node"' not in runtime_lock


def test_a_missing_lock_is_refused_with_the_fix(tmp_path: Path) -> None:
    repo = git.Repo.init(tmp_path)
    (tmp_path / "pipeline.toml").write_text(
        '[runtime]\npath = "examples/runtime"\npackage = "example-runtime"\n'
    )
    (tmp_path / "examples/node").mkdir(parents=True)
    (tmp_path / "examples/node/Cargo.toml").write_text("[package]\n")
    repo.index.add(["pipeline.toml", "examples/node/Cargo.toml"])
    repo.index.commit("no lock")
    with pytest.raises(PipelineError, match=r"no Cargo.lock in examples/node at HEAD"):
        nodebuild.build(load_project(tmp_path))


def test_networks_run_a_named_node_or_the_built_one_or_say_how_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(nodenet.NODE_BINARY_ENV, raising=False)
    repo = git.Repo.init(tmp_path / "repo")
    (tmp_path / "repo/examples/node").mkdir(parents=True)
    (tmp_path / "repo/examples/node/Cargo.toml").write_text("[package]\n")
    repo.index.add(["examples/node/Cargo.toml"])
    repo.index.commit("node sources")
    project = Project(root=tmp_path / "repo", runtime_path="", runtime_package="", suites={})
    with pytest.raises(nodenet.NodeBinaryMissing, match=r"run `invoke node.build`"):
        nodenet.find_binary(project)

    tree = nodenet.node_tree(repo, repo.head.commit.hexsha)
    for key, source_tree in (("old", "0" * 40), ("new", tree)):
        folder = nodenet.built_nodes() / key
        folder.mkdir(parents=True)
        (folder / nodenet.BINARY).write_bytes(b"\x7fELF")
        (folder / nodenet.BUILD_RECORD).write_text(json.dumps({"node_tree": source_tree}))
    assert nodenet.find_binary(project) == nodenet.built_nodes() / "new" / nodenet.BINARY

    own = tmp_path / "my-node"
    own.write_bytes(b"\x7fELF")
    monkeypatch.setenv(nodenet.NODE_BINARY_ENV, str(own))
    with pytest.raises(PipelineError, match=r"PIPELINE_NODE_BINARY=.* is not an executable file"):
        nodenet.find_binary(project)
    own.chmod(0o755)
    assert nodenet.find_binary(project) == own


# ---------------------------------------------------------------- the real node


def _released_wasm() -> Path:
    (wasm,) = RELEASED.glob("*.compact.compressed.wasm")
    return wasm


@pytest.fixture(scope="module")
def node_binary() -> Iterator[Path]:
    """The node of HEAD's examples/, built once (about 16 minutes cold, a cache hit after)."""
    yield nodebuild.build(load_project(REPO)).binary


def _call(port: int, method: str, params: list[Any] | None = None) -> Any:
    return devrpc.rpc(f"http://127.0.0.1:{port}", method, params)


def _heads(port: int) -> tuple[int, int]:
    best = int(_call(port, "chain_getHeader")["number"], 16)
    finalized_hash = _call(port, "chain_getFinalizedHead")
    finalized = int(_call(port, "chain_getHeader", [finalized_hash])["number"], 16)
    return best, finalized


def real_node(group: str) -> Callable[[T], T]:
    """The marks of a test that runs the node binary: it needs the node build (about 16 minutes
    on 2 cores cold), as the releases on real nodes do, and a group of its own worker."""

    def mark(test: T) -> T:
        for marker in (
            pytest.mark.docker,
            pytest.mark.nodes,
            pytest.mark.timeout(7200),
            pytest.mark.xdist_group(group),
        ):
            test = marker(test)
        return test

    return mark


def _start_node(
    binary: Path, spec: Path, folder: Path, node_key: str, *args: str
) -> tuple[subprocess.Popen[bytes], int, int]:
    """A node of `spec` on loopback ports, no discovery: it meets only the peers it is given."""
    rpc_port, p2p_port = localnet.free_ports(2)
    folder.mkdir()
    node = subprocess.Popen(
        [
            str(binary),
            *("--chain", str(spec), "--base-path", str(folder), "--database", "paritydb"),
            *("--no-mdns", "--no-prometheus", "--no-telemetry", "--node-key", node_key),
            *("--rpc-port", str(rpc_port), "--listen-addr", f"/ip4/127.0.0.1/tcp/{p2p_port}"),
            *args,
        ],
        stdout=(folder / "node.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while True:
        assert node.poll() is None, f"node exited: {(folder / 'node.log').read_text()}"
        with contextlib.suppress(requests.RequestException, PipelineError):
            _call(rpc_port, "system_name")
            return node, rpc_port, p2p_port
        assert time.monotonic() < deadline, (folder / "node.log").read_text()
        time.sleep(0.5)


@real_node("nodes-a")
def test_second_node_build_is_a_cache_hit_without_a_container(node_binary: Path) -> None:
    client = builder_image.docker_client()
    since = time.time() - 1
    again = nodebuild.build(load_project(REPO))
    events = client.events(
        since=since,
        until=time.time() + 1,
        filters={"type": "container", "label": f"{builder_image.LABEL}build={again.key}"},
        decode=True,
    )
    assert again.cached and again.log is None and again.container_seconds == 0.0
    assert again.binary == node_binary
    assert list(events) == [], "a cache hit started a container"
    assert again.seconds < 30


@real_node("nodes-b")
def test_node_authors_and_finalizes_blocks_of_the_released_runtime(
    node_binary: Path, tmp_path: Path
) -> None:
    spec = localnet.write_spec(_released_wasm(), tmp_path / "spec.json")
    folder = tmp_path / "alice"
    node, rpc_port, _ = _start_node(  # a validator needs a node key
        node_binary, spec, folder, "11" * 32, "--alice", "--validator", "--force-authoring"
    )
    try:
        heads = [_heads(rpc_port)]
        deadline = time.monotonic() + 180  # 6 s slots: a few blocks and their finality
        while time.monotonic() < deadline and heads[-1][1] < 3:
            assert node.poll() is None, f"node exited: {(folder / 'node.log').read_text()}"
            time.sleep(2)
            heads.append(_heads(rpc_port))
        best, finalized = heads[-1]
        assert finalized >= 3 and best >= finalized, heads
        assert heads[0][0] < best and heads[0][1] < finalized, "best and finalized must rise"
        assert _call(rpc_port, "system_name") == "example-node"
        assert _call(rpc_port, "system_accountNextIndex", [ALICE]) == 0
        methods = set(_call(rpc_port, "rpc_methods")["methods"])
        assert {"payment_queryInfo", "payment_queryFeeDetails", "system_dryRun"} <= methods
        version = _call(rpc_port, "state_getRuntimeVersion")
        assert (version["specName"], version["specVersion"]) == ("example-runtime", 100)
    finally:
        node.terminate()
        node.wait(timeout=30)


@real_node("nodes-b")
def test_a_send_counted_as_included_because_another_with_its_nonce_was_is_left_unresolved(
    node_binary: Path, tmp_path: Path
) -> None:
    """What a resumed release met on real nodes: an earlier send of the same call still in one
    node's pool, the fresh one (same nonce) in another's. When the earlier one is included, the
    second node's pool reports the fresh one included and finalized in that block (it prunes by
    nonce). Taking that block for ours failed the run on a missing extrinsic; the submission
    must stay unresolved instead (never failed, never sent again), for a resume to look for its
    effect on chain."""
    spec = localnet.write_spec(_released_wasm(), tmp_path / "spec.json")
    alice, alice_rpc, alice_p2p = _start_node(
        node_binary, spec, tmp_path / "alice", "11" * 32, "--alice", "--validator"
    )
    # not connected yet: its pool and alice's each hold their own send of the nonce
    other, other_rpc, _ = _start_node(
        node_binary, spec, tmp_path / "other", "22" * 32, "--rpc-methods", "unsafe"
    )
    dave = Keypair.create_from_uri("//Dave")
    call = Call("System", "remark", {"remark": "the same call, sent twice"})
    outcome: list[BaseException] = []
    try:
        with Chain(f"ws://127.0.0.1:{alice_rpc}") as at_alice:
            earlier = at_alice.sign(call, dave)
            _call(alice_rpc, "author_submitExtrinsic", [str(earlier.extrinsic.data)])

            def send_again() -> None:
                with (
                    Chain(f"ws://127.0.0.1:{other_rpc}", timeout=300, finalized=True) as at_other,
                    open_ledger(tmp_path, "again", create={"environment": "local"}) as ledger,
                ):
                    try:
                        submit_recorded(
                            at_other, call, dave, recorder=ledger, stage="s", network="n"
                        )
                    except BaseException as exc:
                        outcome.append(exc)

            sender = threading.Thread(target=send_again)
            sender.start()
            deadline = time.monotonic() + 120
            while at_alice.state_nonce(dave.ss58_address) == earlier.nonce:
                assert time.monotonic() < deadline, "alice included nothing"
                time.sleep(0.5)
            peer = _call(alice_rpc, "system_localPeerId")
            _call(
                other_rpc,
                "system_addReservedPeer",
                [f"/ip4/127.0.0.1/tcp/{alice_p2p}/p2p/{peer}"],
            )
            sender.join(timeout=240)
            assert not sender.is_alive(), "the send is still waiting"
        [error] = outcome
        assert isinstance(error, BroadcastUncertain), error
        assert "check on chain before sending again" in str(error)
        with open_ledger(tmp_path, "again") as ledger:
            [intent] = ledger.state.unresolved  # one send, its outcome left to the resume
            assert intent.nonce == earlier.nonce
    finally:
        for node in (alice, other):
            node.terminate()
            node.wait(timeout=30)
