"""Runtime metadata: decoding (v14/v15, from a wasm or a chain) and the typed reads of chain
state that several stages share, so each storage item is read and interpreted in one place."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from scalecodec.base import RuntimeConfigurationObject, ScaleBytes
from scalecodec.type_registry import load_type_registry_preset

from pipeline.chain import Chain
from pipeline.errors import PipelineError


@dataclass(frozen=True)
class Metadata:
    """Decoded runtime metadata (v14/v15) with its type registry, for reading items and values."""

    version: int
    value: dict[str, Any]  # the decoded body: types, pallets, extrinsic, …
    body: Any = field(repr=False)  # scalecodec's objects for the same body (raw bytes of values)
    registry: RuntimeConfigurationObject = field(repr=False)

    def pallet_names(self) -> list[str]:
        return [str(p["name"]) for p in self.value["pallets"]]

    def constant(self, pallet: str, name: str) -> Any:
        """A constant's decoded value; None when the runtime has no such constant."""
        for p, p_obj in zip(self.value["pallets"], self.body["pallets"], strict=True):
            if p["name"] != pallet:
                continue
            for i, constant in enumerate(p.get("constants", [])):
                if constant["name"] == name:
                    raw = bytes(p_obj["constants"][i]["value"].value_object)
                    scale = f"scale_info::{constant['type']}"
                    return self.registry.create_scale_object(scale, ScaleBytes(raw)).decode()
        return None


# scalecodec 1.2 knows metadata up to v14; runtimes offer v15 through their Metadata API. v15
# (frame-metadata 16) keeps v14's registry, storage, calls, events, constants and errors, adds
# docs to pallets, a richer extrinsic record, runtime API descriptions, outer enums and custom
# values: declared here in scalecodec's own type language.
METADATA_V15_TYPES: Final[dict[str, Any]] = {
    "MetadataV15": {
        "type": "struct",
        "type_mapping": [
            ["types", "PortableRegistry"],
            ["pallets", "Vec<PalletMetadataV15>"],
            ["extrinsic", "ExtrinsicMetadataV15"],
            ["runtime_type", "SiLookupTypeId"],
            ["apis", "Vec<RuntimeApiMetadataV15>"],
            ["outer_enums", "OuterEnumsV15"],
            ["custom", "Vec<(Text, CustomValueMetadataV15)>"],
        ],
    },
    "PalletMetadataV15": {
        "type": "struct",
        "base_class": "ScaleInfoPalletMetadata",
        "type_mapping": [
            ["name", "Text"],
            ["storage", "Option<StorageMetadataV14>"],
            ["calls", "Option<PalletCallMetadataV14>"],
            ["event", "Option<PalletEventMetadataV14>"],
            ["constants", "Vec<PalletConstantMetadataV14>"],
            ["error", "Option<PalletErrorMetadataV14>"],
            ["index", "u8"],
            ["docs", "Vec<Text>"],
        ],
    },
    "ExtrinsicMetadataV15": {
        "type": "struct",
        "type_mapping": [
            ["version", "u8"],
            ["address_ty", "SiLookupTypeId"],
            ["call_ty", "SiLookupTypeId"],
            ["signature_ty", "SiLookupTypeId"],
            ["extra_ty", "SiLookupTypeId"],
            ["signed_extensions", "Vec<SignedExtensionMetadataV14>"],
        ],
    },
    "RuntimeApiMetadataV15": {
        "type": "struct",
        "type_mapping": [
            ["name", "Text"],
            ["methods", "Vec<RuntimeApiMethodMetadataV15>"],
            ["docs", "Vec<Text>"],
        ],
    },
    "RuntimeApiMethodMetadataV15": {
        "type": "struct",
        "type_mapping": [
            ["name", "Text"],
            ["inputs", "Vec<RuntimeApiMethodParamMetadataV15>"],
            ["output", "SiLookupTypeId"],
            ["docs", "Vec<Text>"],
        ],
    },
    "RuntimeApiMethodParamMetadataV15": {
        "type": "struct",
        "type_mapping": [["name", "Text"], ["ty", "SiLookupTypeId"]],
    },
    "OuterEnumsV15": {
        "type": "struct",
        "type_mapping": [
            ["call_type", "SiLookupTypeId"],
            ["event_type", "SiLookupTypeId"],
            ["error_type", "SiLookupTypeId"],
        ],
    },
    "CustomValueMetadataV15": {
        "type": "struct",
        "type_mapping": [["ty", "SiLookupTypeId"], ["value", "Bytes"]],
    },
}


def _type_registry() -> dict[str, Any]:
    """scalecodec's core types, with metadata v15 added to its versions."""
    registry: dict[str, Any] = load_type_registry_preset("core")
    versions = registry["types"]["MetadataAll"]
    mapping = [*versions["type_mapping"], ["V15", "MetadataV15"]]
    registry["types"] = {
        **registry["types"],
        **METADATA_V15_TYPES,
        "MetadataAll": {**versions, "type_mapping": mapping},
    }
    return registry


def chain_metadata(chain: Chain) -> Metadata:
    """The metadata of the runtime a chain runs now (constants, pallet names)."""
    raw = bytes.fromhex(str(chain.rpc("state_getMetadata")).removeprefix("0x"))
    return decode_metadata(raw, f"the runtime on {chain.endpoint}")


def decode_metadata(raw: bytes, what: str) -> Metadata:
    """Decode `meta` + versioned metadata (from a wasm's Metadata API or `state_getMetadata`).

    Decoded once per distinct metadata in a process (a second or so each time otherwise):
    a release reads the same runtime's metadata in several checks of several stages."""
    key = hashlib.blake2b(raw, digest_size=32).digest()
    if key not in _DECODED:
        _DECODED[key] = _decode(raw, what)
    return _DECODED[key]


_DECODED: dict[bytes, Metadata] = {}


def _decode(raw: bytes, what: str) -> Metadata:
    rc = RuntimeConfigurationObject()
    rc.update_type_registry(_type_registry())
    try:
        decoded = rc.create_scale_object("MetadataVersioned", data=ScaleBytes(raw))
        decoded.decode()
        number, body = decoded.value_object[1].value_object
        version = int(str(number).removeprefix("V"))
        if version >= 14:
            rc.add_portable_registry(decoded)
    except Exception as exc:  # scalecodec raises bare Exceptions for layouts it does not know
        raise PipelineError(
            f"cannot decode the metadata of {what} ({exc}): only metadata v14 and v15 are read"
        ) from None
    if version < 14:
        raise PipelineError(
            f"{what} has metadata v{version}: only v14 and later describe types; "
            "use a runtime built with a recent FRAME"
        )
    return Metadata(version=version, value=body.value, body=body, registry=rc)


def authorized_upgrade(chain: Chain) -> str | None:
    """The code hash in System.AuthorizedUpgrade (lowercase 0x hex), None when none is."""
    value = chain.query("System", "AuthorizedUpgrade")
    return str(value["code_hash"]).lower() if isinstance(value, Mapping) else None
