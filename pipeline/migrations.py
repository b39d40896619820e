"""The migration safety gate: try-runtime checks of a candidate on a fork of a network's state.

Engine: chopsticks' `try-runtime` command (the project's pinned chopsticks), which forks the
network at a block, overrides its code with the candidate's try-runtime build and calls
`TryRuntime_on_runtime_upgrade` (pre/post-upgrade hooks, decoding of the whole state,
try-state of every pallet). It has no idempotency check, so the pipeline runs it a second time
on the first run's result (its storage diff imported onto the same block, checks off) and
compares the states, ignoring `System.Events`/`EventCount` as try-runtime-cli does: equal
states are equal storage roots, and the keys that differ name the pallet at fault.

The decisions (weight against the block's maximum, keys per pallet, idempotency, the one line
that names the failing pallet and check) are pure functions; `check_migrations` runs them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Final, Literal

from pipeline import builder, config, diff, executor, store
from pipeline.artifact import RuntimeBlob, is_try_runtime
from pipeline.builder_image import Progress, logger
from pipeline.chain import connect
from pipeline.errors import PipelineError
from pipeline.project import Project, cache_dir
from pipeline.wasm_exec import twox

WEIGHT_WARN: Final = 0.80  # of the block's max ref_time: warn at and above
WEIGHT_FAIL: Final = 1.00  # above: the upgrade block could not hold the migrations
CHOPSTICKS_TIMEOUT_S: Final = 900.0
# Rewritten every block: a second run's events are no state change (try-runtime-cli's rule).
IGNORED_ITEMS: Final = (("System", "Events"), ("System", "EventCount"))
MEMO_FORMAT: Final = 1
CHECKS: Final = ("pre_upgrade", "post_upgrade", "try_state", "decode", "weight", "idempotency")

Level = Literal["pass", "warn", "fail"]


def storage_prefix(pallet: str, item: str | None = None) -> str:
    """`0x` + twox128(pallet) [+ twox128(item)]: where FRAME keeps a pallet's (item's) keys."""
    return "0x" + twox(pallet.encode(), 16).hex() + (twox(item.encode(), 16).hex() if item else "")


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
    """The migrations' ref_time against the block's: warn from 80 %, fail above 100 %."""
    fraction = consumed / maximum if maximum else float("inf")
    if fraction > WEIGHT_FAIL:
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
    if "try_decode_entire_state` failed" in output:
        return f"decode of the migrated state failed: {error}"
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
    first: Mapping[str, Any],
    changed_again: Sequence[str],
    pallets: Iterable[str],
    seconds: float,
) -> MigrationReport:
    """The gate's findings from a passing first run (all checks) and the second run's changes."""
    names = list(pallets)
    (consumed, _), (maximum, _) = decode_weights(str(first["result"]))
    level, fraction = weight_level(consumed, maximum)
    diff = dict(_diff(first))
    keys = keys_by_pallet((k for k in diff if k not in IGNORED_KEYS), names)
    again = keys_by_pallet(changed_again, names)
    shown = ", ".join(f"{pallet} {count}" for pallet, count in keys.items()) or "none"
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
                "fail": ": over the block's maximum; split the migration (multi-block) or"
                " lighten it",
            }[level],
        ),
        CheckLine(
            "idempotency",
            "fail" if changed_again else "pass",
            f"a second on_runtime_upgrade changed {len(changed_again)} key(s) of "
            + ", ".join(f"{pallet} ({count})" for pallet, count in again.items())
            + ": guard the migration by its storage version (VersionedMigration)"
            if changed_again
            else "a second on_runtime_upgrade leaves the state (storage root) unchanged",
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


def _diff(output: Mapping[str, Any]) -> Iterable[tuple[str, str | None]]:
    for key, value in output.get("storageDiff", []):
        yield str(key).lower(), None if value is None else str(value).lower()


# --- running it -------------------------------------------------------------------------------
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
    progress("checking the migrations on a fork (chopsticks try-runtime)")
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
    chain = connect(env, net)
    try:
        block = str(chain.rpc("chain_getFinalizedHead"))
        on_chain = int(chain.runtime_version(block)["specVersion"])
        spec = (on_chain, blob.version.spec_version)
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
        with tempfile.TemporaryDirectory(prefix="pipeline-migrations-") as tmp:
            wasm = Path(tmp) / "try-runtime.wasm"
            wasm.write_bytes(blob.wasm)
            first, failure = _try_runtime(net.endpoint, block, wasm, "All", None, Path(tmp))
            if failure is not None:
                return _failed(net.name, block, blob, spec, failure, time.monotonic() - started)
            state = Path(tmp) / "migrated.json"
            state.write_text(json.dumps([[k, v] for k, v in _diff(first)]))
            second, failure = _try_runtime(net.endpoint, block, wasm, "None", state, Path(tmp))
            if failure is not None:
                line = f"the second on_runtime_upgrade failed: {failure}"
                return _failed(net.name, block, blob, spec, line, time.monotonic() - started)
        diff1, diff2 = dict(_diff(first)), dict(_diff(second))
        before = {key: _hex(chain.storage(key, block)) for key in diff2 if key not in diff1}
    finally:
        chain.close()
    report = report_of(
        network=net.name,
        block=block,
        try_runtime_hash=blob.blake2_256,
        spec_version=spec,
        first=first,
        changed_again=not_idempotent(diff1, diff2, before),
        pallets=pallets,
        seconds=time.monotonic() - started,
    )
    if report.ok:
        _remember(key, report)
    return report


def _memo_key(try_runtime_hash: str, genesis: str, block: str) -> str:
    """The inputs of a check: the try-runtime blob, the chain and the block it forks, and the
    engine (chopsticks' version). A pass with equal inputs is remembered, never a failure."""
    package = executor.chopsticks_cli().parent / "package.json"
    engine = json.loads(package.read_text())["version"]
    payload = json.dumps([try_runtime_hash, genesis, block, engine, MEMO_FORMAT])
    return "migrations-" + hashlib.blake2b(payload.encode(), digest_size=16).hexdigest()


def _remembered(key: str) -> MigrationReport | None:
    try:
        data = json.loads((cache_dir() / "checks" / f"{key}.json").read_text())
        report = MigrationReport.from_dict(data)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return replace(report, remembered=True) if report.ok else None


def _remember(key: str, report: MigrationReport) -> None:
    path = cache_dir() / "checks" / f"{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(report.as_dict()) + "\n")
    partial.replace(path)


def _hex(value: bytes | None) -> str | None:
    return None if value is None else "0x" + value.hex()


def _failed(
    network: str, block: str, blob: RuntimeBlob, spec: tuple[int, int], line: str, seconds: float
) -> MigrationReport:
    check = next((name for name in CHECKS if line.startswith(name)), "on_runtime_upgrade")
    return MigrationReport(
        network=network,
        block=block,
        try_runtime_hash=blob.blake2_256,
        spec_version=spec,
        checks=(CheckLine(check, "fail", line),),
        seconds=seconds,
    )


def _try_runtime(
    endpoint: str,
    block: str,
    wasm: Path,
    checks: str,
    import_storage: Path | None,
    workdir: Path,
) -> tuple[dict[str, Any], str | None]:
    """One `chopsticks try-runtime` run: its response (result, storageDiff, runtimeLogs), or
    the one line saying why the runtime refused."""
    out = workdir / f"try-runtime-{checks}.json"
    command = [
        str(executor.node_binary()),
        str(executor.chopsticks_cli()),
        "try-runtime",
        "--endpoint",
        endpoint,
        "--block",
        block,
        "--runtime",
        str(wasm),
        "--checks",
        checks,
        "--output-path",
        str(out),
    ]
    if import_storage is not None:
        command += ["--import-storage", str(import_storage)]
    try:
        proc = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=CHOPSTICKS_TIMEOUT_S,
            env=executor.node_env("info"),
            cwd=workdir,
        )
    except subprocess.TimeoutExpired:
        raise PipelineError(
            f"chopsticks try-runtime took over {CHOPSTICKS_TIMEOUT_S:.0f}s on {endpoint}: the"
            " network is slow or the migration loops"
        ) from None
    output = proc.stdout + proc.stderr
    if proc.returncode == 0 and out.is_file():
        response: dict[str, Any] = json.loads(out.read_text())
        return response, None
    for refusal in ("Spec name does not match", "Spec version must increase"):
        if refusal in output:
            raise PipelineError(f"chopsticks try-runtime refused the candidate: {refusal}")
    return {}, failure_line(output)
