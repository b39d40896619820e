"""Runtime metadata: decoding (v14/v15, from a wasm or a chain) and the typed reads of chain
state that several stages share, so each storage item is read and interpreted in one place."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scalecodec.base import RuntimeConfigurationObject, ScaleBytes

from pipeline.chain import Chain
from pipeline.errors import PipelineError
from pipeline.scale_metadata import decode_versioned, version_of


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


def chain_metadata(chain: Chain) -> Metadata:
    """The metadata of the runtime a chain runs now (constants, pallet names)."""
    return decode_metadata(chain_metadata_bytes(chain), f"the runtime on {chain.endpoint}")


def chain_metadata_bytes(chain: Chain) -> bytes:
    """`meta` + versioned metadata of the runtime a chain runs now, as `state_getMetadata`
    answers it."""
    return bytes.fromhex(str(chain.rpc("state_getMetadata")).removeprefix("0x"))


def decode_metadata(raw: bytes, what: str) -> Metadata:
    """Decode `meta` + versioned metadata (from a wasm's Metadata API or `state_getMetadata`).

    Decoded once per distinct metadata in a process (a second or so each time otherwise):
    a release reads the same runtime's metadata in several checks of several stages."""
    key = hashlib.blake2b(raw, digest_size=32).digest()
    if key not in _READ:
        _READ[key] = _read(raw, what)
    return _READ[key]


_READ: dict[bytes, Metadata] = {}


def _read(raw: bytes, what: str) -> Metadata:
    try:
        decoded = decode_versioned(raw)
        version = version_of(decoded)
    except Exception as exc:  # scalecodec raises bare Exceptions for layouts it does not know
        raise PipelineError(
            f"cannot decode the metadata of {what} ({exc}): only metadata v14 and v15 are read"
        ) from None
    if version < 14:
        raise PipelineError(
            f"{what} has metadata v{version}: only v14 and later describe types; "
            "use a runtime built with a recent FRAME"
        )
    body = decoded.value_object[1].value_object[1]
    return Metadata(version=version, value=body.value, body=body, registry=decoded.runtime_config)


def authorized_upgrade(chain: Chain) -> str | None:
    """The code hash in System.AuthorizedUpgrade (lowercase 0x hex), None when none is."""
    value = chain.query("System", "AuthorizedUpgrade")
    return str(value["code_hash"]).lower() if isinstance(value, Mapping) else None
