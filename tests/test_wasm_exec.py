"""Runtime API calls in-process (wasmtime): checked against the node's readings of the same blob."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import wasmtime
from fixtures.runtime_wasm import TYPE_SECTION, module
from fixtures.runtimes import runtime_wasm
from invoke.context import Context
from invoke.exceptions import Exit
from scalecodec.base import RuntimeConfigurationObject, ScaleBytes
from scalecodec.type_registry import load_type_registry_preset

from pipeline import executor, runtime_info, upgrade, wasm_exec
from pipeline.artifact import RuntimeBlob, decode_runtime_version, info
from pipeline.cli import inspect as cli
from pipeline.errors import PipelineError


def fixture_blob() -> RuntimeBlob:
    return RuntimeBlob.load(runtime_wasm(100))


def without_sections(wasm: bytes, names: set[str]) -> bytes:
    """The module with the named custom sections dropped (everything else byte for byte)."""
    out, pos = bytearray(wasm[:8]), 8
    while pos < len(wasm):
        start, section_id = pos, wasm[pos]
        size, shift, pos = 0, 0, pos + 1
        while True:
            byte = wasm[pos]
            size |= (byte & 0x7F) << shift
            pos, shift = pos + 1, shift + 7
            if not byte & 0x80:
                break
        end = pos + size
        if section_id == 0:
            name_len, name_pos, shift = 0, pos, 0
            while True:
                byte = wasm[name_pos]
                name_len |= (byte & 0x7F) << shift
                name_pos, shift = name_pos + 1, shift + 7
                if not byte & 0x80:
                    break
            if wasm[name_pos : name_pos + name_len].decode() in names:
                pos = end
                continue
        out += wasm[start:end]
        pos = end
    return bytes(out)


def test_metadata_straight_from_the_wasm() -> None:
    wasm = fixture_blob().wasm
    offered, newest = wasm_exec.metadata(wasm_exec.RuntimeInstance(wasm))
    assert {14, 15} <= set(offered)
    assert newest[:5] == b"meta\x0f"  # magic + v15, the newest offered
    _, blob = wasm_exec.metadata(wasm_exec.RuntimeInstance(wasm), version=14)
    assert blob[:5] == b"meta\x0e"
    registry = RuntimeConfigurationObject()  # scalecodec 1.2 decodes v14, not v15
    registry.update_type_registry(load_type_registry_preset("core"))
    decoded = registry.create_scale_object("MetadataVersioned", data=ScaleBytes(blob))
    decoded.decode()
    pallets = {p.name: p["index"].value for p in decoded.pallets}
    assert pallets["Council"] == 7 and pallets["Notes"] == 8 and pallets["Sudo"] == 5


def test_metadata_version_not_offered_is_refused() -> None:
    with pytest.raises(PipelineError, match=r"offers metadata versions 14, 15, .* not 13"):
        wasm_exec.metadata(wasm_exec.RuntimeInstance(fixture_blob().wasm), version=13)


def test_core_version_executed_equals_what_the_node_reads_from_the_section() -> None:
    blob = fixture_blob()
    assert decode_runtime_version(wasm_exec.core_version(blob.wasm)) == blob.version


def test_genesis_state_equals_the_chain_spec_chopsticks_builds() -> None:
    """Two executors, two languages, one genesis: every key and value the same."""
    path = runtime_wasm(100)
    spec = executor.genesis_spec(path)
    top = {
        bytes.fromhex(k[2:]): bytes.fromhex(v[2:])
        for k, v in spec["genesis"]["raw"]["top"].items()
        if k != "0x3a636f6465"  # :code is the spec's, not the genesis builder's
    }
    assert (
        wasm_exec.genesis_storage(wasm_exec.RuntimeInstance(fixture_blob().wasm), "development")
        == top
    )


def test_storage_versions_come_from_genesis() -> None:
    state = wasm_exec.genesis_storage(wasm_exec.RuntimeInstance(fixture_blob().wasm))
    versions = wasm_exec.storage_versions(state, ["Balances", "Council", "Notes", "Nothing"])
    assert versions == {"Balances": 1, "Council": 4, "Notes": 0, "Nothing": 0}


def test_a_panic_is_reported_with_the_runtime_s_own_message() -> None:
    instance = wasm_exec.RuntimeInstance(fixture_blob().wasm)
    with pytest.raises(wasm_exec.RuntimeCallError, match=r"metadata_at_version failed: panicked"):
        instance.call("Metadata_metadata_at_version", b"\x01")  # 1 byte, not a u32


def test_a_missing_host_function_is_named() -> None:
    instance = wasm_exec.RuntimeInstance(fixture_blob().wasm)
    with pytest.raises(wasm_exec.RuntimeCallError, match=r"host function ext_crypto_\w+"):
        # Aura's session keys are generated through the keystore's crypto host functions.
        instance.call("SessionKeys_generate_session_keys", b"\x00")


def with_allocator(allocator: str) -> wasm_exec.RuntimeInstance:
    """The fixture with its allocator in wasm (it imports its memory) or in Python (as a
    runtime exporting its memory gets it)."""
    instance = wasm_exec.RuntimeInstance(fixture_blob().wasm)
    assert instance._wasm_malloc is not None
    if allocator == "python":
        instance._wasm_malloc = None
    return instance


@pytest.mark.parametrize("allocator", ["wasm", "python"])
def test_blocks_are_laid_out_as_sc_allocator_lays_them_out(allocator: str) -> None:
    """A header, then the next power of two: runtimes run only on that allocator, and some
    write into its slack (a real parachain runtime's metadata panicked on exact-size blocks)."""
    instance = with_allocator(allocator)
    base = instance._heap  # the runtime's __heap_base: nothing allocated yet
    first, second, third = (instance._malloc(size) for size in (3, 9, 1024))
    assert first == (base + 7) // 8 * 8 + 8  # aligned, after the first block's header
    assert first % 8 == 0 and second - first == 8 + 8  # 3 bytes: an 8-byte block
    assert third - second == 16 + 8  # 9 bytes: a 16-byte block, then the next header
    assert instance._malloc(0) - third == 1024 + 8


@pytest.mark.parametrize("allocator", ["wasm", "python"])
def test_a_block_the_memory_cannot_hold_is_named(allocator: str) -> None:
    instance = with_allocator(allocator)
    with pytest.raises(wasm_exec.RuntimeCallError, match=r"memory cannot grow to \d+ bytes"):
        instance._malloc(0xFFFFFFFF)  # with its header, past the 4 GiB of a 32-bit memory


def test_a_runtime_s_own_panic_handler_reports_its_message() -> None:
    """sp-io's improved panic reporting hands the message to the host, not to the log."""
    instance = wasm_exec.RuntimeInstance(fixture_blob().wasm)
    handler = instance._host_functions()["ext_panic_handler_abort_on_panic_version_1"]
    message = b"panicked at src/lib.rs:1:1: out of gas"
    with pytest.raises(wasmtime.Trap):
        handler(instance._write(message) | (len(message) << 32))
    assert instance._panic == message.decode()


def test_compiled_modules_are_cached_and_a_bad_cache_file_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_CACHE_DIR", str(tmp_path))
    wasm = fixture_blob().wasm
    wasm_exec.core_version(wasm)
    [cached] = (tmp_path / "wasm-modules").glob("*.cwasm")
    cached.write_bytes(b"not a compiled module")
    assert decode_runtime_version(wasm_exec.core_version(wasm)).spec_version == 100
    assert cached.read_bytes() != b"not a compiled module"


def test_a_runtime_without_its_version_section_still_inspects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Old runtimes have no runtime_version section: nodes then execute Core_version."""
    stripped = without_sections(fixture_blob().wasm, {"runtime_version", "runtime_apis"})
    blob = RuntimeBlob.from_bytes(stripped)
    assert "runtime_version" not in blob.custom_sections
    with pytest.raises(PipelineError, match="declare VERSION"):  # deploy's preflight: unchanged
        _ = blob.version
    version, source = runtime_info.version_of(blob)
    assert (version.spec_name, version.spec_version) == ("example-runtime", 100)
    assert source == runtime_info.EXECUTED
    assert [a["name"] for a in info(blob, version)["apis"]][:2] == ["Core", "Metadata"]
    path = tmp_path / "old.compact.wasm"
    path.write_bytes(stripped)
    with pytest.raises(PipelineError) as refused:  # deploy's preflight, as before
        upgrade.load_candidate(path)
    assert str(refused.value) == (
        "wasm has no `runtime_version` custom section, so nodes cannot read its version"
        " before running it: declare VERSION with #[sp_version::runtime_version] and rebuild"
    )
    cli.inspect(Context(), str(path))
    text = capsys.readouterr().out
    assert "spec_version            100" in text
    assert "Version read from       Core_version (executed: the blob has no" in text
    cli.inspect(Context(), str(path), json_=True)
    details = json.loads(capsys.readouterr().out)
    assert details["spec_version"] == 100 and details["version_source"] == runtime_info.EXECUTED
    assert details["metadata_version"] == 14 and {14, 15} <= set(details["metadata_versions"])
    assert details["compression"] == {
        "size_compressed": len(stripped),  # subwasm's meaning: the size as stored
        "size_decompressed": len(stripped),
        "compressed": False,
    }
    assert details["reserved_meta_valid"] is True


def test_inspect_json_carries_subwasm_s_fields(capsys: pytest.CaptureFixture[str]) -> None:
    blob = fixture_blob()
    cli.inspect(Context(), str(runtime_wasm(100)), json_=True)
    details = json.loads(capsys.readouterr().out)
    assert details["compression"] == {
        "size_compressed": blob.size,
        "size_decompressed": len(blob.wasm),
        "compressed": True,
    }
    assert details["blake2_256"] == blob.blake2_256
    assert details["core_version_text"] == "example-runtime-100 (example-runtime-1.tx1.au1)"
    assert details["version_source"] == runtime_info.SECTION
    assert details["proposal_hash"].startswith("0x")
    # subwasm's metadata_version is Metadata_metadata's (v14), whatever else is offered
    assert details["metadata_version"] == 14 and details["metadata_versions"][:2] == [14, 15]
    assert details["reserved_meta"] == list(b"meta") and details["reserved_meta_valid"] is True
    # core_version as sp-version serializes it (the form of state_getRuntimeVersion)
    core = details["core_version"]
    assert {k: v for k, v in core.items() if k != "apis"} == {
        "specName": "example-runtime",
        "implName": "example-runtime",
        "authoringVersion": 1,
        "specVersion": 100,
        "implVersion": 1,
        "transactionVersion": 1,
        "systemVersion": blob.version.system_version,
    }
    assert core["apis"][0] == ["0xdf6acb689907609b", blob.version.apis[0].version]  # Core
    assert len(core["apis"]) == len(details["apis"])


def test_not_a_runtime_gets_one_line_from_inspect_and_diff(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.wasm"
    bogus.write_bytes(module(TYPE_SECTION))  # valid wasm, no runtime in it
    with pytest.raises(Exit) as from_inspect:
        cli.inspect(Context(), str(bogus))
    message = str(from_inspect.value.message)
    assert message.startswith("error: not a runtime: no `runtime_version` custom section")
    assert "\n" not in message
    from pipeline.cli import deploy as deploy_cli

    with pytest.raises(Exit) as from_diff:
        deploy_cli.diff(Context(), str(runtime_wasm(100)), str(bogus))
    assert message.removeprefix("error: ") in str(from_diff.value.message)


def test_files_and_endpoints_are_read_outside_any_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A council member inspects what a chain runs from anywhere: no pipeline.toml needed."""
    from pipeline.cli import deploy as deploy_cli

    monkeypatch.chdir(tmp_path)
    wasm = str(runtime_wasm(100))
    deploy_cli.diff(Context(), wasm, wasm)
    assert "no differences" in capsys.readouterr().out
    with pytest.raises(Exit) as unreachable:  # the endpoint is tried, not a project looked for
        cli.inspect(Context(), "ws://127.0.0.1:9@5")
    assert str(unreachable.value.message).startswith("error: cannot reach ws://127.0.0.1:9")
    with pytest.raises(Exit) as by_hash:  # an artifact hash does need the project
        deploy_cli.diff(Context(), wasm, "0x" + "cd" * 32)
    assert "no pipeline.toml" in str(by_hash.value.message)


def test_chain_sources_parse() -> None:
    parse = runtime_info.parse_chain_source
    assert parse("ws://127.0.0.1:9944") == runtime_info.ChainSource(
        "ws://127.0.0.1:9944", None, None, None
    )
    assert parse("wss://rpc.example:443@12") == runtime_info.ChainSource(
        "wss://rpc.example:443", None, None, "12"
    )
    assert parse("env:local:lts@0x" + "ab" * 32) == runtime_info.ChainSource(
        None, "local", "lts", "0x" + "ab" * 32
    )
    assert parse("env:local") == runtime_info.ChainSource(None, "local", None, None)
    assert parse("runtime.wasm") is None
    with pytest.raises(PipelineError, match="names no environment"):
        parse("env:")
    with pytest.raises(PipelineError, match="write ws://HOST:PORT"):
        parse("http://127.0.0.1:9933")
