"""Signing keys from variables and files; dev keys only on local chains; secrets never in errors."""

from __future__ import annotations

import dataclasses
import os
import traceback
from pathlib import Path

import pytest
from substrateinterface import Keypair

from pipeline.config import CouncilSettings, Environment, KeySource, load_environment
from pipeline.errors import PipelineError
from pipeline.keys import DEV_PHRASE, dev_keypair, is_dev_secret, signer

REPO = Path(__file__).resolve().parents[1]
ALICE = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
BOB = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"
ALICE_SEED = "0xe5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a"
# A BIP-39 test vector with its last word changed: well-formed words, wrong checksum.
BAD_MNEMONIC = "legal winner thank year wave sausage worth useful legal winner thank thank"


def local_env() -> Environment:
    return load_environment(root=REPO)


def live_env(sudo: KeySource | None = None, council: KeySource | None = None) -> Environment:
    return dataclasses.replace(
        local_env(),
        name="live",
        local=False,
        sudo_key=sudo,
        council=None if council is None else CouncilSettings(None, None, council),
    )


def key_file(tmp_path: Path, text: str, mode: int = 0o600) -> str:
    path = tmp_path / "signer.key"
    path.write_text(text)
    path.chmod(mode)
    return str(path)


def refusal(env: Environment, which: str = "sudo") -> str:
    with pytest.raises(PipelineError) as info:
        signer(env, which)  # type: ignore[arg-type]
    exc = info.value
    assert exc.__cause__ is None  # no chained parser message that could quote the secret
    assert exc.__context__ is None or exc.__suppress_context__
    return str(exc)


def test_local_environment_signs_with_dev_accounts() -> None:
    env = local_env()
    assert signer(env, "sudo").ss58_address == ALICE
    assert signer(env, "council").ss58_address == ALICE


@pytest.mark.parametrize("name", ["Bob", "//Bob"])
def test_dev_keypair_for_local_councillors(name: str) -> None:
    assert dev_keypair(local_env(), name).ss58_address == BOB


def test_dev_keypair_refused_outside_local_environments() -> None:
    with pytest.raises(PipelineError) as info:
        dev_keypair(live_env(), "Bob")
    assert str(info.value) == (
        'dev key //Bob refused for environment live: not local; use `env = "VAR"` or `file = …`'
    )


def test_dev_key_source_refused_even_if_an_environment_is_built_by_hand() -> None:
    assert "dev key //Alice refused for environment live" in refusal(
        live_env(KeySource(dev="//Alice"))
    )


def test_mnemonic_from_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    mnemonic = Keypair.generate_mnemonic()
    monkeypatch.setenv("TEST_SUDO_KEY", f"  {mnemonic}\n")
    keypair = signer(live_env(KeySource(env="TEST_SUDO_KEY")), "sudo")
    assert keypair.ss58_address == Keypair.create_from_mnemonic(mnemonic).ss58_address
    assert mnemonic not in repr(keypair)


def test_derived_uri_and_seed_and_ss58_format(monkeypatch: pytest.MonkeyPatch) -> None:
    mnemonic = Keypair.generate_mnemonic()
    env = dataclasses.replace(live_env(KeySource(env="TEST_SUDO_KEY")), ss58_format=0)
    monkeypatch.setenv("TEST_SUDO_KEY", f"{mnemonic}//upgrades/1")
    derived = Keypair.create_from_uri(f"{mnemonic}//upgrades/1", ss58_format=0)
    assert signer(env, "sudo").ss58_address == derived.ss58_address
    assert derived.ss58_address.startswith("1")  # Polkadot's format, not the default 42
    seed = "0x" + os.urandom(32).hex()
    monkeypatch.setenv("TEST_SUDO_KEY", seed)
    assert signer(env, "sudo").public_key == Keypair.create_from_seed(seed).public_key


def test_key_file_of_mode_600(tmp_path: Path) -> None:
    mnemonic = Keypair.generate_mnemonic()
    env = live_env(council=KeySource(file=key_file(tmp_path, mnemonic + "\n")))
    assert (
        signer(env, "council").ss58_address == Keypair.create_from_mnemonic(mnemonic).ss58_address
    )


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = key_file(tmp_path, Keypair.generate_mnemonic(), mode=0o644)
    message = refusal(live_env(KeySource(file=path)))
    assert message == f"key file {path} is readable by others (mode 0644): chmod 600 {path}"


@pytest.mark.parametrize(
    ("mode", "exposure"), [(0o640, "readable"), (0o620, "accessible"), (0o601, "accessible")]
)
def test_key_file_open_to_group_or_others_is_refused(
    tmp_path: Path, mode: int, exposure: str
) -> None:
    path = key_file(tmp_path, Keypair.generate_mnemonic(), mode=mode)
    assert f"is {exposure} by others (mode {mode:04o}): chmod 600" in refusal(
        live_env(KeySource(file=path))
    )


@pytest.mark.skipif(os.getuid() != 0, reason="only root can give a file to another user")
def test_key_file_of_another_user_is_refused(tmp_path: Path) -> None:
    path = key_file(tmp_path, Keypair.generate_mnemonic())
    os.chown(path, 4242, 4242)
    assert f"key file {path} belongs to uid 4242, not to you" in refusal(
        live_env(KeySource(file=path))
    )


def test_missing_key_file_and_directory(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.key")
    assert refusal(live_env(KeySource(file=missing))) == (
        f"key file {missing} does not exist: create it with mode 600"
    )
    assert "is not a regular file" in refusal(live_env(KeySource(file=str(tmp_path))))


def test_unset_and_empty_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_SUDO_KEY", raising=False)
    message = refusal(live_env(KeySource(env="TEST_SUDO_KEY")))
    assert message.startswith("environment variable TEST_SUDO_KEY is not set: export it")
    monkeypatch.setenv("TEST_SUDO_KEY", "  \n")
    assert refusal(live_env(KeySource(env="TEST_SUDO_KEY"))) == (
        "environment variable TEST_SUDO_KEY is empty: put the sudo key's secret there"
    )


def test_environment_without_the_key_asked_for() -> None:
    assert "environment live has no sudo key" in refusal(live_env(None))
    assert "environment live has no [council]" in refusal(live_env(None), "council")


DEV_SECRETS = [
    "//Alice",
    "//Bob//stash",
    "/soft",
    DEV_PHRASE,
    f"  {DEV_PHRASE.replace(' ', '   ')}  ",
    f"{DEV_PHRASE}//Ferdie",
    ALICE_SEED,
]


@pytest.mark.parametrize("secret", DEV_SECRETS)
def test_dev_secrets_refused_on_non_local_environments(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, secret: str
) -> None:
    monkeypatch.setenv("TEST_SUDO_KEY", secret)
    message = refusal(live_env(KeySource(env="TEST_SUDO_KEY")))
    assert message.startswith("environment variable TEST_SUDO_KEY holds a well-known dev key")
    assert secret.strip() not in message
    path = key_file(tmp_path, secret)
    assert "holds a well-known dev key" in refusal(
        live_env(council=KeySource(file=path)), "council"
    )


def test_dev_secret_from_a_variable_is_fine_on_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SUDO_KEY", "//Bob")
    env = dataclasses.replace(local_env(), sudo_key=KeySource(env="TEST_SUDO_KEY"))
    assert signer(env, "sudo").ss58_address == BOB


def test_is_dev_secret_does_not_flag_real_secrets() -> None:
    assert not is_dev_secret(Keypair.generate_mnemonic())
    assert not is_dev_secret("0x" + os.urandom(32).hex())
    assert is_dev_secret(ALICE_SEED)


INVALID_SECRETS = [
    BAD_MNEMONIC,
    BAD_MNEMONIC + "//hard",
    "correct horse battery staple",
    "0x" + "ab" * 31,  # a seed one byte short
    "0xzz" + "ab" * 31,
]


@pytest.mark.parametrize("secret", INVALID_SECRETS)
def test_invalid_secret_is_named_by_origin_never_quoted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, secret: str
) -> None:
    assert not Keypair.validate_mnemonic(BAD_MNEMONIC)
    monkeypatch.setenv("TEST_SUDO_KEY", secret)
    with pytest.raises(PipelineError) as info:
        signer(live_env(KeySource(env="TEST_SUDO_KEY")), "sudo")
    message = str(info.value)
    assert message == (
        "environment variable TEST_SUDO_KEY is not a valid secret URI, mnemonic or "
        "0x-prefixed 32-byte seed: fix it"
    )
    rendered = "".join(traceback.format_exception(info.value))
    for text in (message, repr(info.value), rendered):
        assert secret not in text
        assert "thank thank" not in text and "ab" * 31 not in text
