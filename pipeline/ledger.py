"""The durable journal of one release: what each stage did, and every submission it attempted.

`<state_dir>/releases/<release-id>/ledger.jsonl` is append-only JSON lines. Each record is one
`os.write` on an O_APPEND descriptor followed by `fsync`, so after a crash the file holds every
record whose append returned, plus at most one torn last line, which the next writer drops.
An `intent` is written before anything is broadcast; an intent without a `result` means the
outcome is unknown and the chain must be checked before submitting again. One process writes a
release at a time (an exclusive lock while the ledger is open for writing).

Secrets never enter the ledger: a record with a secret-looking field or value is refused.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from pipeline.errors import PipelineError

SCHEMA = 1
LEDGER_FILE = "ledger.jsonl"
APPENDABLE = (
    "stage_started",
    "stage_done",
    "stage_failed",
    "intent",
    "submitted",
    "result",
    "aborted",
)
RECORD_TYPES = ("release", *APPENDABLE)
RESERVED = ("schema", "type", "release", "created")  # release fields the ledger itself sets
UNKNOWN_OUTCOME = "unknown outcome: check the chain before resubmitting"

Record = dict[str, Any]

log = logging.getLogger(__name__)

_RELEASE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SECRET_WORDS = frozenset(
    {"seed", "mnemonic", "secret", "private", "uri", "suri", "password", "passphrase"}
)
_KEY_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")  # snake, kebab and camel case
_MNEMONIC_RUN = re.compile(r"(?:^|\s)(?:[a-z]{3,8}\s+){11,}[a-z]{3,8}(?=\s|$|/)")
# A 0x seed: in structured fields 32-byte hashes have this shape too, in free text it is refused.
_HEX_SEED = re.compile(r"(?<![0-9A-Za-z])0x[0-9a-fA-F]{64}(?![0-9A-Za-z])")


@dataclass(frozen=True)
class Intent:
    """A submission the release meant to make, and what became of it so far."""

    id: str
    stage: str
    network: str
    signer: str  # public address
    nonce: int
    call_hash: str
    call: str  # human summary, e.g. "Sudo.sudo(System.set_code(0xab…))"
    extrinsic_hash: str | None = None
    result: Record | None = None  # the `result` record once the outcome is known

    def describe(self) -> str:
        return (
            f"{self.id} ({self.call} on {self.network} by {self.signer}, nonce {self.nonce}, "
            f"call {self.call_hash})"
        )


@dataclass(frozen=True)
class StageFailure:
    stage: str
    error: str
    at: str | None


@dataclass(frozen=True)
class LedgerState:
    """What a release's journal says happened, derived by `replay`."""

    release: Record
    done: dict[str, Any] = field(default_factory=dict)  # stage -> its latest result, in order
    running: str | None = None  # started and neither done nor failed since (maybe a crash)
    last_failure: StageFailure | None = None  # latest failure not followed by that stage's done
    intents: dict[str, Intent] = field(default_factory=dict)
    aborted: str | None = None  # the reason, once the release manager aborted the release

    @property
    def unresolved(self) -> list[Intent]:
        """Intents without a result: broadcast may or may not have happened."""
        return [intent for intent in self.intents.values() if intent.result is None]

    def warnings(self) -> list[str]:
        return [f"{intent.describe()}: {UNKNOWN_OUTCOME}" for intent in self.unresolved]


def replay(records: Sequence[Mapping[str, Any]], where: str = "ledger") -> LedgerState:
    """Fold records into the release's state; inconsistent records raise, naming the line."""
    if not records or records[0].get("type") != "release":
        raise PipelineError(f"{where} does not start with a release record: it is not a ledger")
    release = dict(records[0])
    done: dict[str, Any] = {}
    running: str | None = None
    failure: StageFailure | None = None
    intents: dict[str, Intent] = {}
    aborted: str | None = None
    for line, record in enumerate(records[1:], start=2):
        kind = record.get("type")
        stage = str(_field(record, "stage", where, line)) if str(kind).startswith("stage_") else ""
        if kind == "stage_started":
            running = stage
        elif kind == "stage_done":
            done.pop(stage, None)  # a repeated stage moves to the end: order is completion order
            done[stage] = record.get("result", {})
            running = None if running == stage else running
            failure = None if failure is not None and failure.stage == stage else failure
        elif kind == "stage_failed":
            running = None if running == stage else running
            failure = StageFailure(stage, str(record.get("error")), record.get("at"))
        elif kind == "intent":
            fields = {name: _field(record, name, where, line) for name in _INTENT_FIELDS}
            if fields["id"] in intents:
                raise _inconsistent(where, line, f"intent {fields['id']} recorded twice")
            intents[fields["id"]] = Intent(**fields)
        elif kind in ("submitted", "result"):
            intent_id = _field(record, "intent", where, line)
            previous = intents.get(intent_id)
            if previous is None:
                raise _inconsistent(where, line, f"{kind} for unknown intent {intent_id}")
            if previous.result is not None:
                raise _inconsistent(where, line, f"{kind} after the result of {intent_id}")
            intents[intent_id] = (
                replace(previous, extrinsic_hash=_field(record, "extrinsic_hash", where, line))
                if kind == "submitted"
                else replace(previous, result=dict(record))
            )
        elif kind == "aborted":
            aborted = str(record.get("reason") or "aborted")
        else:
            raise _inconsistent(where, line, f"unknown record type {kind!r}")
    return LedgerState(release, done, running, failure, intents, aborted)


_INTENT_FIELDS = ("id", "stage", "network", "signer", "nonce", "call_hash", "call")


def _field(record: Mapping[str, Any], name: str, where: str, line: int) -> Any:
    if name not in record:
        raise _inconsistent(where, line, f"{record.get('type')} record lacks {name!r}")
    return record[name]


def _inconsistent(where: str, line: int, problem: str) -> PipelineError:
    return PipelineError(
        f"{where} line {line}: {problem}: the journal contradicts itself; "
        "restore it from a backup or start a new release"
    )


def find_secret(value: Any, where: str = "record") -> str | None:
    """Path of the first secret-looking field or value in a record, or None.

    A field is secret by name (seed, mnemonic, secret, private, uri, password …); a value by
    shape: a `//` derivation URI or a run of 12+ short lowercase words (a BIP-39 phrase).
    """
    if isinstance(value, Mapping):
        for key, item in value.items():
            path = f"{where}.{key}"
            words = {word.lower() for word in _KEY_WORD.findall(str(key))}
            if words & _SECRET_WORDS and item not in (None, "", [], {}):
                return path
            found = find_secret(item, path)
            if found:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = find_secret(item, f"{where}[{index}]")
            if found:
                return found
    elif isinstance(value, str) and (
        any(token.startswith("//") for token in value.split()) or _MNEMONIC_RUN.search(value)
    ):
        return where
    return None


def check_free_text(text: str, where: str) -> None:
    """Refuse free text (a reason typed by a person) that holds a 0x seed: 64 hex digits."""
    if _HEX_SEED.search(text):
        raise _secret_refused(where, "; shorten a hash you meant to quote to its first digits")


def _secret_refused(where: str, hint: str = "") -> PipelineError:
    return PipelineError(
        f"refusing to write {where} into the ledger: it looks like a secret "
        f"(seed, mnemonic, private key or // URI); record public data only{hint}"
    )


class Ledger:
    """An open, locked journal of one release; append records through the typed methods."""

    def __init__(self, path: Path, fd: int, records: list[Record], repaired: str | None) -> None:
        self.path = path
        self.release_id = path.parent.name
        self.repaired = repaired  # a note when a torn last record was dropped on open
        self._fd = fd
        self._records = records
        self._state = replay(records, str(path))

    @property
    def records(self) -> list[Record]:
        return list(self._records)

    @property
    def state(self) -> LedgerState:
        return self._state

    def stage_started(self, stage: str) -> Record:
        return self.append({"type": "stage_started", "stage": stage})

    def stage_done(self, stage: str, result: Mapping[str, Any]) -> Record:
        return self.append({"type": "stage_done", "stage": stage, "result": dict(result)})

    def stage_failed(self, stage: str, error: str) -> Record:
        return self.append({"type": "stage_failed", "stage": stage, "error": error})

    def aborted(self, reason: str) -> Record:
        """The release manager stopped the release: it will not run again under this id."""
        check_free_text(reason, "aborted.reason")
        return self.append({"type": "aborted", "reason": reason})

    def intent(
        self, *, stage: str, network: str, signer: str, nonce: int, call_hash: str, call: str
    ) -> str:
        """Record a submission about to be made; returns the id its outcome is recorded under."""
        intent_id = f"intent-{len(self._state.intents) + 1}"
        self.append(
            {
                "type": "intent",
                "id": intent_id,
                "stage": stage,
                "network": network,
                "signer": signer,
                "nonce": nonce,
                "call_hash": call_hash,
                "call": call,
            }
        )
        return intent_id

    def submitted(self, intent_id: str, extrinsic_hash: str) -> Record:
        return self.append(
            {"type": "submitted", "intent": intent_id, "extrinsic_hash": extrinsic_hash}
        )

    def unresolved_nonces(self, *, network: str, signer: str, call_hash: str) -> list[int]:
        """Nonces of this call's sends whose outcome is unknown (a run ended during them)."""
        return [
            intent.nonce
            for intent in self._state.unresolved
            if (intent.network, intent.signer, intent.call_hash) == (network, signer, call_hash)
        ]

    def result(
        self,
        intent_id: str,
        *,
        success: bool,
        block_hash: str | None,
        block_number: int | None,
        events: Sequence[Any] = (),
        error: str | None = None,
        finalized: bool = False,
    ) -> Record:
        """The outcome of an intent; `finalized`: its block was finalized when this was written
        (on a chain with lagging finality an effect counts only then)."""
        return self.append(
            {
                "type": "result",
                "intent": intent_id,
                "success": success,
                "block_hash": block_hash,
                "block_number": block_number,
                "finalized": finalized,
                "events": list(events),
                "error": error,
            }
        )

    def append(self, record: Mapping[str, Any]) -> Record:
        """Validate, then durably append one record; returns it as written (with `at`)."""
        if self._fd < 0:
            raise PipelineError(f"ledger {self.path} is closed: open it again to write")
        if record.get("type") not in APPENDABLE:
            raise PipelineError(f"ledger record type {record.get('type')!r} cannot be appended")
        secret = find_secret(record)
        if secret is not None:
            raise _secret_refused(secret)
        stamped: Record = {**record, "at": _now()}
        state = replay(
            [*self._records, stamped], str(self.path)
        )  # refuses inconsistent records before writing
        _write_line(self._fd, _encode(stamped))
        self._records.append(stamped)
        self._state = state
        return stamped

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # releases the lock
            self._fd = -1

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def releases_dir(state_dir: Path) -> Path:
    return state_dir / "releases"


def list_releases(state_dir: Path) -> list[str]:
    """Ids of the releases with a ledger, sorted."""
    directory = releases_dir(state_dir)
    if not directory.is_dir():
        return []
    return sorted(p.parent.name for p in directory.glob(f"*/{LEDGER_FILE}"))


def archive_releases(state_dir: Path, env: str) -> list[Path]:
    """Move the ledgers of releases on environment `env` out of the way (into `archive/`), so a
    rehearsal on reset networks starts afresh instead of trusting stages done on the old ones.

    Returns where each went; a release whose ledger a running release holds is refused.
    """
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = state_dir / "archive" / f"releases-{stamp}"
    moved = []
    for release_id in list_releases(state_dir):
        path = releases_dir(state_dir) / release_id / LEDGER_FILE
        with path.open("rb") as file:
            first = _decode(file.readline())  # the release record never changes
            if first is None or first.get("env") != env:
                continue
            _lock(file.fileno(), path)  # held while the directory moves
            target.mkdir(parents=True, exist_ok=True)
            moved.append(path.parent.rename(target / release_id))
    return moved


def open_ledger(
    state_dir: Path, release_id: str, *, create: Mapping[str, Any] | None = None
) -> Ledger:
    """Open a release's ledger for writing, creating it from `create` (release fields) if absent.

    Opening an existing release with `create` is a resume: its fields must match the stored ones.
    A torn last record is dropped (and noted in `Ledger.repaired`); damage elsewhere refuses.
    """
    if not _RELEASE_ID.fullmatch(release_id):
        raise PipelineError(f"release id {release_id!r} is not a plain name: use [A-Za-z0-9._-]")
    directory = releases_dir(state_dir) / release_id
    path = directory / LEDGER_FILE
    if create is None and not path.exists():
        known = ", ".join(list_releases(state_dir)) or "none"
        raise PipelineError(f"no release {release_id} in {state_dir}: known releases: {known}")
    if create is not None:
        _check_release_fields(release_id, create)
    _make_dirs(directory)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        _lock(fd, path)
        records, repaired = _load(fd, path)
        if not records:
            if create is None:
                raise _no_release_record(path)
            release = {
                **create,
                "schema": SCHEMA,
                "type": "release",
                "release": release_id,
                "created": _now(),
            }
            _write_line(fd, _encode(release))
            _fsync_dir(directory)
            records = [release]
        elif create is not None:
            _check_same_release(path, records[0], create)
        return Ledger(path, fd, records, repaired)
    except BaseException:
        os.close(fd)
        raise


def read_records(state_dir: Path, release_id: str) -> tuple[list[Record], str | None]:
    """A release's records without locking or repairing, for status views (note if torn)."""
    path = releases_dir(state_dir) / release_id / LEDGER_FILE
    if not _RELEASE_ID.fullmatch(release_id) or not path.is_file():
        known = ", ".join(list_releases(state_dir)) or "none"
        raise PipelineError(f"no release {release_id} in {state_dir}: known releases: {known}")
    fd = os.open(path, os.O_RDONLY)
    try:
        data = _read_all(fd)
    finally:
        os.close(fd)
    records, torn_at = _parse(data, path)
    if not records:
        raise _no_release_record(path)
    return records, None if torn_at is None else _torn_note(path, data, torn_at)


def _no_release_record(path: Path) -> PipelineError:
    """An empty ledger, or one whose only line is torn: the release's creation was cut short."""
    return PipelineError(
        f"ledger {path} has no complete release record (its creation was interrupted): "
        f"run `invoke release` again to write it, or remove {path.parent}"
    )


def _parse(data: bytes, path: Path) -> tuple[list[Record], int | None]:
    """Records of a ledger's bytes, and the byte offset of a torn last line (None if intact)."""
    lines = data.split(b"\n")
    complete, tail = lines[:-1], lines[-1]  # `tail` is what follows the last newline
    records: list[Record] = []
    offset = 0  # start of the line being read
    torn_at = None
    for number, raw in enumerate(complete, start=1):
        record = _decode(raw)
        if record is None:
            if number < len(complete) or tail:
                raise PipelineError(
                    f"ledger {path} is damaged at line {number}: restore it from a backup "
                    "or move the release away"
                )
            torn_at = offset  # garbage on the last line only: a torn write
            break
        records.append(record)
        offset += len(raw) + 1
    if tail:
        torn_at = offset  # no trailing newline: the last write did not finish
    if records:
        _check_schema(records[0], path)
    return records, torn_at


def _load(fd: int, path: Path) -> tuple[list[Record], str | None]:
    data = _read_all(fd)
    records, torn_at = _parse(data, path)
    if torn_at is None:
        return records, None
    note = _torn_note(path, data, torn_at)
    os.ftruncate(fd, torn_at)
    os.fsync(fd)
    log.warning(note)
    return records, note


def _torn_note(path: Path, data: bytes, torn_at: int) -> str:
    line = data[:torn_at].count(b"\n") + 1
    return (
        f"ledger {path}: dropped an incomplete last record at line {line} "
        f"({len(data) - torn_at} bytes) left by an interrupted write"
    )


def _check_schema(first: Record, path: Path) -> None:
    if first.get("type") != "release" or not isinstance(first.get("schema"), int):
        raise PipelineError(f"ledger {path} does not start with a release record: not a ledger")
    if first["schema"] != SCHEMA:
        raise PipelineError(
            f"ledger {path} has schema {first['schema']}; this pipeline reads schema {SCHEMA}: "
            "use the pipeline version that wrote it"
        )


def _check_release_fields(release_id: str, create: Mapping[str, Any]) -> None:
    reserved = [key for key in create if key in RESERVED]
    if reserved:
        raise PipelineError(
            f"release {release_id}: {', '.join(reserved)} are set by the ledger: rename the fields"
        )
    secret = find_secret(create, "release")
    if secret is not None:
        raise PipelineError(
            f"refusing to create release {release_id}: {secret} looks like a secret"
        )


def _check_same_release(path: Path, release: Record, create: Mapping[str, Any]) -> None:
    for key, value in create.items():
        if release.get(key) != value:
            raise PipelineError(
                f"release in {path} was created with {key}={release.get(key)!r}, not {value!r}: "
                "choose a new release id"
            )


def _decode(raw: bytes) -> Record | None:
    try:
        record = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(record, dict) or record.get("type") not in RECORD_TYPES:
        return None
    return record


def _encode(record: Mapping[str, Any]) -> bytes:
    try:
        text = json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise PipelineError(
            f"ledger record is not plain JSON ({exc}): pass str/int/list/dict"
        ) from None
    return text.encode() + b"\n"


def _write_line(fd: int, line: bytes) -> None:
    view = memoryview(line)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    os.fsync(fd)


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def _lock(fd: int, path: Path) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise PipelineError(
            f"ledger {path} is open in another process: wait for that release run to finish"
        ) from None


def _make_dirs(directory: Path) -> None:
    """Create the release directory, fsyncing each new entry's parent so it survives a crash."""
    missing = []
    current = directory
    while not current.exists():
        missing.append(current)
        current = current.parent
    for new in reversed(missing):
        new.mkdir(exist_ok=True)
        _fsync_dir(new.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
