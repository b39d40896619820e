"""Chopsticks' dev RPCs (JSON-RPC over HTTP; chopsticks serves HTTP and ws on one port):
make blocks (`dev_newBlock`), write storage (`dev_setStorage`), re-run a block with the
runtime's log (`dev_runBlock`). Only ever sent to networks on this machine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlparse

import requests

from pipeline.chain import is_local_endpoint
from pipeline.errors import PipelineError

RPC_TIMEOUT_S: Final = 10.0


def http_url(endpoint: str) -> str:
    parsed = urlparse(endpoint)
    scheme = {"ws": "http", "wss": "https"}.get(parsed.scheme, parsed.scheme)
    return parsed._replace(scheme=scheme).geturl()


def rpc(
    endpoint: str, method: str, params: list[Any] | None = None, timeout: float = RPC_TIMEOUT_S
) -> Any:
    """One JSON-RPC call to a local network, never through a proxy."""
    with requests.Session() as session:
        session.trust_env = False  # HTTP(S)_PROXY would send 127.0.0.1 to the proxy
        response = session.post(
            http_url(endpoint),
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []},
            timeout=timeout,
        )
    response.raise_for_status()
    body = response.json()
    if "error" in body:
        raise PipelineError(
            f"{endpoint} refused {method}: {body['error'].get('message', body['error'])}"
        )
    return body.get("result")


def produce_blocks(endpoint: str, n: int = 1) -> int:
    """Make `n` blocks now on a local chopsticks network (time passes by blocks there); returns
    the new head number. Refuses anything that is not on this machine."""
    if not is_local_endpoint(endpoint):
        raise PipelineError(
            f"refusing to produce blocks on {endpoint}: "
            "dev_newBlock is only for local chopsticks networks"
        )
    if n < 1:
        raise PipelineError(f"produce_blocks needs n >= 1, got {n}")
    try:
        rpc(endpoint, "dev_newBlock", [{"count": n}], timeout=RPC_TIMEOUT_S + 5 * n)
        return int(rpc(endpoint, "chain_getHeader")["number"], 16)
    except requests.RequestException as exc:
        raise PipelineError(
            f"cannot reach {endpoint}: {exc}; is the node up? (`invoke net.up`)"
        ) from exc


def set_storage(
    endpoint: str, changes: Mapping[str, Any] | Sequence[tuple[str, str | None]]
) -> None:
    """Overwrite storage on a local fork (`dev_setStorage`): by pallet and item name, or raw
    (hex key, hex value) pairs, a None value deleting the key."""
    _require_local(endpoint, "dev_setStorage")
    rpc(endpoint, "dev_setStorage", [changes])


def block_hash(endpoint: str, number: int) -> str:
    return str(rpc(endpoint, "chain_getBlockHash", [number]))


def run_block(endpoint: str, number: int, timeout: float) -> list[Mapping[str, Any]]:
    """Re-run block `number` on its parent (`dev_runBlock`): its phases, each with the
    runtime's own log lines."""
    _require_local(endpoint, "dev_runBlock")
    block = rpc(endpoint, "chain_getBlock", [block_hash(endpoint, number)])
    header = block["block"]["header"]
    replay = {
        "includeRaw": False,
        "parent": header["parentHash"],
        "block": {"header": header, "extrinsics": block["block"]["extrinsics"]},
    }
    phases: list[Mapping[str, Any]] = rpc(endpoint, "dev_runBlock", [replay], timeout=timeout).get(
        "phases", []
    )
    return phases


def _require_local(endpoint: str, method: str) -> None:
    if not is_local_endpoint(endpoint):
        raise PipelineError(
            f"refusing to send {method} to {endpoint}: dev RPCs are only for local chopsticks "
            "networks"
        )
