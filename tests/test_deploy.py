"""Deploy: the pure decisions (table-driven), then real upgrades of local chopsticks networks.

The chain tests run one production (seeded), its lts fork and a reckless chain, all at spec
100, in a temporary repo on free ports. Reckless is upgraded with set_code and lts with
authorize + apply, each followed by its suite; bad inputs are refused against reckless, and
production is only ever rehearsed on (dry run). "Unchanged" means :code's hash and the sudo
account's nonce are what they were.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fixtures.runtime_wasm import custom_section, scale_str
from fixtures.runtimes import runtime_wasm
from invoke.context import Context
from invoke.exceptions import Exit
from substrateinterface import Keypair

from pipeline import config, deploy, localnet, suites, upgrade
from pipeline.artifact import RuntimeBlob, compress
from pipeline.chain import Chain
from pipeline.cli import deploy as cli
from pipeline.config import Environment
from pipeline.errors import PipelineError
from pipeline.ledger import open_ledger
from pipeline.policy import candidate_info
from pipeline.project import Project, load_project
from pipeline.upgrade import StorageVersionRow

REPO = Path(__file__).resolve().parent.parent
ALICE = Keypair.create_from_uri("//Alice")


# --- pure decisions -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("block_length", "limit"),
    [
        ({"max": {"normal": 3932160, "operational": 5242880, "mandatory": 5242880}}, 5241856),
        ({"max": {"normal": 10, "operational": 2_000_000, "mandatory": 1}}, 2_000_000 - 1024),
        (None, 5 * 1024 * 1024 - 1024),  # no BlockLength constant: FRAME's default
        ({"max": 5242880}, 5 * 1024 * 1024 - 1024),  # an old single limit: the default
    ],
)  # fmt: skip
def test_code_size_limit(block_length: dict[str, Any] | None, limit: int) -> None:
    assert upgrade.code_size_limit(block_length) == limit


A, B = "0x" + "aa" * 32, "0x" + "bb" * 32


@pytest.mark.parametrize(
    ("on_chain", "authorized", "method", "step"),
    [
        (A, None, "set_code", "done"),
        (A, None, "authorize", "done"),
        (B, None, "set_code", "set_code"),
        (B, A, "set_code", "set_code"),
        (B, None, "authorize", "authorize"),
        (B, B, "authorize", "authorize"),  # another hash is authorized: authorize ours
        (B, A, "authorize", "apply"),  # ours is authorized already (a resumed deploy)
    ],
)
def test_next_step(
    on_chain: str, authorized: str | None, method: upgrade.Method, step: str
) -> None:
    assert deploy.next_step(on_chain, A, authorized, method) == step


def test_storage_version_key_is_the_frame_key() -> None:
    # twox128("System") ++ twox128(":__STORAGE_VERSION__:"), as every FRAME chain stores it
    assert upgrade.storage_version_key("System") == (
        "0x26aa394eea5630e07c48ae0c9558cef74e7b9012096b41c4eb3aaf947f6ea429"
    )


@pytest.mark.parametrize(
    ("raw", "version"), [(None, 0), (b"\x01\x00", 1), ("0x0400", 4), (b"\x00\x01", 256)]
)
def test_decode_storage_version(raw: bytes | str | None, version: int) -> None:
    assert upgrade.decode_storage_version(raw) == version


def test_a_storage_version_that_is_not_a_u16_is_refused() -> None:
    with pytest.raises(PipelineError, match="not a u16"):
        upgrade.decode_storage_version(b"\x01")


def test_storage_version_table_reads_both_sides_by_pallet_name() -> None:
    genesis = {
        upgrade.storage_version_key("Notes"): "0x0100",
        upgrade.storage_version_key("System"): "0x0000",
    }
    on_chain = {"Notes": None, "System": None, "Sudo": b"\x01\x00"}
    rows = upgrade.storage_version_table(["System", "Notes", "Sudo"], on_chain, genesis)
    assert rows == [
        StorageVersionRow("System", 0, 0),
        StorageVersionRow("Notes", 0, 1),
        StorageVersionRow("Sudo", 1, 0),
    ]
    assert [r.ok for r in rows] == [True, False, False]


def candidate(spec_version: int = 101) -> upgrade.Candidate:
    blob = RuntimeBlob.load(runtime_wasm(101))
    info = candidate_info(blob.version, blob.size)
    return upgrade.Candidate(Path("x.wasm"), blob, replace(info, spec_version=spec_version), {})


def test_verification_problems() -> None:
    good = candidate()
    rows = [StorageVersionRow("Notes", 1, 1)]
    assert upgrade.verification_problems(good, good.code_hash, 101, 101, rows) == []
    problems = upgrade.verification_problems(
        good, A, 100, 100, [StorageVersionRow("Notes", 0, 1), StorageVersionRow("System", 0, 0)]
    )
    assert [p.split(" ", 1)[0] for p in problems] == [
        ":code", "the", "System.LastRuntimeUpgrade", "storage",
    ]  # fmt: skip
    assert "(Notes on chain 0 != in code 1): a migration is missing" in problems[3]


@pytest.mark.parametrize(("role", "dry_run", "governance", "refused"), [
    ("production", False, "collective", True), ("production", True, "collective", False),
    ("lts", False, "collective", False), ("reckless", False, "collective", False),
    ("production", False, "sudo", False),  # under sudo governance this deploy is the upgrade
    ("production", False, None, True),
])  # fmt: skip
def test_staging_only(
    role: config.Role, dry_run: bool, governance: config.Governance | None, refused: bool
) -> None:
    network = config.Network(role=role, name=f"net-{role}", kind="endpoint", endpoint="ws://x:1")
    message = deploy.staging_only(network, dry_run, governance)
    assert (message is not None) == refused
    if message:
        assert "invoke propose" in message and "--dry-run" in message


CODE = "0x" + "ab" * 32


@pytest.mark.parametrize(("role", "local", "confirm", "problem"), [
    ("production", True, None, None),  # local: nothing to confirm
    ("production", False, CODE, None),
    ("production", False, CODE[2:].upper(), None),
    ("lts", False, None, None),  # staging is the sudo key's business
    ("production", False, None, f"needs an explicit confirmation: rerun confirming {CODE}"),
    ("production", False, "0x" + "cd" * 32, "the confirmation names 0xcdcd"),
])  # fmt: skip
def test_production_by_sudo_is_confirmed_by_hash_on_real_chains(
    role: config.Role, local: bool, confirm: str | None, problem: str | None
) -> None:
    network = config.Network(role=role, name="prod", kind="endpoint", endpoint="ws://x:1")
    found = deploy.production_unconfirmed(network, local, confirm, CODE)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith("prod is production, upgraded by sudo: ")
        assert problem in found


def test_migration_log_lines_come_from_the_blocks_initialization() -> None:
    phases: list[dict[str, Any]] = [
        {
            "phase": "Initialization",
            "logs": [
                {"message": "migrating 4 notes to v1", "level": 3, "target": "runtime::notes"},
                {"message": "storage root", "level": 5, "target": "runtime::system"},  # trace
                {"message": "Notes: v0 -> v1", "level": 2, "target": "runtime::frame-support"},
            ],
        },
        {"phase": 0, "logs": [{"message": "Used block length: 11", "level": 4}]},
        {"phase": "Finalization", "logs": None},
    ]
    assert deploy.migration_log_lines(phases) == [
        "INFO runtime::notes: migrating 4 notes to v1",
        "WARN runtime::frame-support: Notes: v0 -> v1",
    ]


def test_a_blob_without_runtime_version_is_refused_offline(tmp_path: Path) -> None:
    path = tmp_path / "no-version.wasm"
    path.write_bytes(b"\0asm\x01\0\0\0")
    with pytest.raises(PipelineError, match="no `runtime_version` custom section"):
        upgrade.load_candidate(path)


# --- crafted blobs from the real candidate ------------------------------------------------------
def _uleb(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return value, pos


def replace_custom_section(wasm: bytes, name: str, payload: bytes) -> bytes:
    """The module with the first custom section called `name` carrying `payload` instead."""
    pos = 8
    while pos < len(wasm):
        start = pos
        size, body = _uleb(wasm, pos + 1)
        end = body + size
        if wasm[start] == 0:
            name_len, name_pos = _uleb(wasm, body)
            if wasm[name_pos : name_pos + name_len] == name.encode():
                return wasm[:start] + custom_section(name, payload) + wasm[end:]
        pos = end
    raise AssertionError(f"no custom section {name}")


def crafted(wasm: Path, *, spec_name: str | None = None, spec_version: int | None = None) -> bytes:
    """The real runtime with its runtime_version section edited (then compressed, like a
    build): spec_name is its first field, spec_version follows impl_name and authoring_version.
    A marker section makes it another blob even when nothing is edited."""
    blob = RuntimeBlob.load(wasm)
    payload = blob.custom_sections["runtime_version"]
    version = blob.version
    head = scale_str(version.spec_name) + scale_str(version.impl_name) + bytes(4)
    assert payload.startswith(scale_str(version.spec_name))
    if spec_version is not None:
        payload = (
            payload[: len(head)] + spec_version.to_bytes(4, "little") + payload[len(head) + 4 :]
        )
    if spec_name is not None:
        payload = scale_str(spec_name) + payload[len(scale_str(version.spec_name)) :]
    edited = replace_custom_section(blob.wasm, "runtime_version", payload)
    return compress(edited + custom_section("crafted-by-test", os.urandom(8)))


# --- real networks ------------------------------------------------------------------------------
def environment(ports: dict[str, int], sudo: str = "//Alice") -> str:
    return f"""
local = true
ss58_format = 42
connect_timeout = 3.0
inclusion_timeout = 60.0
[networks.production]
name = "production"
kind = "chopsticks-genesis"
port = {ports["production"]}
[networks.lts]
name = "staging-lts"
kind = "chopsticks-fork"
fork_of = "production"
port = {ports["lts"]}
[networks.reckless]
name = "staging-reckless"
kind = "chopsticks-genesis"
port = {ports["reckless"]}
[sudo]
dev = "{sudo}"
[council]
member_key = {{ dev = "//Alice" }}
"""


class Repo:
    """A runtime repo in a temp dir: pipeline.toml (the example's suites), environments:
    `test` (three networks), `not-sudo` (same networks, //Bob as sudo key), `unreachable`
    (reckless on a port where nothing listens)."""

    def __init__(self, root: Path) -> None:
        production, lts, reckless, nothing = localnet.free_ports(4)
        ports = {"production": production, "lts": lts, "reckless": reckless}
        (root / "pipeline.toml").write_text(
            '[runtime]\npath = "runtime"\npackage = "example-runtime"\n[suites]\n'
            f'subsystem = "{REPO / "tests/suites/subsystem"}"\n'
            f'final = "{REPO / "tests/suites/final"}"\n'
        )
        (root / "environments").mkdir()
        (root / "environments" / "test.toml").write_text(environment(ports))
        (root / "environments" / "not-sudo.toml").write_text(environment(ports, "//Bob"))
        (root / "environments" / "unreachable.toml").write_text(
            environment({**ports, "reckless": nothing})
        )
        self.root = root
        self.project: Project = load_project(root)
        self.env: Environment = config.load_environment("test", root)
        self.nets = localnet.networks_for(self.env, self.project.preset)

    def endpoint(self, role: str) -> str:
        return config.network(self.env, role).endpoint


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Repo]:
    os.environ.pop("PIPELINE_STATE_DIR", None)
    r = Repo(tmp_path_factory.mktemp("deploy-repo"))
    try:
        localnet.up(r.project, r.nets, list(r.nets), runtime_wasm(100))
        yield r
    finally:
        localnet.reset(r.project, r.nets)


def state(endpoint: str) -> tuple[str, int]:
    """What must not move when a deploy is refused: the code and the sudo account's nonce."""
    with Chain(endpoint) as chain:
        return chain.code_hash(), chain.nonce(ALICE.ss58_address)


def code_updates(endpoint: str) -> int:
    """System.CodeUpdated events in the whole chain."""
    with Chain(endpoint) as chain:
        return sum(
            1
            for number in range(chain.block_number() + 1)
            for event in chain.events(chain.block_hash(number))
            if (event.module, event.name) == ("System", "CodeUpdated")
        )


def assert_upgraded(result: deploy.DeployResult, code_hash: str) -> None:
    assert (result.spec_before, result.spec_after, result.skipped) == (100, 101, False)
    assert result.code_hash == code_hash
    assert result.block is not None and result.activated_at == result.block + 1
    assert result.head is not None and result.head > result.activated_at
    assert any(e.startswith("System.CodeUpdated") for e in result.events)
    rows = {row.pallet: row for row in result.storage_versions}
    assert {"System", "Balances", "Sudo", "Council", "Notes"} <= set(rows)
    assert rows["Notes"] == StorageVersionRow("Notes", 1, 1)  # migrated: 0 -> 1
    assert all(row.ok for row in rows.values())
    assert result.activation_seconds is not None and result.activation_seconds < 30


@pytest.mark.docker  # builds HEAD's runtime (spec 101)
@pytest.mark.chain
def test_reckless_100_to_101_with_set_code_then_the_subsystem_suite_is_green(
    repo: Repo, tmp_path: Path
) -> None:
    wasm = runtime_wasm(101)
    code_hash = RuntimeBlob.load(wasm).blake2_256
    with open_ledger(tmp_path, "r1", create={"candidate": code_hash}) as ledger:
        result = deploy.deploy(repo.env, "reckless", wasm, recorder=ledger, stage="deploy-reckless")
        [intent] = ledger.state.intents.values()
    assert_upgraded(result, code_hash)
    assert (intent.stage, intent.network, intent.signer) == (
        "deploy-reckless", "staging-reckless", ALICE.ss58_address,
    )  # fmt: skip
    assert intent.call.startswith("Sudo.sudo_unchecked_weight(System.set_code(0x")
    assert intent.result is not None and intent.result["block_number"] == result.block
    assert state(repo.endpoint("reckless"))[0] == code_hash

    suite = suites.run_suite(repo.project, repo.env, "subsystem", tmp_path / "out")
    assert (suite.network, suite.failed, suite.skipped) == ("staging-reckless", 0, 0), (
        suite.failures
    )
    assert suite.ok and suite.passed >= 7
    assert (tmp_path / "out" / "junit-subsystem.xml").is_file()


@pytest.mark.docker  # builds HEAD's runtime (spec 101)
@pytest.mark.chain
def test_deploying_the_same_artifact_twice_submits_once(
    repo: Repo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    wasm = runtime_wasm(101)
    deploy.deploy(repo.env, "reckless", wasm)  # upgrades, or finds it done by the test above
    before = state(repo.endpoint("reckless"))
    again = deploy.deploy(repo.env, "reckless", wasm)
    assert again.skipped and again.block is None and again.spec_after == 101
    assert all(row.ok for row in again.storage_versions)
    monkeypatch.chdir(repo.root)
    capsys.readouterr()
    cli.deploy(Context(), env="test", network="reckless", artifact=str(wasm))
    out = capsys.readouterr().out
    assert f"staging-reckless already runs {again.code_hash}: nothing submitted" in out
    assert state(repo.endpoint("reckless")) == before  # same code, no nonce spent
    assert code_updates(repo.endpoint("reckless")) == 1


@pytest.mark.docker  # builds HEAD's runtime (spec 101)
@pytest.mark.chain
def test_lts_100_to_101_with_authorize_then_the_final_suite_is_green(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    wasm = runtime_wasm(101)
    _, nonce = state(repo.endpoint("lts"))
    result = deploy.deploy(repo.env, "lts", wasm, method="authorize")
    assert_upgraded(result, RuntimeBlob.load(wasm).blake2_256)
    assert any(e.startswith("System.UpgradeAuthorized") for e in result.events)
    assert state(repo.endpoint("lts"))[1] == nonce + 2  # authorize, then apply
    assert code_updates(repo.endpoint("lts")) == 1
    monkeypatch.chdir(repo.root)
    capsys.readouterr()
    cli.test(Context(), suite="final", env="test", out=str(tmp_path / "out"))  # `invoke test`
    assert "suite final on staging-lts: " in capsys.readouterr().out
    summary = json.loads((tmp_path / "out" / "suite-final.json").read_text())
    assert (summary["network"], summary["failed"], summary["skipped"]) == ("staging-lts", 0, 0)
    assert summary["ok"] and summary["passed"] >= 15


@pytest.mark.docker  # builds HEAD's runtime (spec 101)
@pytest.mark.chain
def test_a_dry_run_reports_on_a_fork_and_leaves_production_alone(
    repo: Repo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    production = repo.endpoint("production")
    before = state(production)
    with Chain(production) as chain:
        head = chain.block_hash()
    monkeypatch.chdir(repo.root)
    artifact = str(runtime_wasm(101))
    capsys.readouterr()
    cli.deploy(
        Context(), env="test", network="production", artifact=artifact, dry_run=True, json_=True
    )
    result = json.loads(capsys.readouterr().out)
    assert result["dry_run"] and not result["skipped"]
    assert (result["network"], result["endpoint"]) == ("production", production)
    assert (result["spec_before"], result["spec_after"]) == (100, 101)
    assert any(e.startswith("System.CodeUpdated") for e in result["events"])
    assert {"extrinsic", "activation_block"} <= set(result["weight"])
    assert result["weight"]["activation_block"]["mandatory"]["ref_time"] > 0
    notes = {"pallet": "Notes", "on_chain": 1, "in_code": 1, "ok": True}
    assert notes in result["storage_versions"]
    assert any("Notes" in line and "0 to 1" in line for line in result["logs"]), result["logs"]
    assert state(production) == before
    with Chain(production) as chain:
        assert chain.block_hash() == head  # not even a block was made there
    forks = [p for p in Path("/proc").glob("[0-9]*/cmdline") if b"pipeline-fork-" in _read(p)]
    assert forks == []  # the throwaway fork is gone


@pytest.mark.docker  # builds HEAD's runtime (spec 101)
@pytest.mark.chain
def test_diff_reads_the_code_on_a_chain(
    repo: Repo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(repo.root)
    capsys.readouterr()
    cli.diff(Context(), "env:test", str(runtime_wasm(101)))  # production by default
    lines = capsys.readouterr().out.splitlines()
    endpoint = repo.endpoint("production")
    assert lines[0].startswith(f"A: env:test:production ({endpoint}): example-runtime 100, 0x")
    assert "  ~ spec_version: 100 => 101" in lines


def _read(path: Path) -> bytes:
    with contextlib.suppress(OSError):
        return path.read_bytes()
    return b""


BAD_INPUTS = [
    "wrong spec_name",
    "equal spec_version",
    "lower spec_version",
    "garbage",
    "truncated",
    "oversized",
    "not sudo",
    "unreachable",
    "unknown artifact hash",
    "production",
]


def bad_input(case: str, repo: Repo, tmp_path: Path) -> tuple[dict[str, Any], str]:
    """The CLI options for a bad input, and what its one error line must say."""
    wasm = runtime_wasm(101)
    with Chain(repo.endpoint("reckless")) as chain:
        spec = int(chain.runtime_version()["specVersion"])
    path = tmp_path / f"{case.replace(' ', '-')}.wasm"
    options: dict[str, Any] = {"env": "test", "network": "reckless", "artifact": str(path)}
    if case == "wrong spec_name":
        path.write_bytes(crafted(wasm, spec_name="other-runtime"))
        return options, "spec_name 'other-runtime' differs from the chain's 'example-runtime'"
    if case in ("equal spec_version", "lower spec_version"):
        wanted = spec if case.startswith("equal") else spec - 1
        path.write_bytes(crafted(wasm, spec_version=wanted))
        return options, f"spec_version {wanted} is not greater than the chain's {spec}"
    if case == "garbage":
        path.write_bytes(os.urandom(4096))
        return options, "not a runtime blob"
    if case == "truncated":
        path.write_bytes(wasm.read_bytes()[: wasm.stat().st_size // 2])
        return options, "truncated"
    if case == "oversized":
        body = RuntimeBlob.load(wasm).wasm + custom_section("padding", os.urandom(5_400_000))
        path.write_bytes(compress(body))
        return options, "over the chain's limit of 5241856"
    if case == "not sudo":  # a blob the chain would take, from the wrong key
        path.write_bytes(crafted(wasm, spec_version=spec + 1))
        return {**options, "env": "not-sudo"}, "is not the chain's sudo key"
    options["artifact"] = str(wasm)
    if case == "unreachable":
        return {**options, "env": "unreachable"}, "cannot reach ws://127.0.0.1:"
    if case == "unknown artifact hash":
        return {**options, "artifact": "0x" + "ab" * 32}, "unknown artifact 0xabab"
    assert case == "production"
    return {**options, "network": "production"}, "upgraded through the council"


@pytest.mark.chain
@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_clear_line_and_changes_nothing(
    case: str, repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    options, expected = bad_input(case, repo, tmp_path)
    monkeypatch.chdir(repo.root)
    watched = [repo.endpoint("reckless"), repo.endpoint("production")]
    before = [state(endpoint) for endpoint in watched]
    with pytest.raises(Exit) as refused:
        cli.deploy(Context(), **options)
    message = str(refused.value.message)
    assert refused.value.code == 1
    assert message.startswith("error: ") and "\n" not in message
    assert expected in message
    assert [state(endpoint) for endpoint in watched] == before
