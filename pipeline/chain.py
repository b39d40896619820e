"""One connection to a node: calls, signed submissions, events, storage; reconnects when dropped.

Built on substrate-interface. Reads are retried over a fresh connection (bounded attempts and
time); a broadcast is never re-sent automatically, because only the caller (with its ledger)
can tell whether a re-send would submit twice. Keypairs are passed in and never printed.
Its waits (inclusion, finality, an event) report to the connection's `progress` while they last.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlparse

import websocket
from scalecodec.types import GenericCall, GenericExtrinsic
from substrateinterface import Keypair, SubstrateInterface
from substrateinterface.exceptions import SubstrateRequestException
from websocket import (
    WebSocketBadStatusException,
    WebSocketException,
    WebSocketTimeoutException,
)

from pipeline import config
from pipeline.config import Environment, Network
from pipeline.errors import PipelineError
from pipeline.progress import until, waiting
from pipeline.scale_metadata import decode_versioned

log = logging.getLogger(__name__)

CODE_KEY = "0x3a636f6465"  # ":code"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
T = TypeVar("T")
# What a dropped or refused connection raises, from the socket up through websocket-client.
CONNECTION_ERRORS = (WebSocketException, OSError)
# How long a first connection keeps trying a port that refuses it: long enough for a node that
# is starting, short enough that nobody waits for a node that is not there.
REFUSED_GRACE = 3.0


def is_local_endpoint(url: str) -> bool:
    """True for a node on this machine (loopback), where dev-only RPCs may be used."""
    host = urlparse(url).hostname or ""
    return host in LOCAL_HOSTS or host.startswith("127.")


def connection_failure(exc: BaseException) -> str:
    """One line for why a connection attempt failed (never a server's raw handshake dump)."""
    if isinstance(exc, WebSocketBadStatusException):
        status = f"HTTP {exc.status_code} {exc.status_message or ''}".rstrip()
        return f"the server answered the websocket handshake with {status}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listens there)"
    return str(exc)


def retry_window(exc: BaseException, *, reconnecting: bool, connect_timeout: float) -> float:
    """Seconds worth retrying after a failed connection attempt: only what can recover.

    A client error (HTTP 4xx) stays one; a refused first connection gets a short grace (a node
    starting up); a node that dropped us may be restarting, so reconnects keep the full time.
    """
    if isinstance(exc, WebSocketBadStatusException) and exc.status_code < 500:
        return 0.0
    if isinstance(exc, ConnectionRefusedError) and not reconnecting:
        return min(REFUSED_GRACE, connect_timeout)
    return connect_timeout


def blake2_256_hex(data: bytes) -> str:
    """The identity of a blob (runtime, call): blake2-256, 0x-prefixed lowercase hex."""
    return "0x" + hashlib.blake2b(data, digest_size=32).hexdigest()


def backoff_delays(attempts: int, first: float = 0.25, cap: float = 4.0) -> list[float]:
    """Waits before each reconnect attempt: doubling from `first`, never above `cap`."""
    return [min(cap, first * 2**i) for i in range(attempts)]


# Blocks a signed extrinsic stays valid: a send stuck in some node's pool expires after about
# 6 minutes of 6-second blocks instead of lingering until that node restarts.
MORTAL_PERIOD = 64
# Finality lag beyond which the era starts at the best block: an era born at a finalized block
# this far back would be close to dead on arrival (finality stalled, e.g. a validator down).
MAX_FINALITY_LAG = 16


def mortal_era(best: int, finalized: int) -> dict[str, int]:
    """The era to sign with (substrate-interface's `era`): born at the finalized block, which
    no reorg can remove, unless finality lags so far that the era would be nearly over."""
    born = finalized if best - finalized <= MAX_FINALITY_LAG else best
    return {"period": MORTAL_PERIOD, "current": born}


def pool_verdict(status: Any, finality: bool) -> tuple[str, str | None]:
    """What one `author_submitAndWatchExtrinsic` status means for a sender that waits for
    inclusion (or finality): ("landed", block hash), ("gone", why) or ("wait", None).

    Ready, broadcast, retracted and a block before finality are steps on the way. Dropped,
    invalid, usurped and a finality timeout mean the pool gave it up (or replaced it): the
    signer's nonce on chain tells whether something with that nonce landed instead."""
    if isinstance(status, Mapping) and len(status) == 1:
        kind, value = next(iter(status.items()))
        kind = str(kind).lower()
        if kind == "finalized" or (kind == "inblock" and not finality):
            return "landed", str(value)
        if kind == "usurped":
            return "gone", f"usurped in the pool by {value}"
        if kind == "finalitytimeout":
            return "gone", f"its block {value} was not finalized in time"
        return "wait", None
    if status in ("dropped", "invalid"):
        return "gone", f"{status} by the pool"
    return "wait", None


def extrinsic_index(extrinsics: list[str], extrinsic_hash: str) -> int | None:
    """Where an extrinsic (by hash) is among a block's encoded extrinsics (`chain_getBlock`),
    or None: a pool may report a transaction as included when another one with the same sender
    and nonce is (an earlier send of the same call, from another node's pool)."""
    for index, encoded in enumerate(extrinsics):
        if blake2_256_hex(bytes.fromhex(encoded.removeprefix("0x"))) == extrinsic_hash:
            return index
    return None


@dataclass(frozen=True)
class Call:
    """A runtime call by name; params may nest other Calls (e.g. Sudo.sudo(call=...))."""

    module: str
    function: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.module}.{self.function}"


@dataclass(frozen=True)
class Event:
    module: str
    name: str
    attributes: Any
    extrinsic_idx: int | None  # None for events outside an extrinsic (initialization/finalization)


@dataclass(frozen=True)
class Signed:
    """A signed extrinsic not yet broadcast: what a ledger records before sending it."""

    call: Call
    signer: str  # ss58 address
    nonce: int
    call_hash: str
    extrinsic_hash: str
    extrinsic: GenericExtrinsic = field(repr=False, compare=False)


@dataclass(frozen=True)
class Receipt:
    call: Call
    extrinsic_hash: str
    block_hash: str
    block_number: int
    events: tuple[Event, ...]
    finalized: bool = False  # the block was finalized when the receipt was made

    def find(self, module: str, name: str) -> list[Event]:
        return [e for e in self.events if e.module == module and e.name == name]


# TransactionValidityError variants (as chopsticks and substrate nodes name them) and what they
# mean for the person who signed.
VALIDITY_HINTS = {
    "payment": "the signer cannot pay the fees",
    "stale": "the nonce is already used",
    "future": "the nonce is ahead of the account's",
    "badproof": (
        "bad signature: wrong genesis hash, spec/transaction version or metadata hash, "
        "or its mortal era is over (signed too many blocks ago)"
    ),
    "exhaustsresources": "the block is full",
    "badsigner": "this account may not sign this call",
    "call": "the runtime refuses this call in a transaction",
    "mandatory": "a mandatory (inherent) call cannot be submitted",
}


def describe_rejection(error: Any) -> str:
    """One line for a JSON-RPC error refusing a transaction, from a node's
    `{code, message, data}` or chopsticks' `{"invalid":{"payment":null}}` message."""
    if not isinstance(error, dict):
        return str(error)
    message, data = error.get("message", ""), error.get("data")
    try:
        parsed = json.loads(message) if isinstance(message, str) else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and len(parsed) == 1:
        validity, inner = next(iter(parsed.items()))
        reason = next(iter(inner)) if isinstance(inner, dict) and inner else str(inner)
        hint = VALIDITY_HINTS.get(reason.lower())
        text = f"{validity} transaction ({reason})"
        return f"{text}: {hint}" if hint else text
    return f"{message}: {data}" if data else str(message)


def dispatch_error_name(
    error: Any, module_name: Callable[[int], str], error_name: Callable[[int, int], str]
) -> str:
    """Name a DispatchError value as decoded by substrate-interface: `Pallet.Error` for module
    errors (index/error bytes resolved through the metadata), the variant path otherwise."""
    if isinstance(error, str):
        return error
    if not isinstance(error, dict) or len(error) != 1:
        return str(error)
    variant, inner = next(iter(error.items()))
    if variant == "Module":
        if isinstance(inner, (tuple, list)):
            index, code = inner[0], inner[1]
        else:
            index, code = inner["index"], inner["error"]
        if isinstance(code, str):  # [u8; 4] as hex: the first byte is the error index
            code = int(code[2:4], 16)
        return f"{module_name(int(index))}.{error_name(int(index), int(code))}"
    if inner is None:
        return str(variant)
    return f"{variant}.{dispatch_error_name(inner, module_name, error_name)}"


class _SharedMetadataInterface(SubstrateInterface):  # type: ignore[misc]
    """substrate-interface that takes decoded metadata from the process-wide cache: it decodes
    each runtime's metadata per connection otherwise (about a second each, several per stage)."""

    def get_block_metadata(self, block_hash: str | None = None, decode: bool = True) -> Any:
        if not decode:
            return super().get_block_metadata(block_hash, decode=False)
        response = self.rpc_request("state_getMetadata", [block_hash] if block_hash else None)
        if "error" in response:
            raise SubstrateRequestException(response["error"]["message"])
        result = response.get("result")
        return decode_versioned(bytes.fromhex(result.removeprefix("0x"))) if result else response


class BroadcastUncertain(PipelineError):
    """The extrinsic left this machine but its fate is unknown (the connection dropped before
    its inclusion was seen): it may land, so it must not be recorded as failed or sent again."""


class NotIncluded(PipelineError):
    """The pool dropped the extrinsic, or it was not included (finalized) in time: it may still
    be pending, or gone for good (its mortal era expired). The signer's nonce on chain tells."""


class AlreadyPending(PipelineError):
    """The pool refused the extrinsic: one of the signer's with the same nonce already waits
    there (JSON-RPC 1013/1014). Nothing of this send can land; the waiting one may."""


# A pool's JSON-RPC error codes for "this signer and nonce are taken by a waiting transaction":
# already imported (1013), priority too low to replace it (1014).
POOL_TAKEN_CODES = frozenset({1013, 1014})


class Chain:
    """A connection to one node. Use as a context manager, or call close()."""

    def __init__(
        self,
        endpoint: str,
        *,
        timeout: float = 60.0,
        connect_timeout: float = 15.0,
        reconnect_attempts: int = 5,
        local: bool | None = None,
        finalized: bool = False,
        progress: Callable[[str], None] = log.info,
    ) -> None:
        """`local`: the endpoint is a local environment's network (default: a loopback host).
        `finalized`: a submission is done when its block is finalized, not merely included
        (a chain whose finality lags its best block can still drop an included block).
        `progress` hears about waits on this chain that outlast a heartbeat."""
        self.endpoint = endpoint
        self.progress = progress
        self._local = is_local_endpoint(endpoint) if local is None else local
        self.finalized = finalized
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._reconnect_attempts = reconnect_attempts
        self._substrate = self._connect()

    # --- connection -------------------------------------------------------------------------
    def _unreachable(self, reason: object) -> PipelineError:
        hint = (
            "is the node up? (`invoke net.up`)"
            if self._local
            else ("is the endpoint right and reachable from here?")
        )
        return PipelineError(f"cannot reach {self.endpoint}: {reason}; {hint}")

    def _connect(self, deadline: float | None = None) -> SubstrateInterface:
        """Open a connection, retrying with backoff until the deadline (default: connect_timeout
        from now)."""
        reconnecting = deadline is not None
        started = time.monotonic()
        deadline = deadline or started + self._connect_timeout
        delays = iter(backoff_delays(64))
        # websocket-client checks every text frame's UTF-8 in pure Python: ~0.3 s (more on a
        # busy machine) for each read of `:code`; the JSON decoder rejects bad text anyway.
        ws_options: dict[str, Any] = {"timeout": self._timeout, "skip_utf8_validation": True}
        if is_local_endpoint(self.endpoint):
            # websocket-client sends even loopback through $http_proxy, and reads a no-proxy
            # list only beside an explicit proxy: name one, with this host exempt from it.
            host = urlparse(self.endpoint).hostname
            ws_options.update(http_proxy_host=host, http_proxy_port=1, http_no_proxy=[host])
        while True:
            try:
                return _SharedMetadataInterface(
                    url=self.endpoint, ws_options=dict(ws_options), auto_reconnect=False
                )
            except CONNECTION_ERRORS as exc:
                delay = next(delays)
                window = retry_window(
                    exc, reconnecting=reconnecting, connect_timeout=self._connect_timeout
                )
                if time.monotonic() + delay > min(deadline, started + window):
                    raise self._unreachable(connection_failure(exc)) from exc
                time.sleep(delay)

    def _retrying(self, what: str, operation: Callable[[SubstrateInterface], T]) -> T:
        """Run a read; when the connection drops, reconnect and run it again, at most
        reconnect_attempts times and within one connect_timeout of reconnecting in all."""
        deadline: float | None = None
        last: BaseException | None = None
        for attempt in range(self._reconnect_attempts + 1):
            if attempt:
                log.warning("%s: lost %s (%s); reconnecting", what, self.endpoint, last)
                deadline = deadline or time.monotonic() + self._connect_timeout
                with contextlib.suppress(*CONNECTION_ERRORS):
                    self._substrate.close()
                try:
                    self._substrate = self._connect(deadline)
                except PipelineError as exc:
                    last = exc.__cause__ or exc
                    break
            try:
                return operation(self._substrate)
            except CONNECTION_ERRORS as exc:
                last = exc
        raise self._unreachable(f"{what} failed, connection lost ({last})")

    def close(self) -> None:
        with contextlib.suppress(*CONNECTION_ERRORS):
            self._substrate.close()

    def __enter__(self) -> Chain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reads ------------------------------------------------------------------------------
    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        """A raw JSON-RPC call; returns its `result`."""

        def call(s: SubstrateInterface) -> Any:
            try:
                return s.rpc_request(method, params or []).get("result")
            except SubstrateRequestException as exc:
                raise PipelineError(f"{self.endpoint} refused {method}: {exc}") from exc

        return self._retrying(method, call)

    def runtime_version(self, block_hash: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.rpc(
            "state_getRuntimeVersion", [block_hash] if block_hash else []
        )
        return result

    def block_number(self) -> int:
        return int(self.rpc("chain_getHeader")["number"], 16)

    def block_hash(self, number: int | None = None) -> str:
        result: str | None = self.rpc("chain_getBlockHash", [] if number is None else [number])
        if result is None:
            raise PipelineError(
                f"{self.endpoint} has no block #{number}: ask for a block at or below the head"
            )
        return result

    def storage(self, key: str, block_hash: str | None = None) -> bytes | None:
        """Raw storage value under a hex key."""
        value = self.rpc("state_getStorage", [key, block_hash] if block_hash else [key])
        return None if value is None else bytes.fromhex(value.removeprefix("0x"))

    def code(self, block_hash: str | None = None) -> bytes:
        code = self.storage(CODE_KEY, block_hash)
        if code is None:
            raise PipelineError(f"{self.endpoint} has no :code: it is not a Substrate chain")
        return code

    def code_hash(self, block_hash: str | None = None) -> str:
        return blake2_256_hex(self.code(block_hash))

    def nonce(self, address: str) -> int:
        """Next nonce for the account, counting transactions waiting in the pool: the pool's
        view (`system_accountNextIndex`), not the state's, so that a transaction a killed run
        left pending is not signed over with its own nonce (and then never included)."""
        return int(self.rpc("system_accountNextIndex", [address]))

    def state_nonce(self, address: str) -> int:
        """The account's nonce in the best block's state: what included transactions used up
        (unlike `nonce`, nothing still waiting in the pool counts)."""
        account = self.query("System", "Account", [address])
        return int(account["nonce"]) if isinstance(account, Mapping) else 0

    def query(
        self,
        module: str,
        storage: str,
        params: list[Any] | None = None,
        block_hash: str | None = None,
    ) -> Any:
        """A decoded storage value (`.value` of substrate-interface's query)."""

        def query(s: SubstrateInterface) -> Any:
            try:
                return s.query(module, storage, params or [], block_hash=block_hash).value
            except ValueError as exc:  # StorageFunctionNotFound, bad params
                raise PipelineError(
                    f"cannot query {module}.{storage} on {self.endpoint}: {exc}"
                ) from exc

        return self._retrying(f"{module}.{storage}", query)

    def events(self, block_hash: str) -> list[Event]:
        records = self._retrying("events", lambda s: s.get_events(block_hash=block_hash))
        return [self._event(record.value) for record in records]

    def extrinsic_calls(self, block_hash: str) -> list[Mapping[str, Any]]:
        """The decoded call of each extrinsic of a block, by index (an event's extrinsic_idx)."""
        block = self._retrying("block", lambda s: s.get_block(block_hash=block_hash))
        return [dict(e.value.get("call") or {}) for e in block["extrinsics"]]

    @staticmethod
    def _event(value: Mapping[str, Any]) -> Event:
        return Event(
            module=value["module_id"],
            name=value["event_id"],
            attributes=value["attributes"],
            extrinsic_idx=value.get("extrinsic_idx"),
        )

    def wait_for_event(
        self,
        module: str,
        event: str,
        predicate: Callable[[Event], bool] | None = None,
        timeout: float = 60.0,
        produce_blocks: Callable[[], object] | None = None,
        since: int | None = None,
    ) -> Event:
        """First matching event in blocks from `since` (default: the current head) onwards.

        On a local chain pass `produce_blocks` (e.g. a partial of localnet.produce_blocks) to make
        blocks while waiting; elsewhere the chain's own block time passes.
        """
        deadline = time.monotonic() + timeout
        next_block = self.block_number() if since is None else since
        what = f"{module}.{event} on {self.endpoint}"
        with waiting(self.progress, what, until(timeout)) as now_at:
            while True:
                head = self.block_number()
                while next_block <= head:
                    for found in self.events(self.block_hash(next_block)):
                        if (
                            found.module == module
                            and found.name == event
                            and (predicate is None or predicate(found))
                        ):
                            return found
                    next_block += 1
                now_at(f"{what} (read up to block #{head})")
                if time.monotonic() >= deadline:
                    raise PipelineError(
                        f"no {module}.{event} on {self.endpoint} within {timeout:.0f}s "
                        f"(up to block #{head}): "
                        "check that the triggering call went through"
                    )
                if produce_blocks is not None:
                    produce_blocks()
                else:
                    time.sleep(1.0)

    # --- calls and submissions --------------------------------------------------------------
    def compose(self, call: Call) -> GenericCall:
        """The SCALE call for the connected runtime (nested Calls composed first)."""
        params = {k: self.compose(v) if isinstance(v, Call) else v for k, v in call.params.items()}

        def compose(s: SubstrateInterface) -> GenericCall:
            try:
                return s.compose_call(call.module, call.function, params)
            except (ValueError, TypeError, NotImplementedError) as exc:
                raise PipelineError(f"cannot compose {call} for this runtime: {exc}") from exc

        return self._retrying(f"compose {call}", compose)

    def sign(self, call: Call, keypair: Keypair, *, nonce: int | None = None) -> Signed:
        generic = self.compose(call)
        use_nonce = self.nonce(keypair.ss58_address) if nonce is None else nonce
        finalized = self.rpc("chain_getFinalizedHead")
        era = mortal_era(
            self.block_number(), int(self.rpc("chain_getHeader", [finalized])["number"], 16)
        )
        extrinsic = self._retrying(
            f"sign {call}",
            lambda s: s.create_signed_extrinsic(
                call=generic, keypair=keypair, nonce=use_nonce, era=era
            ),
        )
        return Signed(
            call=call,
            signer=keypair.ss58_address,
            nonce=use_nonce,
            call_hash=blake2_256_hex(generic.data.data),
            extrinsic_hash="0x" + extrinsic.extrinsic_hash.hex(),
            extrinsic=extrinsic,
        )

    def broadcast(self, signed: Signed, *, wait_for_finalization: bool | None = None) -> Receipt:
        """Send once and wait for inclusion or finality (default: the chain's `finalized`);
        raise if the extrinsic failed."""
        finality = self.finalized if wait_for_finalization is None else wait_for_finalization
        landed = "finalized" if finality else "included in a block"
        what = (
            f"{signed.call} from {signed.signer} (nonce {signed.nonce}) to be {landed} "
            f"on {self.endpoint}"
        )
        try:
            with waiting(self.progress, what, until(self._timeout)):
                block_hash = self._watch(signed, finality)
        except SubstrateRequestException as exc:
            error = exc.args[0] if exc.args else exc
            if isinstance(error, Mapping) and error.get("code") in POOL_TAKEN_CODES:
                raise AlreadyPending(
                    f"{signed.call} from {signed.signer}: a transaction with nonce "
                    f"{signed.nonce} already waits in {self.endpoint}'s pool (an earlier send of "
                    "this call, most likely; it may still land): check on chain before sending "
                    "again"
                ) from exc
            raise PipelineError(
                f"{signed.call} from {signed.signer} rejected by {self.endpoint}: "
                f"{describe_rejection(error)}"
            ) from exc
        except WebSocketTimeoutException as exc:
            raise NotIncluded(
                f"{signed.call} not {'finalized' if finality else 'included'} by {self.endpoint}"
                f" within {self._timeout:.0f}s (extrinsic {signed.extrinsic_hash}, nonce"
                f" {signed.nonce}): check on chain before sending again"
            ) from exc
        except CONNECTION_ERRORS as exc:
            raise BroadcastUncertain(
                f"connection to {self.endpoint} lost after sending {signed.call} "
                f"(extrinsic {signed.extrinsic_hash}, nonce {signed.nonce}): "
                "check on chain before sending again"
            ) from exc
        block = (self.rpc("chain_getBlock", [block_hash]) or {}).get("block") or {}
        extrinsic_idx = extrinsic_index(block.get("extrinsics") or [], signed.extrinsic_hash)
        if extrinsic_idx is None:
            raise BroadcastUncertain(
                f"{self.endpoint} reported {signed.call} (extrinsic {signed.extrinsic_hash}, "
                f"nonce {signed.nonce}) in block {block_hash}, which holds another transaction "
                "with that nonce (an earlier send of the same call, most likely): check on "
                "chain before sending again"
            )
        events = tuple(e for e in self.events(block_hash) if e.extrinsic_idx == extrinsic_idx)
        number = int(block["header"]["number"], 16)
        result = Receipt(signed.call, signed.extrinsic_hash, block_hash, number, events, finality)
        for failed in result.find("System", "ExtrinsicFailed"):
            reason = self.dispatch_error(failed.attributes["dispatch_error"])
            raise PipelineError(
                f"{signed.call} from {signed.signer} failed in block #{number}: {reason}"
            )
        log.info(
            "%s from %s %s in block #%d",
            signed.call,
            signed.signer,
            "finalized" if finality else "included",
            number,
        )
        return result

    def _watch(self, signed: Signed, finality: bool) -> str:
        """Send over the current connection and follow the pool's statuses to the block that
        includes (or finalizes) the extrinsic; NotIncluded as soon as the pool gives it up."""

        def on_status(message: Mapping[str, Any], _update: int, subscription: str) -> str | None:
            verdict, detail = pool_verdict(message.get("params", {}).get("result"), finality)
            if verdict == "wait":
                return None
            with contextlib.suppress(SubstrateRequestException, *CONNECTION_ERRORS):
                self._substrate.rpc_request("author_unwatchExtrinsic", [subscription])
            if verdict == "gone":
                raise NotIncluded(
                    f"{signed.call} from {signed.signer} (extrinsic {signed.extrinsic_hash}, "
                    f"nonce {signed.nonce}) {detail} on {self.endpoint}"
                )
            return detail

        return str(
            self._substrate.rpc_request(
                "author_submitAndWatchExtrinsic",
                [str(signed.extrinsic.data)],
                result_handler=on_status,
            )
        )

    def submit(
        self, call: Call, keypair: Keypair, *, wait_for_finalization: bool | None = None
    ) -> Receipt:
        """Sign with the account's next nonce, send, wait for inclusion; raise if it failed."""
        return self.broadcast(self.sign(call, keypair), wait_for_finalization=wait_for_finalization)

    def dispatch_error(self, error: Any) -> str:
        """`Pallet.Error` (or the DispatchError variant) for a decoded DispatchError."""
        metadata = self._substrate.metadata

        def module_name(index: int) -> str:
            try:
                return str(metadata.get_pallet_by_index(index).name)
            except ValueError:
                return f"pallet#{index}"

        def error_name(index: int, code: int) -> str:
            try:
                return str(metadata.get_module_error(module_index=index, error_index=code).name)
            except (AttributeError, IndexError, TypeError):
                return f"error#{code}"

        return dispatch_error_name(error, module_name, error_name)


def compose_nested(chain: Chain, call: Call) -> Any:
    """Compose a call whose parameters may hold Calls, also inside lists (batches)."""
    params: dict[str, Any] = {}
    for name, value in call.params.items():
        if isinstance(value, Call):
            params[name] = compose_nested(chain, value)
        elif isinstance(value, list) and any(isinstance(v, Call) for v in value):
            params[name] = [compose_nested(chain, v) if isinstance(v, Call) else v for v in value]
        else:
            params[name] = value
    return chain.compose(Call(call.module, call.function, params))


class NewHeads:
    """New block numbers from `chain_subscribeNewHeads` on a websocket of its own.

    A dropped connection is reopened and resubscribed with backoff (bounded); a connection that
    stays silent longer than `idle` is treated as dropped. Use as a context manager.
    """

    def __init__(
        self, endpoint: str, *, connect_timeout: float = 15.0, reconnect_attempts: int = 5
    ) -> None:
        self.endpoint = endpoint
        self._connect_timeout = connect_timeout
        self._attempts = reconnect_attempts
        self._socket: websocket.WebSocket | None = None
        self._subscription: str | None = None
        self._subscribe()

    def _subscribe(self) -> None:
        self.close()
        ws = websocket.create_connection(self.endpoint, timeout=self._connect_timeout)
        ws.send(
            json.dumps(
                {"jsonrpc": "2.0", "id": 1, "method": "chain_subscribeNewHeads", "params": []}
            )
        )
        while True:  # notifications may not arrive before the subscription id
            message = json.loads(ws.recv())
            if message.get("id") == 1:
                if "error" in message:
                    ws.close()
                    raise PipelineError(
                        f"{self.endpoint} refused chain_subscribeNewHeads: {message['error']}"
                    )
                self._subscription = str(message["result"])
                break
        self._socket = ws

    def _resubscribe(self, reason: object, *, idle: bool = False) -> None:
        """Reopen the subscription; `idle`: nothing was lost, no head came for a while (a
        chain that makes blocks only when asked is quiet), so the first try is not a warning."""
        last: object = reason
        for attempt, delay in enumerate(backoff_delays(self._attempts)):
            if idle and not attempt:
                log.info(
                    "no new head from %s for a while; reopening the subscription", self.endpoint
                )
            else:
                log.warning("head subscription to %s lost (%s); resubscribing", self.endpoint, last)
            time.sleep(delay)
            try:
                self._subscribe()
                return
            except CONNECTION_ERRORS as exc:
                last = exc
        raise PipelineError(
            f"lost the connection to {self.endpoint} and could not resubscribe after "
            f"{self._attempts} attempts ({last}): check the node, then run the command again "
            "(it resumes where the chain is)"
        )

    def next(self, wait: float) -> int | None:
        """The number of the next new head, or None when none came within `wait` seconds (the
        subscription is then reopened, in case the connection died silently)."""
        deadline = time.monotonic() + wait
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self._resubscribe("no new head", idle=True)
                return None
            try:
                assert self._socket is not None
                self._socket.settimeout(left)
                message = json.loads(self._socket.recv())
            except WebSocketTimeoutException:
                continue
            except CONNECTION_ERRORS as exc:
                self._resubscribe(exc)
                return None
            except ValueError:
                continue
            params = message.get("params")
            if (
                isinstance(params, Mapping)
                and str(params.get("subscription")) == self._subscription
                and isinstance(params.get("result"), Mapping)
            ):
                return int(str(params["result"]["number"]), 16)

    def close(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(*CONNECTION_ERRORS):
                self._socket.close()
            self._socket = None

    def __enter__(self) -> NewHeads:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(
    env: Environment,
    network: Network | str = "production",
    progress: Callable[[str], None] = log.info,
) -> Chain:
    """The one way to open a network of an environment (a role, a name or a Network), with the
    environment's timeouts; its long waits report to `progress`."""
    net = config.network(env, network) if isinstance(network, str) else network
    return Chain(
        net.endpoint,
        timeout=env.inclusion_timeout,
        connect_timeout=env.connect_timeout,
        local=env.local,
        finalized=not net.chopsticks,  # chopsticks finalizes every block it makes
        progress=progress,
    )
