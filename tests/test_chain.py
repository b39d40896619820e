"""Chain: pure helpers (table-driven) and a real connection to a chopsticks chain (`chain`)."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from substrateinterface import Keypair
from websocket import WebSocketBadStatusException

from pipeline import devrpc, localnet, metadata, upgrade
from pipeline.artifact import RuntimeBlob
from pipeline.chain import (
    REFUSED_GRACE,
    Call,
    Chain,
    NewHeads,
    backoff_delays,
    blake2_256_hex,
    describe_rejection,
    dispatch_error_name,
    extrinsic_index,
    is_local_endpoint,
    mortal_era,
    pool_verdict,
    retry_window,
)
from pipeline.errors import PipelineError
from pipeline.project import Project


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("ws://127.0.0.1:9944", True),
        ("ws://localhost:9944", True),
        ("ws://[::1]:9944", True),
        ("ws://127.0.0.2:1", True),
        ("wss://rpc.polkadot.io", False),
        ("ws://10.0.0.1:9944", False),
        ("ws://192.168.1.2:9944", False),
        ("ws://0.0.0.0:9944", False),
        ("not a url", False),
    ],
)
def test_is_local_endpoint(url: str, local: bool) -> None:
    assert is_local_endpoint(url) is local


def test_backoff_doubles_up_to_the_cap() -> None:
    assert backoff_delays(6) == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0]
    assert backoff_delays(0) == []


def test_blake2_256_matches_the_reference_vector() -> None:
    # blake2b-256 of the empty string
    assert (
        blake2_256_hex(b"") == "0x0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"
    )


PALLETS = {3: "Balances", 5: "Sudo", 7: "Council"}
ERRORS = {(3, 2): "InsufficientBalance", (5, 0): "RequireSudo", (7, 1): "ProposalMissing"}


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ({"Module": {"index": 5, "error": "0x00000000"}}, "Sudo.RequireSudo"),
        ({"Module": {"index": 7, "error": 1}}, "Council.ProposalMissing"),
        ({"Module": (3, 2)}, "Balances.InsufficientBalance"),
        ("BadOrigin", "BadOrigin"),
        ({"BadOrigin": None}, "BadOrigin"),
        ({"Token": "FundsUnavailable"}, "Token.FundsUnavailable"),
        ({"Arithmetic": "Overflow"}, "Arithmetic.Overflow"),
    ],
)
def test_dispatch_error_name(error: Any, expected: str) -> None:
    name = dispatch_error_name(error, PALLETS.__getitem__, lambda i, e: ERRORS[(i, e)])
    assert name == expected


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            {"code": 1010, "message": '{"invalid":{"payment":null}}'},
            "invalid transaction (payment): the signer cannot pay the fees",
        ),
        (
            {"code": 1010, "message": '{"invalid":{"badProof":null}}'},
            "invalid transaction (badProof): bad signature: wrong genesis hash, "
            "spec/transaction version or metadata hash, or its mortal era is over (signed too "
            "many blocks ago)",
        ),
        (
            {"code": 1010, "message": '{"invalid":{"stale":null}}'},
            "invalid transaction (stale): the nonce is already used",
        ),
        ({"code": 1011, "message": '{"unknown":{"custom":3}}'}, "unknown transaction (custom)"),
        (
            {"code": 1010, "message": "Invalid Transaction", "data": "Inability to pay some fees"},
            "Invalid Transaction: Inability to pay some fees",
        ),
        ({"code": -32000, "message": "oops"}, "oops"),
        ("plain text", "plain text"),
    ],
)
def test_describe_rejection(error: Any, expected: str) -> None:
    assert describe_rejection(error) == expected


def test_call_names_itself() -> None:
    assert (
        str(Call("Balances", "transfer_keep_alive", {"value": 1})) == "Balances.transfer_keep_alive"
    )


def test_unreachable_endpoint_fails_fast_with_the_fix() -> None:
    endpoint = f"ws://127.0.0.1:{localnet.free_ports(1)[0]}"
    started = time.monotonic()
    with pytest.raises(PipelineError, match=rf"cannot reach {endpoint}: .*\(`invoke net.up`\)"):
        Chain(endpoint, connect_timeout=2.0)
    assert time.monotonic() - started < 10


def test_a_refused_first_connection_fails_in_seconds_whatever_the_timeout() -> None:
    endpoint = f"ws://127.0.0.1:{localnet.free_ports(1)[0]}"
    started = time.monotonic()
    with pytest.raises(PipelineError) as refused:
        Chain(endpoint, connect_timeout=30.0, local=False)
    assert time.monotonic() - started < 8
    assert str(refused.value) == (
        f"cannot reach {endpoint}: connection refused (nothing listens there); "
        "is the endpoint right and reachable from here?"
    )


class _Status(http.server.BaseHTTPRequestHandler):
    """Answers every request, websocket handshakes included, with the server's status."""

    def do_GET(self) -> None:
        self.send_error(self.server.status)  # type: ignore[attr-defined]

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def http_status_server(status: int) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Status)
    server.status = status  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"ws://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("status", "reason", "within"),
    [(404, "Not Found", 5.0), (503, "Service Unavailable", 12.0)],  # 5xx may pass: retried
)
def test_a_handshake_refused_by_http_is_one_line_with_the_status(
    status: int, reason: str, within: float
) -> None:
    with http_status_server(status) as endpoint:
        started = time.monotonic()
        with pytest.raises(PipelineError) as refused:
            Chain(endpoint, connect_timeout=3.0)
        elapsed = time.monotonic() - started
    assert str(refused.value) == (
        f"cannot reach {endpoint}: the server answered the websocket handshake with "
        f"HTTP {status} {reason}; is the node up? (`invoke net.up`)"
    )
    assert elapsed < within and (status == 404 or elapsed > 1.5)


@pytest.mark.parametrize(
    ("exc", "reconnecting", "window"),
    [
        (ConnectionRefusedError(), False, REFUSED_GRACE),
        (ConnectionRefusedError(), True, 30.0),
        (WebSocketBadStatusException("x", 404, "Not Found"), False, 0.0),
        (WebSocketBadStatusException("x", 502, "Bad Gateway"), False, 30.0),
        (TimeoutError(), False, 30.0),
    ],
)
def test_retry_window(exc: BaseException, reconnecting: bool, window: float) -> None:
    assert retry_window(exc, reconnecting=reconnecting, connect_timeout=30.0) == window


@pytest.mark.parametrize(
    ("status", "finality", "verdict"),
    [
        ("ready", True, ("wait", None)),
        ({"broadcast": ["12D3KooW"]}, True, ("wait", None)),
        ({"inBlock": "0xb1"}, False, ("landed", "0xb1")),
        ({"inBlock": "0xb1"}, True, ("wait", None)),  # finality still to come
        ({"retracted": "0xb1"}, True, ("wait", None)),  # back to the pool, may land again
        ({"finalized": "0xb2"}, True, ("landed", "0xb2")),
        ({"finalized": "0xb2"}, False, ("landed", "0xb2")),
        ("dropped", True, ("gone", "dropped by the pool")),
        ("invalid", False, ("gone", "invalid by the pool")),
        ({"usurped": "0xaa"}, True, ("gone", "usurped in the pool by 0xaa")),
        ({"finalityTimeout": "0xb1"}, True, ("gone", "its block 0xb1 was not finalized in time")),
    ],
)
def test_pool_verdict(status: Any, finality: bool, verdict: tuple[str, str | None]) -> None:
    """The pool's statuses end a wait as soon as they settle it: substrate-interface's own
    watcher waits out its whole timeout on `invalid` and `usurped`."""
    assert pool_verdict(status, finality) == verdict


@pytest.mark.parametrize(
    ("best", "finalized", "born"),
    [(0, 0, 0), (1000, 997, 997), (1000, 984, 984), (1000, 983, 1000), (5000, 10, 5000)],
)
def test_mortal_era_is_born_at_the_finalized_block_unless_finality_lags_far(
    best: int, finalized: int, born: int
) -> None:
    assert mortal_era(best, finalized) == {"period": 64, "current": born}


def test_extrinsic_index_finds_an_extrinsic_by_its_hash_or_says_it_is_not_there() -> None:
    block = ["0x280403000b", "0x1234", "0xdeadbeef"]
    assert extrinsic_index(block, blake2_256_hex(bytes.fromhex("deadbeef"))) == 2
    assert extrinsic_index(block, blake2_256_hex(b"another with the same nonce")) is None


# --- against a real chain -----------------------------------------------------------------------
UNIT = 10**12
ALICE, BOB, DAVE, FERDIE = (
    Keypair.create_from_uri(f"//{n}") for n in ("Alice", "Bob", "Dave", "Ferdie")
)


def runtime_wasm() -> Path:
    override = os.environ.get("PIPELINE_TEST_WASM")
    if override:
        return Path(override)
    root = Path(__file__).resolve().parent.parent
    return localnet.released_wasm(
        Project(root=root, runtime_path="examples/runtime", runtime_package="", suites={})
    )


class Net:
    """One fresh chopsticks chain from the released runtime's genesis, in a private state dir."""

    def __init__(self, root: Path) -> None:
        self.project = Project(
            root=root, runtime_path="examples/runtime", runtime_package="", suites={}
        )
        self.net = localnet.LocalNet(
            "chain-test", localnet.free_ports(1)[0], spec_owner="chain-test"
        )
        self.nets = {self.net.name: self.net}
        self.wasm = runtime_wasm()

    def up(self) -> None:
        localnet.up(self.project, self.nets, [self.net.name], self.wasm)

    def down(self) -> None:
        localnet.down(self.project, self.nets, [self.net.name])


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    n = Net(tmp_path_factory.mktemp("chain"))
    try:
        n.up()
        yield n
    finally:
        localnet.reset(n.project, n.nets)


@pytest.fixture
def chain(net: Net) -> Iterator[Chain]:
    net.up()
    with Chain(net.net.endpoint) as c:
        yield c


def beats(chain: Chain, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The lines the chain's waits report, at a beat short enough for a test's waits."""
    monkeypatch.setenv("PIPELINE_HEARTBEAT_S", "0.2")
    lines: list[str] = []
    monkeypatch.setattr(chain, "progress", lines.append)
    return lines


UNTIL = r"\(until \d\d:\d\d:\d\d UTC, at most (\d+m)?\d+s\)"


def free_balance(chain: Chain, who: Keypair) -> int:
    return int(chain.query("System", "Account", [who.ss58_address])["data"]["free"])


@pytest.mark.chain
def test_signed_transfer_lands(chain: Chain) -> None:
    before, nonce = free_balance(chain, DAVE), chain.nonce(ALICE.ss58_address)
    call = Call("Balances", "transfer_keep_alive", {"dest": DAVE.ss58_address, "value": 7 * UNIT})
    receipt = chain.submit(call, ALICE)
    assert free_balance(chain, DAVE) == before + 7 * UNIT
    assert chain.nonce(ALICE.ss58_address) == nonce + 1
    [transfer] = receipt.find("Balances", "Transfer")
    assert transfer.attributes["to"] == DAVE.ss58_address
    assert transfer.attributes["amount"] == 7 * UNIT
    assert receipt.block_number == chain.block_number()
    assert receipt.find("System", "ExtrinsicSuccess")
    # the same event is found again by scanning blocks
    found = chain.wait_for_event(
        "Balances", "Transfer", lambda e: e.attributes["to"] == DAVE.ss58_address,
        timeout=10, since=receipt.block_number,
    )  # fmt: skip
    assert found == transfer


@pytest.mark.chain
def test_connections_share_one_decoded_metadata_per_runtime(net: Net, chain: Chain) -> None:
    """A second connection (and the metadata reader) reuse the first one's decoding instead of
    a second or so of their own: same runtime, same decoded object."""
    free_balance(chain, DAVE)
    with Chain(net.net.endpoint) as other:
        free_balance(other, DAVE)
        assert other._substrate.metadata is chain._substrate.metadata
        assert metadata.chain_metadata(other).body is chain._substrate.metadata[1][1]


@pytest.mark.chain
def test_multi_block_migrations_are_waited_for_and_a_stuck_one_is_bounded(
    net: Net, chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pallet-migrations' cursor (set by hand here: the example runtime has no multi-block
    migration) holds the upgrade's checks back until it is empty, block by block."""
    endpoint, key = net.net.endpoint, upgrade.migrations_cursor_key()
    assert upgrade.wait_for_migrations(chain, True, 30.0) == 0  # none running: at once
    start = chain.block_number()
    lines = beats(chain, monkeypatch)

    def migration_ends_three_blocks_on() -> None:
        deadline, lasts = time.monotonic() + 60, time.monotonic() + 1.0  # a few beats long
        while (
            int(devrpc.rpc(endpoint, "chain_getHeader")["number"], 16) < start + 3
            or time.monotonic() < lasts
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        devrpc.set_storage(endpoint, [(key, None)])

    try:
        devrpc.set_storage(endpoint, [(key, "0x01020304")])
        ending = threading.Thread(target=migration_ends_three_blocks_on)
        ending.start()
        waited = upgrade.wait_for_migrations(chain, True, 30.0)
        ending.join()
        assert waited >= 3
        assert chain.storage(key) is None
        assert lines, "a wait of a second said nothing at a 0.2s beat"
        assert all(
            re.fullmatch(
                rf"\[\d+s\] waiting for multi-block migrations on {endpoint} to end "
                rf"\(still running at #\d+, \d+ blocks so far\) "
                rf"\(until block #{start + 100}, at most 100 blocks\)",
                line,
            )
            for line in lines
        ), lines
        devrpc.set_storage(endpoint, [(key, "0x01020304")])
        with pytest.raises(PipelineError, match=r"still run .* after 2 blocks .*cursor 0x01020304"):
            upgrade.wait_for_migrations(chain, True, 30.0, max_blocks=2)
    finally:
        devrpc.set_storage(endpoint, [(key, None)])


@pytest.mark.chain
def test_failed_extrinsic_names_the_module_error(chain: Chain) -> None:
    remark = Call("System", "remark", {"remark": "not root"})
    with pytest.raises(
        PipelineError, match=r"Sudo.sudo from 5FHneW.* failed in block #\d+: Sudo.RequireSudo"
    ):
        chain.submit(Call("Sudo", "sudo", {"call": remark}), BOB)


@pytest.mark.chain
def test_invalid_transaction_is_rejected_with_the_reason(chain: Chain) -> None:
    broke = Keypair.create_from_uri("//NobodyHasFunds")
    call = Call("Balances", "transfer_keep_alive", {"dest": DAVE.ss58_address, "value": UNIT})
    with pytest.raises(
        PipelineError, match=r"rejected by ws://127.0.0.1:\d+: .*the signer cannot pay the fees"
    ):
        chain.submit(call, broke)


@pytest.mark.chain
def test_a_transaction_left_waiting_in_the_pool_is_not_signed_over(net: Net, chain: Chain) -> None:
    """What a killed run leaves: a transaction sent but not yet in a block. The next one
    signed takes the nonce after it, and both land."""
    call = Call("System", "remark", {"remark": "left in the pool"})
    state_nonce = chain.nonce(DAVE.ss58_address)
    chain.rpc("dev_setBlockBuildMode", ["Manual"])  # sent, not yet in a block
    try:
        pending = chain.sign(call, DAVE)
        chain.rpc("author_submitExtrinsic", [str(pending.extrinsic.data)])
    finally:
        chain.rpc("dev_setBlockBuildMode", ["Instant"])
    assert chain.nonce(DAVE.ss58_address) == state_nonce + 1
    receipt = chain.submit(Call("System", "remark", {"remark": "after it"}), DAVE)
    extrinsics = chain.rpc("chain_getBlock", [receipt.block_hash])["block"]["extrinsics"]
    assert str(pending.extrinsic.data) in extrinsics  # built with the one it waited behind
    assert chain.nonce(DAVE.ss58_address) == state_nonce + 2


@pytest.mark.chain
def test_a_signed_transaction_expires_with_its_era(chain: Chain) -> None:
    """Transactions are mortal (polkadot.js signs so too): one left unsent, or stuck in some
    node's pool, is refused by the runtime once its 64 blocks are over, never included late
    (the runtime then signs for a newer birth block: the signature no longer verifies)."""
    signed = chain.sign(Call("System", "remark", {"remark": "signed, then forgotten"}), DAVE)
    assert signed.extrinsic.value["era"] != "00"  # not immortal
    chain.rpc("dev_newBlock", [{"count": 70}])
    with pytest.raises(PipelineError, match=r"\(badProof\): .*or its mortal era is over"):
        chain.broadcast(signed)


@pytest.mark.chain
def test_runtime_version_and_code_identify_the_released_runtime(net: Net, chain: Chain) -> None:
    version = chain.runtime_version()
    assert version["specVersion"] == 100
    wasm = net.wasm.read_bytes()
    assert chain.code() == wasm
    assert chain.code_hash() == blake2_256_hex(wasm)
    assert chain.block_hash(0).startswith("0x")
    with pytest.raises(PipelineError, match="no block #99999"):
        chain.block_hash(99999)


@pytest.mark.chain
def test_wait_for_event_produces_blocks_and_times_out_clearly(
    net: Net, chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = chain.block_number()
    make_block = functools.partial(devrpc.produce_blocks, net.net.endpoint, 1)
    lines = beats(chain, monkeypatch)
    with pytest.raises(PipelineError, match=r"no System.CodeUpdated on ws://.* within 3s"):
        chain.wait_for_event("System", "CodeUpdated", timeout=3, produce_blocks=make_block)
    assert chain.block_number() > start  # blocks were made while waiting
    assert len(lines) >= 5, lines  # 3 s at a 0.2 s beat
    endpoint = re.escape(net.net.endpoint)
    for line in lines:
        assert re.fullmatch(
            rf"\[\ds\] waiting for System.CodeUpdated on {endpoint} "
            rf"(\(read up to block #\d+\) )?\(until \d\d:\d\d:\d\d UTC, at most 3s\)",
            line,
        ), line
    # an event that only a later block carries is found once that block is made
    chain.submit(Call("System", "remark_with_event", {"remark": "hello"}), FERDIE)
    found = chain.wait_for_event("System", "Remarked", timeout=10, since=start)
    assert found.attributes["sender"] == FERDIE.ss58_address


@pytest.mark.chain
def test_a_slow_inclusion_and_a_slow_block_report_what_they_wait_for_every_beat(
    net: Net, chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks made by hand, a second late: the submission's wait for inclusion, then the wait
    for the block after it (where code set in it would run), each say so while they last."""
    lines = beats(chain, monkeypatch)
    endpoint = net.net.endpoint
    nonce = chain.nonce(FERDIE.ss58_address)

    def block_in_a_second() -> None:
        time.sleep(1.0)
        devrpc.produce_blocks(endpoint, 1)

    chain.rpc("dev_setBlockBuildMode", ["Manual"])
    try:
        late = threading.Thread(target=block_in_a_second)
        late.start()
        receipt = chain.submit(Call("System", "remark", {"remark": "a slow block"}), FERDIE)
        late.join()
        assert receipt.block_number == chain.block_number()
        inclusion = rf"System.remark from {FERDIE.ss58_address} \(nonce {nonce}\) to be "
        assert lines and all(
            re.fullmatch(rf"\[\ds\] waiting for {inclusion}included in a block on "
                         rf"{re.escape(endpoint)} {UNTIL}", line)
            for line in lines
        ), lines  # fmt: skip
        lines.clear()
        late = threading.Thread(target=block_in_a_second)
        late.start()
        made = upgrade.next_block(chain, receipt.block_number, False, timeout=30)
        late.join()
        assert made == receipt.block_number + 1
        assert lines and all(
            re.fullmatch(
                rf"\[\ds\] waiting for a block after #{receipt.block_number} on "
                rf"{re.escape(endpoint)} \(the code set there runs from it\) {UNTIL}",
                line,
            )
            for line in lines
        ), lines
    finally:
        chain.rpc("dev_setBlockBuildMode", ["Instant"])


@pytest.mark.chain
def test_a_network_starting_says_what_it_waits_for_every_beat(
    net: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_HEARTBEAT_S", "0.2")
    lines: list[str] = []
    net.down()
    localnet.up(net.project, net.nets, [net.net.name], net.wasm, progress=lines.append)
    assert lines, "chopsticks answered within 0.2 s of starting"
    name, endpoint = net.net.name, re.escape(net.net.endpoint)
    for line in lines:
        assert re.fullmatch(
            rf"\[(\d+m)?\d+s\] waiting for {name} to answer on {endpoint} \(chopsticks starting, "
            rf"pid \d+\) {UNTIL}",
            line,
        ), line


@pytest.mark.chain
def test_reconnects_after_the_node_restarts(net: Net) -> None:
    with Chain(net.net.endpoint, reconnect_attempts=6) as chain:
        assert chain.block_number() >= 0
        net.down()
        net.up()  # same port, a fresh chain: the old socket is dead
        assert chain.runtime_version()["specVersion"] == 100
        receipt = chain.submit(Call("System", "remark", {"remark": "after reconnect"}), ALICE)
        assert receipt.block_number >= 1


@pytest.mark.chain
def test_node_gone_for_good_gives_a_bounded_clear_error(net: Net) -> None:
    with Chain(net.net.endpoint, reconnect_attempts=2, connect_timeout=2) as chain:
        assert chain.block_number() >= 0
        net.down()
        started = time.monotonic()
        with pytest.raises(PipelineError, match=rf"cannot reach {net.net.endpoint}: .*net.up"):
            chain.block_number()
        assert time.monotonic() - started < 30
    net.up()


@pytest.mark.chain
def test_inspect_and_diff_read_the_code_on_a_chain_at_a_block(
    net: Net, chain: Chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from invoke.context import Context
    from invoke.exceptions import Exit

    from pipeline.cli import deploy as deploy_cli
    from pipeline.cli import inspect as inspect_cli

    endpoint = net.net.endpoint
    inspect_cli.inspect(Context(), f"{endpoint}@0", json_=True)  # genesis
    details = json.loads(capsys.readouterr().out)
    assert details["blake2_256"] == RuntimeBlob.load(net.wasm).blake2_256
    assert details["spec_version"] == 100 and details["version_source"] == "runtime_version section"
    (tmp_path / "pipeline.toml").write_text('[runtime]\npath = "r"\npackage = "example-runtime"\n')
    monkeypatch.chdir(tmp_path)
    deploy_cli.diff(Context(), endpoint, str(net.wasm))
    assert "no differences" in capsys.readouterr().out
    with pytest.raises(Exit) as missing:
        inspect_cli.inspect(Context(), f"{endpoint}@99999999")
    assert str(missing.value.message) == (
        f"error: {endpoint} has no block #99999999: ask for a block at or below the head"
    )


@pytest.mark.chain
def test_an_idle_head_subscription_is_reopened_without_a_warning(
    net: Net, caplog: pytest.LogCaptureFixture
) -> None:
    net.up()
    with (
        caplog.at_level(logging.INFO, logger="pipeline.chain"),
        NewHeads(net.net.endpoint) as heads,
    ):
        # a (re)opened subscription announces the current head; then nothing comes, because
        # chopsticks makes no block unless asked
        seen = [heads.next(1.0) for _ in range(4)]
    assert seen.count(None) == 2, seen
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert caplog.text.count("for a while; reopening the subscription") == 2
