"""The migration gate's decisions, as pure functions of try-runtime's outputs (no I/O)."""

from __future__ import annotations

import pytest

from pipeline.artifact import scale_compact
from pipeline.chainstate import storage_prefix
from pipeline.errors import PipelineError
from pipeline.migrations import (
    IGNORED_KEYS,
    MigrationReport,
    decode_weights,
    failure_line,
    keys_by_pallet,
    not_idempotent,
    report_of,
    root_without_events,
    state_diff,
    weight_level,
)
from pipeline.trie import state_root

NOTES = storage_prefix("Notes", "Notes")
VERSION = storage_prefix("Notes", ":__STORAGE_VERSION__:")
EVENTS = storage_prefix("System", "Events")
LAST_UPGRADE = storage_prefix("System", "LastRuntimeUpgrade")


def weights(consumed: int, maximum: int, proof: int = 0) -> str:
    return (
        "0x" + b"".join(scale_compact(v) for v in (consumed, proof, maximum, 5 * 1024 * 1024)).hex()
    )


def test_the_two_weights_decode_from_scale_compacts() -> None:
    assert decode_weights(weights(1_000, 2_000_000_000_000, 77)) == (
        (1_000, 77),
        (2_000_000_000_000, 5 * 1024 * 1024),
    )
    with pytest.raises(PipelineError, match="not two weights"):
        decode_weights(weights(1, 2) + "00")
    with pytest.raises(PipelineError, match="truncated"):
        decode_weights(weights(1, 2_000_000_000_000)[:-4])


@pytest.mark.parametrize(
    ("consumed", "level"),
    [(0, "pass"), (79, "pass"), (80, "warn"), (99, "warn"), (100, "fail"), (101, "fail")],
)
def test_weight_warns_from_80_percent_and_fails_from_100(consumed: int, level: str) -> None:
    assert weight_level(consumed, 100) == (level, consumed / 100)


def test_keys_are_counted_per_pallet_by_their_prefix() -> None:
    keys = [NOTES + "aa", NOTES + "bb", VERSION, LAST_UPGRADE, "0x3a636f6465", "0x" + "ee" * 16]
    assert keys_by_pallet(keys, ["System", "Notes"]) == {
        ":well-known": 1,
        "(unknown prefix)": 1,
        "Notes": 3,
        "System": 1,
    }


def test_a_second_run_that_rewrites_only_events_or_equal_values_is_idempotent() -> None:
    first = {NOTES + "aa": "0x01", VERSION: "0x0100", EVENTS: "0x04"}
    second = {EVENTS: "0x08", VERSION: "0x0100", LAST_UPGRADE: "0x05"}
    assert EVENTS in IGNORED_KEYS
    assert not_idempotent(first, second, {LAST_UPGRADE: "0x05"}) == []


def test_a_second_run_that_changes_a_migrated_or_untouched_key_is_not_idempotent() -> None:
    first = {NOTES + "aa": "0x01"}
    second = {NOTES + "aa": "0x0101", NOTES + "bb": None}
    assert not_idempotent(first, second, {NOTES + "bb": "0x02"}) == [NOTES + "aa", NOTES + "bb"]


def report(consumed: int, changed_again: list[str] | None = None) -> MigrationReport:
    return report_of(
        network="production",
        block="0xab",
        try_runtime_hash="0xcd",
        spec_version=(100, 101),
        result=weights(consumed, 2_000_000_000_000),
        first={NOTES + "aa": "0x01", VERSION: "0x0100", EVENTS: "0x00"},
        changed_again=changed_again or [],
        roots=("0x01", "0x02" if changed_again else "0x01"),
        pallets=["System", "Notes"],
        seconds=1.5,
    )


def test_a_passing_run_reports_weight_keys_and_idempotency() -> None:
    passed = report(50_000_000)
    assert passed.ok and passed.problem is None and passed.idempotent
    assert passed.keys_changed == {"Notes": 2}  # events are no migration's doing
    assert passed.weight == (50_000_000, 2_000_000_000_000)
    lines = passed.lines()
    assert "pass weight: 50,000,000 of 2,000,000,000,000 ref_time (0.00% of" in lines[2 + 3]
    assert lines[-2] == "pass keys: keys changed per pallet: Notes 2"
    assert MigrationReport.from_dict(passed.as_dict()) == passed


def test_a_heavy_migration_warns_and_an_over_weight_one_fails_naming_the_check() -> None:
    heavy = report(1_700_000_000_000)
    assert heavy.ok and any(c.level == "warn" for c in heavy.checks)
    over = report(2_000_000_000_001)
    assert not over.ok
    assert over.problem == (
        "weight: 2,000,000,000,001 of 2,000,000,000,000 ref_time (100.00% of the block's"
        " maximum): the block's maximum or more, migrating Notes; split the migration"
        " (multi-block) or lighten it"
    )


def test_a_non_idempotent_migration_fails_naming_the_pallet() -> None:
    failed = report(1, changed_again=[NOTES + "aa"])
    assert failed.idempotent is False
    assert failed.problem == (
        "idempotency: a second on_runtime_upgrade changed 1 key(s) of Notes (1) (storage root"
        " 0x01 -> 0x02): guard the migration by its storage version (VersionedMigration)"
    )


# What chopsticks prints when the runtime panics in TryRuntime_on_runtime_upgrade (its runtime
# logs, then the error of the call), reduced to the lines the parser reads.
MIGRATING = (
    '        runtime::frame-support  INFO: 🚚 Pallet "Notes" VersionedMigration migrating'
    " storage version from 0 to 1.\n"
)
PANIC = (
    'Error: Runtime panicked: try_runtime_upgrade failed: Other("a note was lost in migration")\n'
)


def test_a_failure_after_a_versioned_migration_ran_is_its_post_upgrade() -> None:
    assert failure_line(MIGRATING + PANIC) == (
        'post_upgrade of Notes failed (or its migration panicked): Other("a note was lost in'
        ' migration")'
    )


def test_a_failure_before_any_migration_ran_is_a_pre_upgrade() -> None:
    assert failure_line(PANIC).startswith("pre_upgrade failed before any versioned migration")


def test_a_try_state_failure_names_its_pallet() -> None:
    output = (
        MIGRATING
        + '  INFO: 🩺 Running "Notes" try-state checks\n'
        + '  ERROR: ❌ "Notes" try_state checks failed: Other("empty note")\n'
        + PANIC
    )
    assert failure_line(output).startswith("try_state of Notes failed: ")


def test_a_state_diff_lists_writes_and_deletions_as_hex() -> None:
    before = {b"\x01": b"a", b"\x02": b"b", b"\x03": b"c"}
    after = {b"\x01": b"a", b"\x02": b"B", b"\x04": b"d"}
    assert state_diff(before, after) == {"0x02": "0x42", "0x04": "0x64", "0x03": None}


def test_roots_without_events_ignore_only_events() -> None:
    events = bytes.fromhex(EVENTS[2:])
    state = {b"\x01": b"a"}
    assert root_without_events({**state, events: b"\x04"}, 1) == "0x" + state_root(state).hex()
    assert root_without_events({b"\x01": b"b"}, 1) != root_without_events(state, 1)


def test_an_undecodable_state_names_the_storage_item() -> None:
    output = (
        "try-runtime::executive: `try_decode_entire_state` failed with 2 errors\n"
        "try-runtime::executive: - 0. error: `Notes::Notes` key `0x00ab` is undecodable\n"
        "try-runtime::executive: - 1. error: `Notes::Notes` key `0x00cd` is undecodable\n" + PANIC
    )
    assert failure_line(output) == (
        "decode of the migrated state failed: Notes.Notes does not decode (2 key(s)): migrate"
        " it and bump Notes's storage version"
    )
