"""Short hashes for terminal tables: `0x589f8ab5…7cd0` keeps a row inside 80 columns.

Only what people read in a terminal is shortened; `--json`, the ledger and the release report
keep every hash whole, so a hash is always copyable from somewhere exact.
"""

from __future__ import annotations

import re

HEAD = 8  # hex digits kept after "0x": enough to tell two hashes apart by eye
TAIL = 4
# 0x and at least 32 hex digits (16 bytes): hashes and keys, not 8-byte runtime API ids.
_LONG_HEX = re.compile(r"0x[0-9a-fA-F]{32,}")


def short_hash(value: str) -> str:
    """The first 8 and last 4 digits (after any `0x`) of a hash, public key or SS58 address;
    a value already that short is unchanged."""
    prefix = "0x" if value.startswith("0x") else ""
    digits = value.removeprefix("0x")
    if len(digits) <= HEAD + TAIL + 1:
        return value
    return f"{prefix}{digits[:HEAD]}…{digits[-TAIL:]}"


def shorten_hashes(text: str) -> str:
    """The text with every long 0x-hex value (hash, public key) in it shortened."""
    return _LONG_HEX.sub(lambda match: short_hash(match.group()), text)
