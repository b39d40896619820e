"""Runtime API calls executed in this process, with wasmtime: versions, metadata, genesis state.

Reading a runtime must not need a chain or a Node process: `inspect` and `diff` call
`Core_version`, the Metadata API and the genesis builder of any runtime blob here. The host
side is the part of sp-io those calls use (allocator, storage over a plain dict, hashing,
logging); any other host function traps with its name, so a runtime that needs more says what.
Compiled modules are cached by the blob's hash: the first call pays the compile once per blob,
later calls (and later processes) only instantiate. The allocator runs in wasm beside the
runtime (a call into Python costs more than the allocation it would serve).
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import wasmtime
import xxhash
from wasmtime import _ffi as wasmtime_ffi

from pipeline.artifact import scale_compact
from pipeline.cache import mark_used
from pipeline.errors import PipelineError
from pipeline.project import cache_dir, write_atomic
from pipeline.trie import state_root

PAGE: Final = 65536
ERROR_LEVEL: Final = 0  # sp-io passes RuntimeLogLevel::Error as 0; panics are logged at it
ALIGN: Final = 8
HEADER: Final = 8  # sc-allocator keeps each block's order in 8 bytes before it
MIN_BLOCK: Final = 8
MODULE_CACHE_FORMAT: Final = 2
MALLOC: Final = "ext_allocator_malloc_version_1"
FREE: Final = "ext_allocator_free_version_1"
# The allocator of `RuntimeInstance._malloc`, in wasm, for runtimes that import their memory:
# a runtime calls malloc/free tens of thousands of times per metadata call, and each call into
# Python costs ~10-20 us (most of a cold metadata call); in wasm the calls stay in wasm.
ALLOCATOR_WAT: Final = f"""
(module
  (import "env" "memory" (memory 0))
  (import "host" "cannot_grow" (func $cannot_grow (param i64)))
  (global $heap (mut i64) (i64.const 0))
  (func (export "start") (param $base i32) (global.set $heap (i64.extend_i32_u (local.get $base))))
  (func (export "malloc") (param $size i32) (result i32)
    (local $block i64) (local $pointer i64) (local $missing i64)
    (local.set $block (i64.extend_i32_u (local.get $size)))
    (if (i64.lt_u (local.get $block) (i64.const {MIN_BLOCK}))
      (then (local.set $block (i64.const {MIN_BLOCK}))))
    (local.set $block (i64.shl (i64.const 1)
      (i64.sub (i64.const 64) (i64.clz (i64.sub (local.get $block) (i64.const 1))))))
    (local.set $pointer (i64.add (i64.and (i64.add (global.get $heap) (i64.const {ALIGN - 1}))
      (i64.const {-ALIGN})) (i64.const {HEADER})))
    (global.set $heap (i64.add (local.get $pointer) (local.get $block)))
    (local.set $missing (i64.sub (global.get $heap)
      (i64.mul (i64.extend_i32_u (memory.size)) (i64.const {PAGE}))))
    (if (i64.gt_s (local.get $missing) (i64.const 0))
      (then (if (i32.eq (i32.const -1) (memory.grow (i32.wrap_i64
          (i64.div_u (i64.add (local.get $missing) (i64.const {PAGE - 1})) (i64.const {PAGE})))))
        (then (call $cannot_grow (global.get $heap)) (unreachable)))))
    (i32.wrap_i64 (local.get $pointer)))
  (func (export "free") (param i32)))
"""


class RuntimeCallError(PipelineError):
    """A runtime API call that the runtime refused or that needs a host function we lack."""


WINCH: Final = 2  # wasmtime's C API `WASMTIME_STRATEGY_WINCH`, which the Python setter lacks


@functools.cache
def _engine() -> wasmtime.Engine:
    """Winch, wasmtime's baseline compiler: reading a runtime runs a few million instructions,
    so compiling dominates, and Winch compiles a 9 MB runtime ten times faster than Cranelift.
    No native unwind info: only outside unwinders (profilers, debuggers) read it, not
    wasmtime's own traps, and leaving it out saves a tenth of the compile."""
    config = wasmtime.Config()
    wasmtime_ffi.wasmtime_config_strategy_set(config.ptr(), WINCH)
    config.native_unwind_info = False
    return wasmtime.Engine(config)


@functools.cache
def _allocator() -> wasmtime.Module:
    return wasmtime.Module(_engine(), ALLOCATOR_WAT)


def _cache_path(wasm: bytes) -> Path:
    digest = hashlib.blake2b(wasm, digest_size=32).hexdigest()
    version = wasmtime.__version__ if hasattr(wasmtime, "__version__") else "unknown"
    return cache_dir() / "wasm-modules" / f"{digest}-{version}-{MODULE_CACHE_FORMAT}.cwasm"


def compile_module(wasm: bytes) -> wasmtime.Module:
    """The compiled module, from the machine-wide cache when this blob was compiled before.

    The cache holds only what this process wrote itself (atomic rename); a file that does
    not deserialize is compiled again and replaced.
    """
    path = _cache_path(wasm)
    engine = _engine()
    if path.is_file():
        try:
            module = wasmtime.Module.deserialize_file(engine, str(path))
        except wasmtime.WasmtimeError:
            path.unlink(missing_ok=True)
        else:
            mark_used(path)
            return module
    try:
        module = wasmtime.Module(engine, wasm)
    except wasmtime.WasmtimeError as exc:
        raise RuntimeCallError(f"not a valid wasm module: {_first_line(exc)}") from None
    with contextlib.suppress(OSError):  # a cache not written only costs the next call a compile
        write_atomic(path, module.serialize())
    return module


def precompile(wasm: bytes) -> None:
    """Compile a blob into the cache ahead of its calls (on a worker thread: no wasm runs
    here); a blob that does not compile says why when it is called."""
    with contextlib.suppress(RuntimeCallError):
        compile_module(wasm)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@dataclass
class Storage:
    """The state a call sees and writes: a dict with sp-io's nested transactions."""

    values: dict[bytes, bytes] = field(default_factory=dict)
    _saved: list[dict[bytes, bytes]] = field(default_factory=list)
    _sorted: list[bytes] | None = None  # the keys in order, until the next write

    def set(self, key: bytes, value: bytes) -> None:
        if key not in self.values:
            self._sorted = None
        self.values[key] = value

    def clear(self, key: bytes) -> None:
        if self.values.pop(key, None) is not None:
            self._sorted = None

    def next_key(self, key: bytes) -> bytes | None:
        """The first key after `key`; iterating a whole state (try-runtime decodes every
        item) sorts the keys once, not once per step."""
        if self._sorted is None:
            self._sorted = sorted(self.values)
        i = bisect.bisect_right(self._sorted, key)
        return self._sorted[i] if i < len(self._sorted) else None

    def clear_prefix(self, prefix: bytes, limit: int | None) -> tuple[int, bool]:
        doomed = sorted(k for k in self.values if k.startswith(prefix))
        if limit is not None:
            doomed, remaining = doomed[:limit], len(doomed) > limit
        else:
            remaining = False
        for key in doomed:
            del self.values[key]
        self._sorted = None
        return len(doomed), remaining

    def start(self) -> None:
        self._saved.append(dict(self.values))

    def rollback(self) -> None:
        self.values = self._saved.pop()
        self._sorted = None

    def commit(self) -> None:
        self._saved.pop()


def decodescale_compact(data: bytes, offset: int = 0) -> tuple[int, int]:
    """A SCALE compact integer at `offset`: (value, offset after it)."""
    if offset >= len(data):
        raise RuntimeCallError("truncated SCALE compact integer")
    mode = data[offset] & 3
    if mode == 0:
        return data[offset] >> 2, offset + 1
    if mode in (1, 2):
        width = 2 if mode == 1 else 4
        if offset + width > len(data):
            raise RuntimeCallError("truncated SCALE compact integer")
        return int.from_bytes(data[offset : offset + width], "little") >> 2, offset + width
    width = (data[offset] >> 2) + 4
    if offset + 1 + width > len(data):
        raise RuntimeCallError("truncated SCALE compact integer")
    return int.from_bytes(data[offset + 1 : offset + 1 + width], "little"), offset + 1 + width


def decode_bytes(data: bytes, offset: int = 0) -> bytes:
    """A SCALE `Vec<u8>` at `offset`."""
    length, start = decodescale_compact(data, offset)
    if start + length > len(data):
        raise RuntimeCallError("truncated SCALE bytes")
    return data[start : start + length]


def encode_bytes(data: bytes) -> bytes:
    return scale_compact(len(data)) + data


def _option(value: bytes | None) -> bytes:
    return b"\x00" if value is None else b"\x01" + encode_bytes(value)


def _append(existing: bytes | None, item: bytes) -> bytes:
    """sp-io's storage append: a SCALE Vec gains one encoded item (a bad Vec starts over)."""
    if existing:
        try:
            count, start = decodescale_compact(existing)
            return scale_compact(count + 1) + existing[start:] + item
        except RuntimeCallError:
            pass
    return scale_compact(1) + item


def twox(data: bytes, width: int) -> bytes:
    """Substrate's twox hashes: xxh64 with seeds 0, 1, … concatenated (little endian)."""
    return b"".join(
        xxhash.xxh64_intdigest(data, seed=seed).to_bytes(8, "little") for seed in range(width // 8)
    )


def blake2(data: bytes, width: int) -> bytes:
    return hashlib.blake2b(data, digest_size=width).digest()


class RuntimeInstance:
    """One instantiated runtime: call its API methods, against `storage`."""

    def __init__(self, wasm: bytes, storage: Storage | None = None, log_level: int = 0) -> None:
        """`log_level` is the runtime's log filter (0 off, 3 info, 5 trace); what it logs is
        kept in `logs` as "target: message" lines."""
        self.storage = storage if storage is not None else Storage()
        self.log_level = log_level
        self.logs: list[str] = []
        module = compile_module(wasm)
        self._store = wasmtime.Store(_engine())
        self._memory: wasmtime.Memory | None = None
        self._host_error: RuntimeCallError | None = None  # wasmtime reports it as a bare trap
        self._panic: str | None = None  # the runtime logs its panic message, then traps
        self._heap = 0
        self._start_heap: wasmtime.Func | None = None  # the allocator in wasm, when there is one
        self._wasm_malloc: wasmtime.Func | None = None
        host: dict[str, Callable[..., Any] | wasmtime.Func] = {**self._host_functions()}
        memory = next(
            (i.type for i in module.imports if isinstance(i.type, wasmtime.MemoryType)), None
        )
        if memory is not None:  # the allocator runs in wasm, on the runtime's memory
            self._memory = wasmtime.Memory(self._store, memory)
            host.update(self._wasm_allocator(self._memory))
        imports: list[wasmtime.Func | wasmtime.Memory] = []
        for item in module.imports:
            kind = item.type
            if isinstance(kind, wasmtime.MemoryType):
                assert self._memory is not None
                imports.append(self._memory)
            elif isinstance(kind, wasmtime.FuncType):
                name = str(item.name)
                function = host.get(name) or self._missing(name)
                if not isinstance(function, wasmtime.Func):
                    function = wasmtime.Func(self._store, kind, function)
                imports.append(function)
            else:
                raise RuntimeCallError(f"the runtime imports {item.module}.{item.name}: unknown")
        try:
            self._instance = wasmtime.Instance(self._store, module, imports)
        except (wasmtime.WasmtimeError, wasmtime.Trap) as exc:
            raise RuntimeCallError(f"cannot instantiate the runtime: {_first_line(exc)}") from None
        exports = self._instance.exports(self._store)
        if self._memory is None:
            exported = exports.get("memory")
            if not isinstance(exported, wasmtime.Memory):
                raise RuntimeCallError("the runtime neither imports nor exports its memory")
            self._memory = exported
        heap_base = exports.get("__heap_base")
        if not isinstance(heap_base, wasmtime.Global):
            raise RuntimeCallError(
                "the runtime exports no __heap_base: it is not a Substrate runtime"
            )
        self._heap = int(heap_base.value(self._store))
        if self._start_heap is not None:
            self._start_heap(self._store, self._heap)

    def exports(self) -> Iterator[str]:
        return iter(self._instance.exports(self._store))

    def call(self, method: str, data: bytes = b"") -> bytes:
        """Run one runtime API method on SCALE-encoded input; its SCALE-encoded result."""
        function = self._instance.exports(self._store).get(method)
        if not isinstance(function, wasmtime.Func):
            raise RuntimeCallError(f"the runtime has no {method} API")
        pointer = self._write(data)
        self._host_error = self._panic = None
        try:
            packed = function(self._store, pointer, len(data))
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            reason = self._host_error or self._panic or _trap_reason(exc)
            raise RuntimeCallError(f"{method} failed: {reason}") from None
        return self._read(int(packed))

    # --- memory ---------------------------------------------------------------------------------
    @property
    def memory(self) -> wasmtime.Memory:
        assert self._memory is not None
        return self._memory

    def _wasm_allocator(self, memory: wasmtime.Memory) -> dict[str, wasmtime.Func]:
        """malloc and free of `ALLOCATOR_WAT` on `memory`; `_malloc` calls the same malloc."""

        def cannot_grow(heap: int) -> None:
            self._host_error = RuntimeCallError(f"the runtime's memory cannot grow to {heap} bytes")
            raise self._host_error

        grow_type = wasmtime.FuncType([wasmtime.ValType.i64()], [])
        allocator = wasmtime.Instance(
            self._store, _allocator(), [memory, wasmtime.Func(self._store, grow_type, cannot_grow)]
        ).exports(self._store)
        start, malloc, free = allocator["start"], allocator["malloc"], allocator["free"]
        assert isinstance(start, wasmtime.Func) and isinstance(malloc, wasmtime.Func)
        assert isinstance(free, wasmtime.Func)
        self._start_heap, self._wasm_malloc = start, malloc
        return {MALLOC: malloc, FREE: free}

    def _malloc(self, size: int) -> int:
        """A bump allocator laid out as sc-allocator's: an 8-byte header, then a block of the
        next power of two (8 at least). Runtimes are only ever run on that allocator, and some
        write past what they asked for into its slack (moonbase 4300's metadata corrupts its
        own BTreeMap on exact-size blocks). One call's garbage lives as long as the instance.
        A runtime that imports its memory gets this allocator in wasm (`ALLOCATOR_WAT`)."""
        if self._wasm_malloc is not None:
            return int(self._wasm_malloc(self._store, size))
        block = max(size, MIN_BLOCK)
        block = 1 << (block - 1).bit_length()
        pointer = ((self._heap + ALIGN - 1) & ~(ALIGN - 1)) + HEADER
        self._heap = pointer + block
        missing = self._heap - self.memory.data_len(self._store)
        if missing > 0:
            try:  # wasmtime raises when the memory cannot grow (it returns the old page count)
                self.memory.grow(self._store, (missing + PAGE - 1) // PAGE)
            except wasmtime.WasmtimeError:
                raise RuntimeCallError(
                    f"the runtime's memory cannot grow to {self._heap} bytes"
                ) from None
        return pointer

    def _write(self, data: bytes) -> int:
        pointer = self._malloc(len(data))
        if data:
            self.memory.write(self._store, data, pointer)
        return pointer

    def _read(self, packed: int) -> bytes:
        pointer, length = packed & 0xFFFFFFFF, packed >> 32
        return bytes(self.memory.read(self._store, pointer, pointer + length))

    def _out(self, data: bytes) -> int:
        return self._write(data) | (len(data) << 32)

    # --- host functions -------------------------------------------------------------------------
    def _missing(self, name: str) -> Callable[..., Any]:
        def trap(*_: Any) -> Any:
            self._host_error = RuntimeCallError(
                f"it needs host function {name}, which runtime inspection does not provide"
            )
            raise self._host_error

        return trap

    def _host_functions(self) -> dict[str, Callable[..., Any]]:
        storage, read, out = self.storage, self._read, self._out

        def hashing(digest: Callable[[bytes], bytes]) -> Callable[[int], int]:
            return lambda data: self._write(digest(read(data)))

        def storage_read(key: int, value_out: int, offset: int) -> int:
            value = storage.values.get(read(key))
            if value is None:
                return out(b"\x00")
            pointer, length = value_out & 0xFFFFFFFF, value_out >> 32
            chunk = value[offset:][:length]
            self.memory.write(self._store, chunk, pointer)
            return out(b"\x01" + len(value[offset:]).to_bytes(4, "little"))

        def clear_prefix(prefix: int, limit: int) -> int:
            raw_limit = read(limit)
            count = int.from_bytes(raw_limit[1:5], "little") if raw_limit[:1] == b"\x01" else None
            removed, remaining = storage.clear_prefix(read(prefix), count)
            return out(bytes([1 if remaining else 0]) + removed.to_bytes(4, "little"))

        def storage_set(key: int, value: int) -> None:
            storage.set(read(key), read(value))

        def storage_append(key: int, value: int) -> None:
            name = read(key)
            storage.set(name, _append(storage.values.get(name), read(value)))

        def storage_clear(key: int) -> None:
            storage.clear(read(key))

        def storage_root(version: int = 0) -> int:
            return out(state_root(storage.values, version))

        def nothing(*_: int) -> None:
            return None

        def abort_on_panic(message: int) -> None:
            """sp-io's `improved_panic_error_reporting`: the panic message comes here instead of
            the log, and the call must not return."""
            self._panic = read(message).decode(errors="replace")
            raise wasmtime.Trap("abort_on_panic")  # `call` reports the message kept above

        def log(level: int, target: int, message: int) -> None:
            text = read(message).decode(errors="replace")
            if level == ERROR_LEVEL:
                self._panic = text
            if self.log_level:
                self.logs.append(f"{read(target).decode(errors='replace')}: {text}")

        return {
            MALLOC: self._malloc,
            FREE: nothing,
            "ext_logging_max_level_version_1": lambda: self.log_level,
            "ext_logging_log_version_1": log,
            "ext_panic_handler_abort_on_panic_version_1": abort_on_panic,
            "ext_misc_print_hex_version_1": nothing,
            "ext_misc_print_num_version_1": nothing,
            "ext_misc_print_utf8_version_1": nothing,
            "ext_storage_get_version_1": lambda key: out(_option(storage.values.get(read(key)))),
            "ext_storage_read_version_1": storage_read,
            "ext_storage_set_version_1": storage_set,
            "ext_storage_append_version_1": storage_append,
            "ext_storage_clear_version_1": storage_clear,
            "ext_storage_exists_version_1": lambda key: int(read(key) in storage.values),
            "ext_storage_next_key_version_1": lambda key: out(_option(storage.next_key(read(key)))),
            "ext_storage_clear_prefix_version_2": clear_prefix,
            "ext_storage_root_version_1": storage_root,
            "ext_storage_root_version_2": storage_root,
            "ext_storage_start_transaction_version_1": storage.start,
            "ext_storage_commit_transaction_version_1": storage.commit,
            "ext_storage_rollback_transaction_version_1": storage.rollback,
            "ext_hashing_blake2_128_version_1": hashing(lambda d: blake2(d, 16)),
            "ext_hashing_blake2_256_version_1": hashing(lambda d: blake2(d, 32)),
            "ext_hashing_twox_64_version_1": hashing(lambda d: twox(d, 8)),
            "ext_hashing_twox_128_version_1": hashing(lambda d: twox(d, 16)),
            "ext_hashing_twox_256_version_1": hashing(lambda d: twox(d, 32)),
            "ext_hashing_sha2_256_version_1": hashing(lambda d: hashlib.sha256(d).digest()),
        }


def _trap_reason(exc: BaseException) -> str:
    """The trap's own words (wasm traps start with the backtrace header; the cause is last)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    causes = [line for line in lines if not line.startswith(("error while executing", "0:", "at "))]
    causes = [line for line in causes if not line[:1].isdigit()]
    return causes[-1] if causes else (lines[0] if lines else type(exc).__name__)


# --- the calls the pipeline makes --------------------------------------------------------------
def core_version(wasm: bytes) -> bytes:
    """`Core_version`: the SCALE-encoded RuntimeVersion, as nodes read it from old runtimes."""
    return RuntimeInstance(wasm).call("Core_version")


def metadata_versions(instance: RuntimeInstance) -> list[int]:
    """Metadata versions the runtime offers; [] when it predates `Metadata_metadata_versions`."""
    if "Metadata_metadata_versions" not in set(instance.exports()):
        return []
    raw = instance.call("Metadata_metadata_versions")
    count, offset = decodescale_compact(raw)
    return [
        int.from_bytes(raw[offset + 4 * i : offset + 4 * i + 4], "little") for i in range(count)
    ]


PREFERRED_METADATA: Final = (15, 14)


def metadata(instance: RuntimeInstance, version: int | None = None) -> tuple[list[int], bytes]:
    """(versions offered, metadata) where metadata is `meta` + version byte + body: the version
    asked for, else the newest of v15/v14 offered, else the legacy `Metadata_metadata`."""
    offered = metadata_versions(instance)
    wanted = (version,) if version else PREFERRED_METADATA
    for candidate in (v for v in wanted if v in offered):
        raw = instance.call("Metadata_metadata_at_version", candidate.to_bytes(4, "little"))
        if raw[:1] == b"\x01":
            return offered, decode_bytes(raw, 1)
    if version and offered:
        listed = ", ".join(str(v) for v in offered)
        raise RuntimeCallError(f"the runtime offers metadata versions {listed}, not {version}")
    return offered, legacy_metadata(instance)


def legacy_metadata(instance: RuntimeInstance) -> bytes:
    """`Metadata_metadata`: every runtime's, in the version FRAME picked for it (v14 today);
    `subwasm info` reports this one's version."""
    return decode_bytes(instance.call("Metadata_metadata"))


def preset_names(instance: RuntimeInstance) -> list[str]:
    """The named genesis presets the runtime offers (`GenesisBuilder_preset_names`)."""
    raw = instance.call("GenesisBuilder_preset_names")
    count, offset = decodescale_compact(raw)
    names = []
    for _ in range(count):
        name = decode_bytes(raw, offset)
        names.append(name.decode(errors="replace"))
        offset = decodescale_compact(raw, offset)[1] + len(name)
    return names


def missing_preset(preset: str, offered: list[str]) -> str:
    """Why a named preset cannot be used, and which ones can."""
    listed = ", ".join(offered) or "none"
    return (
        f"the runtime has no genesis preset {preset!r} (it has: {listed}): set [runtime] preset"
        " in pipeline.toml to one of them"
    )


def require_preset(instance: RuntimeInstance, preset: str) -> None:
    """One line naming the runtime's presets when `preset` is not among them (a runtime that
    cannot list them is left to fail on its own)."""
    try:
        offered = preset_names(instance)
    except RuntimeCallError:
        return
    if preset not in offered:
        raise RuntimeCallError(missing_preset(preset, offered))


def merge_json(base: Any, patch: Any) -> Any:
    """Substrate's merge of a genesis preset patch onto the default config: objects merge key by
    key (recursively), anything else in the patch replaces the value (as js/merge.mjs does)."""
    if not isinstance(base, dict) or not isinstance(patch, dict):
        return patch
    return {**base, **{key: merge_json(base.get(key), value) for key, value in patch.items()}}


def _preset_json(instance: RuntimeInstance, preset: str | None) -> Any:
    name = None if preset is None else preset.encode()
    raw = instance.call("GenesisBuilder_get_preset", _option(name))
    if raw[:1] != b"\x01":
        if preset is not None:
            require_preset(instance, preset)
        raise RuntimeCallError(f"the runtime has no genesis preset {preset or '(default)'}")
    return json.loads(decode_bytes(raw, 1))


def genesis_storage(instance: RuntimeInstance, preset: str | None = None) -> dict[bytes, bytes]:
    """The genesis state the runtime's GenesisBuilder makes from a preset (None: its default),
    written into the instance's storage (start from an instance whose storage is empty). A
    named preset may be a patch (polkadot-sdk's templates make theirs so): build_state needs
    it merged onto the default config."""
    config = _preset_json(instance, None)
    if preset is not None:
        config = merge_json(config, _preset_json(instance, preset))
    result = instance.call("GenesisBuilder_build_state", encode_bytes(json.dumps(config).encode()))
    if result[:1] != b"\x00":  # Result<(), String>
        reason = decode_bytes(result, 1).decode(errors="replace")
        raise RuntimeCallError(f"GenesisBuilder_build_state failed: {reason}")
    return dict(instance.storage.values)


STORAGE_VERSION_KEY: Final = b":__STORAGE_VERSION__:"


def storage_version_key(pallet_prefix: str) -> bytes:
    """Where FRAME keeps a pallet's storage version: twox128(prefix) ++ twox128(marker)."""
    return twox(pallet_prefix.encode(), 16) + twox(STORAGE_VERSION_KEY, 16)


def storage_versions(state: dict[bytes, bytes], prefixes: list[str]) -> dict[str, int]:
    """Each pallet's storage version in `state` (0 where none is stored, as FRAME reads it)."""
    versions = {}
    for prefix in prefixes:
        raw = state.get(storage_version_key(prefix))
        versions[prefix] = int.from_bytes(raw[:2], "little") if raw else 0
    return versions
