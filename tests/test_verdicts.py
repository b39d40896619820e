"""The diff's verdicts, as pure functions of a change list and version facts."""

from __future__ import annotations

from collections.abc import Mapping

from pipeline.diff import Change
from pipeline.verdicts import Verdicts, judge, problems, render

Versions = tuple[Mapping[str, int] | None, Mapping[str, int] | None]


def verdicts(
    *changes: Change, tx: tuple[int, int] = (1, 1), versions: Versions = (None, None)
) -> Verdicts:
    return judge(list(changes), tx, versions)


def test_no_changes_is_compatible_and_needs_nothing() -> None:
    v = verdicts()
    assert v.compatible and not v.transaction_version_bump_required
    assert not v.storage_migration_required and problems(v) == []


def test_additions_are_compatible() -> None:
    v = verdicts(
        Change("call", "Notes.clear_note", "added", None, "[1] clear_note()"),
        Change("pallet", "Tips", "added", None, "index 9"),
        Change("api", "GrandpaApi", "added", None, "v3"),
        Change("constant", "Notes.MaxNoteLen", "changed", "u32 = 256", "u32 = 512"),
    )
    assert v.compatible and not v.transaction_version_bump_required and v.breaking == ()


def test_a_changed_call_breaks_clients_and_needs_a_transaction_version_bump() -> None:
    change = Change("call", "Notes.set_note", "changed", "[0] set_note(a)", "[0] set_note(b)")
    v = verdicts(change)
    assert not v.compatible and v.breaking == ("call Notes.set_note changed",)
    assert v.transaction_version_bump_required and not v.transaction_version_bumped
    [problem] = problems(v)
    assert "transaction_version stayed 1" in problem
    bumped = verdicts(change, tx=(1, 2))
    assert bumped.transaction_version_bumped and problems(bumped) == []


def test_moved_pallets_and_changed_extensions_need_a_bump() -> None:
    assert verdicts(
        Change("pallet", "Notes", "changed", "index 8", "index 9")
    ).transaction_version_bump_required
    assert verdicts(
        Change("extension", "CheckNonce", "changed", "#1", "#0")
    ).transaction_version_bump_required
    assert not verdicts(
        Change("event", "Notes.NoteSet", "changed", "a", "b")
    ).transaction_version_bump_required


def test_an_api_version_upgrade_is_compatible_its_removal_is_not() -> None:
    assert verdicts(Change("api", "Core", "changed", "v5", "v6")).compatible
    assert not verdicts(Change("api", "Core", "changed", "v6", "v5")).compatible
    assert not verdicts(Change("api", "Metadata", "removed", "v2", None)).compatible


def test_a_storage_layout_change_needs_a_migration_and_a_storage_version_bump() -> None:
    change = Change("storage", "Notes.Notes", "changed", "Vec<u8>", "Note<u32>", True)
    missing = verdicts(change, versions=({"Notes": 0}, {"Notes": 0}))
    assert missing.storage_migration_required
    assert missing.migrations["Notes"].bumped is False
    assert missing.migration_missing == ("Notes",)
    assert "  migration missing: Notes" in render(missing)
    [problem] = problems(missing)
    assert problem.startswith("storage of Notes changed (Notes.Notes) but its storage version")
    done = verdicts(change, versions=({"Notes": 0}, {"Notes": 1}))
    assert done.migrations["Notes"].bumped and problems(done) == []
    assert done.migration_missing == () and "  migration missing: no" in render(done)
    unknown = verdicts(change)
    assert unknown.migrations["Notes"].bumped is None and problems(unknown) == []
    assert unknown.migration_missing == ()
    assert "    Notes: storage version ? -> ? (unknown)" in render(unknown)


def test_a_removed_storage_item_needs_a_migration() -> None:
    v = verdicts(Change("storage", "Notes.Old", "removed", "u32", None))
    assert v.storage_migration_required and list(v.migrations) == ["Notes"]


def test_a_storage_default_change_alone_needs_no_migration() -> None:
    v = verdicts(Change("storage", "Notes.Count", "changed", "u32", "u32 (layout changed)", False))
    assert not v.storage_migration_required and not v.compatible


def test_verdicts_as_json() -> None:
    change = Change("storage", "Notes.Notes", "changed", "a", "b", True)
    data = verdicts(change, tx=(1, 2), versions=({"Notes": 0}, {"Notes": 1})).as_dict()
    assert data["compatible"] is False and data["transaction_version_bumped"] is True
    assert data["migration_missing"] == []
    assert data["migrations"]["Notes"] == {
        "items": ("Notes.Notes",),
        "storage_version": (0, 1),
        "storage_version_bumped": True,
    }


def test_storage_rewritten_every_block_needs_no_migration() -> None:
    v = verdicts(Change("storage", "System.Events", "changed", "Vec<A>", "Vec<B>", True))
    assert not v.storage_migration_required and not v.compatible
