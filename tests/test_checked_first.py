"""Bad input that needs no chain is refused before anything slow: no wasm loaded, no connection;
and a connection that is refused is said at once, with a hint that fits the environment.

The environment points at a loopback port where nothing listens, so any command that got as far
as connecting would fail with a connection error instead of the refusal asserted here.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import git
import pytest
from invoke.collection import Collection
from invoke.program import Program

from pipeline import localnet
from pipeline.cli import council
from pipeline.cli import deploy as deploy_cli
from pipeline.cli import release as release_cli
from pipeline.policy import check_confirmation

REPO = Path(__file__).resolve().parents[1]
RELEASE_100 = REPO / "examples/runtime/releases/100"
CODE_HASH_100 = json.loads((RELEASE_100 / "digest.json").read_text())["runtimes"]["compressed"][
    "blake2_256"
]

REMOTE = """\
local = false
connect_timeout = 20

[networks.production]
kind = "endpoint"
endpoint = "ws://127.0.0.1:{port}"

[networks.lts]
kind = "endpoint"
endpoint = "ws://127.0.0.1:{port}"

[networks.reckless]
kind = "endpoint"
endpoint = "ws://127.0.0.1:{port}"

[sudo]
env = "CHECKED_FIRST_SUDO"

[council]
member_key = {{ env = "CHECKED_FIRST_COUNCIL" }}
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project whose non-local environment `remote` has no node behind it."""
    shutil.copy(REPO / "pipeline.toml", tmp_path / "pipeline.toml")
    (tmp_path / "environments").mkdir()
    port = localnet.free_ports(1)[0]
    (tmp_path / "environments" / "remote.toml").write_text(REMOTE.format(port=port))
    shutil.copytree(RELEASE_100, tmp_path / "release")
    (tmp_path / "not-a-runtime.wasm").write_bytes(b"\0asm" + bytes(64))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PIPELINE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CHECKED_FIRST_SUDO", "//Alice")
    monkeypatch.setenv("CHECKED_FIRST_COUNCIL", "//Bob")
    git.Repo.init(tmp_path)
    return tmp_path


def refusal(capsys: pytest.CaptureFixture[str], *args: str, within: float = 5) -> str:
    """Run a command; it must exit 1 in time with one `error:` line, which is returned."""
    ns = Collection(council.propose, council.track, council.enact, deploy_cli.deploy)
    ns.add_collection(Collection.from_module(release_cli, name="release"))
    started = time.monotonic()
    with pytest.raises(SystemExit) as caught:
        Program(namespace=ns, binary="invoke").run(["invoke", *args])
    assert caught.value.code == 1
    assert time.monotonic() - started < within, "checked after slow work"
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


WASM = "release/example_runtime.compact.compressed.wasm"


def test_dev_council_key_is_refused_before_loading_or_connecting(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = refusal(capsys, "propose", "--env", "remote", "--artifact", WASM)
    assert "CHECKED_FIRST_COUNCIL holds a well-known dev key, refused for environment remote" in err


def test_dev_sudo_key_is_refused_before_the_wasm_is_read(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = refusal(capsys, "deploy", "--env", "remote", "--artifact", "not-a-runtime.wasm")
    assert "CHECKED_FIRST_SUDO holds a well-known dev key, refused for environment remote" in err


@pytest.mark.parametrize(
    ("confirm", "expected", "within"),
    [
        ("0x1234", "--confirm-hash '0x1234' is not a code hash: pass 0x and 64 hex digits", 5),
        # the artifact's hash needs the artifact loaded (seconds), never the chain
        ("0x" + "ab" * 32, f"but the candidate is {CODE_HASH_100}: confirm the hash", 60),
    ],
    ids=["malformed", "another-code"],
)
def test_enact_compares_the_confirmation_before_connecting(
    project: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    confirm: str,
    expected: str,
    within: float,
) -> None:
    monkeypatch.setenv("CHECKED_FIRST_COUNCIL", "0x" + "11" * 32)  # a key of no dev account
    err = refusal(
        capsys,
        "enact",
        "--env",
        "remote",
        "--motion",
        "0",
        "--artifact",
        WASM,
        "--confirm-hash",
        confirm,
        within=within,
    )
    assert expected in err


@pytest.mark.parametrize(
    ("confirm", "code_hash", "problem"),
    [
        (CODE_HASH_100, CODE_HASH_100, None),
        (CODE_HASH_100.upper().replace("0X", "0x"), CODE_HASH_100, None),
        (CODE_HASH_100.removeprefix("0x"), CODE_HASH_100, None),
        (CODE_HASH_100, None, None),  # only the chain knows the motion's hash: checked later
        ("0x" + "ab" * 32, CODE_HASH_100, "but the candidate is"),
        ("0x" + "ab" * 31, None, "is not a code hash"),
        ("0x" + "zz" * 32, None, "is not a code hash"),
        ("yes", None, "is not a code hash"),
    ],
)
def test_check_confirmation(confirm: str, code_hash: str | None, problem: str | None) -> None:
    if problem is None:
        check_confirmation(confirm, code_hash)
    else:
        with pytest.raises(Exception, match=problem):
            check_confirmation(confirm, code_hash)


def test_a_refused_connection_hints_at_the_environment_not_at_net_up(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = refusal(capsys, "track", "--env", "remote", "--motion", "0", within=8)
    assert err.startswith("error: cannot reach ws://127.0.0.1:")
    assert err.endswith(
        "connection refused (nothing listens there); is the endpoint right and "
        "reachable from here?\n"
    ), err


def test_a_release_refuses_a_dev_key_before_building(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = refusal(capsys, "release", "--id", "r1", "--env-set", "remote")
    assert "CHECKED_FIRST_SUDO holds a well-known dev key, refused for environment remote" in err


def test_a_release_refuses_a_malformed_confirmation_before_building(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    err = refusal(capsys, "release", "--id", "r1", "--env-set", "remote", "--confirm-hash", "0x12")
    assert "--confirm-hash '0x12' is not a code hash" in err
