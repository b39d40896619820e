"""A runtime blob as it goes into `:code`: decompression, custom sections, hashes, digest JSON.

Everything here is pure except `RuntimeBlob.load`. The rules mirror what a node does with the
same bytes (sp-maybe-compressed-blob, sc-executor's reading of embedded custom sections,
sp-version's decoding), so that what we refuse offline is what the chain would refuse.
"""

from __future__ import annotations

import hashlib
import json
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from importlib.metadata import version as distribution_version
from os import PathLike
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, NamedTuple

import zstandard

from pipeline.errors import PipelineError

# sp-maybe-compressed-blob: a compressed code blob is this prefix followed by one zstd frame.
ZSTD_PREFIX: Final = bytes([0x52, 0xBC, 0x53, 0x76, 0x46, 0xDB, 0x8E, 0x05])
# sp_maybe_compressed_blob::CODE_BLOB_BOMB_LIMIT: nodes refuse code that inflates beyond it.
BOMB_LIMIT: Final = 50 * 1024 * 1024
# The zstd level of sp-maybe-compressed-blob 11.1.0's `compress`, which substrate-wasm-builder
# 26.0.1 (stable2503) calls; later releases also offer `compress_strongly` (level 22).
ZSTD_LEVEL: Final = 3

WASM_MAGIC: Final = b"\0asm"
WASM_VERSION: Final = b"\x01\0\0\0"
_LAST_SECTION_ID = 13  # tag section, the highest id in the wasm 2.0 + exceptions spec
_CUSTOM_SECTION_ID = 0
_RUNTIME_API_INFO_SIZE = 12  # sp_api::RUNTIME_API_INFO_SIZE: [u8; 8] id + u32 LE version

# frame-system's call indices, read in the frame-system 40.2.0 crate source (the polkadot-sdk
# stable2503 line, as pinned by examples/runtime/Cargo.lock), src/lib.rs:
# `#[pallet::call_index(2)] set_code` and `#[pallet::call_index(9)] authorize_upgrade`.
# System is pallet 0 in construct_runtime by convention; pass another index when it is not.
SYSTEM_CALL_INDICES: Final[Mapping[str, int]] = MappingProxyType(
    {"set_code": 2, "authorize_upgrade": 9}
)

# Runtime API traits whose ids (blake2_64 of the trait name, as `decl_runtime_apis!` derives
# them) we can name; an id not listed is shown unnamed, never guessed.
KNOWN_API_TRAITS: Final = (
    "AccountNonceApi",
    "AssetConversionApi",
    "AssetsApi",
    "AuraApi",
    "AuraUnincludedSegmentApi",
    "AuthorityDiscoveryApi",
    "BabeApi",
    "BeefyApi",
    "BeefyMmrApi",
    "Benchmark",
    "BlockBuilder",
    "CollectCollationInfo",
    "ContractsApi",
    "Core",
    "DryRunApi",
    "FungiblesApi",
    "GenesisBuilder",
    "GetCoreSelectorApi",
    "GetParachainInfo",
    "GrandpaApi",
    "LocationToAccountApi",
    "Metadata",
    "MixnetApi",
    "MmrApi",
    "NftsApi",
    "NominationPoolsApi",
    "OffchainWorkerApi",
    "ParachainHost",
    "RelayParentOffsetApi",
    "ReviveApi",
    "RuntimeViewFunction",
    "SessionKeys",
    "StakingApi",
    "TaggedTransactionQueue",
    "TransactionPaymentApi",
    "TransactionPaymentCallApi",
    "TrustedQueryApi",
    "TryRuntime",
    "ValidateStatement",
    "XcmPaymentApi",
)


def blake2_256(data: bytes) -> str:
    """`0x`-prefixed blake2b-256, the hash Substrate uses for code and call hashes."""
    return "0x" + hashlib.blake2b(data, digest_size=32).hexdigest()


def sha256(data: bytes) -> str:
    """`0x`-prefixed SHA-256, as srtool reports it next to the blake2 hash."""
    return "0x" + hashlib.sha256(data).hexdigest()


def api_id(trait_name: str) -> str:
    """A runtime API's id: blake2_64 of its trait name (sp_api's `decl_runtime_apis!`)."""
    return "0x" + hashlib.blake2b(trait_name.encode(), digest_size=8).hexdigest()


_API_NAMES: Final = {api_id(name): name for name in KNOWN_API_TRAITS}
# A runtime built with `--features try-runtime` exports this API (migration checks): such a
# blob is for checks on a fork only and must never become a chain's code.
TRY_RUNTIME_API: Final = "TryRuntime"
_CORE_API_ID: Final = api_id("Core")


@dataclass(frozen=True)
class RuntimeApi:
    """One entry of a runtime's API list: id, the trait's name when known, and its version."""

    id: str  # "0x" + 8 bytes hex
    name: str | None
    version: int

    @classmethod
    def from_id(cls, id_bytes: bytes, version: int) -> RuntimeApi:
        api = "0x" + id_bytes.hex()
        return cls(id=api, name=_API_NAMES.get(api), version=version)


@dataclass(frozen=True)
class RuntimeVersion:
    """sp_version::RuntimeVersion as the node reads it from the blob."""

    spec_name: str
    impl_name: str
    authoring_version: int
    spec_version: int
    impl_version: int
    apis: tuple[RuntimeApi, ...]
    transaction_version: int
    system_version: int  # named state_version before polkadot-sdk stable2409

    @property
    def state_version(self) -> int:
        """Trie state version: system_version 0 means V0, anything above means V1 (sp-version)."""
        return min(self.system_version, 1)

    @property
    def core_version(self) -> str:
        """sp-version's Display form, the line node logs and subwasm print."""
        return (
            f"{self.spec_name}-{self.spec_version} ({self.impl_name}-{self.impl_version}"
            f".tx{self.transaction_version}.au{self.authoring_version})"
        )

    def as_serde(self) -> dict[str, Any]:
        """sp-version's serde form (camelCase, apis as [id, version] pairs): what
        `state_getRuntimeVersion` answers and `subwasm info -j` prints as `core_version`."""
        return {
            "specName": self.spec_name,
            "implName": self.impl_name,
            "authoringVersion": self.authoring_version,
            "specVersion": self.spec_version,
            "implVersion": self.impl_version,
            "apis": [[api.id, api.version] for api in self.apis],
            "transactionVersion": self.transaction_version,
            "systemVersion": self.system_version,
        }


class _ScaleReader:
    """Cursor over SCALE bytes that names what was being read and where when the bytes run out."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def take(self, count: int, field_name: str) -> bytes:
        end = self.pos + count
        if end > len(self.data):
            raise PipelineError(
                f"{self.what} is truncated: {field_name} at byte {self.pos} needs {count} bytes,"
                f" {len(self.data) - self.pos} remain: rebuild the runtime or re-fetch the file"
            )
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def u8(self, field_name: str) -> int:
        return self.take(1, field_name)[0]

    def u32(self, field_name: str) -> int:
        return int.from_bytes(self.take(4, field_name), "little")

    def compact(self, field_name: str) -> int:
        first = self.u8(field_name)
        mode = first & 0b11
        if mode == 0:
            return first >> 2
        if mode in (1, 2):
            rest = self.take(mode * 2 - 1, field_name)  # 2- or 4-byte modes
            return int.from_bytes(bytes([first]) + rest, "little") >> 2
        return int.from_bytes(self.take((first >> 2) + 4, field_name), "little")

    def text(self, field_name: str) -> str:
        raw = self.take(self.compact(field_name), field_name)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PipelineError(
                f"{self.what}: {field_name} is not UTF-8 ({exc.reason} at byte {exc.start}):"
                " rebuild the runtime"
            ) from None


def decode_runtime_version(data: bytes, core_version: int | None = None) -> RuntimeVersion:
    """Decode a SCALE RuntimeVersion the way sp-version does (`decode_with_version_hint`).

    The encoding grew over time and is versioned by the Core API: Core < 3 has no
    transaction_version (it reads as 1), Core < 4 no state/system version (reads as 0). The
    hint comes from the `runtime_apis` section; without it, the Core entry of the encoded apis
    decides. Trailing bytes are ignored, as the node ignores them. Also decodes `Core_version`
    results fetched from a chain.
    """
    reader = _ScaleReader(data, "runtime_version")
    spec_name = reader.text("spec_name")
    impl_name = reader.text("impl_name")
    authoring_version = reader.u32("authoring_version")
    spec_version = reader.u32("spec_version")
    impl_version = reader.u32("impl_version")
    apis = tuple(
        RuntimeApi.from_id(reader.take(8, "api id"), reader.u32("api version"))
        for _ in range(reader.compact("apis length"))
    )
    if core_version is None:
        core_version = _core_version(apis)
    encoding = core_version or 0
    return RuntimeVersion(
        spec_name=spec_name,
        impl_name=impl_name,
        authoring_version=authoring_version,
        spec_version=spec_version,
        impl_version=impl_version,
        apis=apis,
        transaction_version=reader.u32("transaction_version") if encoding >= 3 else 1,
        system_version=reader.u8("system_version") if encoding >= 4 else 0,
    )


def decode_runtime_apis(data: bytes) -> tuple[RuntimeApi, ...]:
    """Decode the `runtime_apis` custom section: 12-byte records (id, u32 LE version)."""
    if len(data) % _RUNTIME_API_INFO_SIZE:
        raise PipelineError(
            f"runtime_apis section is {len(data)} bytes, not a multiple of"
            f" {_RUNTIME_API_INFO_SIZE} (a clipped API record): rebuild the runtime"
        )
    return tuple(
        RuntimeApi.from_id(data[i : i + 8], int.from_bytes(data[i + 8 : i + 12], "little"))
        for i in range(0, len(data), _RUNTIME_API_INFO_SIZE)
    )


def _core_version(apis: tuple[RuntimeApi, ...]) -> int | None:
    return next((api.version for api in apis if api.id == _CORE_API_ID), None)


def _leb128_u32(data: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    """Read an unsigned LEB128 u32 (at most 5 bytes) before `end`; return (value, next pos)."""
    value = 0
    for shift in range(0, 35, 7):
        if pos >= end:
            raise PipelineError(
                f"wasm module is truncated: {what} at offset {pos} runs past its end"
                f" (offset {end}): rebuild the runtime or re-fetch the file"
            )
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if value > 0xFFFF_FFFF:
                break
            return value, pos
    raise PipelineError(
        f"wasm module is malformed: {what} ending at offset {pos} is not a valid u32 LEB128:"
        " rebuild the runtime or re-fetch the file"
    )


def _custom_sections(wasm: bytes) -> dict[str, bytes]:
    """Walk every section with bounds checks; keep the first custom section of each name.

    First-wins matches sc-executor, which reads the first section of a given name.
    """
    if len(wasm) < 8 or wasm[:4] != WASM_MAGIC:
        raise PipelineError(
            f"not a runtime blob: starts with 0x{wasm[:8].hex()}, neither the wasm magic"
            f" (0x{WASM_MAGIC.hex()}) nor Substrate's compressed prefix (0x{ZSTD_PREFIX.hex()}):"
            " pass the runtime's .compact.compressed.wasm or .compact.wasm"
        )
    if wasm[4:8] != WASM_VERSION:
        raise PipelineError(
            f"wasm binary version 0x{wasm[4:8].hex()} is not 1: pass a wasm MVP module"
            " as substrate-wasm-builder produces"
        )
    sections: dict[str, bytes] = {}
    pos = 8
    while pos < len(wasm):
        start = pos
        section_id = wasm[pos]
        if section_id > _LAST_SECTION_ID:
            raise PipelineError(
                f"wasm module is malformed: unknown section id {section_id} at offset {start}:"
                " rebuild the runtime or re-fetch the file"
            )
        size, pos = _leb128_u32(wasm, pos + 1, len(wasm), f"size of section {section_id}")
        end = pos + size
        if end > len(wasm):
            raise PipelineError(
                f"wasm module is truncated: section {section_id} at offset {start} declares"
                f" {size} bytes, {len(wasm) - pos} remain: rebuild the runtime or re-fetch"
                " the file"
            )
        if section_id == _CUSTOM_SECTION_ID:
            name_len, name_pos = _leb128_u32(wasm, pos, end, "custom section name length")
            if name_pos + name_len > end:
                raise PipelineError(
                    f"wasm module is malformed: custom section name at offset {name_pos}"
                    f" overruns its section (ends at {end}): rebuild the runtime"
                )
            name = wasm[name_pos : name_pos + name_len].decode("utf-8", errors="replace")
            sections.setdefault(name, wasm[name_pos + name_len : end])
        pos = end
    return sections


def _decompress(payload: bytes) -> bytes:
    """Inflate the zstd frame after the prefix, refusing what a node would refuse.

    A bounded streaming read enforces the bomb limit without inflating a bomb in memory;
    the second pass, now known to be small, checks that the frame is complete and alone.
    """
    try:
        reader = zstandard.ZstdDecompressor().stream_reader(payload, read_across_frames=True)
        inflated = 0
        while chunk := reader.read(min(1 << 20, BOMB_LIMIT + 1 - inflated)):
            inflated += len(chunk)
            if inflated > BOMB_LIMIT:
                raise PipelineError(
                    f"compressed runtime inflates beyond {BOMB_LIMIT >> 20} MiB, the node's"
                    " bomb limit (sp-maybe-compressed-blob): nodes would refuse it; check the"
                    " build output"
                )
        decompressor = zstandard.ZstdDecompressor().decompressobj()
        wasm = decompressor.decompress(payload)
    except zstandard.ZstdError as exc:
        raise PipelineError(
            f"compressed runtime has an invalid zstd frame ({exc}): rebuild the runtime or"
            " re-fetch the file"
        ) from None
    if not decompressor.eof:
        raise PipelineError(
            f"compressed runtime's zstd frame is truncated ({len(payload)} bytes after the"
            " prefix): rebuild the runtime or re-fetch the file"
        )
    if decompressor.unused_data:
        raise PipelineError(
            f"compressed runtime has {len(decompressor.unused_data)} stray bytes after its zstd"
            " frame: rebuild the runtime or re-fetch the file"
        )
    return bytes(wasm)


def compress(wasm: bytes) -> bytes:
    """Substrate's compressed form, as sp-maybe-compressed-blob writes it (deterministic).

    A streaming zstd encoder at level 3 with no content size and no checksum in the frame
    header, like the Rust `zstd::Encoder` the crate uses.
    """
    if len(wasm) > BOMB_LIMIT:
        raise PipelineError(
            f"wasm is {len(wasm)} bytes, over the {BOMB_LIMIT >> 20} MiB bomb limit: nodes"
            " could not tell it from a compression bomb; shrink the runtime"
        )
    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compressobj()
    return ZSTD_PREFIX + compressor.compress(wasm) + compressor.flush()


def read_blob_file(path: Path) -> bytes:
    """The bytes of a runtime file, checked first: a regular file of at most BOMB_LIMIT bytes.

    No valid blob is larger (the wasm inside inflates to at most the limit), and a directory,
    FIFO or device would block or fail halfway through a read.
    """
    status = path.stat()
    if not stat.S_ISREG(status.st_mode):
        raise PipelineError(f"{path}: not a regular file: pass the path of a runtime .wasm file")
    if status.st_size > BOMB_LIMIT:
        raise PipelineError(
            f"{path}: {status.st_size} bytes, over the {BOMB_LIMIT >> 20} MiB a runtime can be:"
            " pass the path of a runtime .wasm file"
        )
    with path.open("rb") as file:
        data = file.read(BOMB_LIMIT + 1)
    if len(data) > BOMB_LIMIT:
        raise PipelineError(f"{path}: grew past {BOMB_LIMIT >> 20} MiB while being read")
    return data


@dataclass(frozen=True, repr=False)
class RuntimeBlob:
    """A runtime blob, validated on construction: the raw bytes and the wasm inside them."""

    raw: bytes
    wasm: bytes = field(init=False, compare=False)
    custom_sections: Mapping[str, bytes] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        if not self.raw:
            raise PipelineError(
                "runtime blob is empty: pass the .compact.compressed.wasm the build produced"
            )
        compressed = self.raw.startswith(ZSTD_PREFIX)
        wasm = _decompress(self.raw[len(ZSTD_PREFIX) :]) if compressed else self.raw
        object.__setattr__(self, "wasm", wasm)
        object.__setattr__(self, "custom_sections", MappingProxyType(_custom_sections(wasm)))

    def __repr__(self) -> str:
        kind = "compressed" if self.compressed else "compact"
        return f"RuntimeBlob({kind}, {self.size} bytes, blake2_256={self.blake2_256})"

    @classmethod
    def from_bytes(cls, data: bytes) -> RuntimeBlob:
        return cls(bytes(data))

    @classmethod
    def load(cls, path: str | PathLike[str]) -> RuntimeBlob:
        path = Path(path)
        try:
            data = read_blob_file(path)
        except FileNotFoundError:
            raise PipelineError(
                f"{path}: no such file: build the runtime first or pass the path of its .wasm"
            ) from None
        except OSError as exc:
            raise PipelineError(
                f"{path}: cannot read ({exc.strerror}): pass a readable runtime .wasm file"
            ) from None
        try:
            return cls(data)
        except PipelineError as exc:
            raise PipelineError(f"{path}: {exc}") from None

    @property
    def compressed(self) -> bool:
        return self.raw.startswith(ZSTD_PREFIX)

    @property
    def size(self) -> int:
        return len(self.raw)

    @cached_property
    def blake2_256(self) -> str:
        """The runtime's identity on chain: blake2-256 of the bytes that go into `:code`."""
        return blake2_256(self.raw)

    @cached_property
    def sha256(self) -> str:
        return sha256(self.raw)

    @cached_property
    def apis(self) -> tuple[RuntimeApi, ...]:
        """The `runtime_apis` section when present (what the node uses), else version.apis."""
        section = self.custom_sections.get("runtime_apis")
        if section is not None:
            return decode_runtime_apis(section)
        return self.version.apis

    @cached_property
    def version(self) -> RuntimeVersion:
        """The version the node reads from the blob without executing it (sc-executor's rule).

        Its apis are the `runtime_apis` section's when present, as in sc-executor.
        """
        section = self.custom_sections.get("runtime_version")
        if section is None:
            raise PipelineError(
                "wasm has no `runtime_version` custom section, so nodes cannot read its version"
                " before running it: declare VERSION with #[sp_version::runtime_version] and"
                " rebuild"
            )
        apis_section = self.custom_sections.get("runtime_apis")
        if apis_section is None:
            return decode_runtime_version(section)
        apis = decode_runtime_apis(apis_section)
        version = decode_runtime_version(section, core_version=_core_version(apis))
        return replace(version, apis=apis)

    def compressed_form(self) -> bytes:
        """The bytes to put into `:code` (compressing a compact blob as the builder would)."""
        return self.raw if self.compressed else compress(self.wasm)

    def compact_form(self) -> bytes:
        return self.wasm


def set_code_call(
    blob: RuntimeBlob,
    system_index: int = 0,
    call_index: int = SYSTEM_CALL_INDICES["set_code"],
) -> bytes:
    """SCALE encoding of `System.set_code(code)` with the blob's raw bytes as code."""
    return bytes([system_index, call_index]) + scale_compact(len(blob.raw)) + blob.raw


def authorize_upgrade_call(
    blob: RuntimeBlob,
    system_index: int = 0,
    call_index: int = SYSTEM_CALL_INDICES["authorize_upgrade"],
) -> bytes:
    """SCALE encoding of `System.authorize_upgrade(code_hash)` for the blob's raw bytes."""
    return bytes([system_index, call_index]) + bytes.fromhex(blob.blake2_256[2:])


def call_hashes(
    blob: RuntimeBlob,
    system_index: int = 0,
    call_indices: Mapping[str, int] = SYSTEM_CALL_INDICES,
) -> dict[str, str]:
    """blake2-256 of the upgrade calls: what a council motion or a preimage is keyed by."""
    return {
        "set_code": blake2_256(set_code_call(blob, system_index, call_indices["set_code"])),
        "authorize_upgrade": blake2_256(
            authorize_upgrade_call(blob, system_index, call_indices["authorize_upgrade"])
        ),
    }


def scale_compact(value: int) -> bytes:
    """SCALE compact encoding of a non-negative integer."""
    if value < 1 << 6:
        return bytes([value << 2])
    if value < 1 << 14:
        return ((value << 2) | 0b01).to_bytes(2, "little")
    if value < 1 << 30:
        return ((value << 2) | 0b10).to_bytes(4, "little")
    body = value.to_bytes((value.bit_length() + 7) // 8, "little")
    return bytes([((len(body) - 4) << 2) | 0b11]) + body


def is_try_runtime(blob: RuntimeBlob) -> bool:
    """Whether the blob is a try-runtime build: the mark is in the blob, so no copy of it,
    wherever it travels without its digest, can pass for a release build."""
    return any(api.name == TRY_RUNTIME_API for api in blob.apis)


def refuse_try_runtime(blob: RuntimeBlob, where: str) -> None:
    """The one refusal every path that puts code on a chain gives a try-runtime build."""
    if is_try_runtime(blob):
        raise PipelineError(
            f"{where}: runtime {blob.blake2_256} is a try-runtime build (it exports the"
            " TryRuntime API, for migration checks only) and must never reach a chain: pass"
            " the release build of the same commit (`invoke build`, without --try-runtime)"
        )


def info(blob: RuntimeBlob, version: RuntimeVersion | None = None) -> dict[str, Any]:
    """What `subwasm info` tells about a blob, as plain data (JSON-ready, no timestamps).

    `version` is the blob's own (`blob.version`, from its section) unless the caller read it
    another way (executing `Core_version` for a blob without the section)."""
    version = version or blob.version
    apis = blob.apis if "runtime_apis" in blob.custom_sections else version.apis
    hashes = call_hashes(blob)
    return {
        "spec_name": version.spec_name,
        "impl_name": version.impl_name,
        "spec_version": version.spec_version,
        "impl_version": version.impl_version,
        "authoring_version": version.authoring_version,
        "transaction_version": version.transaction_version,
        "state_version": version.state_version,
        "system_version": version.system_version,
        "core_version": version.core_version,
        "apis": [{"name": a.name, "id": a.id, "version": a.version} for a in apis],
        "size": blob.size,
        "decompressed_size": len(blob.wasm),
        "compressed": blob.compressed,
        "blake2_256": blob.blake2_256,
        "sha256": blob.sha256,
        "proposal_hash": hashes["set_code"],
        "authorize_upgrade_hash": hashes["authorize_upgrade"],
    }


class WasmFileNames(NamedTuple):
    compact: str
    compressed: str


def wasm_file_names(package: str) -> WasmFileNames:
    """File names substrate-wasm-builder gives a package's blobs (dashes become underscores)."""
    stem = package.replace("-", "_")
    return WasmFileNames(f"{stem}.compact.wasm", f"{stem}.compact.compressed.wasm")


@dataclass(frozen=True)
class BuildFacts:
    """What a build knew about its inputs; digest.json records it so anyone can rebuild."""

    package: str
    crate_version: str
    commit: str
    tag: str | None
    branch: str | None
    dirty: bool
    rustc: str
    builder_image: str
    toolchain: dict[str, str]
    cargo_lock_blake2_256: str
    source_tree: str
    build_options: dict[str, object]
    base_image_source: str


def digest(compact: RuntimeBlob, compressed: RuntimeBlob, facts: BuildFacts) -> dict[str, Any]:
    """digest.json: srtool's field names (minus time and IPFS) plus our reproducibility facts."""
    if compact.compressed or not compressed.compressed:
        raise PipelineError(
            "digest needs the compact blob first and the compressed one second: pass"
            " <pkg>.compact.wasm and <pkg>.compact.compressed.wasm in that order"
        )
    if compact.wasm != compressed.wasm:
        raise PipelineError(
            f"compressed blob {compressed.blake2_256} does not inflate to the compact blob"
            f" {compact.blake2_256}: take both files from the same build"
        )
    names = wasm_file_names(facts.package)
    hashes = call_hashes(compressed)
    # Only a try-runtime build carries the field: release digests stay as they were.
    variant = {"try_runtime": True} if is_try_runtime(compressed) else {}
    return {
        **variant,
        "gen": f"runtime-pipeline {distribution_version('runtime-pipeline')}",
        "src": "git",
        "version": facts.crate_version,
        "commit": facts.commit,
        "tag": facts.tag,
        "branch": facts.branch,
        "rustc": facts.rustc,
        "pkg": facts.package,
        "size": str(compressed.size),
        "prop": hashes["set_code"],
        "sha256": compressed.sha256,
        "wasm": names.compressed,
        "info": info(compressed),
        "runtimes": {
            "compact": _runtime_entry(compact, names.compact),
            "compressed": _runtime_entry(compressed, names.compressed),
        },
        "call_hashes": hashes,
        "builder": {
            "image": facts.builder_image,
            "base_image_source": facts.base_image_source,
            "toolchain": dict(facts.toolchain),
        },
        "cargo_lock_blake2_256": facts.cargo_lock_blake2_256,
        "source_tree": facts.source_tree,
        "dirty": facts.dirty,
        "reproducibility": {
            "build_options": dict(facts.build_options),
            "rustc": facts.rustc,
            "builder_image": facts.builder_image,
            "source_tree": facts.source_tree,
            "cargo_lock_blake2_256": facts.cargo_lock_blake2_256,
        },
    }


def _runtime_entry(blob: RuntimeBlob, file_name: str) -> dict[str, Any]:
    hashes = call_hashes(blob)
    return {
        "size": str(blob.size),
        "blake2_256": blob.blake2_256,
        "sha256": blob.sha256,
        "wasm": file_name,
        "prop": hashes["set_code"],
        "authorize_upgrade_hash": hashes["authorize_upgrade"],
        "subwasm": info(blob),
    }


def dumps_digest(content: Mapping[str, Any]) -> str:
    """Canonical JSON (sorted keys, indent 2, final newline): equal digests give equal bytes."""
    return json.dumps(content, indent=2, sort_keys=True, ensure_ascii=True, allow_nan=False) + "\n"


class _Absent:
    """Marks a key or list item that one side of a digest diff does not have."""

    def __repr__(self) -> str:
        return "<absent>"


ABSENT: Final = _Absent()


def diff_digests(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """Every leaf where two digests differ, as (dotted path, a's value, b's value).

    Missing keys or list items show as ABSENT; `1` and `true` count as different.
    """
    return list(_diff("", a, b))


def _diff(path: str, a: Any, b: Any) -> Iterator[tuple[str, Any, Any]]:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in sorted(set(a) | set(b)):
            yield from _diff(
                f"{path}.{key}" if path else key, a.get(key, ABSENT), b.get(key, ABSENT)
            )
    elif isinstance(a, list) and isinstance(b, list):
        for i in range(max(len(a), len(b))):
            yield from _diff(
                f"{path}[{i}]", a[i] if i < len(a) else ABSENT, b[i] if i < len(b) else ABSENT
            )
    elif type(a) is not type(b) or a != b:
        yield (path, a, b)
