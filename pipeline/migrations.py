"""The migration safety gate: try-runtime checks of a candidate on a copy of a network's state.

The network's state at its finalized head is read over RPC (any endpoint, ours or not), and the
candidate's try-runtime build runs `TryRuntime_on_runtime_upgrade` on it in this process
(`wasm_exec`, wasmtime) with every check: pre/post-upgrade hooks, decoding of the whole state,
try-state of every pallet. Then it runs again on the migrated state, checks off, and the two
states' roots are compared without `System.Events`/`EventCount` (try-runtime-cli's rule): a
migration that changes anything the second time is not idempotent, and the keys name the pallet.

Why not chopsticks' `try-runtime` command (1.5.1): with any check on, FRAME iterates the whole
state, and chopsticks' executor aborts (smoldot `storage_diff.rs` "in_parent_next_key > key")
when a chopsticks node serves the state, since its `state_getKeysPaged` returns the start key
itself; it also has no second run. try-runtime-cli is not on crates.io in a current version.

The decisions (weight against the block's maximum, keys per pallet, idempotency, the one line
that names the failing pallet and check) are pure functions; `check_migrations` runs them.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Final, Literal

from pipeline import builder, config, diff, store, verdicts, wasm_exec
from pipeline.artifact import RuntimeBlob, is_try_runtime
from pipeline.builder_image import Progress, logger
from pipeline.cache import read_entry
from pipeline.chain import connect
from pipeline.chainstate import snapshot, storage_prefix
from pipeline.errors import PipelineError
from pipeline.project import Project, cache_dir, write_atomic
from pipeline.trie import state_root

WEIGHT_WARN: Final = 0.80  # of the block's max ref_time: warn at and above
WEIGHT_FAIL: Final = 1.00  # and above: the upgrade block holds nothing but the migrations
# Rewritten every block: a second run's events are no state change (try-runtime-cli's rule).
IGNORED_ITEMS: Final = (("System", "Events"), ("System", "EventCount"))
MEMO_FORMAT: Final = 1
CHECKS: Final = ("pre_upgrade", "post_upgrade", "try_state", "decode", "weight", "idempotency")

Level = Literal["pass", "warn", "fail"]


IGNORED_KEYS: Final = frozenset(storage_prefix(p, i) for p, i in IGNORED_ITEMS)


# --- pure decisions ---------------------------------------------------------------------------
def decode_weights(result: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """`(Weight, Weight)` as TryRuntime_on_runtime_upgrade returns it (consumed, block max),
    each `(ref_time, proof_size)` in SCALE compact form."""
    data = bytes.fromhex(result.removeprefix("0x"))
    values, offset = [], 0
    for _ in range(4):
        value, offset = _compact(data, offset)
        values.append(value)
    if offset != len(data):
        raise PipelineError(
            f"TryRuntime_on_runtime_upgrade returned {len(data)} bytes, not two weights: is the"
            " runtime's TryRuntime API the one of polkadot-sdk?"
        )
    return (values[0], values[1]), (values[2], values[3])


def _compact(data: bytes, offset: int) -> tuple[int, int]:
    if offset >= len(data):
        raise PipelineError("TryRuntime_on_runtime_upgrade returned a truncated weight")
    mode = data[offset] & 0b11
    if mode == 0b11:
        width = (data[offset] >> 2) + 4
        body = data[offset + 1 : offset + 1 + width]
        if len(body) != width:
            raise PipelineError("TryRuntime_on_runtime_upgrade returned a truncated weight")
        return int.from_bytes(body, "little"), offset + 1 + width
    width = {0: 1, 1: 2, 2: 4}[mode]
    body = data[offset : offset + width]
    if len(body) != width:
        raise PipelineError("TryRuntime_on_runtime_upgrade returned a truncated weight")
    return int.from_bytes(body, "little") >> 2, offset + width


def weight_level(consumed: int, maximum: int) -> tuple[Level, float]:
    """The migrations' ref_time against the block's: warn from 80 %, fail from 100 % (the
    upgrade block would hold nothing else)."""
    fraction = consumed / maximum if maximum else float("inf")
    if fraction >= WEIGHT_FAIL:
        return "fail", fraction
    return ("warn" if fraction >= WEIGHT_WARN else "pass"), fraction


def pallet_of(key: str, prefixes: Mapping[str, str]) -> str:
    """The pallet owning a storage key (prefixes: `storage_prefix(name)` -> name)."""
    if key.startswith("0x3a"):  # ":code", ":heappages", …: well-known keys
        return ":well-known"
    return prefixes.get(key[:34], "(unknown prefix)")


def keys_by_pallet(keys: Iterable[str], pallets: Iterable[str]) -> dict[str, int]:
    """How many keys each pallet's storage holds of `keys` (sorted by pallet name)."""
    prefixes = {storage_prefix(name): name for name in pallets}
    counts: dict[str, int] = {}
    for key in keys:
        owner = pallet_of(key, prefixes)
        counts[owner] = counts.get(owner, 0) + 1
    return dict(sorted(counts.items()))


def not_idempotent(
    first: Mapping[str, str | None],
    second: Mapping[str, str | None],
    before: Mapping[str, str | None],
) -> list[str]:
    """Keys a second `on_runtime_upgrade` changed on the migrated state (events ignored).

    `first`/`second` are each run's storage diff (key -> new value, None: deleted); `before`
    holds the fork's values of the second diff's keys the first run did not write."""
    changed = []
    for key, value in second.items():
        if key in IGNORED_KEYS:
            continue
        migrated = first[key] if key in first else before.get(key)
        if value != migrated:
            changed.append(key)
    return sorted(changed)


_PALLET_LOG: Final = re.compile(r"Pallet \\?\"(?P<name>\w+)\\?\" VersionedMigration migrating")
_TRY_STATE_LOG: Final = re.compile(r"❌ \\?\"(?P<name>\w+)\\?\" try_state checks failed")
_RUNNING_TRY_STATE: Final = re.compile(r"Running \\?\"(?P<name>\w+)\\?\" try-state checks")
_UNDECODABLE: Final = re.compile(
    r"error: `(?P<pallet>\w+)::(?P<item>\w+)` key `0x[0-9a-f]*` is undecodable"
)
_PANIC: Final = re.compile(r"try_runtime_upgrade failed: (?P<error>.*?)(?:\\n|\n|$)")


def failure_line(output: str) -> str:
    """One line naming the check and the pallet a failed try-runtime run stopped at, read from
    its runtime logs (FRAME logs the pallet of a running versioned migration and of try-state)
    and its panic message."""
    panic = _PANIC.search(output)
    error = panic.group("error").strip().strip('"') if panic else _last_error(output)
    failed_state = _TRY_STATE_LOG.findall(output)
    if failed_state:
        return f"try_state of {failed_state[-1]} failed: {error}"
    undecodable = _UNDECODABLE.findall(output)
    if undecodable:
        pallet, item = undecodable[0]
        return (
            f"decode of the migrated state failed: {pallet}.{item} does not decode"
            f" ({len(undecodable)} key(s)): migrate it and bump {pallet}'s storage version"
        )
    if _RUNNING_TRY_STATE.search(output):
        return f"try_state of {_RUNNING_TRY_STATE.findall(output)[-1]} failed: {error}"
    migrating = _PALLET_LOG.findall(output)
    if migrating:
        return f"post_upgrade of {migrating[-1]} failed (or its migration panicked): {error}"
    return f"pre_upgrade failed before any versioned migration ran: {error}"


def _last_error(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if "rror" in line]
    return lines[-1][:300] if lines else "the runtime trapped without a message"


# --- results ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckLine:
    check: str
    level: Level
    detail: str


@dataclass(frozen=True)
class MigrationReport:
    """What the gate found; `problem` is the one line that refuses the candidate."""

    network: str
    block: str
    try_runtime_hash: str
    spec_version: tuple[int, int]
    checks: tuple[CheckLine, ...]
    weight: tuple[int, int] | None = None  # consumed, block max (ref_time)
    weight_fraction: float | None = None
    keys_changed: dict[str, int] = field(default_factory=dict)
    idempotent: bool | None = None
    seconds: float = 0.0
    remembered: bool = False  # a pass of these exact inputs, not run again

    @property
    def ok(self) -> bool:
        return all(line.level != "fail" for line in self.checks)

    @property
    def problem(self) -> str | None:
        failed = [line for line in self.checks if line.level == "fail"]
        return f"{failed[0].check}: {failed[0].detail}" if failed else None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok, "problem": self.problem}

    def lines(self) -> list[str]:
        """The report a terminal, a release report and the voters' note show."""
        head = (
            f"migrations of spec_version {self.spec_version[0]} -> {self.spec_version[1]} on"
            f" {self.network} at {self.block} (try-runtime build {self.try_runtime_hash})"
        )
        body = [f"{line.level} {line.check}: {line.detail}" for line in self.checks]
        again = " (a remembered pass of these exact inputs)" if self.remembered else ""
        return [head, *body, f"wall time {self.seconds:.1f}s{again}"]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MigrationReport:
        fields = {k: v for k, v in data.items() if k not in ("ok", "problem")}
        fields["checks"] = tuple(CheckLine(**line) for line in data["checks"])
        for name in ("spec_version", "weight"):
            if fields.get(name) is not None:
                fields[name] = tuple(fields[name])
        return cls(**fields)


def report_of(
    *,
    network: str,
    block: str,
    try_runtime_hash: str,
    spec_version: tuple[int, int],
    result: str,
    first: Mapping[str, str | None],
    changed_again: Sequence[str],
    roots: tuple[str, str],
    pallets: Iterable[str],
    seconds: float,
) -> MigrationReport:
    """The gate's findings from a passing first run (all checks: its result and storage diff)
    and what the second run changed; `roots` are both migrated states' roots without events."""
    names = list(pallets)
    (consumed, _), (maximum, _) = decode_weights(result)
    level, fraction = weight_level(consumed, maximum)
    keys = keys_by_pallet((k for k in first if k not in IGNORED_KEYS), names)
    again = keys_by_pallet(changed_again, names)
    shown = ", ".join(f"{pallet} {count}" for pallet, count in keys.items()) or "none"
    # FRAME reports one total: the pallets whose storage the migrations rewrote are the suspects
    migrated = [p for p in keys if p not in ("System", ":well-known")] or list(keys)
    checks = (
        CheckLine("pre_upgrade", "pass", "every pre_upgrade hook passed"),
        CheckLine("post_upgrade", "pass", "every post_upgrade hook passed"),
        CheckLine("decode", "pass", "the whole migrated state decodes"),
        CheckLine("try_state", "pass", "every pallet's try-state invariants hold"),
        CheckLine(
            "weight",
            level,
            f"{consumed:,} of {maximum:,} ref_time ({fraction:.2%} of the block's maximum)"
            + {
                "pass": "",
                "warn": f": at or above {WEIGHT_WARN:.0%}, the upgrade block is nearly full",
                "fail": f": the block's maximum or more, migrating {', '.join(migrated)};"
                " split the migration (multi-block) or lighten it",
            }[level],
        ),
        CheckLine(
            "idempotency",
            "fail" if changed_again else "pass",
            f"a second on_runtime_upgrade changed {len(changed_again)} key(s) of "
            + ", ".join(f"{pallet} ({count})" for pallet, count in again.items())
            + f" (storage root {roots[0]} -> {roots[1]}): guard the migration by its storage"
            " version (VersionedMigration)"
            if changed_again
            else f"a second on_runtime_upgrade leaves the storage root at {roots[0]}",
        ),
        CheckLine("keys", "pass", f"keys changed per pallet: {shown}"),
    )
    return MigrationReport(
        network=network,
        block=block,
        try_runtime_hash=try_runtime_hash,
        spec_version=spec_version,
        checks=checks,
        weight=(consumed, maximum),
        weight_fraction=fraction,
        keys_changed=keys,
        idempotent=not changed_again,
        seconds=seconds,
    )


def state_diff(
    before: Mapping[bytes, bytes], after: Mapping[bytes, bytes]
) -> dict[str, str | None]:
    """What a run changed, as hex: key -> new value (None: deleted)."""
    changed: dict[str, str | None] = {
        "0x" + k.hex(): "0x" + v.hex() for k, v in after.items() if before.get(k) != v
    }
    changed.update({"0x" + k.hex(): None for k in before if k not in after})
    return changed


def root_without_events(state: Mapping[bytes, bytes], state_version: int) -> str:
    ignored = {bytes.fromhex(k[2:]) for k in IGNORED_KEYS}
    kept = {k: v for k, v in state.items() if k not in ignored}
    return "0x" + state_root(kept, state_version).hex()


# --- running it -------------------------------------------------------------------------------
def diff_problems(production_code: bytes, candidate: RuntimeBlob) -> list[str]:
    """The diff's "migration missing" errors from the code production runs to the candidate."""
    runtimes = [
        diff.Runtime("production", RuntimeBlob.from_bytes(production_code), None),
        diff.Runtime("candidate", candidate, None),
    ]
    before, after = diff.summaries(runtimes)
    return verdicts.problems(diff.judge(before, after, diff.diff_summaries(before, after)))


def gate_migrations(
    project: Project,
    env: config.Environment,
    network: str = "production",
    *,
    artifact: str | None = None,
    ref: str | None = None,
    progress: Progress = logger.info,
) -> MigrationReport:
    """The gate for `artifact` (a try-runtime build), or for the try-runtime build of `ref`
    (default HEAD), built here: the same commit as the release build, a second artifact."""
    if artifact:
        path = store.resolve_artifact(project, artifact)
    else:
        built = builder.build(project, ref, try_runtime=True, progress=progress)
        path = store.blob_in(built.artifact_dir)
    runtime = diff.Runtime(str(path), RuntimeBlob.load(path), path)
    progress("checking the migrations on a copy of the network's state (try-runtime)")
    return check_migrations(env, network, path, diff.summary_of(runtime).pallets)


def check_migrations(
    env: config.Environment,
    network: str,
    try_runtime_blob: Path,
    pallets: Iterable[str],
) -> MigrationReport:
    """Run the gate for the try-runtime build at `try_runtime_blob` on `network`'s finalized
    head; a failing check is in the report (`problem`), bad input raises."""
    started = time.monotonic()
    blob = RuntimeBlob.load(try_runtime_blob)
    if not is_try_runtime(blob):
        raise PipelineError(
            f"{try_runtime_blob}: runtime {blob.blake2_256} is a release build (no TryRuntime"
            " API): pass a try-runtime build (`invoke build --try-runtime`) or no --artifact"
        )
    net = config.network(env, network)
    with connect(env, net) as chain:
        block = str(chain.rpc("chain_getFinalizedHead"))
        spec = (int(chain.runtime_version(block)["specVersion"]), blob.version.spec_version)
        if spec[1] <= spec[0]:
            raise PipelineError(
                f"{net.name} already runs spec_version {spec[0]}, not below the candidate's"
                f" {spec[1]}: there is no upgrade (and no migration) to check; raise"
                " spec_version"
            )
        key = _memo_key(blob.blake2_256, str(chain.rpc("chain_getBlockHash", [0])), block)
        remembered = _remembered(key)
        if remembered is not None:
            return remembered
        state = snapshot(chain, block)

    def failed(line: str) -> MigrationReport:
        check = next((name for name in CHECKS if line.startswith(name)), "on_runtime_upgrade")
        return MigrationReport(
            network=net.name,
            block=block,
            try_runtime_hash=blob.blake2_256,
            spec_version=spec,
            checks=(CheckLine(check, "fail", line),),
            seconds=time.monotonic() - started,
        )

    migrated, result, failure = run_upgrade(blob, state, ALL_CHECKS)
    if failure is not None:
        return failed(failure)
    again, _, failure = run_upgrade(blob, migrated, NO_CHECKS)
    if failure is not None:
        return failed(f"idempotency: the second on_runtime_upgrade failed: {failure}")
    first, second = state_diff(state, migrated), state_diff(migrated, again)
    before = {k: first.get(k, _hex(state.get(bytes.fromhex(k[2:])))) for k in second}
    version = blob.version.state_version
    report = report_of(
        network=net.name,
        block=block,
        try_runtime_hash=blob.blake2_256,
        spec_version=spec,
        result="0x" + result.hex(),
        first=first,
        changed_again=not_idempotent(first, second, before),
        roots=(root_without_events(migrated, version), root_without_events(again, version)),
        pallets=pallets,
        seconds=time.monotonic() - started,
    )
    if report.ok:
        _remember(key, report)
    return report


ALL_CHECKS: Final = b"\x01"  # frame_try_runtime::UpgradeCheckSelect::All
NO_CHECKS: Final = b"\x00"  # ::None
LOG_INFO: Final = 3  # the runtime's log filter: FRAME names pallets at info


def run_upgrade(
    blob: RuntimeBlob, state: Mapping[bytes, bytes], checks: bytes
) -> tuple[dict[bytes, bytes], bytes, str | None]:
    """`TryRuntime_on_runtime_upgrade` on a copy of `state`: the state after it, its result,
    and the one line naming the failed check (None when it passed)."""
    storage = wasm_exec.Storage(values=dict(state))
    instance = wasm_exec.RuntimeInstance(blob.wasm, storage, log_level=LOG_INFO)
    try:
        result = instance.call("TryRuntime_on_runtime_upgrade", checks)
    except wasm_exec.RuntimeCallError as exc:
        return storage.values, b"", failure_line("\n".join([*instance.logs, str(exc)]))
    return storage.values, result, None


def _hex(value: bytes | None) -> str | None:
    return None if value is None else "0x" + value.hex()


def _memo_key(try_runtime_hash: str, genesis: str, block: str) -> str:
    """The inputs of a check: the try-runtime blob, the chain and the block whose state it
    read, and the gate's own rules. A pass with equal inputs is remembered, never a failure."""
    payload = json.dumps([try_runtime_hash, genesis, block, MEMO_FORMAT])
    return "migrations-" + hashlib.blake2b(payload.encode(), digest_size=16).hexdigest()


def _remembered(key: str) -> MigrationReport | None:
    try:
        data = json.loads(read_entry(cache_dir() / "checks" / f"{key}.json"))
        report = MigrationReport.from_dict(data)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return replace(report, remembered=True) if report.ok else None


def _remember(key: str, report: MigrationReport) -> None:
    record = json.dumps(report.as_dict()) + "\n"
    write_atomic(cache_dir() / "checks" / f"{key}.json", record.encode())
