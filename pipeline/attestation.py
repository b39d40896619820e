"""Council members' reproducibility attestations: the statement, its reading, the tally.

A member who rebuilt a proposed runtime from source posts a small, versioned statement in a
`System.remark_with_event`: which motion (index and proposal hash), which code hash, from
which commit and builder image, and the verdict. Everyone else reads the statements from the
chain and counts them. Pure: encoding, parsing and counting need no chain, so the rules that
decide whether a release may close, enact or fall back are tested without one.

Counted: the newest statement of each current council member about this motion and this code
hash. Shown but not counted: a statement from a non-member, about another motion, naming
another code hash, or one that does not parse.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

PREFIX: Final = "runtime-pipeline/attest/"
VERSION: Final = 1
MAX_STATEMENT: Final = 1024  # bytes; a remark this size costs a member little
_HASH: Final = re.compile(r"0x[0-9a-f]{64}")
_COMMIT: Final = re.compile(r"[0-9a-f]{40}")
_IMAGE: Final = re.compile(r"sha256:[0-9a-f]{64}")

Verdict = Literal["MATCH", "MISMATCH"]
Standing = Literal["counted", "mismatch", "not-a-member", "other-motion", "other-hash"]


class StatementError(ValueError):
    """A remark that claims to be an attestation but is not a valid one."""


@dataclass(frozen=True)
class Statement:
    """What a member states about a motion after rebuilding its runtime."""

    motion_index: int
    motion_hash: str  # the proposal's hash (the collective's key for the motion)
    code_hash: str  # blake2-256 of the rebuilt blob's compressed form
    commit: str
    image: str  # the builder image digest the rebuild used
    verdict: Verdict

    def encode(self) -> bytes:
        """The remark's bytes: a prefix with the version, then compact JSON (readable in any
        block explorer)."""
        body = json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)
        return f"{PREFIX}{VERSION} {body}".encode()


def image_digest(builder_image: str) -> str:
    """The content digest in a digest.json's `builder.image` (`name:tag (sha256:…)`): what a
    statement names, since a tag can move and a digest cannot."""
    found = _IMAGE.search(builder_image)
    if found is None:
        raise StatementError(f"builder image {builder_image[:80]!r} names no sha256 digest")
    return found.group()


def is_attestation(remark: bytes) -> bool:
    return remark.startswith(PREFIX.encode())


def parse(remark: bytes) -> Statement:
    """A statement from a remark's bytes; StatementError says what is wrong with it."""
    if len(remark) > MAX_STATEMENT:
        raise StatementError(f"{len(remark)} bytes, over the {MAX_STATEMENT}-byte limit")
    try:
        text = remark.decode()
    except UnicodeDecodeError:
        raise StatementError("not UTF-8") from None
    head, _, body = text.partition(" ")
    if head != f"{PREFIX}{VERSION}":
        raise StatementError(f"unknown statement version {head.removeprefix(PREFIX)!r}")
    try:
        fields = json.loads(body)
    except ValueError:
        raise StatementError("body is not JSON") from None
    if not isinstance(fields, dict) or set(fields) != set(Statement.__dataclass_fields__):
        raise StatementError(f"fields must be exactly {sorted(Statement.__dataclass_fields__)}")
    index = fields["motion_index"]
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise StatementError("motion_index must be a non-negative integer")
    for name, pattern in (
        ("motion_hash", _HASH),
        ("code_hash", _HASH),
        ("commit", _COMMIT),
        ("image", _IMAGE),
    ):
        if not isinstance(fields[name], str) or not pattern.fullmatch(fields[name]):
            raise StatementError(f"{name} is malformed: {str(fields[name])[:80]!r}")
    if fields["verdict"] not in ("MATCH", "MISMATCH"):
        raise StatementError(f"verdict must be MATCH or MISMATCH, not {fields['verdict']!r}")
    return Statement(**fields)


@dataclass(frozen=True)
class Seen:
    """One statement read from the chain: who signed it, where, and how it stands."""

    signer: str
    block: int
    statement: Statement
    standing: Standing


@dataclass(frozen=True)
class Tally:
    """The attestations about one motion and code hash, as the release decides on them."""

    code_hash: str
    members: int
    matches: tuple[str, ...]  # members whose newest statement is MATCH
    mismatches: tuple[str, ...]  # members whose newest statement is MISMATCH
    ignored: tuple[Seen, ...]  # read but not counted (shown, with why)

    @property
    def empty(self) -> bool:
        """No statement about the motion was read (counted or not)."""
        return not (self.matches or self.mismatches or self.ignored)

    def summary(self) -> str:
        """`2 of 3 members reproduced 0x1234…abcd, 0 mismatches`."""
        short = f"{self.code_hash[:10]}…{self.code_hash[-4:]}"
        return (
            f"{len(self.matches)} of {self.members} members reproduced {short}, "
            f"{len(self.mismatches)} mismatches"
            + (f" ({len(self.ignored)} statements not counted)" if self.ignored else "")
        )

    def describe(self) -> list[str]:
        """The summary, then each statement read but not counted, with why."""
        return [self.summary()] + [
            f"not counted: {s.statement.verdict} by {s.signer} in block #{s.block} ({s.standing})"
            for s in self.ignored
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "code_hash": self.code_hash,
            "members": self.members,
            "matches": list(self.matches),
            "mismatches": list(self.mismatches),
            "ignored": [
                {
                    "signer": s.signer,
                    "block": s.block,
                    "standing": s.standing,
                    **asdict(s.statement),
                }
                for s in self.ignored
            ],
        }


def tally(
    statements: Iterable[tuple[str, int, Statement]],
    *,
    members: Iterable[str],
    motion_index: int,
    motion_hash: str,
    code_hash: str,
) -> Tally:
    """Count (signer, block, statement) triples read from the chain, oldest first."""
    council = set(members)
    newest: dict[str, Seen] = {}
    ignored: list[Seen] = []
    for signer, block, statement in statements:
        standing = _standing(statement, signer, council, motion_index, motion_hash, code_hash)
        seen = Seen(signer, block, statement, standing)
        if standing in ("counted", "mismatch"):
            newest[signer] = seen  # a member's later statement replaces the earlier one
        else:
            ignored.append(seen)
    return Tally(
        code_hash=code_hash,
        members=len(council),
        matches=tuple(s for s, seen in newest.items() if seen.standing == "counted"),
        mismatches=tuple(s for s, seen in newest.items() if seen.standing == "mismatch"),
        ignored=tuple(ignored),
    )


def _standing(
    statement: Statement,
    signer: str,
    council: set[str],
    motion_index: int,
    motion_hash: str,
    code_hash: str,
) -> Standing:
    if signer not in council:
        return "not-a-member"
    if (statement.motion_index, statement.motion_hash) != (motion_index, motion_hash.lower()):
        return "other-motion"
    if statement.verdict == "MISMATCH":
        return "mismatch"  # a mismatch warns whatever hash the member got
    if statement.code_hash != code_hash.lower():
        return "other-hash"
    return "counted"


def blocking_reason(required: int, found: Tally) -> str | None:
    """Why the release may not close, enact or fall back yet (None: it may).

    A member's MISMATCH blocks until the release manager aborts or proposes a new candidate;
    fewer than `required` MATCH statements keeps the release waiting."""
    if found.mismatches:
        who = ", ".join(found.mismatches)
        return (
            f"council member(s) {who} attested MISMATCH for {found.code_hash}: abort the release "
            "(`invoke release.abort`) or propose a new candidate"
        )
    if len(found.matches) < required:
        return (
            f"{len(found.matches)} of the {required} required attestations: waiting for members"
            " to run `invoke verify --motion latest --attest`"
        )
    return None


def statements_from(remarks: Iterable[tuple[str, int, bytes]]) -> list[tuple[str, int, Statement]]:
    """The attestations among (signer, block, remark bytes) triples; other remarks are skipped
    and malformed attestations dropped (a statement that does not parse counts for nobody)."""
    found = []
    for signer, block, remark in remarks:
        if not is_attestation(remark):
            continue
        try:
            found.append((signer, block, parse(remark)))
        except StatementError:
            continue
    return found
