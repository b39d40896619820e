"""pipeline.artifact: blob validation, version decoding, hashes, digest; and `invoke inspect`."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
from pathlib import Path
from typing import Any

import pytest
import zstandard
from fixtures import runtimes
from fixtures.runtime_wasm import (
    DEFAULT_APIS,
    TYPE_SECTION,
    custom_section,
    module,
    padded_module,
    runtime_version_bytes,
    runtime_wasm,
    section,
)
from invoke.collection import Collection
from invoke.program import Program
from scalecodec.base import RuntimeConfigurationObject
from scalecodec.type_registry import load_type_registry_preset

from pipeline import artifact
from pipeline.artifact import (
    ABSENT,
    BOMB_LIMIT,
    ZSTD_PREFIX,
    BuildFacts,
    RuntimeApi,
    RuntimeBlob,
    RuntimeVersion,
    call_hashes,
    compress,
    decode_runtime_version,
    diff_digests,
    digest,
    dumps_digest,
    info,
)
from pipeline.cli.inspect import inspect
from pipeline.errors import PipelineError
from pipeline.runtime_info import describe
from pipeline.shorthash import short_hash

REPO = Path(__file__).resolve().parents[1]
RELEASE_100 = REPO / "examples" / "runtime" / "releases" / "100"


def blake2(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


# --- runtime API ids -----------------------------------------------------------------------

# Ids as published by polkadot.js' API registry / node RPC `state_getRuntimeVersion` outputs.
PUBLISHED_API_IDS = [
    ("Core", "0xdf6acb689907609b"),
    ("Metadata", "0x37e397fc7c91f5e4"),
    ("BlockBuilder", "0x40fe3ad401f8959a"),
    ("TaggedTransactionQueue", "0xd2bc9897eed08f15"),
    ("OffchainWorkerApi", "0xf78b278be53f454c"),
    ("AuraApi", "0xdd718d5cc53262d4"),
    ("BabeApi", "0xcbca25e39f142387"),
    ("GrandpaApi", "0xed99c5acb25eedf5"),
    ("SessionKeys", "0xab3c0572291feb8b"),
    ("AccountNonceApi", "0xbc9d89904f5b923f"),
    ("TransactionPaymentApi", "0x37c8bb1350a9a2a8"),
    ("TransactionPaymentCallApi", "0xf3ff14d5ab527059"),
    ("GenesisBuilder", "0xfbc577b9d747efd6"),
    ("ParachainHost", "0xaf2c0297a23e6d3d"),
    ("AuthorityDiscoveryApi", "0x687ad44ad37f03c2"),
    ("BeefyApi", "0x49eaaf1b548a0cb0"),
]


@pytest.mark.parametrize(("name", "api_id"), PUBLISHED_API_IDS)
def test_api_id_is_blake2_64_of_the_trait_name(name: str, api_id: str) -> None:
    assert artifact.api_id(name) == api_id
    assert RuntimeApi.from_id(bytes.fromhex(api_id[2:]), 4) == RuntimeApi(api_id, name, 4)


def test_unknown_api_id_is_left_unnamed() -> None:
    assert RuntimeApi.from_id(bytes(8), 1) == RuntimeApi("0x0000000000000000", None, 1)


# --- runtime_version decoding --------------------------------------------------------------

# The `runtime_version` section polkadot-sdk's minimal template embeds (68 bytes, from the
# expanded `#[sp_version::runtime_version]` macro output): apis empty, tx 1, system_version 1.
MINIMAL_TEMPLATE_SECTION = (
    bytes([96])
    + b"minimal-template-runtime"
    + bytes([96])
    + b"minimal-template-runtime"
    + bytes([1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1])
)


def test_decodes_the_section_a_real_template_runtime_embeds() -> None:
    assert len(MINIMAL_TEMPLATE_SECTION) == 68
    blob = RuntimeBlob.from_bytes(runtime_wasm(MINIMAL_TEMPLATE_SECTION, apis=[("Core", 5)]))
    assert blob.version == RuntimeVersion(
        spec_name="minimal-template-runtime",
        impl_name="minimal-template-runtime",
        authoring_version=1,
        spec_version=0,
        impl_version=1,
        apis=(RuntimeApi("0xdf6acb689907609b", "Core", 5),),
        transaction_version=1,
        system_version=1,
    )


# (core version declared, fields present in the encoding, expected tx / system version)
ENCODINGS = [
    pytest.param(2, {"transaction_version": None}, 1, 0, id="core2-ends-after-apis"),
    pytest.param(3, {"transaction_version": 7, "system_version": None}, 7, 0, id="core3-tx"),
    pytest.param(4, {"transaction_version": 7, "system_version": 1}, 7, 1, id="core4-state"),
    pytest.param(5, {"transaction_version": 7, "system_version": 2}, 7, 2, id="core5-system"),
]


@pytest.mark.parametrize(("core", "fields", "tx", "system"), ENCODINGS)
def test_encoding_is_chosen_by_the_core_version_in_runtime_apis(
    core: int, fields: dict[str, Any], tx: int, system: int
) -> None:
    version = RuntimeBlob.from_bytes(
        runtime_wasm(runtime_version_bytes(**fields), apis=[("Core", core), ("Metadata", 2)])
    ).version
    assert (version.transaction_version, version.system_version) == (tx, system)
    assert (version.spec_name, version.spec_version) == ("example-runtime", 100)


@pytest.mark.parametrize(("core", "fields", "tx", "system"), ENCODINGS)
def test_without_runtime_apis_the_encoded_core_entry_decides(
    core: int, fields: dict[str, Any], tx: int, system: int
) -> None:
    encoded = runtime_version_bytes(apis=[("Core", core)], **fields)
    blob = RuntimeBlob.from_bytes(module(custom_section("runtime_version", encoded)))
    assert (blob.version.transaction_version, blob.version.system_version) == (tx, system)
    assert blob.apis == blob.version.apis == (RuntimeApi("0xdf6acb689907609b", "Core", core),)


def test_no_core_version_at_all_reads_the_oldest_encoding() -> None:
    # sp-version: without a Core version the encoding is taken as Core < 3; extra bytes ignored.
    version = decode_runtime_version(runtime_version_bytes(transaction_version=9))
    assert (version.transaction_version, version.system_version) == (1, 0)


def test_runtime_apis_section_replaces_the_embedded_list() -> None:
    encoded = runtime_version_bytes(apis=[("Core", 4)])
    blob = RuntimeBlob.from_bytes(runtime_wasm(encoded, apis=[("Core", 5), ("AuraApi", 1)]))
    names = [(api.name, api.version) for api in blob.version.apis]
    assert names == [("Core", 5), ("AuraApi", 1)]
    assert blob.apis == blob.version.apis


def test_compact_lengths_of_every_width_decode() -> None:
    long_name = "x" * 70  # 2-byte compact length
    version = decode_runtime_version(
        runtime_version_bytes(spec_name=long_name, spec_version=2**32 - 1, apis=[("Core", 5)])
    )
    assert version.spec_name == long_name
    assert version.spec_version == 2**32 - 1


def test_decodes_a_chain_core_version_result_with_big_compact() -> None:
    # SCALE allows the big-integer compact mode for a small number; decoders must accept it.
    encoded = bytes([0b11, 3, 0, 0, 0]) + b"abc" + runtime_version_bytes()[16:]
    assert decode_runtime_version(encoded).spec_name == "abc"


@pytest.mark.parametrize("cut", range(0, len(runtime_version_bytes(apis=[("Core", 5)]))))
def test_truncated_runtime_version_is_refused_at_every_length(cut: int) -> None:
    encoded = runtime_version_bytes(apis=[("Core", 5)])[:cut]
    blob = RuntimeBlob.from_bytes(module(custom_section("runtime_version", encoded)))
    with pytest.raises(PipelineError, match=r"runtime_version is truncated: .* at byte"):
        _ = blob.version


def test_non_utf8_spec_name_is_refused() -> None:
    encoded = bytes([8]) + b"\xff\xfe" + runtime_version_bytes()[16:]
    with pytest.raises(PipelineError, match="spec_name is not UTF-8"):
        decode_runtime_version(encoded)


def test_missing_runtime_version_section_fails_on_access_only() -> None:
    blob = RuntimeBlob.from_bytes(module(TYPE_SECTION, custom_section("runtime_apis", bytes(12))))
    assert blob.apis == (RuntimeApi("0x0000000000000000", None, 0),)
    with pytest.raises(PipelineError, match="no `runtime_version` custom section"):
        _ = blob.version


def test_clipped_runtime_apis_section_is_refused() -> None:
    wasm = module(
        custom_section("runtime_version", runtime_version_bytes()),
        custom_section("runtime_apis", bytes(13)),
    )
    blob = RuntimeBlob.from_bytes(wasm)
    for read in ("apis", "version"):
        with pytest.raises(PipelineError, match="not a multiple of 12"):
            getattr(blob, read)


def test_first_custom_section_of_a_name_wins_like_sc_executor() -> None:
    wasm = module(
        custom_section("runtime_version", runtime_version_bytes(spec_version=1)),
        custom_section("runtime_version", runtime_version_bytes(spec_version=2)),
    )
    assert RuntimeBlob.from_bytes(wasm).version.spec_version == 1


# --- blob validation -----------------------------------------------------------------------

WASM = runtime_wasm()

BAD_BLOBS = [
    pytest.param(b"", "runtime blob is empty", id="empty"),
    pytest.param(random.Random(7).randbytes(200), "not a runtime blob", id="random-bytes"),
    pytest.param(b"\0as", "not a runtime blob", id="shorter-than-header"),
    pytest.param(b"\0asm\x02\0\0\0", "wasm binary version 0x02000000 is not 1", id="wasm-v2"),
    pytest.param(WASM[:-5], "truncated: section 0 at offset", id="truncated-section"),
    pytest.param(module(b"\x01"), "size of section 1 at offset 9 runs past", id="truncated-size"),
    pytest.param(module(b"\x00\xff\xff\xff\xff\x7f"), "not a valid u32 LEB128", id="oversized-leb"),
    pytest.param(module(section(14, b"")), "unknown section id 14 at offset 8", id="bad-id"),
    pytest.param(
        module(section(0, b"\x09abc")), "custom section name at offset 11 overruns", id="bad-name"
    ),
    pytest.param(ZSTD_PREFIX, "truncated", id="prefix-only"),
    pytest.param(ZSTD_PREFIX + b"definitely not zstd", "invalid zstd frame", id="garbage-zstd"),
    pytest.param(compress(WASM)[:-3], "zstd frame is truncated", id="truncated-zstd"),
    pytest.param(compress(WASM) + b"\0", "invalid zstd frame", id="junk-after-frame"),
    pytest.param(
        compress(WASM) + compress(WASM)[8:], "stray bytes after its zstd frame", id="two-frames"
    ),
    pytest.param(ZSTD_PREFIX + zstandard.compress(b"hello"), "not a runtime blob", id="zst-text"),
]


@pytest.mark.parametrize(("data", "message"), BAD_BLOBS)
def test_bad_blobs_are_refused_with_one_actionable_line(data: bytes, message: str) -> None:
    with pytest.raises(PipelineError, match=message) as caught:
        RuntimeBlob.from_bytes(data)
    text = str(caught.value)
    assert "\n" not in text
    assert re.search(r": (rebuild|pass|check) ", text), f"no fix named in: {text}"


def test_random_bytes_never_crash_the_parser() -> None:
    # Fuzz the walker behind valid headers: every outcome is a blob or a PipelineError.
    rng = random.Random(1234)
    for _ in range(2000):
        tail = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
        for data in (b"\0asm\x01\0\0\0" + tail, ZSTD_PREFIX + tail):
            with contextlib.suppress(PipelineError):
                RuntimeBlob.from_bytes(data)


def test_bomb_limit_is_inclusive_and_enforced() -> None:
    at_limit = padded_module(BOMB_LIMIT)
    blob = RuntimeBlob.from_bytes(ZSTD_PREFIX + zstandard.compress(at_limit))
    assert len(blob.wasm) == BOMB_LIMIT
    over = padded_module(BOMB_LIMIT + 1)
    with pytest.raises(PipelineError, match="inflates beyond 50 MiB"):
        RuntimeBlob.from_bytes(ZSTD_PREFIX + zstandard.compress(over))


def test_bomb_spread_over_frames_is_refused() -> None:
    half = zstandard.compress(padded_module(BOMB_LIMIT // 2 + 8))
    with pytest.raises(PipelineError, match="inflates beyond"):
        RuntimeBlob.from_bytes(ZSTD_PREFIX + half + half + half)


def test_compress_refuses_what_the_node_could_not_inflate() -> None:
    with pytest.raises(PipelineError, match="over the 50 MiB bomb limit"):
        compress(bytes(BOMB_LIMIT + 1))


# --- compressed form -----------------------------------------------------------------------


def test_compress_round_trips_and_is_deterministic() -> None:
    compressed = compress(WASM)
    assert compressed == compress(WASM)
    assert compressed.startswith(ZSTD_PREFIX)
    blob = RuntimeBlob.from_bytes(compressed)
    assert blob.compressed
    assert blob.wasm == WASM
    assert blob.compact_form() == WASM
    assert blob.compressed_form() == compressed
    compact = RuntimeBlob.from_bytes(WASM)
    assert not compact.compressed
    assert compact.compressed_form() == compressed
    assert blob.version == compact.version


def test_compressed_frame_header_matches_the_rust_streaming_encoder() -> None:
    # zstd::Encoder streams: no content size pledged, checksum off by default.
    params = zstandard.get_frame_parameters(compress(WASM)[len(ZSTD_PREFIX) :])
    assert params.content_size == zstandard.CONTENTSIZE_UNKNOWN
    assert not params.has_checksum


def test_hashes_and_sizes_are_of_the_raw_bytes() -> None:
    compressed = compress(WASM)
    blob = RuntimeBlob.from_bytes(compressed)
    assert blob.size == len(compressed)
    assert blob.blake2_256 == "0x" + blake2(compressed).hex()
    assert blob.sha256 == "0x" + hashlib.sha256(compressed).hexdigest()
    assert blob == RuntimeBlob.from_bytes(compressed)
    assert blob != RuntimeBlob.from_bytes(WASM)
    assert "compressed" in repr(blob) and blob.blake2_256 in repr(blob)


def test_load_reads_a_file_and_names_the_path_on_failure(tmp_path: Path) -> None:
    good = tmp_path / "runtime.compact.wasm"
    good.write_bytes(WASM)
    assert RuntimeBlob.load(good).wasm == WASM
    assert RuntimeBlob.load(str(good)).wasm == WASM
    with pytest.raises(PipelineError, match=r"missing\.wasm: no such file"):
        RuntimeBlob.load(tmp_path / "missing.wasm")
    with pytest.raises(PipelineError, match="not a regular file"):
        RuntimeBlob.load(tmp_path)
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"garbage!")
    with pytest.raises(PipelineError, match=r"bad\.wasm: not a runtime blob"):
        RuntimeBlob.load(bad)


# --- call hashes ---------------------------------------------------------------------------


def scale_compact_oracle(value: int) -> bytes:
    config = RuntimeConfigurationObject()
    config.update_type_registry(load_type_registry_preset("core"))
    encoded: bytes = config.create_scale_object("Compact<u128>").encode(value).data
    return encoded


@pytest.mark.parametrize(
    "value", [0, 1, 63, 64, 16383, 16384, 2**30 - 1, 2**30, 2**32 - 1, 2**64 - 1]
)
def test_compact_encoding_matches_scalecodec(value: int) -> None:
    assert artifact.scale_compact(value) == scale_compact_oracle(value)


@pytest.mark.parametrize("size", [63, 64, 16383, 16384, 70000])
def test_set_code_call_is_system_index_call_index_then_bytes(size: int) -> None:
    blob = RuntimeBlob.from_bytes(padded_module(size))
    call = artifact.set_code_call(blob)
    assert call == b"\x00\x02" + scale_compact_oracle(size) + blob.raw
    assert call_hashes(blob)["set_code"] == "0x" + blake2(call).hex()


def test_authorize_upgrade_call_carries_the_code_hash() -> None:
    blob = RuntimeBlob.from_bytes(compress(WASM))
    call = artifact.authorize_upgrade_call(blob)
    assert call == b"\x00\x09" + blake2(blob.raw)
    assert call_hashes(blob)["authorize_upgrade"] == "0x" + blake2(call).hex()


def test_call_hashes_follow_the_given_indices() -> None:
    blob = RuntimeBlob.from_bytes(WASM)
    hashes = call_hashes(blob, system_index=7, call_indices={"set_code": 3, "authorize_upgrade": 1})
    expected_set_code = b"\x07\x03" + scale_compact_oracle(len(WASM)) + WASM
    assert hashes == {
        "set_code": "0x" + blake2(expected_set_code).hex(),
        "authorize_upgrade": "0x" + blake2(b"\x07\x01" + blake2(WASM)).hex(),
    }
    assert hashes != call_hashes(blob)


# --- info and digest -----------------------------------------------------------------------


def test_info_is_a_subwasm_like_block() -> None:
    blob = RuntimeBlob.from_bytes(compress(WASM))
    block = info(blob)
    assert block["core_version"] == "example-runtime-100 (example-runtime-1.tx1.au1)"
    assert block["apis"][0] == {"name": "Core", "id": "0xdf6acb689907609b", "version": 5}
    assert [api["name"] for api in block["apis"]] == [name for name, _ in DEFAULT_APIS]
    assert block["compressed"] is True
    assert (block["size"], block["decompressed_size"]) == (blob.size, len(WASM))
    assert block["proposal_hash"] == call_hashes(blob)["set_code"]
    assert block["authorize_upgrade_hash"] == call_hashes(blob)["authorize_upgrade"]
    assert (block["state_version"], block["system_version"]) == (1, 1)
    assert json.loads(json.dumps(block)) == block


@pytest.mark.parametrize(("system_version", "state_version"), [(0, 0), (1, 1), (2, 1)])
def test_state_version_follows_system_version(system_version: int, state_version: int) -> None:
    wasm = runtime_wasm(runtime_version_bytes(system_version=system_version))
    assert RuntimeBlob.from_bytes(wasm).version.state_version == state_version


FACTS = BuildFacts(
    package="example-runtime",
    crate_version="0.1.0",
    commit="0123456789abcdef0123456789abcdef01234567",
    tag="v100",
    branch="main",
    dirty=False,
    rustc="rustc 1.85.0",
    builder_image="sha256:" + "ab" * 32,
    toolchain={"rust": "1.85.0", "target": "wasm32-unknown-unknown"},
    cargo_lock_blake2_256="0x" + "11" * 32,
    source_tree="0x" + "22" * 32,
    build_options={"profile": "production", "features": []},
    base_image_source="debian:bookworm-slim",
)


def make_digest(wasm: bytes = WASM, facts: BuildFacts = FACTS) -> dict[str, Any]:
    return digest(RuntimeBlob.from_bytes(wasm), RuntimeBlob.from_bytes(compress(wasm)), facts)


def test_digest_has_srtool_fields_and_our_facts() -> None:
    content = make_digest()
    compressed = RuntimeBlob.from_bytes(compress(WASM))
    compact = RuntimeBlob.from_bytes(WASM)
    assert content["gen"].startswith("runtime-pipeline ")
    assert (content["src"], content["version"], content["pkg"]) == ("git", "0.1.0", FACTS.package)
    assert (content["commit"], content["tag"], content["branch"]) == (
        FACTS.commit,
        "v100",
        "main",
    )
    assert content["size"] == str(compressed.size)
    assert content["prop"] == call_hashes(compressed)["set_code"]
    assert content["sha256"] == compressed.sha256
    assert content["wasm"] == "example_runtime.compact.compressed.wasm"
    assert content["info"] == info(compressed)
    assert content["call_hashes"] == call_hashes(compressed)
    for kind, blob, name in (
        ("compact", compact, "example_runtime.compact.wasm"),
        ("compressed", compressed, "example_runtime.compact.compressed.wasm"),
    ):
        entry = content["runtimes"][kind]
        assert entry == {
            "size": str(blob.size),
            "blake2_256": blob.blake2_256,
            "sha256": blob.sha256,
            "wasm": name,
            "prop": call_hashes(blob)["set_code"],
            "authorize_upgrade_hash": call_hashes(blob)["authorize_upgrade"],
            "subwasm": info(blob),
        }
    assert content["builder"] == {
        "image": FACTS.builder_image,
        "base_image_source": FACTS.base_image_source,
        "toolchain": FACTS.toolchain,
    }
    assert content["reproducibility"]["build_options"] == FACTS.build_options
    assert (content["dirty"], content["source_tree"]) == (False, FACTS.source_tree)
    assert "tmsp" not in content and "ipfs" not in content


def test_digest_refuses_blobs_from_different_builds_or_swapped() -> None:
    compact = RuntimeBlob.from_bytes(WASM)
    compressed = RuntimeBlob.from_bytes(compress(WASM))
    with pytest.raises(PipelineError, match="compact blob first"):
        digest(compressed, compact, FACTS)
    other = RuntimeBlob.from_bytes(compress(runtime_wasm(runtime_version_bytes(spec_version=101))))
    with pytest.raises(PipelineError, match="does not inflate to the compact blob"):
        digest(compact, other, FACTS)


def test_dumps_digest_is_canonical() -> None:
    text = dumps_digest(make_digest())
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert text == dumps_digest(json.loads(text))
    assert text == dumps_digest(make_digest())  # nothing time- or run-dependent
    keys = list(json.loads(text))
    assert keys == sorted(keys)
    assert text.isascii()


def test_diff_digests_names_every_difference() -> None:
    a = make_digest()
    assert diff_digests(a, json.loads(dumps_digest(a))) == []
    b = make_digest(runtime_wasm(runtime_version_bytes(spec_version=101)))
    paths = {path for path, _, _ in diff_digests(a, b)}
    assert {"info.spec_version", "runtimes.compact.subwasm.core_version", "prop"} <= paths
    assert "commit" not in paths


DIFF_CASES = [
    pytest.param({"x": 1}, {"x": 1}, [], id="equal"),
    pytest.param({"x": 1}, {"x": 2}, [("x", 1, 2)], id="leaf"),
    pytest.param({"x": {"y": "a"}}, {"x": {"y": "b"}}, [("x.y", "a", "b")], id="nested"),
    pytest.param({"x": 1}, {}, [("x", 1, ABSENT)], id="missing-in-b"),
    pytest.param({}, {"x": None}, [("x", ABSENT, None)], id="null-is-not-absent"),
    pytest.param({"x": [1, 2]}, {"x": [1]}, [("x[1]", 2, ABSENT)], id="shorter-list"),
    pytest.param({"x": [{"v": 1}]}, {"x": [{"v": 2}]}, [("x[0].v", 1, 2)], id="list-of-maps"),
    pytest.param({"x": True}, {"x": 1}, [("x", True, 1)], id="bool-is-not-int"),
    pytest.param({"x": {"y": 1}}, {"x": 1}, [("x", {"y": 1}, 1)], id="map-vs-leaf"),
]


@pytest.mark.parametrize(("a", "b", "expected"), DIFF_CASES)
def test_diff_digests_table(
    a: dict[str, Any], b: dict[str, Any], expected: list[tuple[str, Any, Any]]
) -> None:
    assert diff_digests(a, b) == expected


# --- invoke inspect ------------------------------------------------------------------------


def run_inspect(*args: str) -> None:
    Program(namespace=Collection(inspect)).run(["invoke", "inspect", *args], exit=False)


def test_inspect_prints_versions_apis_and_hashes(capsys: pytest.CaptureFixture[str]) -> None:
    path = runtimes.runtime_wasm(100)  # a real runtime: inspect runs its Metadata API
    blob = RuntimeBlob.load(path)
    run_inspect(str(path))
    out = capsys.readouterr().out
    hashes = (blob.blake2_256, blob.sha256, *call_hashes(blob).values())
    for expected in (
        "example-runtime-100 (example-runtime-1.tx1.au1)",
        "Version read from       runtime_version section",
        "Build                   release (no TryRuntime API)",
        "Metadata                v14 by Metadata_metadata; offered: v14, v15",
        f"{blob.size:,} bytes, compressed",
        f"{len(blob.wasm):,} bytes",
        *(short_hash(h) for h in hashes),
        "0xdf6acb689907609b  Core",
        "TransactionPaymentApi",
    ):
        assert expected in out
    assert not [h for h in hashes if h in out]  # whole in --json only
    assert max(len(line) for line in out.splitlines()) <= 80


def test_inspect_json_is_the_info_block(capsys: pytest.CaptureFixture[str]) -> None:
    path = runtimes.runtime_wasm(100)
    run_inspect(str(path), "--json")
    blob = RuntimeBlob.load(path)
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(describe(blob)))


def test_inspect_reports_errors_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "runtime.wasm"
    path.write_bytes(module(TYPE_SECTION))
    with pytest.raises(SystemExit) as caught:
        Program(namespace=Collection(inspect)).run(["invoke", "inspect", str(path)])
    assert caught.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no `runtime_version` custom section" in err
    assert err.count("\n") == 1


# --- the committed release 100 (real stable2503 runtime) -----------------------------------


def release_100() -> tuple[RuntimeBlob, dict[str, Any]]:
    """Fails (not skips) until the lead commits examples/runtime/releases/100/."""
    wasm_files = sorted(RELEASE_100.glob("*.compact.compressed.wasm"))
    assert len(wasm_files) == 1, f"expected one compressed wasm in {RELEASE_100}"
    content: dict[str, Any] = json.loads((RELEASE_100 / "digest.json").read_text())
    assert content["wasm"] == wasm_files[0].name
    return RuntimeBlob.load(wasm_files[0]), content


def test_release_100_decodes_as_a_stable2503_runtime() -> None:
    blob, _ = release_100()
    version = blob.version
    assert blob.compressed
    assert (version.spec_name, version.spec_version) == ("example-runtime", 100)
    assert version.transaction_version >= 1
    apis = {api.name: api.version for api in blob.apis}
    assert apis["Core"] == 5  # stable2503's Core API version
    assert {"Metadata", "BlockBuilder", "TaggedTransactionQueue", "GenesisBuilder"} <= set(apis)
    assert None not in apis, f"unnamed runtime APIs: {[a for a in blob.apis if not a.name]}"
    # The crafted fixtures above encode exactly what the real macro embeds.
    assert blob.custom_sections["runtime_version"] == runtime_version_bytes()


def test_release_100_compress_reproduces_the_builders_bytes() -> None:
    # Same zstd level, frame flags and streaming as substrate-wasm-builder's compression.
    blob, _ = release_100()
    assert compress(blob.wasm) == blob.raw


def test_release_100_digest_matches_the_blob() -> None:
    blob, content = release_100()
    assert content["runtimes"]["compressed"]["blake2_256"] == blob.blake2_256
    assert content["sha256"] == blob.sha256
    assert content["size"] == str(blob.size)
    assert content["prop"] == call_hashes(blob)["set_code"]
    assert content["call_hashes"] == call_hashes(blob)
    assert content["info"] == info(blob)
    assert content["runtimes"]["compact"]["blake2_256"] == artifact.blake2_256(blob.wasm)


@pytest.mark.parametrize("kind", ["directory", "fifo", "huge"])
def test_inspect_checks_what_the_path_is_before_reading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    path = tmp_path / "runtime.wasm"
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)  # reading it would block: nobody writes
    else:
        with path.open("wb") as sparse:
            sparse.truncate(artifact.BOMB_LIMIT + 1)
    with pytest.raises(SystemExit) as caught:
        Program(namespace=Collection(inspect)).run(["invoke", "inspect", str(path)])
    assert caught.value.code == 1
    err = capsys.readouterr().err
    expected = {  # a directory is an artifact directory to inspect: its blob is what is missing
        "directory": f"error: {path} holds no *.compact.compressed.wasm",
        "fifo": f"error: {path}: not a regular file",
        "huge": f"error: {path}: {artifact.BOMB_LIMIT + 1} bytes, over the 50 MiB a runtime can be",
    }[kind]
    assert err.startswith(expected), err
    assert err.count("\n") == 1
