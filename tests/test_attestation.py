"""Attestation statements and their tally: pure, no chain."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pipeline.attestation import (
    MAX_STATEMENT,
    Statement,
    StatementError,
    Tally,
    blocking_reason,
    image_digest,
    parse,
    statements_from,
    tally,
)

MOTION_HASH = "0x" + "ab" * 32
CODE = "0x" + "cd" * 32
MATCH = Statement(3, MOTION_HASH, CODE, "e" * 40, "sha256:" + "f" * 64, "MATCH")
MEMBERS = ["alice", "bob", "charlie"]


def count(*triples: tuple[str, int, Statement]) -> Tally:
    return tally(triples, members=MEMBERS, motion_index=3, motion_hash=MOTION_HASH, code_hash=CODE)


def test_a_statement_survives_the_chain_byte_for_byte() -> None:
    remark = MATCH.encode()
    assert remark.startswith(b"runtime-pipeline/attest/1 {")
    assert parse(remark) == MATCH
    assert len(remark) < MAX_STATEMENT


@pytest.mark.parametrize(
    ("remark", "reason"),
    [
        (b"runtime-pipeline/attest/2 {}", "unknown statement version"),
        (b"runtime-pipeline/attest/1 {not json", "not JSON"),
        (b'runtime-pipeline/attest/1 {"verdict": "MATCH"}', "fields must be exactly"),
        (MATCH.encode().replace(b"MATCH", b"MAYBE"), "verdict must be"),
        (MATCH.encode().replace(CODE.encode(), b"0x12"), "code_hash is malformed"),
        (MATCH.encode().replace(b'"motion_index":3', b'"motion_index":-1'), "non-negative"),
        (MATCH.encode() + b" " * MAX_STATEMENT, "over the"),
        (b"runtime-pipeline/attest/1 \xff", "not UTF-8"),
    ],
)
def test_malformed_statements_say_what_is_wrong(remark: bytes, reason: str) -> None:
    with pytest.raises(StatementError, match=reason):
        parse(remark)


def test_members_matches_count_once_each_and_the_newest_statement_wins() -> None:
    mismatch = replace(MATCH, verdict="MISMATCH")
    t = count(("alice", 10, MATCH), ("alice", 11, MATCH), ("bob", 12, mismatch), ("bob", 13, MATCH))
    assert t.matches == ("alice", "bob") and t.mismatches == ()
    assert t.summary() == "2 of 3 members reproduced 0xcdcdcdcd…cdcd, 0 mismatches"
    assert not t.empty and count().empty  # a release without statements does not mention them


def test_forged_statements_are_shown_and_not_counted() -> None:
    t = count(
        ("mallory", 10, MATCH),  # not a member
        ("alice", 11, replace(MATCH, motion_index=4)),  # another motion
        ("bob", 12, replace(MATCH, motion_hash="0x" + "00" * 32)),  # another proposal
        ("charlie", 13, replace(MATCH, code_hash="0x" + "11" * 32)),  # another runtime
    )
    assert t.matches == () and t.mismatches == ()
    assert [(s.signer, s.standing) for s in t.ignored] == [
        ("mallory", "not-a-member"),
        ("alice", "other-motion"),
        ("bob", "other-motion"),
        ("charlie", "other-hash"),
    ]
    assert str(blocking_reason(1, t)).startswith("0 of the 1 required attestations")


def test_a_member_s_mismatch_blocks_even_when_enough_matched() -> None:
    t = count(
        ("alice", 10, MATCH),
        ("bob", 11, MATCH),
        ("charlie", 12, replace(MATCH, verdict="MISMATCH", code_hash="0x" + "99" * 32)),
    )
    reason = blocking_reason(2, t)
    assert reason is not None and reason.startswith("council member(s) charlie attested MISMATCH")
    assert "release.abort" in reason


def test_enough_matches_unblock_and_zero_required_never_waits() -> None:
    assert blocking_reason(2, count(("alice", 1, MATCH), ("bob", 2, MATCH))) is None
    assert blocking_reason(0, count()) is None


def test_only_attestations_are_read_and_broken_ones_are_dropped() -> None:
    found = statements_from(
        [
            ("alice", 1, b"hello"),
            ("bob", 2, MATCH.encode()),
            ("charlie", 3, b"runtime-pipeline/attest/1 {broken"),
        ]
    )
    assert found == [("bob", 2, MATCH)]


def test_the_builder_image_is_named_by_its_digest() -> None:
    digest = "sha256:" + "7" * 64
    assert image_digest(f"runtime-pipeline-builder:17b6694f32d7e390 ({digest})") == digest
    assert image_digest(digest) == digest
    with pytest.raises(StatementError, match="names no sha256 digest"):
        image_digest("runtime-pipeline-builder:latest")


def test_what_is_not_counted_is_shown_with_why() -> None:
    t = count(("alice", 10, MATCH), ("mallory", 11, MATCH))
    assert t.describe() == [
        "1 of 3 members reproduced 0xcdcdcdcd…cdcd, 0 mismatches (1 statements not counted)",
        "not counted: MATCH by mallory in block #11 (not-a-member)",
    ]
    assert t.as_dict()["summary"] == t.summary()
    assert t.as_dict()["ignored"][0]["standing"] == "not-a-member"
