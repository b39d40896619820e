"""A live chain's whole state, and the fork-off: a raw chain spec that carries it.

`snapshot` reads every top-level key and value at a block over RPC (any endpoint): the migration
gate runs try-runtime on it, and `fork_off_spec` lays it over a fresh spec of the same runtime, so
a staging network of real nodes starts from production's state the way Joystream rehearsed its
upgrades. Everything of the live chain is kept (balances, council, notes, `:code`) except what
makes a chain this chain's consensus: System (but its accounts), the block authors' and
finality pallets and Sudo come from the fresh spec, with its validators and its sudo key.
`System.LastRuntimeUpgrade` is dropped, so `on_runtime_upgrade` runs on the fork's first block as
after a real upgrade. Child tries are not copied (the example runtime has none).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pipeline import executor
from pipeline.chain import Chain
from pipeline.project import DEFAULT_PRESET
from pipeline.wasm_exec import twox

SNAPSHOT_PAGE: Final = 1000
# Pallets whose state is the fresh spec's: who authors and finalizes blocks, who is sudo, and
# System's chain bookkeeping (block hashes, number, events).
FRESH_PALLETS: Final = ("System", "Aura", "Babe", "Grandpa", "Session", "Authorship", "Sudo")


def storage_prefix(pallet: str, item: str | None = None) -> str:
    """`0x` + twox128(pallet) [+ twox128(item)]: where FRAME keeps a pallet's (item's) keys."""
    return "0x" + twox(pallet.encode(), 16).hex() + (twox(item.encode(), 16).hex() if item else "")


LIVE_ITEMS: Final = (storage_prefix("System", "Account"),)  # kept although System is fresh
DROPPED: Final = (storage_prefix("System", "LastRuntimeUpgrade"),)


def snapshot(chain: Chain, block: str) -> dict[bytes, bytes]:
    """Every top-level key and value of the chain at `block`, over RPC.

    Pages overlap on purpose: some servers (chopsticks) return the start key again."""
    keys: set[str] = set()
    start: str | None = None
    while True:
        page = [
            str(k) for k in chain.rpc("state_getKeysPaged", ["0x", SNAPSHOT_PAGE, start, block])
        ]
        fresh = [k for k in page if k not in keys]
        keys.update(page)
        if not fresh or len(page) < SNAPSHOT_PAGE:
            break
        start = max(page)
    ordered = sorted(keys)
    state: dict[bytes, bytes] = {}
    for i in range(0, len(ordered), SNAPSHOT_PAGE):
        for change_set in chain.rpc(
            "state_queryStorageAt", [ordered[i : i + SNAPSHOT_PAGE], block]
        ):
            for key, value in change_set["changes"]:
                if value is not None:
                    state[bytes.fromhex(key[2:])] = bytes.fromhex(value[2:])
    return state


def taken_from_fresh(key: str) -> bool:
    """Whether a fork-off takes this (lowercase hex) key from the fresh spec, not the chain."""
    fresh = tuple(storage_prefix(p) for p in FRESH_PALLETS)
    return key.startswith(fresh) and not key.startswith(LIVE_ITEMS)


FORKED_FROM: Final = "forkedFrom"  # the spec property that says where a fork-off came from


def fork_off_spec(
    live: Mapping[bytes, bytes],
    fresh: Mapping[str, Any],
    *,
    name: str,
    chain_id: str,
    origin: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A raw chain spec: `fresh` (a raw spec of the same runtime, with the staging validators and
    sudo key) carrying the `live` state, under a new name and chain id. `origin` (the live
    chain's genesis hash, the block and its number) goes into the spec's properties as
    `forkedFrom`: a fork-off shares no block with its origin, and the node serves properties
    (`system_properties`), so a suite can find the state it started from. Pure."""
    top = {
        key: "0x" + value.hex()
        for raw, value in live.items()
        if not taken_from_fresh(key := "0x" + raw.hex())
    }
    fresh_top: Mapping[str, str] = fresh["genesis"]["raw"]["top"]
    top.update({k.lower(): v for k, v in fresh_top.items() if taken_from_fresh(k.lower())})
    for key in DROPPED:
        top.pop(key, None)
    properties = dict(fresh.get("properties") or {})
    if origin is not None:
        properties[FORKED_FROM] = dict(origin)
    return {
        **fresh,
        "name": name,
        "id": chain_id,
        "properties": properties,
        "genesis": {"raw": {"top": dict(sorted(top.items())), "childrenDefault": {}}},
    }


@dataclass(frozen=True)
class ForkOff:
    """A fork-off spec and where its state came from."""

    spec: dict[str, Any]
    block: str  # the block whose state it carries (the finalized head by default)
    number: int
    live_keys: int  # keys read from the chain
    fresh_keys: int  # keys taken from the fresh spec


def fork_off(
    chain: Chain,
    *,
    name: str,
    chain_id: str,
    preset: str = DEFAULT_PRESET,
    block: str | None = None,
) -> ForkOff:
    """The state of `chain` at `block` (default: its finalized head, which no reorg takes
    back) over a fresh spec of the very runtime it runs (its `:code`, genesis `preset`)."""
    at = block or str(chain.rpc("chain_getFinalizedHead"))
    number = int(chain.rpc("chain_getHeader", [at])["number"], 16)
    live = snapshot(chain, at)
    with tempfile.TemporaryDirectory(prefix="pipeline-fork-off-") as tmp:
        code = Path(tmp) / "runtime.wasm"
        code.write_bytes(chain.code(at))
        fresh = executor.genesis_spec(code, preset)
    origin = {"genesis": chain.block_hash(0), "block": at, "number": number}
    spec = fork_off_spec(live, fresh, name=name, chain_id=chain_id, origin=origin)
    top = spec["genesis"]["raw"]["top"]
    fresh_keys = sum(1 for key in top if taken_from_fresh(key))
    return ForkOff(spec, at, number, len(top) - fresh_keys, fresh_keys)
