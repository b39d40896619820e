"""What changes between two runtimes: versions, runtime APIs and metadata, like `subwasm diff`.

A runtime is reduced to a `RuntimeSummary` (plain data: its versions, APIs, and one entry per
pallet, call, event, storage item, constant and error, each with a readable signature and a
*shape*: a digest of its SCALE layout), and `diff_summaries` compares two summaries. Both are
pure. The metadata comes from running the wasm's own Metadata API (`wasm_exec.metadata`) and
is read by `metadata_reader` (scalecodec takes seconds per runtime), so an artifact is
described without any chain; the code on a chain (`env:NAME[:role]`) is read
from `:code` and described the same way. Summaries are cached by blob hash, since they are a
function of the blob alone.

A runtime is named as `store.resolve_artifact` reads it (a path, an artifact directory, a hash
under `artifacts/`, or HEAD's newest build), or as `env:NAME[:role]` for a chain's code.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from pipeline import runtime_info, verdicts
from pipeline.artifact import RuntimeBlob, RuntimeVersion
from pipeline.cache import read_entry
from pipeline.errors import PipelineError
from pipeline.metadata_reader import ReadMetadata, decode_value, read_metadata
from pipeline.project import Project, cache_dir, load_project, write_atomic
from pipeline.store import resolve_artifact

if TYPE_CHECKING:  # wasmtime loads only when a runtime must run: a warm diff reads the cache
    from pipeline import wasm_exec

# Bump when the summary's content or shape rules change: cached summaries of older formats
# are then recomputed instead of being compared with new ones.
SUMMARY_FORMAT: Final = 4
ENV_PREFIX: Final = "env:"
DEFAULT_ROLE: Final = "production"
ITEM_KINDS: Final = ("call", "event", "storage", "constant", "error")
# The runtime's aggregate enums: every pallet's change shows in them, so a field of such a type
# (`Sudo.sudo(call: RuntimeCall)`) is compared by name, not by layout.
OUTER_ENUMS: Final = frozenset(
    {
        "RuntimeCall",
        "RuntimeEvent",
        "RuntimeError",
        "RuntimeOrigin",
        "OriginCaller",
        "RuntimeHoldReason",
        "RuntimeFreezeReason",
        "RuntimeSlashReason",
        "RuntimeLockId",
        "RuntimeTask",
        "RuntimeParameters",
        "RuntimeViewFunction",
    }
)
# How deep a layout is followed into nested named types; deeper types count by name only.
# Bounded so that recursive types (and their order of discovery) cannot change a shape.
SHAPE_DEPTH: Final = 6
VALUE_WIDTH: Final = 96  # longest decoded constant shown

ChangeKind = Literal[
    "version", "api", "extension", "pallet", "call", "event", "storage", "constant", "error"
]
ChangeType = Literal["added", "removed", "changed"]


@dataclass(frozen=True)
class Entry:
    """One metadata item: how it reads, and a digest of its layout (equal shape, same encoding);
    constants also keep their whole decoded value (compact JSON), which `signature` shortens."""

    signature: str
    shape: str
    value: str | None = None
    layout: str | None = None  # storage: digest of type, hashers and modifier (no default)


@dataclass(frozen=True)
class RuntimeSummary:
    """The facts of one runtime that a diff compares; JSON-ready through `as_dict`."""

    blake2_256: str
    size: int
    versions: dict[str, int | str]
    apis: dict[str, int]  # API name (or id when unknown) -> version
    extensions: tuple[str, ...]  # transaction extensions, in signing order
    pallets: dict[str, int]  # name -> index
    items: dict[str, dict[str, Entry]] = field(default_factory=dict)  # kind -> "Pallet.Item"
    # pallet -> in-code storage version (from the runtime's genesis); None: it could not say
    storage_versions: dict[str, int] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuntimeSummary:
        return cls(
            blake2_256=data["blake2_256"],
            size=int(data["size"]),
            versions=dict(data["versions"]),
            apis={k: int(v) for k, v in data["apis"].items()},
            extensions=tuple(data["extensions"]),
            pallets={k: int(v) for k, v in data["pallets"].items()},
            items={
                kind: {name: Entry(**entry) for name, entry in entries.items()}
                for kind, entries in data["items"].items()
            },
            storage_versions=data.get("storage_versions"),
        )


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    name: str  # "spec_version", "Notes", "Notes.set_note", …
    change: ChangeType
    before: str | None
    after: str | None
    layout_changed: bool = False  # storage: its type or hashers changed, not only its default

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- the pure diff ------------------------------------------------------------------------------
def diff_summaries(a: RuntimeSummary, b: RuntimeSummary) -> list[Change]:
    """Every difference from `a` to `b`, grouped by kind; items of an added or removed pallet
    are not listed one by one (the pallet's own line says it)."""
    changes = [
        *_compare("version", _strings(a.versions), _strings(b.versions)),
        *_compare("api", _versions(a.apis), _versions(b.apis)),
        *_compare("extension", _positions(a.extensions), _positions(b.extensions)),
        *_compare("pallet", _indices(a.pallets), _indices(b.pallets)),
    ]
    whole = {c.name for c in changes if c.kind == "pallet" and c.change != "changed"}
    for kind in ITEM_KINDS:
        before, after = a.items.get(kind, {}), b.items.get(kind, {})
        for change in _compare_entries(kind, before, after):
            if change.name.split(".", 1)[0] not in whole:
                changes.append(change)
    return changes


def _compare(kind: ChangeKind, a: Mapping[str, str], b: Mapping[str, str]) -> Iterator[Change]:
    for name in _ordered(a, b):
        if name not in b:
            yield Change(kind, name, "removed", a[name], None)
        elif name not in a:
            yield Change(kind, name, "added", None, b[name])
        elif a[name] != b[name]:
            yield Change(kind, name, "changed", a[name], b[name])


def _compare_entries(
    kind: ChangeKind, a: Mapping[str, Entry], b: Mapping[str, Entry]
) -> Iterator[Change]:
    for name in _ordered(a, b):
        old, new = a.get(name), b.get(name)
        if new is None and old is not None:
            yield Change(kind, name, "removed", old.signature, None)
        elif old is None and new is not None:
            yield Change(kind, name, "added", None, new.signature)
        elif old is not None and new is not None and old.shape != new.shape:
            before, after = old.signature, new.signature
            if old.value is not None and new.value is not None and old.value != new.value:
                before, after = _value_change(old, new)
            elif before == after:  # same names, different layout somewhere inside
                after = f"{after} (layout changed)"
            layout = kind == "storage" and (old.layout is None or old.layout != new.layout)
            yield Change(kind, name, "changed", before, after, layout)


def _value_change(old: Entry, new: Entry) -> tuple[str, str]:
    """A constant's old and new value; of a struct, only the fields that changed."""
    type_a, type_b = old.signature.split(" = ", 1)[0], new.signature.split(" = ", 1)[0]
    a, b = json.loads(str(old.value)), json.loads(str(new.value))
    if isinstance(a, dict) and isinstance(b, dict):
        keys = [k for k in {**a, **b} if a.get(k) != b.get(k)]
        a, b = {k: a.get(k) for k in keys}, {k: b.get(k) for k in keys}
    return f"{type_a} = {_shorten(_json(a))}", f"{type_b} = {_shorten(_json(b))}"


def _ordered(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """Keys of `a` in its order, then those only in `b`: the order metadata lists them in."""
    return [*a, *(k for k in b if k not in a)]


def _strings(values: Mapping[str, int | str]) -> dict[str, str]:
    return {k: str(v) for k, v in values.items()}


def _versions(apis: Mapping[str, int]) -> dict[str, str]:
    return {k: f"v{v}" for k, v in apis.items()}


def _positions(names: Sequence[str]) -> dict[str, str]:
    return {name: f"#{i}" for i, name in enumerate(names)}


def _indices(pallets: Mapping[str, int]) -> dict[str, str]:
    return {name: f"index {index}" for name, index in pallets.items()}


def render(a_label: str, b_label: str, a: RuntimeSummary, b: RuntimeSummary) -> list[str]:
    """The diff as text lines: the two runtimes, then changes grouped by kind and pallet."""
    changes = diff_summaries(a, b)
    lines = [_describe("A", a_label, a), _describe("B", b_label, b)]
    if not changes:
        return [*lines, "no differences", *verdicts.render(judge(a, b, changes))]
    marks = {"added": "+", "removed": "-", "changed": "~"}
    heading = ""
    for change in changes:
        group = _group(change)
        if group != heading:
            lines.append(group)
            heading = group
        label = change.name if change.kind not in ITEM_KINDS else _item_label(change)
        if change.change == "changed":
            detail = f"{change.before} => {change.after}"
        else:
            detail = str(change.after if change.change == "added" else change.before)
        lines.append(f"  {marks[change.change]} {label}: {detail}")
    counts = {t: sum(c.change == t for c in changes) for t in marks}
    lines.append(
        f"{len(changes)} changes: {counts['added']} added, {counts['removed']} removed, "
        f"{counts['changed']} changed"
    )
    return [*lines, *verdicts.render(judge(a, b, changes))]


def _describe(tag: str, label: str, s: RuntimeSummary) -> str:
    return (
        f"{tag}: {label}: {s.versions.get('spec_name')} {s.versions.get('spec_version')}, "
        f"{s.blake2_256}, {s.size:,} bytes"
    )


def _group(change: Change) -> str:
    if change.kind in ITEM_KINDS:
        return f"pallet {change.name.split('.', 1)[0]}"
    return {
        "version": "versions",
        "api": "runtime APIs",
        "extension": "transaction extensions",
        "pallet": "pallets",
    }[change.kind]


def _item_label(change: Change) -> str:
    return f"{change.kind} {change.name.split('.', 1)[1]}"


# --- metadata -> summary ------------------------------------------------------------------------


def summarize(
    blob: RuntimeBlob,
    metadata: ReadMetadata,
    version: RuntimeVersion | None = None,
    storage_versions: Mapping[str, int] | None = None,
) -> RuntimeSummary:
    """The summary of a runtime from its blob, its version (default: its section's), its
    metadata and its pallets' in-code storage versions when known."""
    version = version or blob.version
    types = _Types(metadata.value["types"]["types"])
    items: dict[str, dict[str, Entry]] = {kind: {} for kind in ITEM_KINDS}
    pallets: dict[str, int] = {}
    for pallet in metadata.value["pallets"]:
        name = pallet["name"]
        pallets[name] = int(pallet["index"])
        for kind, key in (("call", "calls"), ("event", "event"), ("error", "error")):
            if pallet.get(key):
                for variant in types.variants(pallet[key]["ty"]):
                    items[kind][f"{name}.{variant['name']}"] = types.variant_entry(variant)
        storage = pallet.get("storage") or {}
        for entry in storage.get("entries", []):
            items["storage"][f"{name}.{entry['name']}"] = types.storage_entry(
                entry, entry["default"]
            )
        for constant in pallet.get("constants", []):
            items["constant"][f"{name}.{constant['name']}"] = types.constant_entry(
                constant["type"], constant["value"]
            )
    extrinsic = metadata.value.get("extrinsic", {})
    extensions = tuple(
        ext["identifier"]
        for ext in extrinsic.get("signed_extensions", extrinsic.get("transaction_extensions", []))
    )
    return RuntimeSummary(
        blake2_256=blob.blake2_256,
        size=blob.size,
        versions={
            "spec_name": version.spec_name,
            "impl_name": version.impl_name,
            "spec_version": version.spec_version,
            "impl_version": version.impl_version,
            "authoring_version": version.authoring_version,
            "transaction_version": version.transaction_version,
            "state_version": version.state_version,
            "metadata_version": metadata.version,
        },
        apis={api.name or api.id: api.version for api in version.apis},
        extensions=extensions,
        pallets=pallets,
        items=items,
        storage_versions=None if storage_versions is None else dict(storage_versions),
    )


class _Types:
    """Readable names and layout digests of a portable type registry (metadata v14/v15)."""

    def __init__(self, registry: Sequence[Mapping[str, Any]]) -> None:
        self._types = {int(t["id"]): t["type"] for t in registry}
        self._names: dict[int, str] = {}
        self._shapes: dict[tuple[int, int], str] = {}

    def variants(self, type_id: int) -> list[dict[str, Any]]:
        definition = self._types[type_id]["def"]
        return list(definition.get("variant", {}).get("variants", []))

    def variant_entry(self, variant: Mapping[str, Any]) -> Entry:
        fields = variant.get("fields", [])
        shown = ", ".join(
            f"{f['name']}: {self.name(f['type'])}" if f.get("name") else self.name(f["type"])
            for f in fields
        )
        layout = ",".join(f"{f.get('name')}:{self.shape(f['type'])}" for f in fields)
        return Entry(
            signature=f"[{variant['index']}] {variant['name']}({shown})",
            shape=_digest(f"{variant['index']}|{variant['name']}|{layout}"),
        )

    def storage_entry(self, entry: Mapping[str, Any], default: bytes) -> Entry:
        kind = entry["type"]
        optional = " (optional)" if entry.get("modifier") == "Optional" else ""
        if "Plain" in kind:
            value = kind["Plain"]
            shown = self.name(value)
            layout = f"plain|{self.shape(value)}"
        else:
            spec = kind["Map"]
            hashers = ", ".join(spec["hashers"])
            shown = f"map[{hashers}]({self.name(spec['key'])}) -> {self.name(spec['value'])}"
            layout = f"map|{hashers}|{self.shape(spec['key'])}|{self.shape(spec['value'])}"
        return Entry(
            signature=shown + optional,
            shape=_digest(f"{layout}|{entry.get('modifier')}|{default.hex()}"),
            layout=_digest(f"{layout}|{entry.get('modifier')}"),
        )

    def constant_entry(self, type_id: int, raw: bytes) -> Entry:
        value = self.value(type_id, raw)
        return Entry(
            signature=f"{self.name(type_id)} = {_shorten(value)}",
            shape=_digest(f"{self.shape(type_id)}|{raw.hex()}"),
            value=value,
        )

    def value(self, type_id: int, raw: bytes) -> str:
        """A constant's decoded value as compact JSON; its hex (a JSON string) when the bytes
        do not fit its type."""
        try:
            return _json(decode_value(self._types, type_id, raw))
        except (PipelineError, KeyError, IndexError, StopIteration):
            return _json("0x" + raw.hex())

    def name(self, type_id: int) -> str:
        """How Rust would write the type: `BoundedVec<u8>`, `Vec<(u32, AccountId32)>`."""
        if type_id not in self._names:
            self._names[type_id] = self._name(type_id)
        return self._names[type_id]

    def _name(self, type_id: int) -> str:
        ty = self._types[type_id]
        path = ty.get("path") or []
        if path:
            params = [
                self.name(p["type"]) for p in ty.get("params", []) if p.get("type") is not None
            ]
            return str(path[-1]) + (f"<{', '.join(params)}>" if params else "")
        kind, body = next(iter(ty["def"].items()))
        if kind == "primitive":
            return str(body)
        if kind == "sequence":
            return f"Vec<{self.name(body['type'])}>"
        if kind == "array":
            return f"[{self.name(body['type'])}; {body['len']}]"
        if kind == "tuple":
            return "(" + ", ".join(self.name(t) for t in body) + ")"
        if kind == "compact":
            return f"Compact<{self.name(body['type'])}>"
        if kind == "composite":
            return "{" + ", ".join(self._field(f) for f in body.get("fields", [])) + "}"
        return str(kind)

    def _field(self, f: Mapping[str, Any]) -> str:
        return f"{f['name']}: {self.name(f['type'])}" if f.get("name") else self.name(f["type"])

    def shape(self, type_id: int, depth: int = SHAPE_DEPTH) -> str:
        """A digest of the type's encoding, followed `depth` named types deep."""
        key = (type_id, depth)
        if key not in self._shapes:
            self._shapes[key] = _digest(self._layout(type_id, depth))
        return self._shapes[key]

    def _layout(self, type_id: int, depth: int) -> str:
        ty = self._types[type_id]
        path = ty.get("path") or []
        if path and (depth <= 0 or path[-1] in OUTER_ENUMS):
            return "named:" + "::".join(path)
        inner = depth - 1 if path else depth
        kind, body = next(iter(ty["def"].items()))
        if kind == "primitive":
            return str(body)
        if kind in ("sequence", "compact"):
            return f"{kind}({self.shape(body['type'], inner)})"
        if kind == "array":
            return f"array{body['len']}({self.shape(body['type'], inner)})"
        if kind == "tuple":
            return "tuple(" + ",".join(self.shape(t, inner) for t in body) + ")"
        if kind == "composite":
            return "composite(" + self._fields(body.get("fields", []), inner) + ")"
        if kind == "variant":
            return (
                "variant("
                + ";".join(
                    f"{v['index']}:{v['name']}({self._fields(v.get('fields', []), inner)})"
                    for v in body.get("variants", [])
                )
                + ")"
            )
        return f"{kind}:{json.dumps(body, sort_keys=True)}"

    def _fields(self, fields: Sequence[Mapping[str, Any]], depth: int) -> str:
        return ",".join(f"{f.get('name')}:{self.shape(f['type'], depth)}" for f in fields)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def _shorten(text: str) -> str:
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 1] + "…"


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


# --- where runtimes come from -------------------------------------------------------------------


@dataclass(frozen=True)
class Runtime:
    label: str  # what the user named: a path, or env:NAME:role (endpoint)
    blob: RuntimeBlob
    path: Path | None  # the file, when it is one


def load_runtime(project: Project | None, spec: str) -> Runtime:
    """An artifact (path, artifact directory or hash) or the code on a chain: `env:NAME[:role]`
    or a `ws(s)://` endpoint, either optionally `@BLOCK` (see `runtime_info`).

    `project` None: read from the current directory only for what needs one (an artifact
    hash, env:NAME): a council member reads a file or an endpoint from anywhere."""
    source = runtime_info.parse_chain_source(spec)
    if source is None:
        path = resolve_artifact(project, spec)
        return Runtime(str(path), RuntimeBlob.load(path), path)
    label, code = _chain_code(project, source)
    try:
        return Runtime(label, RuntimeBlob.from_bytes(code), None)
    except PipelineError as exc:
        raise PipelineError(f"the code on {label}: {exc}") from None


ENDPOINT_CONNECT_TIMEOUT: Final = 30.0


def _chain_code(project: Project | None, source: runtime_info.ChainSource) -> tuple[str, bytes]:
    """(label, `:code`) of the chain a source names; substrate-interface loads only here, so
    a diff of files does not pay its second of imports."""
    from pipeline import config
    from pipeline.chain import Chain, connect

    if source.environment is not None:
        root = (project or load_project()).root
        env = config.load_environment(source.environment, root)
        network = config.network(env, source.role or DEFAULT_ROLE)
        label = f"env:{source.environment}:{network.role} ({network.endpoint})"
        chain = connect(env, network)
    else:
        label = str(source.endpoint)
        chain = Chain(label, connect_timeout=ENDPOINT_CONNECT_TIMEOUT)
    with chain:
        at = source.block
        code = chain.code(at if at is None or at.startswith("0x") else chain.block_hash(int(at)))
    return (label if source.block is None else f"{label} @{source.block}"), code


def _summary_file(runtime: Runtime) -> Path:
    return cache_dir() / "metadata" / f"{runtime.blob.blake2_256[2:]}.v{SUMMARY_FORMAT}.json"


def summary_of(runtime: Runtime) -> RuntimeSummary:
    """The runtime's summary, from the machine-wide cache or by running its Metadata API."""
    cached = _summary_file(runtime)
    try:
        return RuntimeSummary.from_dict(json.loads(read_entry(cached)))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    from pipeline import wasm_exec

    try:  # a wasm that is no runtime is named as `inspect` names it, before its Metadata API runs
        version, _ = runtime_info.version_of(runtime.blob)
    except PipelineError as exc:
        raise PipelineError(f"{runtime.label}: {exc}") from None
    try:
        instance = wasm_exec.RuntimeInstance(runtime.blob.wasm)
        raw = wasm_exec.metadata(instance)[1]
    except wasm_exec.RuntimeCallError as exc:
        raise PipelineError(f"{runtime.label}: cannot read its metadata ({exc})") from None
    try:
        metadata = read_metadata(raw)
    except PipelineError as exc:
        raise PipelineError(f"{runtime.label}: cannot read its metadata ({exc})") from None
    summary = summarize(runtime.blob, metadata, version, _storage_versions(instance, metadata))
    write_atomic(cached, json.dumps(summary.as_dict(), sort_keys=True).encode())
    return summary


def _storage_versions(
    instance: wasm_exec.RuntimeInstance, metadata: ReadMetadata
) -> dict[str, int] | None:
    """Each pallet's in-code storage version, as the runtime writes it at genesis (FRAME puts
    every pallet's version there); None for a runtime without a usable genesis builder."""
    from pipeline import wasm_exec

    try:
        state = wasm_exec.genesis_storage(instance)
    except wasm_exec.RuntimeCallError:
        return None
    prefixes = {
        str(p["name"]): str((p.get("storage") or {}).get("prefix") or p["name"])
        for p in metadata.value["pallets"]
    }
    found = wasm_exec.storage_versions(state, list(prefixes.values()))
    return {name: found[prefix] for name, prefix in prefixes.items()}


def _precompile(wasm: bytes) -> None:
    from pipeline import wasm_exec

    wasm_exec.precompile(wasm)


def summaries(runtimes: Sequence[Runtime]) -> list[RuntimeSummary]:
    """Summaries of several runtimes; the same blob is summarized once. The uncached ones are
    compiled in order on a worker thread (compiling releases the GIL, and wasmtime spreads
    each compile over every core), and each runs here as soon as it is compiled, while the
    next one compiles: two compiles side by side share the same cores and finish together.
    Runtimes execute on this thread only: wasmtime's Python host functions must not run on
    two threads at once (two runtimes executing on two threads aborted the process)."""
    unique = {r.blob.blake2_256: r for r in runtimes}
    cold = [r for r in unique.values() if not _summary_file(r).is_file()]
    with ThreadPoolExecutor(max_workers=1) as worker:
        compiled = {r.blob.blake2_256: worker.submit(_precompile, r.blob.wasm) for r in cold}
        done = {}
        for code_hash, runtime in unique.items():
            if code_hash in compiled:
                compiled[code_hash].result()
            done[code_hash] = summary_of(runtime)
    return [done[r.blob.blake2_256] for r in runtimes]


def report(a: Runtime, b: Runtime) -> dict[str, Any]:
    """The JSON form of a diff: both runtimes' identities and every change."""
    sa, sb = summaries([a, b])
    changes = diff_summaries(sa, sb)
    return {
        "a": {"label": a.label, **_identity(sa)},
        "b": {"label": b.label, **_identity(sb)},
        "changes": [c.as_dict() for c in changes],
        "verdicts": judge(sa, sb, changes).as_dict(),
    }


def judge(a: RuntimeSummary, b: RuntimeSummary, changes: Sequence[Change]) -> verdicts.Verdicts:
    """The diff's verdicts (compatible, transaction_version / storage migration needed)."""
    return verdicts.judge(
        changes,
        (int(a.versions["transaction_version"]), int(b.versions["transaction_version"])),
        (a.storage_versions, b.storage_versions),
    )


def _identity(s: RuntimeSummary) -> dict[str, Any]:
    return {"blake2_256": s.blake2_256, "size": s.size, "versions": s.versions}
