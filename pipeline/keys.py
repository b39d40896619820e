"""Signing keys: read from where an environment says, refused where they do not belong.

A secret is read from an environment variable or from a key file only the user can read; the
well-known dev accounts are for local chains only, whatever path they arrive by. No message this
module raises contains the secret, and no exception carries the parsing error that might.
`Keypair`'s own repr shows only the address.
"""

from __future__ import annotations

import os
import re
import stat
from functools import cache
from typing import Literal

from substrateinterface import Keypair

from pipeline.chain import is_local_endpoint
from pipeline.config import Environment, KeySource
from pipeline.errors import PipelineError

DEV_PHRASE = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"
DEV_ACCOUNTS = ("Alice", "Bob", "Charlie", "Dave", "Eve", "Ferdie")
_SEED_HEX = re.compile(r"0x[0-9a-fA-F]{64}")

Which = Literal["sudo", "council"]


def signer(env: Environment, which: Which) -> Keypair:
    """The sudo key or the proposing councillor's key of `env`, checked against its locality."""
    source, role = _source(env, which)
    if source.dev is not None:
        return dev_keypair(env, source.dev)
    if source.env is not None:
        origin = f"environment variable {source.env}"
        secret = os.environ.get(source.env)
        if secret is None:
            raise PipelineError(
                f"{origin} is not set: export it with the {role}'s secret URI, mnemonic or 0x seed"
                f" (environment {env.name})"
            )
    elif source.file is not None:
        origin = f"key file {source.file}"
        secret = read_key_file(source.file)
    else:
        raise PipelineError(
            f"environment {env.name}: the {role} has no key source: set env or file"
        )
    return _keypair(env, secret.strip(), origin, role)


def dev_keypair(env: Environment, name: str) -> Keypair:
    """A well-known dev account (`Alice` or `//Alice`), for local councillors and sudo only."""
    if not env.local:
        raise PipelineError(
            f"dev key {_dev_uri(name)} refused for environment {env.name}: not local; "
            'use `env = "VAR"` or `file = …`'
        )
    return _dev(name, env.ss58_format)


def local_dev_keypair(endpoint: str, name: str, ss58_format: int = 42) -> Keypair:
    """A well-known dev account for a chain on this machine only (seeding a local network,
    signing on a throwaway fork), whatever environment that chain stands in for."""
    if not is_local_endpoint(endpoint):
        raise PipelineError(
            f"dev key {_dev_uri(name)} refused for {endpoint}: dev keys only sign on chains "
            "running on this machine"
        )
    return _dev(name, ss58_format)


def _dev_uri(name: str) -> str:
    return name if name.startswith("//") else f"//{name}"


def _dev(name: str, ss58_format: int) -> Keypair:
    return Keypair.create_from_uri(_dev_uri(name), ss58_format=ss58_format)


def read_key_file(path: str) -> str:
    """A key file's text, if it is a regular file of the current user that nobody else can read."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise PipelineError(f"key file {path} does not exist: create it with mode 600") from None
    except OSError as exc:
        raise PipelineError(f"key file {path} cannot be opened ({exc.strerror})") from None
    try:
        info = os.fstat(fd)  # the file we read, not whatever the path names a moment later
        if not stat.S_ISREG(info.st_mode):
            raise PipelineError(f"key file {path} is not a regular file: point `file` at one")
        if info.st_uid != os.getuid():
            raise PipelineError(
                f"key file {path} belongs to uid {info.st_uid}, not to you (uid {os.getuid()}): "
                f"chown it or use a key file of your own"
            )
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            exposure = "readable" if mode & 0o044 else "accessible"
            raise PipelineError(
                f"key file {path} is {exposure} by others (mode {mode:04o}): chmod 600 {path}"
            )
        with os.fdopen(os.dup(fd), encoding="utf-8") as handle:
            return handle.read()
    finally:
        os.close(fd)


def is_dev_secret(secret: str) -> bool:
    """True for the dev phrase, any `//` derivation of it, and the dev accounts' own keys."""
    phrase = " ".join(secret.split("/", 1)[0].split())
    if secret.startswith("/") or phrase == DEV_PHRASE:
        return True
    try:
        public_key = _parse(secret, 42).public_key
    except Exception:
        return False
    return public_key in _dev_public_keys()


def _source(env: Environment, which: Which) -> tuple[KeySource, str]:
    if which == "sudo":
        if env.sudo_key is None:
            raise PipelineError(
                f"environment {env.name} has no sudo key: add a [sudo] table with env or file"
            )
        return env.sudo_key, "sudo key"
    if which == "council":
        if env.council is None:
            raise PipelineError(
                f"environment {env.name} has no [council]: add one with a member_key"
            )
        return env.council.member_key, "councillor key"
    raise PipelineError(f"unknown key {which!r}: use sudo or council")


def _keypair(env: Environment, secret: str, origin: str, role: str) -> Keypair:
    if not secret:
        raise PipelineError(f"{origin} is empty: put the {role}'s secret there")
    if not env.local and is_dev_secret(secret):
        raise PipelineError(
            f"{origin} holds a well-known dev key, refused for environment {env.name}: not local; "
            f"use the {role}'s real secret"
        )
    try:
        return _parse(secret, env.ss58_format)
    except Exception:
        # The parser's own message may quote the secret: report only where it came from.
        raise PipelineError(
            f"{origin} is not a valid secret URI, mnemonic or 0x-prefixed 32-byte seed: fix it"
        ) from None


def _parse(secret: str, ss58_format: int) -> Keypair:
    if _SEED_HEX.fullmatch(secret):
        return Keypair.create_from_seed(secret, ss58_format=ss58_format)
    return Keypair.create_from_uri(secret, ss58_format=ss58_format)


@cache
def _dev_public_keys() -> frozenset[bytes]:
    """Public keys of the dev accounts and their stashes, to catch them as seeds or mnemonics."""
    uris = [f"//{name}" for name in DEV_ACCOUNTS] + [f"//{name}//stash" for name in DEV_ACCOUNTS]
    return frozenset(Keypair.create_from_uri(uri).public_key for uri in [*uris, DEV_PHRASE])
