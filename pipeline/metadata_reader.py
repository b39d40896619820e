"""Runtime metadata v14/v15 read straight from its SCALE bytes, for `diff`: fast and pure.

scalecodec takes 3-4 s of CPU for a production runtime's metadata (every doc string becomes
an object); a diff needs two, cold. This reader walks the same bytes (frame-metadata's v14 and
v15 layouts) in a few hundred milliseconds and returns plain data in the shape scalecodec's
`value` has (`types`, `pallets`, `extrinsic`), so a summary reads the same either way; storage
defaults and constant values stay raw bytes, which `decode_value` reads against the types.
Stages that query chains keep `pipeline.metadata` (scalecodec's registry, for storage keys).
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

from pipeline.errors import PipelineError

MAGIC: Final = b"meta"
READ_VERSIONS: Final = (14, 15)
PRIMITIVES: Final = (
    "bool",
    "char",
    "str",
    "u8",
    "u16",
    "u32",
    "u64",
    "u128",
    "u256",
    "i8",
    "i16",
    "i32",
    "i64",
    "i128",
    "i256",
)
HASHERS: Final = (
    "Blake2_128",
    "Blake2_256",
    "Blake2_128Concat",
    "Twox128",
    "Twox256",
    "Twox64Concat",
    "Identity",
)
MODIFIERS: Final = ("Optional", "Default")


class _Reader:
    """A cursor over SCALE bytes; running out of bytes is one clear error."""

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def take(self, count: int) -> bytes:
        end = self.pos + count
        if end > len(self.data):
            raise PipelineError(
                f"metadata is truncated at byte {self.pos} ({count} more bytes wanted)"
            )
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def uint(self, width: int) -> int:
        return int.from_bytes(self.take(width), "little")

    def compact(self) -> int:
        first = self.u8()
        mode = first & 3
        if mode == 0:
            return first >> 2
        if mode in (1, 2):
            rest = self.take(1 if mode == 1 else 3)
            return int.from_bytes(bytes([first]) + rest, "little") >> 2
        return int.from_bytes(self.take((first >> 2) + 4), "little")

    def bytes_(self) -> bytes:
        return self.take(self.compact())

    def text(self) -> str:
        return self.bytes_().decode("utf-8", errors="replace")

    def texts(self) -> list[str]:
        return [self.text() for _ in range(self.compact())]

    def option(self) -> bool:
        flag = self.u8()
        if flag > 1:
            raise PipelineError(f"metadata has a bad Option tag {flag} at byte {self.pos - 1}")
        return flag == 1

    def many(self, read: Any) -> list[Any]:
        return [read() for _ in range(self.compact())]


class ReadMetadata(NamedTuple):
    version: int  # 14 or 15
    value: dict[str, Any]  # types, pallets, extrinsic: scalecodec's shape, bytes left raw


def read_metadata(raw: bytes) -> ReadMetadata:
    """`meta` + versioned metadata (v14 or v15), read."""
    if raw[:4] != MAGIC or len(raw) < 5:
        raise PipelineError("not runtime metadata: it does not start with `meta`")
    version = raw[4]
    if version not in READ_VERSIONS:
        raise PipelineError(
            f"metadata v{version}: only v14 and v15 are read; use a runtime built with a "
            "recent FRAME"
        )
    r = _Reader(raw, 5)
    types = {"types": r.many(lambda: _portable_type(r))}
    pallets = r.many(lambda: _pallet(r, version))
    extrinsic = _extrinsic(r, version)
    return ReadMetadata(version, {"types": types, "pallets": pallets, "extrinsic": extrinsic})


def _portable_type(r: _Reader) -> dict[str, Any]:
    type_id = r.compact()
    path = r.texts()
    params = r.many(lambda: {"name": r.text(), "type": r.compact() if r.option() else None})
    definition = _type_def(r)
    return {
        "id": type_id,
        "type": {"path": path, "params": params, "def": definition, "docs": r.texts()},
    }


def _field(r: _Reader) -> dict[str, Any]:
    name = r.text() if r.option() else None
    ty = r.compact()
    type_name = r.text() if r.option() else None
    return {"name": name, "type": ty, "typeName": type_name, "docs": r.texts()}


def _variant(r: _Reader) -> dict[str, Any]:
    name = r.text()
    fields = r.many(lambda: _field(r))
    return {"name": name, "fields": fields, "index": r.u8(), "docs": r.texts()}


def _type_def(r: _Reader) -> dict[str, Any]:
    tag = r.u8()
    if tag == 0:
        return {"composite": {"fields": r.many(lambda: _field(r))}}
    if tag == 1:
        return {"variant": {"variants": r.many(lambda: _variant(r))}}
    if tag == 2:
        return {"sequence": {"type": r.compact()}}
    if tag == 3:
        length = r.uint(4)
        return {"array": {"len": length, "type": r.compact()}}
    if tag == 4:
        return {"tuple": r.many(r.compact)}
    if tag == 5:
        return {"primitive": PRIMITIVES[r.u8()]}
    if tag == 6:
        return {"compact": {"type": r.compact()}}
    if tag == 7:
        store = r.compact()
        return {"bitsequence": {"bit_store_type": store, "bit_order_type": r.compact()}}
    raise PipelineError(f"metadata has an unknown type definition {tag} at byte {r.pos - 1}")


def _pallet(r: _Reader, version: int) -> dict[str, Any]:
    name = r.text()
    storage = _storage(r) if r.option() else None
    calls = {"ty": r.compact()} if r.option() else None
    event = {"ty": r.compact()} if r.option() else None
    constants = r.many(
        lambda: {"name": r.text(), "type": r.compact(), "value": r.bytes_(), "docs": r.texts()}
    )
    error = {"ty": r.compact()} if r.option() else None
    pallet = {
        "name": name,
        "storage": storage,
        "calls": calls,
        "event": event,
        "constants": constants,
        "error": error,
        "index": r.u8(),
    }
    if version >= 15:
        pallet["docs"] = r.texts()
    return pallet


def _storage(r: _Reader) -> dict[str, Any]:
    prefix = r.text()
    return {"prefix": prefix, "entries": r.many(lambda: _storage_entry(r))}


def _storage_entry(r: _Reader) -> dict[str, Any]:
    name = r.text()
    modifier = MODIFIERS[r.u8()]
    if r.u8() == 0:
        kind: dict[str, Any] = {"Plain": r.compact()}
    else:
        hashers = [HASHERS[h] for h in r.many(r.u8)]
        key = r.compact()
        kind = {"Map": {"hashers": hashers, "key": key, "value": r.compact()}}
    default = r.bytes_()
    return {
        "name": name,
        "modifier": modifier,
        "type": kind,
        "default": default,
        "docs": r.texts(),
    }


def _extrinsic(r: _Reader, version: int) -> dict[str, Any]:
    def extension() -> dict[str, Any]:
        identifier = r.text()
        ty = r.compact()
        return {"identifier": identifier, "ty": ty, "additional_signed": r.compact()}

    if version == 14:
        ty = r.compact()
        return {"ty": ty, "version": r.u8(), "signed_extensions": r.many(extension)}
    head = {"version": r.u8()}
    for key in ("address_ty", "call_ty", "signature_ty", "extra_ty"):
        head[key] = r.compact()
    return {**head, "signed_extensions": r.many(extension)}


# --- values -------------------------------------------------------------------------------------
def decode_value(types: dict[int, dict[str, Any]], type_id: int, data: bytes) -> Any:
    """A SCALE value of a portable type as plain JSON data: structs as objects, unit variants
    as their names, Option as null or its value, bytes as 0x hex (or text). Raises PipelineError
    when the bytes do not fit the type (or are left over)."""
    r = _Reader(data)
    value = _value(types, type_id, r)
    if r.pos != len(data):
        raise PipelineError(f"{len(data) - r.pos} bytes left over after the value")
    return value


def _value(types: dict[int, dict[str, Any]], type_id: int, r: _Reader) -> Any:
    ty = types[type_id]
    kind, body = next(iter(ty["def"].items()))
    if kind == "primitive":
        return _primitive(body, r)
    if kind == "compact":
        return r.compact()
    if kind == "composite":
        return _fields(types, body["fields"], r)
    if kind == "variant":
        index = r.u8()
        variant = next((v for v in body["variants"] if v["index"] == index), None)
        if variant is None:
            raise PipelineError(f"no variant {index} in type {type_id}")
        if (ty.get("path") or [""])[-1] == "Option":
            return _fields(types, variant["fields"], r) if variant["fields"] else None
        if not variant["fields"]:
            return variant["name"]
        return {variant["name"]: _fields(types, variant["fields"], r)}
    if kind in ("sequence", "array"):
        count = r.compact() if kind == "sequence" else body["len"]
        inner = types[body["type"]]["def"]
        if inner.get("primitive") == "u8":
            return _byte_string(r.take(count), readable=kind == "sequence")
        return [_value(types, body["type"], r) for _ in range(count)]
    if kind == "tuple":
        return [_value(types, t, r) for t in body]
    if kind == "bitsequence":  # a compact bit count, then whole store words
        bits = r.compact()
        width = int(types[body["bit_store_type"]]["def"]["primitive"][1:]) // 8
        return "0x" + r.take(-(-bits // (width * 8)) * width).hex()
    raise PipelineError(f"type {type_id} is a {kind}, which values cannot be read of")


def _fields(types: dict[int, dict[str, Any]], fields: list[dict[str, Any]], r: _Reader) -> Any:
    values = [_value(types, f["type"], r) for f in fields]
    if len(fields) == 1 and not fields[0].get("name"):
        return values[0]
    if fields and all(f.get("name") for f in fields):
        return {f["name"]: v for f, v in zip(fields, values, strict=True)}
    return values


def _byte_string(data: bytes, readable: bool) -> str:
    """Bytes as 0x hex; a Vec<u8> that is printable UTF-8 (a prefix, a name) as its text, as
    substrate-interface shows it."""
    if readable:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            if text.isprintable():
                return text
    return "0x" + data.hex()


def _primitive(name: str, r: _Reader) -> Any:
    if name == "bool":
        return r.u8() == 1
    if name == "str":
        return r.text()
    if name == "char":
        return chr(r.uint(4))
    width = int(name[1:]) // 8
    value = r.uint(width)
    if name[0] == "i" and value >= 1 << (width * 8 - 1):
        value -= 1 << (width * 8)
    return value
