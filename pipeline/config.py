"""Environments: which three networks a release goes through, and which keys may act on them.

An environment is one TOML file, `environments/<name>.toml`. Everything is validated when it is
loaded, before anything connects anywhere, so a typo or a dev key pointed at a real chain is a
one-line refusal naming the file, the line and the field instead of a failure halfway through a
release.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, get_args
from urllib.parse import urlsplit

from pipeline.errors import PipelineError
from pipeline.tomlfile import TomlSource, parse

Role = Literal["production", "lts", "reckless"]
Governance = Literal["collective", "sudo"]
Kind = Literal[
    "endpoint",
    "chopsticks-genesis",
    "chopsticks-fork",
    "chopsticks-db",
    "nodes-genesis",
    "nodes-fork",
]

ROLES: tuple[Role, ...] = get_args(Role)
GOVERNANCES: tuple[Governance, ...] = get_args(Governance)
KINDS: tuple[Kind, ...] = get_args(Kind)
DEFAULT_NAMES: dict[Role, str] = {
    "production": "production",
    "lts": "staging-lts",
    "reckless": "staging-reckless",
}
ENVIRONMENTS_DIR = "environments"
CHOPSTICKS_HOST = "127.0.0.1"  # chopsticks networks are only ever exposed on loopback

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_ENV_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOP_KEYS = (
    "local",
    "ss58_format",
    "connect_timeout",
    "inclusion_timeout",
    "block_time_estimate",
    "networks",
    "governance",
    "sudo",
    "council",
)
_NETWORK_KEYS = ("name", "kind", "endpoint", "port", "fork_of", "validators", "preset")
_NODE_KEYS = ("validators", "preset")  # only networks of real nodes take them
FORK_KINDS: tuple[Kind, ...] = ("chopsticks-fork", "nodes-fork")
DEV_VALIDATORS = ("alice", "bob", "charlie", "dave", "eve", "ferdie")  # the node's dev key flags
_KEY_SOURCE_KEYS = ("env", "file", "dev")
_COUNCIL_KEYS = (
    "threshold",
    "voting_blocks",
    "member_key",
    "collective",
    "root_dispatch",
    "attestations",
)
_PALLET = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CALL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*")
DEFAULT_COLLECTIVE = "Council"


@dataclass(frozen=True)
class KeySource:
    """Where a secret comes from; exactly one field is set. `file` is an absolute path."""

    env: str | None = None
    file: str | None = None
    dev: str | None = None  # a well-known dev URI such as //Alice: local environments only


@dataclass(frozen=True)
class Network:
    """One chain the release touches, in one role."""

    role: Role
    name: str
    kind: Kind
    endpoint: str  # ws:// or wss://; for local kinds, the local port it listens on
    port: int | None = None  # local networks' RPC port (a node network's first node)
    fork_of: str | None = None  # role whose chain a fork network forks
    validators: tuple[str, ...] = ()  # a node network's validators, by dev name (alice, bob)
    preset: str | None = None  # a node network's genesis preset (None: the pipeline's default)

    @property
    def chopsticks(self) -> bool:
        """Blocks on demand (`dev_newBlock`) and instant finality: a chopsticks network."""
        return self.kind.startswith("chopsticks")

    @property
    def local_process(self) -> bool:
        """Run on this machine by the pipeline (chopsticks or real nodes), not a plain endpoint."""
        return self.kind != "endpoint"


@dataclass(frozen=True)
class CouncilSettings:
    """How the production council is driven; None values are read from the chain."""

    threshold: int | None  # None: a simple majority of the members
    voting_blocks: int | None  # None: the council pallet's motion duration
    member_key: KeySource  # the councillor the pipeline proposes (and, locally, votes) as
    collective: str = DEFAULT_COLLECTIVE  # the pallet_collective instance's pallet name
    # `Module.function` taking one `call` that the motion wraps its proposal in, because an
    # upgrade needs Root and a motion only has the collective's origin; None: sent as is.
    root_dispatch: str | None = None
    # members' MATCH statements (`invoke verify --attest`) required before the motion is closed
    # or enacted, or the sudo fallback taken
    attestations: int = 0


@dataclass(frozen=True)
class Environment:
    """A validated environment set: the networks of a release and the keys allowed on them."""

    name: str
    local: bool  # every endpoint is loopback; dev keys and dev councillors are allowed
    ss58_format: int
    networks: dict[Role, Network]
    sudo_key: KeySource | None
    council: CouncilSettings | None
    # how production is upgraded: a council motion, or its sudo key; None: the file has neither
    governance: Governance | None
    connect_timeout: float  # seconds to wait for a websocket connection
    inclusion_timeout: float  # seconds to wait for an extrinsic to be included
    block_time_estimate: float  # seconds per block, to turn voting periods into wall time


def blocks_on_demand(env: Environment, role: Role = "production") -> bool:
    """Whether the pipeline makes this network's blocks itself (chopsticks) rather than waiting
    for the chain's own block time (real nodes, live endpoints)."""
    return env.networks[role].chopsticks


def environments_dir(root: Path | None = None) -> Path:
    return (root or Path.cwd()).resolve() / ENVIRONMENTS_DIR


def available_environments(root: Path | None = None) -> list[str]:
    """Names of the environment files under the project root, sorted."""
    directory = environments_dir(root)
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("*.toml") if _NAME.fullmatch(p.stem))


def load_environment(name: str = "local", root: Path | None = None) -> Environment:
    """Read and validate `environments/<name>.toml` under the project root (default: cwd)."""
    directory = environments_dir(root)
    available = available_environments(root)
    if name not in available:
        choices = ", ".join(available) or "none"
        raise PipelineError(
            f"unknown environment {name!r}: choose one of {choices} (files in {directory})"
        )
    path = directory / f"{name}.toml"
    return parse_environment(name, path.read_text(), path, directory.parent)


def parse_environment(name: str, text: str, path: Path, root: Path) -> Environment:
    """Validate the text of one environment file; `path` only names it in errors."""
    source, data = parse(path, text)
    source.check_keys(data, "", _TOP_KEYS)
    local = source.boolean(data, "local", default=False)
    ss58_format = source.integer(data, "ss58_format", high=16383)
    networks = _networks(source, data)
    if local:
        for net in networks.values():
            host = urlsplit(net.endpoint).hostname or ""
            if not _is_loopback(host):
                raise source.error(
                    f"networks.{net.role}.endpoint",
                    f"{host} is not a loopback address but the environment says `local = true`: "
                    "set `local = false` or use 127.0.0.1",
                )
    sudo_key = None
    if "sudo" in data:
        sudo_key = _key_source(source, data["sudo"], "sudo", name, local, root)
    council = _council(source, data, name, local, root)
    return Environment(
        name=name,
        local=local,
        ss58_format=42 if ss58_format is None else ss58_format,
        networks=networks,
        sudo_key=sudo_key,
        council=council,
        governance=_governance(source, data, council is not None, sudo_key is not None),
        connect_timeout=source.seconds(data, "connect_timeout", default=30.0),
        inclusion_timeout=source.seconds(data, "inclusion_timeout", default=120.0),
        block_time_estimate=source.seconds(data, "block_time_estimate", default=6.0),
    )


def require_governance(env: Environment) -> Governance:
    """How production is upgraded; refused when the environment says neither."""
    if env.governance is None:
        raise PipelineError(
            f"environment {env.name} says not how production is upgraded: add a [council] "
            'table (a collective votes) or a [sudo] key with governance = "sudo"'
        )
    return env.governance


def network(env: Environment, role_or_name: str) -> Network:
    """The network playing a role (`lts`) or carrying a name (`staging-lts`)."""
    if role_or_name in env.networks:
        return env.networks[role_or_name]
    for net in env.networks.values():
        if net.name == role_or_name:
            return net
    names = ", ".join(n.name for n in env.networks.values())
    raise PipelineError(
        f"environment {env.name} has no network {role_or_name!r}: "
        f"use a role ({', '.join(ROLES)}) or a name ({names})"
    )


def _networks(source: TomlSource, data: dict[str, Any]) -> dict[Role, Network]:
    tables = source.table(data, "networks")
    if tables is None:
        raise source.error("networks", "missing: add [networks.production], .lts and .reckless")
    source.check_keys(tables, "networks", ROLES)
    missing = [role for role in ROLES if role not in tables]
    if missing:
        raise source.error(
            "networks", f"missing role(s) {', '.join(missing)}: add a [networks.<role>] table each"
        )
    networks = {role: _network(source, role, tables) for role in ROLES}
    _check_network_set(source, networks)
    return networks


def _network(source: TomlSource, role: Role, tables: dict[str, Any]) -> Network:
    field = f"networks.{role}"
    table = tables[role]
    if not isinstance(table, dict):
        raise source.wrong_type(field, table, "a table")
    source.check_keys(table, field, _NETWORK_KEYS)
    name = source.string(table, "name", prefix=field)
    name = DEFAULT_NAMES[role] if name is None else name
    if not _NAME.fullmatch(name):
        raise source.error(f"{field}.name", f"{name!r} is not a plain name: use [A-Za-z0-9._-]")
    kind = _kind(source, table, prefix=field)
    endpoint = source.string(table, "endpoint", prefix=field)
    port = source.integer(table, "port", prefix=field, low=1, high=65535)
    fork_of = source.string(table, "fork_of", prefix=field)
    if kind == "endpoint":
        if endpoint is None:
            raise source.error(f"{field}.endpoint", 'required for kind = "endpoint"')
        for key in ("port", "fork_of", *_NODE_KEYS):
            if key in table:
                raise source.error(
                    f"{field}.{key}", "only local networks take it: remove it or change kind"
                )
        _check_url(source, f"{field}.endpoint", endpoint)
        return Network(role=role, name=name, kind=kind, endpoint=endpoint)
    if endpoint is not None:
        raise source.error(
            f"{field}.endpoint",
            f"local networks listen on {CHOPSTICKS_HOST}: set `port` instead of `endpoint`",
        )
    if port is None:
        raise source.error(f"{field}.port", f"required for kind = {kind!r}")
    if (kind in FORK_KINDS) != (fork_of is not None):
        problem = (
            f"required for kind = {kind!r}: name the role it forks"
            if fork_of is None
            else f"only fork networks fork another: remove it or change kind {kind!r}"
        )
        raise source.error(f"{field}.fork_of", problem)
    validators, preset = _node_settings(source, table, field, kind)
    return Network(
        role=role,
        name=name,
        kind=kind,
        endpoint=f"ws://{CHOPSTICKS_HOST}:{port}",
        port=port,
        fork_of=fork_of,
        validators=validators,
        preset=preset,
    )


def _node_settings(
    source: TomlSource, table: dict[str, Any], field: str, kind: Kind
) -> tuple[tuple[str, ...], str | None]:
    """`validators` (dev names; default alice alone) and `preset` (the genesis preset whose
    authorities they are; a fork takes consensus and sudo from a fresh spec of that preset)."""
    if not kind.startswith("nodes"):
        for key in _NODE_KEYS:
            if key in table:
                raise source.error(
                    f"{field}.{key}",
                    "only networks of real nodes take it: remove it or change kind",
                )
        return (), None
    validators = tuple(source.strings(table, "validators", prefix=field) or ("alice",))
    unknown = [v for v in validators if v not in DEV_VALIDATORS]
    if unknown or len(set(validators)) != len(validators):
        raise source.error(
            f"{field}.validators",
            f"{', '.join(unknown) or 'a repeated name'}: list distinct dev validators among "
            f"{', '.join(DEV_VALIDATORS)}",
        )
    return validators, source.string(table, "preset", prefix=field)


def _check_network_set(source: TomlSource, networks: dict[Role, Network]) -> None:
    """Cross-network rules: unique names and ports, forks of a non-fork other role."""
    names: dict[str, Role] = {}
    ports: dict[int, Role] = {}
    for role, net in networks.items():
        clash = names.get(net.name)
        if clash is not None or (net.name in ROLES and net.name != role):
            raise source.error(
                f"networks.{role}.name",
                f"{net.name!r} already names {clash or net.name}: give each network its own name",
            )
        names[net.name] = role
        if net.port is not None:
            if net.port in ports:
                raise source.error(
                    f"networks.{role}.port",
                    f"{net.port} is already used by networks.{ports[net.port]}: pick a free port",
                )
            ports[net.port] = role
        if net.fork_of is not None:
            target = networks.get(cast(Role, net.fork_of))
            if target is None or net.fork_of == role or target.kind in FORK_KINDS:
                others = ", ".join(r for r in ROLES if r != role)
                raise source.error(
                    f"networks.{role}.fork_of",
                    f"{net.fork_of!r} is not another, non-fork role: use one of {others}",
                )


def _governance(
    source: TomlSource, data: dict[str, Any], has_council: bool, has_sudo: bool
) -> Governance | None:
    """`governance`, or what the tables imply: a [council] votes, else a [sudo] key decides."""
    value = source.string(data, "governance")
    if value is None:
        return "collective" if has_council else ("sudo" if has_sudo else None)
    if value not in GOVERNANCES:
        raise source.error(
            "governance", f"{value!r} is not a governance: use one of {', '.join(GOVERNANCES)}"
        )
    table = "council" if value == "collective" else "sudo"
    if not (has_council if value == "collective" else has_sudo):
        raise source.error(
            "governance",
            f'"{value}" needs a [{table}] table: add it, or choose the governance production has',
        )
    return value


def _council(
    source: TomlSource, data: dict[str, Any], env_name: str, local: bool, root: Path
) -> CouncilSettings | None:
    table = source.table(data, "council")
    if table is None:
        return None
    source.check_keys(table, "council", _COUNCIL_KEYS)
    if "member_key" not in table:
        raise source.error("council.member_key", "required: the key of the proposing councillor")
    collective = source.string(table, "collective", prefix="council")
    if collective is not None and not _PALLET.fullmatch(collective):
        raise source.error(
            "council.collective", f'{collective!r} is not a pallet name: write e.g. "Council"'
        )
    root_dispatch = source.string(table, "root_dispatch", prefix="council")
    if root_dispatch and not _CALL.fullmatch(root_dispatch):
        raise source.error(
            "council.root_dispatch",
            f"{root_dispatch!r} is not a call: write Module.function, e.g. "
            '"CouncilRoot.dispatch_as_root", or "" to send the proposal as is',
        )
    return CouncilSettings(
        threshold=source.integer(table, "threshold", prefix="council", low=1),
        voting_blocks=source.integer(table, "voting_blocks", prefix="council", low=1),
        member_key=_key_source(
            source, table["member_key"], "council.member_key", env_name, local, root
        ),
        collective=collective or DEFAULT_COLLECTIVE,
        root_dispatch=root_dispatch or None,
        attestations=source.integer(table, "attestations", prefix="council", low=0) or 0,
    )


def _key_source(
    source: TomlSource, value: Any, field: str, env_name: str, local: bool, root: Path
) -> KeySource:
    if not isinstance(value, dict):
        raise source.error(field, 'must be a table such as { env = "VAR" } or { file = "path" }')
    source.check_keys(value, field, _KEY_SOURCE_KEYS)
    if len(value) != 1:
        raise source.error(field, "set exactly one of env, file or dev")
    env = source.string(value, "env", prefix=field)
    file = source.string(value, "file", prefix=field)
    dev = source.string(value, "dev", prefix=field)
    if env is not None and not _ENV_VAR.fullmatch(env):
        # not quoted: a secret pasted here by mistake must not end up in a log
        raise source.error(f"{field}.env", "not an environment variable name: use [A-Za-z0-9_]")
    if file is not None:
        if not file:
            raise source.error(f"{field}.file", "empty path: name the key file")
        file = str(root / Path(file).expanduser())  # absolute paths stay as they are
    if dev is not None:
        if not dev.startswith("//"):
            raise source.error(f"{field}.dev", "dev keys are well-known URIs such as //Alice")
        if not local:
            raise source.error(
                f"{field}.dev",
                f"dev key {dev} refused for environment {env_name}: not local; "
                'use `env = "VAR"` or `file = …`',
            )
    return KeySource(env=env, file=file, dev=dev)


def _check_url(source: TomlSource, field: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise source.error(field, f"{url!r} is not a ws:// or wss:// URL: use the node's RPC URL")
    if not parts.hostname or any(c.isspace() for c in url):
        raise source.error(field, f"{url!r} has no host or has spaces: write ws://host:port")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise source.error(field, f"{url!r} has a port outside 1-65535")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _kind(source: TomlSource, data: dict[str, Any], *, prefix: str) -> Kind:
    value = data.get("kind")
    if value not in KINDS:
        problem = "missing" if value is None else f"{value!r} is not a known kind"
        raise source.error(f"{prefix}.kind", f"{problem}: use one of {', '.join(KINDS)}")
    return cast(Kind, value)
