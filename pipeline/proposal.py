"""The council proposal's codec, pure: the source remark a motion carries (where its runtime
came from, and the blake2-256 of the voters' dossier), the upgrade call built around it, and the
reading of a decoded proposal back into {commit, tag, digest, builder_image, code_hash, method}
(and `dossier`), which is all `verify` needs."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

from pipeline.artifact import blake2_256, dumps_digest
from pipeline.chain import Call
from pipeline.config import CouncilSettings
from pipeline.errors import PipelineError
from pipeline.upgrade import METHODS, Candidate, Method

SOURCE_MARK = "runtime_source"  # key that tells a pipeline source remark from other remarks
SOURCE_VERSION = 1
SOURCE_FIELDS = ("commit", "tag", "digest", "builder_image")
# The proposal note's line above the dossier: the motion's facts come before it (they do not
# exist before the motion), the dossier the source remark commits to after it.
DOSSIER_MARK = "<!-- dossier: the motion's source remark holds the blake2-256 of what follows -->"
REMARK_CALLS = frozenset({("System", "remark"), ("System", "remark_with_event")})
AUTHORIZE_CALLS = frozenset(
    {("System", "authorize_upgrade"), ("System", "authorize_upgrade_without_checks")}
)
SET_CODE_CALLS = frozenset({("System", "set_code"), ("System", "set_code_without_checks")})


def source_remark(digest: Mapping[str, Any], dossier: str | None = None) -> str:
    """The remark a motion carries: where the runtime came from, as small canonical JSON.

    `digest` is the blake2-256 of the artifact's digest.json in its canonical form, so equal
    sources give equal remarks and therefore the same proposal hash; `dossier`, when given, the
    blake2-256 of the voters' dossier (`dossier_hash`).
    """
    builder = digest.get("builder")
    source = {
        SOURCE_MARK: SOURCE_VERSION,
        "commit": digest.get("commit"),
        "tag": digest.get("tag"),
        "digest": blake2_256(dumps_digest(digest).encode()),
        "builder_image": builder.get("image") if isinstance(builder, Mapping) else None,
    }
    if dossier is not None:
        source["dossier"] = dossier
    return json.dumps(source, sort_keys=True, separators=(",", ":"))


def dossier_hash(note: str) -> str:
    """The blake2-256 of a proposal note's dossier: its text after DOSSIER_MARK's line."""
    _, mark, dossier = note.partition(DOSSIER_MARK + "\n")
    if not mark:
        raise PipelineError(
            "the note has no dossier mark: it is not a proposal note `invoke propose` wrote; "
            "ask the proposer for theirs"
        )
    return blake2_256(dossier.encode())


def parse_source_remark(data: bytes) -> dict[str, Any] | None:
    """The source named by a remark written by `source_remark`; None for any other remark."""
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(value, dict) or value.get(SOURCE_MARK) != SOURCE_VERSION:
        return None
    if any(name not in value for name in SOURCE_FIELDS):
        return None
    source = {name: value[name] for name in SOURCE_FIELDS}
    if isinstance(value.get("dossier"), str):  # remarks written before dossiers have none
        source["dossier"] = value["dossier"]
    return source


def value_bytes(value: Any) -> bytes:
    """A decoded `Vec<u8>` as bytes (substrate-interface gives text if it is UTF-8, else 0x-hex)."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, list):
        return bytes(value)
    if isinstance(value, str):
        if value.startswith("0x"):
            with contextlib.suppress(ValueError):
                return bytes.fromhex(value[2:])
        return value.encode()
    raise PipelineError(f"cannot read {type(value).__name__} as bytes: not a Vec<u8> value")


def call_args(call: Mapping[str, Any]) -> dict[str, Any]:
    """Arguments of a decoded call by name (substrate-interface lists them as name/value)."""
    args = call.get("call_args", {})
    if isinstance(args, Mapping):
        return dict(args)
    return {arg["name"]: arg["value"] for arg in args}


def walk_calls(call: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The call and every call nested in its arguments (batches, dispatch wrappers), depth first."""
    yield call
    for value in call_args(call).values():
        nested = value if isinstance(value, list) else [value]
        for item in nested:
            if isinstance(item, Mapping) and "call_function" in item:
                yield from walk_calls(item)


def source_from_motion(proposal: Mapping[str, Any]) -> dict[str, Any]:
    """What a voter needs to rebuild a proposal's runtime, read from the decoded proposal alone:
    {commit, tag, digest, builder_image, code_hash, method}."""
    sources: list[dict[str, Any]] = []
    upgrades: list[tuple[Method, str]] = []
    for call in walk_calls(proposal):
        name = (call.get("call_module"), call.get("call_function"))
        args = call_args(call)
        if name in REMARK_CALLS:
            source = parse_source_remark(value_bytes(args.get("remark", b"")))
            if source is not None:
                sources.append(source)
        elif name in AUTHORIZE_CALLS:
            upgrades.append(("authorize", "0x" + value_bytes(args["code_hash"]).hex()))
        elif name in SET_CODE_CALLS:
            upgrades.append(("set_code", blake2_256(value_bytes(args["code"]))))
    if len(upgrades) != 1:
        found = "no runtime upgrade" if not upgrades else f"{len(upgrades)} runtime upgrades"
        raise PipelineError(
            f"the motion's proposal holds {found}: it is not a single runtime upgrade; "
            "check the motion index"
        )
    if len(sources) != 1:
        raise PipelineError(
            "the motion's proposal carries no source remark of this pipeline: its source cannot "
            "be read from the chain; ask the proposer for the commit and digest"
            if not sources
            else "the motion's proposal carries several source remarks: it is ambiguous"
        )
    method, code_hash = upgrades[0]
    return {**sources[0], "code_hash": code_hash, "method": method}


def upgrade_proposal(
    settings: CouncilSettings, candidate: Candidate, method: Method, dossier: str | None = None
) -> tuple[Call, str]:
    """The call the council votes on, and the source remark inside it."""
    if method not in METHODS:
        raise PipelineError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    remark = source_remark(candidate.digest, dossier)
    upgrade = (
        Call("System", "authorize_upgrade", {"code_hash": candidate.code_hash})
        if method == "authorize"
        else Call("System", "set_code", {"code": "0x" + candidate.blob.raw.hex()})
    )
    batch = Call(
        "Utility",
        "batch_all",
        {"calls": [Call("System", "remark", {"remark": "0x" + remark.encode().hex()}), upgrade]},
    )
    if not settings.root_dispatch:
        return batch, remark
    module, function = settings.root_dispatch.split(".", 1)
    return Call(module, function, {"call": batch}), remark
