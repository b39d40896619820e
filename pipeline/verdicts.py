"""What a runtime diff means for an upgrade: the verdicts `subwasm diff` users rely on, and more.

Pure: a list of changes and both runtimes' version facts in, three verdicts out.
- `compatible`: nothing an existing client uses changed or went away (calls, events, storage,
  pallet indices, transaction extensions, runtime APIs); additions are compatible.
- `transaction_version_bump_required`: a transaction signed for the old runtime would encode
  or dispatch differently (a call or pallet index, a call's arguments, the extensions), so
  `transaction_version` must move; whether it did is reported beside it.
- `storage_migration_required`: a storage item's layout (type, hashers) changed or the item
  went away; per pallet, whether its storage version moved (the sign a migration was written).
`problems` turns the two "required but not done" cases into errors for gates and releases.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Protocol

# Changes an existing client notices: a removed or altered item it calls, decodes or reads.
BREAKING_KINDS: Final = frozenset({"pallet", "call", "event", "storage", "extension", "api"})
# Storage FRAME rewrites every block (killed at initialization or finalization): a new layout
# needs no migration, as try-runtime ignores System.Events/EventCount when comparing states.
PER_BLOCK_STORAGE: Final = frozenset(
    {
        "System.Events",
        "System.EventCount",
        "System.ExtrinsicCount",
        "System.ExtrinsicData",
        "System.ExtrinsicWeightReclaimed",
        "System.InherentsApplied",
        "System.AllExtrinsicsLen",
        "System.BlockWeight",
        "System.Digest",
        "System.ExecutionPhase",
    }
)


class ChangeLike(Protocol):
    """What a verdict reads of one diff line (`diff.Change` is one)."""

    @property
    def kind(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def change(self) -> str: ...
    @property
    def before(self) -> str | None: ...
    @property
    def after(self) -> str | None: ...
    @property
    def layout_changed(self) -> bool: ...


@dataclass(frozen=True)
class PalletMigration:
    """Why a pallet's storage needs migrating, and whether its storage version says it was."""

    items: tuple[str, ...]  # "Notes.Notes", …
    storage_version: tuple[int | None, int | None]  # before, after (None: unknown)

    @property
    def bumped(self) -> bool | None:
        before, after = self.storage_version
        if before is None or after is None:
            return None
        return after > before


@dataclass(frozen=True)
class Verdicts:
    compatible: bool
    breaking: tuple[str, ...]  # "call Notes.set_note changed", …
    transaction_version_bump_required: bool
    transaction_version: tuple[int, int]
    storage_migration_required: bool
    migrations: dict[str, PalletMigration] = field(default_factory=dict)

    @property
    def transaction_version_bumped(self) -> bool:
        before, after = self.transaction_version
        return after > before

    @property
    def migration_missing(self) -> tuple[str, ...]:
        """Pallets whose storage layout changed while their storage version stayed: the
        upgrade would leave their old data unreadable."""
        return tuple(p for p, m in self.migrations.items() if m.bumped is False)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["transaction_version_bumped"] = self.transaction_version_bumped
        data["migration_missing"] = list(self.migration_missing)
        data["migrations"] = {
            pallet: {**asdict(m), "storage_version_bumped": m.bumped}
            for pallet, m in self.migrations.items()
        }
        return data


def judge(
    changes: Sequence[ChangeLike],
    transaction_version: tuple[int, int],
    storage_versions: tuple[Mapping[str, int] | None, Mapping[str, int] | None],
) -> Verdicts:
    """The verdicts of a diff from A to B; storage versions are each runtime's in-code ones
    (pallet name -> version; None when the runtime could not say)."""
    breaking = tuple(
        f"{c.kind} {c.name} {c.change}"
        for c in changes
        if c.kind in BREAKING_KINDS and c.change != "added" and not _api_upgrade(c)
    )
    needs_bump = any(_changes_transactions(c) for c in changes)
    touched: dict[str, list[str]] = {}
    for c in changes:
        if (
            c.kind == "storage"
            and c.change in ("changed", "removed")
            and _layout_changed(c)
            and c.name not in PER_BLOCK_STORAGE
        ):
            touched.setdefault(c.name.split(".", 1)[0], []).append(c.name)
    before, after = storage_versions
    migrations = {
        pallet: PalletMigration(
            tuple(items),
            (_version(before, pallet), _version(after, pallet)),
        )
        for pallet, items in touched.items()
    }
    return Verdicts(
        compatible=not breaking,
        breaking=breaking,
        transaction_version_bump_required=needs_bump,
        transaction_version=transaction_version,
        storage_migration_required=bool(migrations),
        migrations=migrations,
    )


def _api_upgrade(change: ChangeLike) -> bool:
    """A runtime API whose version rose keeps the old methods callable: not breaking."""
    if change.kind != "api" or change.change != "changed":
        return False
    try:
        return int(str(change.after).lstrip("v")) > int(str(change.before).lstrip("v"))
    except ValueError:
        return False


def _changes_transactions(change: ChangeLike) -> bool:
    if change.kind == "call" and change.change != "added":
        return True
    if change.kind == "pallet" and change.change != "added":
        return True  # an index moved or a pallet (and its calls) went away
    return change.kind == "extension"


def _layout_changed(change: ChangeLike) -> bool:
    """Removed, or changed in type/hashers (not only in its default value)."""
    return change.change == "removed" or change.layout_changed


def _version(versions: Mapping[str, int] | None, pallet: str) -> int | None:
    if versions is None:
        return None
    return versions.get(pallet, 0)


def problems(verdicts: Verdicts) -> list[str]:
    """One line per upgrade mistake the verdicts prove: what is missing and where."""
    found = []
    if verdicts.transaction_version_bump_required and not verdicts.transaction_version_bumped:
        before, after = verdicts.transaction_version
        found.append(
            f"calls or transaction extensions changed but transaction_version stayed {after} "
            f"(was {before}): bump transaction_version in the runtime's VERSION"
        )
    for pallet in verdicts.migration_missing:
        migration = verdicts.migrations[pallet]
        was, now = migration.storage_version
        found.append(
            f"storage of {pallet} changed ({', '.join(migration.items)}) but its storage "
            f"version stayed {now} (was {was}): write a migration and bump "
            f"{pallet}'s STORAGE_VERSION"
        )
    return found


def render(verdicts: Verdicts) -> list[str]:
    """Verdict lines for the text diff."""
    lines = [
        "verdicts",
        f"  compatible: {'yes' if verdicts.compatible else 'no'}"
        + (f" ({len(verdicts.breaking)} breaking changes)" if verdicts.breaking else ""),
    ]
    before, after = verdicts.transaction_version
    bump = verdicts.transaction_version_bump_required
    lines.append(
        f"  transaction_version bump required: {'yes' if bump else 'no'} "
        f"(transaction_version {before} -> {after})"
    )
    needed = verdicts.storage_migration_required
    lines.append(f"  storage migration required: {'yes' if needed else 'no'}")
    for pallet, migration in verdicts.migrations.items():
        was, now = (_shown(v) for v in migration.storage_version)
        state = {True: "bumped", False: "NOT bumped", None: "unknown"}[migration.bumped]
        lines.append(f"    {pallet}: storage version {was} -> {now} ({state})")
    missing = verdicts.migration_missing
    lines.append(f"  migration missing: {', '.join(missing) if missing else 'no'}")
    lines.extend(f"  ERROR: {line}" for line in problems(verdicts))
    return lines


def _shown(version: int | None) -> str:
    return "?" if version is None else str(version)
