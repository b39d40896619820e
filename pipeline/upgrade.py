"""The upgrade candidate: a runtime blob checked offline, loaded once per blob hash (its
genesis storage versions and digest cached), and what every stage checks a chain against with
it: the code size limit, the live check after an upgrade, the block where new code is live.

The in-code storage versions come from the candidate's own genesis: every FRAME pallet writes
its in-code version under `twox128(pallet) ++ twox128(":__STORAGE_VERSION__:")` when a chain is
born, so building the candidate's genesis storage (in node, no try-runtime) gives the versions
a fully migrated chain must show. A pallet whose on-chain version lags has a pending migration.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal, get_args

from substrateinterface.utils.hasher import xxh128

from pipeline import devrpc, metadata, store, wasm_exec
from pipeline.artifact import RuntimeBlob, refuse_try_runtime
from pipeline.chain import Chain
from pipeline.errors import PipelineError
from pipeline.policy import CandidateInfo, candidate_info
from pipeline.progress import until, waiting
from pipeline.project import DEFAULT_PRESET

Method = Literal["set_code", "authorize"]
METHODS: Final[tuple[Method, ...]] = get_args(Method)

STORAGE_VERSION_KEY: Final = b":__STORAGE_VERSION__:"
# frame_system::limits::BlockLength::default(): 5 MiB for operational extrinsics such as
# set_code. Used when the chain's metadata has no System.BlockLength constant.
DEFAULT_BLOCK_LENGTH: Final = 5 * 1024 * 1024
# Room left in a block for everything around the code: the extrinsic's length prefix, address,
# signature and extensions (~150 bytes), the sudo and system call indices, the code's own length
# prefix and the declared weight, and the block's inherents (the timestamp).
CODE_SIZE_OVERHEAD: Final = 1024
# set_code declares a whole block of weight; sudo_unchecked_weight declares none instead, since
# the upgrade's real cost (the migrations) is accounted in the next block's on_runtime_upgrade.
UNCHECKED_WEIGHT: Final = {"ref_time": 0, "proof_size": 0}


@dataclass(frozen=True)
class Candidate:
    """A runtime blob about to go on chain, checked offline: the one object every stage of a
    release is handed (see `load_candidate`)."""

    path: Path
    blob: RuntimeBlob
    info: CandidateInfo
    genesis_versions: Mapping[str, str]  # storage version key -> value in its genesis storage

    @property
    def code_hash(self) -> str:
        return self.blob.blake2_256

    @property
    def spec_version(self) -> int:
        return self.info.spec_version

    @cached_property
    def digest(self) -> Mapping[str, Any]:
        """The digest.json published beside the blob (read when first needed: voters need the
        build's source facts, a staging deploy does not)."""
        return store.read_digest(self.path)


def load_candidate(path: Path, preset: str = DEFAULT_PRESET) -> Candidate:
    """Check the blob offline: a valid (compressed) wasm with a readable runtime version, not a
    try-runtime build, whose genesis builds; that genesis holds the storage version each
    pallet's code declares.

    The genesis is a function of the blob and the preset alone: it is built in this process
    (the compiled runtime is cached by blob hash) and its storage versions are kept here by
    blob hash, so a release builds it once, not once per stage."""
    blob = RuntimeBlob.load(path)
    refuse_try_runtime(blob, str(path))
    info = candidate_info(blob.version, blob.size)
    versions = _genesis_versions(blob, preset)
    return Candidate(path=path, blob=blob, info=info, genesis_versions=versions)


def _genesis_versions(blob: RuntimeBlob, preset: str) -> Mapping[str, str]:
    code_hash = blob.blake2_256
    key = (code_hash, preset)
    if key in _GENESIS_VERSIONS:
        return _GENESIS_VERSIONS[key]
    try:
        state = wasm_exec.genesis_storage(wasm_exec.RuntimeInstance(blob.wasm), preset)
    except wasm_exec.RuntimeCallError as exc:
        raise PipelineError(f"genesis of runtime {code_hash} ({preset}) failed: {exc}") from None
    suffix = xxh128(STORAGE_VERSION_KEY)
    versions = {
        f"0x{key.hex()}": f"0x{value.hex()}" for key, value in state.items() if key.endswith(suffix)
    }
    _GENESIS_VERSIONS[key] = MappingProxyType(versions)
    return _GENESIS_VERSIONS[key]


_GENESIS_VERSIONS: dict[tuple[str, str], Mapping[str, str]] = {}


@dataclass(frozen=True)
class StorageVersionRow:
    pallet: str
    on_chain: int
    in_code: int

    @property
    def ok(self) -> bool:
        return self.on_chain == self.in_code


def code_size_limit(block_length: Mapping[str, Any] | None) -> int:
    """Largest blob an upgrade can carry: the block length allowed to operational extrinsics
    (set_code and apply_authorized_upgrade are operational) minus the extrinsic's envelope."""
    limits = (block_length or {}).get("max")
    if isinstance(limits, Mapping) and isinstance(limits.get("operational"), int):
        return int(limits["operational"]) - CODE_SIZE_OVERHEAD
    return DEFAULT_BLOCK_LENGTH - CODE_SIZE_OVERHEAD


def storage_version_key(pallet: str) -> str:
    """Where FRAME keeps a pallet's on-chain storage version."""
    key: bytes = xxh128(pallet.encode()) + xxh128(STORAGE_VERSION_KEY)
    return "0x" + key.hex()


def decode_storage_version(raw: bytes | str | None) -> int:
    """A StorageVersion (u16 LE); absent means 0, as FRAME reads it."""
    if raw is None:
        return 0
    data = bytes.fromhex(raw.removeprefix("0x")) if isinstance(raw, str) else raw
    if len(data) != 2:
        raise PipelineError(
            f"storage version value 0x{data.hex()} is not a u16: the chain's state is corrupt"
        )
    return int.from_bytes(data, "little")


def storage_version_table(
    pallets: Sequence[str],
    on_chain: Mapping[str, bytes | None],
    genesis: Mapping[str, str],
) -> list[StorageVersionRow]:
    """Per pallet: its on-chain storage version (by pallet name) against the in-code one, read
    from the candidate's genesis storage (raw key -> value)."""
    return [
        StorageVersionRow(
            pallet=name,
            on_chain=decode_storage_version(on_chain.get(name)),
            in_code=decode_storage_version(genesis.get(storage_version_key(name))),
        )
        for name in pallets
    ]


def verification_problems(
    candidate: Candidate,
    code_hash: str,
    spec_version: int,
    last_upgrade_spec: int | None,
    rows: Sequence[StorageVersionRow],
) -> list[str]:
    """What is wrong with a chain that should now run the candidate (empty: all good)."""
    problems = []
    if code_hash != candidate.code_hash:
        problems.append(f":code hashes to {code_hash}, not to the artifact's {candidate.code_hash}")
    if spec_version != candidate.info.spec_version:
        problems.append(
            f"the chain reports spec_version {spec_version}, not {candidate.info.spec_version}"
        )
    if last_upgrade_spec is not None and last_upgrade_spec != candidate.info.spec_version:
        problems.append(
            f"System.LastRuntimeUpgrade is still {last_upgrade_spec}: the new code has not "
            "run its on_runtime_upgrade yet"
        )
    pending = [r for r in rows if not r.ok]
    if pending:
        listed = ", ".join(
            f"{r.pallet} on chain {r.on_chain} != in code {r.in_code}" for r in pending
        )
        problems.append(
            f"storage versions differ ({listed}): a migration is missing from the runtime's "
            "Migrations or did not finish"
        )
    return problems


def next_block(
    chain: Chain,
    after: int,
    produces_blocks: bool,
    timeout: float = 120.0,
    why: str = "the code set there runs from it",
) -> int:
    """The number of a block built after `after` (the one where code set in `after` is live):
    the head if it already is one, else made on demand on chopsticks, else awaited."""
    if (head := chain.block_number()) > after:
        return head
    if produces_blocks:
        head = devrpc.produce_blocks(chain.endpoint, 1)
        if head > after:
            return head
    deadline = time.monotonic() + timeout
    what = f"a block after #{after} on {chain.endpoint} ({why})"
    with waiting(chain.progress, what, until(timeout)):
        while (head := chain.block_number()) <= after:
            if time.monotonic() > deadline:
                raise PipelineError(
                    f"{chain.endpoint} made no block after #{after} within {timeout:.0f}s: "
                    "is block production stalled? check the node's logs"
                )
            time.sleep(1.0)
    return head


# pallet-migrations (multi-block migrations) keeps its progress in `Cursor`: present while a
# migration runs over several blocks. Runtimes name the pallet `MultiBlockMigrations`.
MBM_PALLET: Final = "MultiBlockMigrations"
MBM_MAX_BLOCKS: Final = 100  # a stuck cursor is reported after this many blocks


def migrations_cursor_key(pallet: str = MBM_PALLET) -> str:
    """The storage key of pallet-migrations' `Cursor`."""
    key: bytes = xxh128(pallet.encode()) + xxh128(b"Cursor")
    return "0x" + key.hex()


def wait_for_migrations(
    chain: Chain, produces_blocks: bool, timeout: float, max_blocks: int = MBM_MAX_BLOCKS
) -> int:
    """Wait, block by block, until no multi-block migration runs (its cursor is empty); the
    blocks waited (0 at once on runtimes without pallet-migrations or with none running).

    Until then storage is half migrated: the upgrade is not done and its checks would fail."""
    key = migrations_cursor_key()
    head = chain.block_number()
    what = f"multi-block migrations on {chain.endpoint} to end"
    bound = f"until block #{head + max_blocks}, at most {max_blocks} blocks"
    waited = 0
    with waiting(chain.progress, what, bound) as now_at:
        while (cursor := chain.storage(key, chain.block_hash(head))) is not None:
            if waited >= max_blocks:
                raise PipelineError(
                    f"multi-block migrations still run on {chain.endpoint} after {waited} "
                    f"blocks (#{head}, cursor 0x{cursor[:16].hex()}…): they may be stuck; read "
                    f"{MBM_PALLET} events, and resume once its cursor is empty"
                )
            now_at(f"{what} (still running at #{head}, {waited} blocks so far)")
            head = next_block(chain, head, produces_blocks, timeout, why="migrations step in it")
            waited += 1
    return waited


@dataclass(frozen=True)
class LiveCheck:
    """The chain at one block against a candidate: what `deploy` and `enact` verify."""

    head: int
    spec_version: int
    storage_versions: tuple[StorageVersionRow, ...]
    problems: tuple[str, ...]


def check_live(chain: Chain, candidate: Candidate, head: int | None = None) -> LiveCheck:
    """`:code` is the candidate, its spec_version is live and ran on_runtime_upgrade, and every
    pallet is at its in-code storage version (read from the candidate's genesis)."""
    head = chain.block_number() if head is None else head
    head_hash = chain.block_hash(head)
    names = metadata.chain_metadata(chain).pallet_names()
    on_chain = {name: chain.storage(storage_version_key(name), head_hash) for name in names}
    rows = storage_version_table(names, on_chain, candidate.genesis_versions)
    last = chain.query("System", "LastRuntimeUpgrade", block_hash=head_hash)
    spec = int(chain.runtime_version(head_hash)["specVersion"])
    problems = verification_problems(
        candidate,
        chain.code_hash(head_hash),
        spec,
        int(last["spec_version"]) if isinstance(last, Mapping) else None,
        rows,
    )
    return LiveCheck(head, spec, tuple(rows), tuple(problems))
