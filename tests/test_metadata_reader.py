"""Metadata read straight from its bytes: what scalecodec reads of the same bytes, and values."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fixtures.runtimes import runtime_wasm

from pipeline import wasm_exec
from pipeline.artifact import RuntimeBlob
from pipeline.errors import PipelineError
from pipeline.metadata import decode_metadata
from pipeline.metadata_reader import decode_value, read_metadata


def plain(value: Any) -> Any:
    """scalecodec's values and ours as JSON (its bytes come as text, ours as bytes)."""
    return json.loads(json.dumps(value, default=lambda o: o.hex() if isinstance(o, bytes) else o))


@pytest.mark.parametrize("version", [14, 15])
def test_reads_what_scalecodec_reads(version: int) -> None:
    instance = wasm_exec.RuntimeInstance(RuntimeBlob.load(runtime_wasm(100)).wasm)
    raw = wasm_exec.metadata(instance, version)[1]
    ours, theirs = read_metadata(raw), decode_metadata(raw, "the fixture")
    assert ours.version == theirs.version == version
    assert plain(ours.value["types"]) == plain(theirs.value["types"])
    assert plain(ours.value["extrinsic"]) == plain(theirs.value["extrinsic"])
    keys = ("name", "index", "calls", "event", "error")
    for mine, scale, scale_obj in zip(
        ours.value["pallets"], theirs.value["pallets"], theirs.body["pallets"], strict=True
    ):
        assert {k: mine[k] for k in keys} == {k: scale[k] for k in keys}
        entries = (mine["storage"] or {}).get("entries", [])
        for i, entry in enumerate(entries):
            reference = scale["storage"]["entries"][i]
            default = scale_obj["storage"].value_object["entries"][i]["default"].value_object
            assert (entry["name"], entry["modifier"]) == (reference["name"], reference["modifier"])
            assert entry["type"] == reference["type"] and entry["default"] == bytes(default)
        for i, constant in enumerate(mine["constants"]):
            value = scale_obj["constants"][i]["value"].value_object
            assert (constant["name"], constant["value"]) == (
                scale["constants"][i]["name"],
                bytes(value),
            )


def test_older_metadata_is_one_clear_line() -> None:
    with pytest.raises(PipelineError, match=r"^metadata v12: only v14 and v15 are read"):
        read_metadata(b"meta\x0c" + bytes(10))
    with pytest.raises(PipelineError, match="does not start with `meta`"):
        read_metadata(b"\0asm\x01\0\0\0")
    with pytest.raises(PipelineError, match="truncated at byte 5"):
        read_metadata(b"meta\x0e")


def primitive(type_id: int, name: str) -> dict[str, Any]:
    return {"id": type_id, "type": {"path": [], "def": {"primitive": name}}}


def field(name: str | None, type_id: int) -> dict[str, Any]:
    return {"name": name, "type": type_id}


TYPES = {
    t["id"]: t["type"]
    for t in [
        primitive(0, "u8"),
        primitive(1, "u32"),
        primitive(2, "i16"),
        primitive(3, "bool"),
        {"id": 4, "type": {"path": [], "def": {"sequence": {"type": 0}}}},
        {"id": 5, "type": {"path": [], "def": {"array": {"len": 2, "type": 0}}}},
        {"id": 6, "type": {"path": [], "def": {"compact": {"type": 1}}}},
        {
            "id": 7,
            "type": {
                "path": ["Weight"],
                "def": {"composite": {"fields": [field("ref_time", 6), field("ok", 3)]}},
            },
        },
        {
            "id": 8,
            "type": {
                "path": ["Option"],
                "def": {
                    "variant": {
                        "variants": [
                            {"name": "None", "index": 0, "fields": []},
                            {"name": "Some", "index": 1, "fields": [field(None, 1)]},
                        ]
                    }
                },
            },
        },
        {
            "id": 9,
            "type": {
                "path": ["Kind"],
                "def": {
                    "variant": {
                        "variants": [
                            {"name": "Plain", "index": 0, "fields": []},
                            {"name": "Sized", "index": 3, "fields": [field("len", 1)]},
                        ]
                    }
                },
            },
        },
        {"id": 10, "type": {"path": [], "def": {"tuple": [0, 2]}}},
        {"id": 11, "type": {"path": ["Id"], "def": {"composite": {"fields": [field(None, 5)]}}}},
        {"id": 12, "type": {"path": [], "def": {"bitsequence": {"bit_store_type": 0}}}},
    ]
}


@pytest.mark.parametrize(
    ("type_id", "data", "value"),
    [
        (1, (7).to_bytes(4, "little"), 7),
        (2, (-2 & 0xFFFF).to_bytes(2, "little"), -2),
        (4, b"\x0cKSM", "KSM"),  # a printable Vec<u8> reads as its text
        (4, b"\x08\x00\xff", "0x00ff"),
        (5, b"py", "0x7079"),  # arrays stay hex
        (6, b"\x01\x01", 64),
        (7, b"\x08\x01", {"ref_time": 2, "ok": True}),
        (8, b"\x00", None),
        (8, b"\x01\x05\x00\x00\x00", 5),
        (9, b"\x00", "Plain"),
        (9, b"\x03\x02\x00\x00\x00", {"Sized": {"len": 2}}),
        (10, b"\x01\xfe\xff", [1, -2]),
        (11, b"ab", "0x6162"),  # a newtype is its one field
        (12, b"\x24\xff\x01", "0xff01"),  # 9 bits: two u8 words
    ],
)
def test_values_read_as_plain_data(type_id: int, data: bytes, value: Any) -> None:
    assert decode_value(TYPES, type_id, data) == value


def test_bytes_that_do_not_fit_their_type_are_refused() -> None:
    with pytest.raises(PipelineError, match="1 bytes left over"):
        decode_value(TYPES, 0, b"\x01\x02")
    with pytest.raises(PipelineError, match="truncated"):
        decode_value(TYPES, 1, b"\x01")
    with pytest.raises(PipelineError, match="no variant 2 in type 9"):
        decode_value(TYPES, 9, b"\x02")
