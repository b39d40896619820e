"""Runtime metadata as scalecodec decodes it, once per distinct metadata in a process.

Decoding a runtime's metadata costs about a second; a release reads the same few runtimes' metadata
through several connections (substrate-interface decodes it again for each) and several checks.
The chain layer and `pipeline.metadata` both take it from here, keyed by the bytes' hash.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

from scalecodec.base import RuntimeConfigurationObject, ScaleBytes
from scalecodec.type_registry import load_type_registry_preset

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


def decode_versioned(raw: bytes) -> Any:
    """`meta` + versioned metadata (v14 from `state_getMetadata`, v15 from the Metadata API),
    decoded by scalecodec once per distinct bytes in this process.

    Each decoded metadata has a registry of its own (its `runtime_config`, with its portable
    types from v14 on), which its storage and call descriptions look types up in; readers only
    read it, so connections and checks may share it. Raises what scalecodec raises for layouts
    it does not know."""
    key = hashlib.blake2b(raw, digest_size=32).digest()
    if key not in _DECODED:
        registry = new_registry()
        decoded = registry.create_scale_object("MetadataVersioned", data=ScaleBytes(raw))
        decoded.decode()
        if version_of(decoded) >= 14:
            registry.add_portable_registry(decoded)
        _DECODED[key] = decoded
    return _DECODED[key]


def version_of(decoded: Any) -> int:
    """The metadata version of a decoded `MetadataVersioned` (14, 15, …)."""
    number = decoded.value_object[1].value_object[0]
    return int(str(number).removeprefix("V"))


_DECODED: dict[bytes, Any] = {}


def new_registry() -> RuntimeConfigurationObject:
    """A registry of scalecodec's core types, v15 metadata included."""
    registry = RuntimeConfigurationObject()
    registry.update_type_registry(_type_registry())
    return registry
