"""What any runtime is, wherever it comes from: `inspect`'s facts, for blobs of every era.

A runtime built today carries its version in a `runtime_version` custom section, which nodes
read without running it; older runtimes (and some of other chains) do not, and nodes then
execute `Core_version`. A tool that reads what chains have run does the same: the section when
present, else the executed call, and says which. Deploy's preflight still insists on the
section for a candidate (`RuntimeBlob.version`): a node could not read the version otherwise.

Where runtimes come from: a file (or artifact directory / hash, see `diff.resolve_artifact`),
`env:NAME[:role]` (the code a network of an environment runs), or a plain `ws://`/`wss://`
endpoint; either chain form takes `@BLOCK` (a number or a 0x block hash).
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from typing import Any, Final

from pipeline.artifact import (
    TRY_RUNTIME_API,
    RuntimeBlob,
    RuntimeVersion,
    decode_runtime_version,
    info,
)
from pipeline.cache import read_entry
from pipeline.errors import PipelineError
from pipeline.project import cache_dir, write_atomic

SECTION: Final = "runtime_version section"
EXECUTED: Final = "Core_version (executed: the blob has no runtime_version section)"
FACTS_FORMAT: Final = 2
META: Final = b"meta"  # the 4 bytes every metadata starts with (subwasm's reserved_meta)
UNSTABLE_METADATA: Final = 0xFFFFFFFF  # the version number runtimes give unstable metadata
ENDPOINT: Final = re.compile(r"wss?://[^@\s]+")
AT_BLOCK: Final = re.compile(r"(?P<source>.+?)@(?P<block>\d+|0x[0-9a-fA-F]{64})")


def version_of(blob: RuntimeBlob) -> tuple[RuntimeVersion, str]:
    """The runtime's version and where it was read: the section, else `Core_version`."""
    if "runtime_version" in blob.custom_sections:
        return blob.version, SECTION
    from pipeline import wasm_exec  # wasmtime loads only when a wasm must run

    try:
        raw = wasm_exec.core_version(blob.wasm)
    except wasm_exec.RuntimeCallError as exc:
        raise PipelineError(
            f"not a runtime: no `runtime_version` custom section, and Core_version cannot run"
            f" ({exc})"
        ) from None
    return decode_runtime_version(raw), EXECUTED


def describe(blob: RuntimeBlob) -> dict[str, Any]:
    """`inspect --json`: our facts plus the fields `subwasm info -j` prints, with its meaning:
    `size`, `compression` (sizes before and after inflating), `reserved_meta(_valid)` and
    `metadata_version` of `Metadata_metadata`, `core_version` as sp-version serializes it,
    `proposal_hash` (System.set_code), `blake2_256`."""
    version, source = version_of(blob)
    facts = info(blob, version)
    return {
        **facts,
        **_metadata_facts(blob),
        # from the APIs as read here: an old runtime's come from executing Core_version
        "try_runtime": any(api["name"] == TRY_RUNTIME_API for api in facts["apis"]),
        "version_source": source,
        "core_version": version.as_serde(),
        "core_version_text": facts["core_version"],  # sp-version's Display form
        "compression": {
            "size_compressed": blob.size,
            "size_decompressed": len(blob.wasm),
            "compressed": blob.compressed,
        },
    }


def _metadata_facts(blob: RuntimeBlob) -> dict[str, Any]:
    """What the Metadata API says of itself; a function of the blob, so cached by its hash
    (a warm `inspect` runs no wasm)."""
    cached = cache_dir() / "metadata" / f"{blob.blake2_256[2:]}.facts.v{FACTS_FORMAT}.json"
    with contextlib.suppress(OSError, ValueError):
        facts: dict[str, Any] = json.loads(read_entry(cached))
        return facts
    from pipeline import wasm_exec  # wasmtime loads only when a wasm must run

    try:
        instance = wasm_exec.RuntimeInstance(blob.wasm)
        offered = wasm_exec.metadata_versions(instance)
        metadata = wasm_exec.legacy_metadata(instance)
    except wasm_exec.RuntimeCallError as exc:
        # The version came from the section (as a node reads it); a blob whose Metadata API
        # does not run is still described, with the reason in place of the metadata.
        return {
            "metadata_version": None,
            "metadata_versions": [],
            "metadata_unstable_offered": False,
            "reserved_meta": None,
            "reserved_meta_valid": False,
            "metadata_error": str(exc),
        }
    valid = metadata[:4] == META
    facts = {
        "metadata_version": metadata[4] if valid and len(metadata) > 4 else None,
        "metadata_versions": [v for v in offered if v != UNSTABLE_METADATA],
        "metadata_unstable_offered": UNSTABLE_METADATA in offered,
        "reserved_meta": list(metadata[:4]),
        "reserved_meta_valid": valid,
    }
    with contextlib.suppress(OSError):
        write_atomic(cached, json.dumps(facts).encode())
    return facts


@dataclass(frozen=True)
class ChainSource:
    """A runtime on a chain: which environment network or endpoint, and at which block."""

    endpoint: str | None  # a ws:// URL, or None for env:NAME[:role]
    environment: str | None
    role: str | None
    block: str | None  # a number or a 0x hash; None: the best block


def parse_chain_source(spec: str) -> ChainSource | None:
    """`env:NAME[:role][@BLOCK]` or `ws(s)://HOST:PORT[@BLOCK]`; None for anything else."""
    source, block = spec, None
    match = AT_BLOCK.fullmatch(spec)
    if match and (match["source"].startswith("env:") or ENDPOINT.fullmatch(match["source"])):
        source, block = match["source"], match["block"]
    if ENDPOINT.fullmatch(source):
        return ChainSource(source, None, None, block)
    if source.startswith("env:"):
        name, _, role = source.removeprefix("env:").partition(":")
        if not name:
            raise PipelineError(f"{spec!r} names no environment: write env:NAME or env:NAME:role")
        return ChainSource(None, name, role or None, block)
    if spec.startswith(("ws:", "wss:", "http:", "https:")):
        raise PipelineError(
            f"{spec!r} is not an endpoint the pipeline reads: write ws://HOST:PORT or "
            "wss://HOST[:PORT], optionally @BLOCK (a number or a 0x block hash)"
        )
    return None
