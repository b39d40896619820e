"""Small readers the suites share: SCALE bits of runtime API answers, notes, storage maps."""

from __future__ import annotations

from typing import Any

from scalecodec.utils.ss58 import ss58_encode
from substrateinterface.utils.hasher import xxh128

from pipeline import chainstate
from pipeline.chain import Chain


def state_call(chain: Chain, method: str, data: bytes = b"") -> bytes:
    """A runtime API call at the head; the SCALE-encoded answer."""
    result = chain.rpc("state_call", [method, "0x" + data.hex()])
    return bytes.fromhex(str(result).removeprefix("0x"))


def compact(data: bytes, pos: int = 0) -> tuple[int, int]:
    """A SCALE compact integer at `pos`: (value, position after it)."""
    mode = data[pos] & 0b11
    if mode == 0:
        return data[pos] >> 2, pos + 1
    if mode in (1, 2):
        size = 2 if mode == 1 else 4
        return int.from_bytes(data[pos : pos + size], "little") >> 2, pos + size
    size = (data[pos] >> 2) + 4
    return int.from_bytes(data[pos + 1 : pos + 1 + size], "little"), pos + 1 + size


def note_text(value: Any) -> str:
    """A note's text, whether stored as raw text (storage version 0) or as a `Note` struct."""
    text = value["text"] if isinstance(value, dict) else value
    if isinstance(text, str) and text.startswith("0x"):
        try:
            return bytes.fromhex(text[2:]).decode()
        except ValueError:
            return text
    return str(text)


def map_accounts(
    chain: Chain, pallet: str, item: str, ss58_format: int, block_hash: str
) -> list[str]:
    """Accounts keyed in a Blake2_128Concat(AccountId) map at a block, by raw key scan."""
    prefix = "0x" + (xxh128(pallet.encode()) + xxh128(item.encode())).hex()
    accounts: list[str] = []
    start = None
    while True:
        page = chain.rpc("state_getKeysPaged", [prefix, 500, start, block_hash])
        if not page:
            return accounts
        accounts += [ss58_encode(key[-64:], ss58_format) for key in page]
        start = page[-1]


def fork_point(mirror: Chain, origin: Chain) -> tuple[int, str]:
    """The block of `origin` whose state the mirror carries: the one its fork-off spec names
    (a new chain from that state), else the newest block both share (a chopsticks fork)."""
    forked_from = (mirror.rpc("system_properties") or {}).get(chainstate.FORKED_FROM)
    if forked_from is not None:
        if forked_from.get("genesis") != origin.block_hash(0):
            raise AssertionError(
                f"{mirror.endpoint} was forked off another chain than {origin.endpoint}"
            )
        return int(forked_from["number"]), str(forked_from["block"])
    low, high = 0, min(mirror.block_number(), origin.block_number())
    if mirror.block_hash(low) != origin.block_hash(low):
        raise AssertionError(
            f"{mirror.endpoint} and {origin.endpoint} do not share a genesis: not a mirror"
        )
    while low < high:  # invariant: block `low` is shared
        middle = (low + high + 1) // 2
        if mirror.block_hash(middle) == origin.block_hash(middle):
            low = middle
        else:
            high = middle - 1
    return low, origin.block_hash(low)
