"""Substrate's state root: the base-16 Patricia-Merkle trie of sp-trie (LayoutV0 and V1).

Pure: a key/value map in, the 32-byte root out, as `sp_io::storage::root` computes it. The
migration gate needs it to run `TryRuntime_on_runtime_upgrade` in this process (FRAME compares
roots around the checks) and to compare the states of two runs. Tested against the state roots
in real block headers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Final

from pipeline.artifact import scale_compact

# Node header prefixes (sp-trie's node_header) and how many of the first byte's bits they use.
LEAF: Final = (0b01 << 6, 2)
BRANCH_NO_VALUE: Final = (0b10 << 6, 2)
BRANCH_WITH_VALUE: Final = (0b11 << 6, 2)
HASHED_VALUE_LEAF: Final = (0b001 << 5, 3)
HASHED_VALUE_BRANCH: Final = (0b0001 << 4, 4)
EMPTY_NODE: Final = b"\x00"
# LayoutV1 stores a value of at least this many bytes as its hash (a separate value node).
V1_VALUE_THRESHOLD: Final = 33
HASH_LENGTH: Final = 32

Item = tuple[bytes, bytes]  # key as nibbles (one per byte), value


def blake2_256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def state_root(state: Mapping[bytes, bytes], state_version: int = 1) -> bytes:
    """The trie root of `state` (top-level keys only) in layout V0 or V1."""
    if not state:
        return blake2_256(EMPTY_NODE)
    items = sorted((_nibbles(key), value) for key, value in state.items())
    return blake2_256(_node(items, 0, state_version))


def _nibbles(key: bytes) -> bytes:
    return bytes(n for byte in key for n in (byte >> 4, byte & 0x0F))


def _header(prefix: tuple[int, int], size: int) -> bytes:
    """The prefix bits, then the partial key's nibble count (continued in following bytes)."""
    mask, bits = prefix
    max_value = 255 >> bits
    if size < max_value:
        return bytes([mask | size])
    out, remaining = [mask | max_value], size - max_value
    while remaining >= 255:
        out.append(255)
        remaining -= 255
    out.append(remaining)
    return bytes(out)


def _partial(nibbles: bytes) -> bytes:
    """Nibbles packed two per byte; an odd count puts the first one alone in the low half."""
    odd = len(nibbles) % 2
    out = bytearray([nibbles[0]] if odd else [])
    for i in range(odd, len(nibbles), 2):
        out.append(nibbles[i] << 4 | nibbles[i + 1])
    return bytes(out)


def _value(value: bytes, state_version: int) -> tuple[bool, bytes]:
    """Whether the value is stored hashed, and its encoding in the node."""
    if state_version >= 1 and len(value) >= V1_VALUE_THRESHOLD:
        return True, blake2_256(value)
    return False, scale_compact(len(value)) + value


def _common(items: Sequence[Item], depth: int) -> int:
    first, last = items[0][0], items[-1][0]  # sorted: their common prefix is everyone's
    end = min(len(first), len(last))
    length = depth
    while length < end and first[length] == last[length]:
        length += 1
    return length - depth


def _node(items: Sequence[Item], depth: int, state_version: int) -> bytes:
    """The encoded node holding `items` (sorted, all sharing their first `depth` nibbles)."""
    if len(items) == 1:
        key, leaf_value = items[0]
        hashed, encoded = _value(leaf_value, state_version)
        partial = key[depth:]
        return (
            _header(HASHED_VALUE_LEAF if hashed else LEAF, len(partial))
            + _partial(partial)
            + encoded
        )
    split = depth + _common(items, depth)
    partial = items[0][0][depth:split]
    value: bytes | None = None
    rest = list(items)
    if len(rest[0][0]) == split:  # the branch's own value sorts first
        value = rest.pop(0)[1]
    children: dict[int, list[Item]] = {}
    for key, item_value in rest:
        children.setdefault(key[split], []).append((key, item_value))
    bitmap = sum(1 << index for index in children)
    if value is None:
        header, encoded = _header(BRANCH_NO_VALUE, len(partial)), b""
    else:
        hashed, encoded = _value(value, state_version)
        header = _header(HASHED_VALUE_BRANCH if hashed else BRANCH_WITH_VALUE, len(partial))
    out = bytearray(header + _partial(partial) + bitmap.to_bytes(2, "little") + encoded)
    for index in sorted(children):
        child = _node(children[index], split + 1, state_version)
        reference = blake2_256(child) if len(child) >= HASH_LENGTH else child
        out += scale_compact(len(reference)) + reference
    return bytes(out)
