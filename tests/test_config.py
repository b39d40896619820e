"""Environment files: the shipped ones load, and every kind of mistake is one located line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import (
    Environment,
    KeySource,
    available_environments,
    blocks_on_demand,
    load_environment,
    network,
    require_governance,
)
from pipeline.errors import PipelineError

REPO = Path(__file__).resolve().parents[1]

BASE = """\
local = true
ss58_format = 42
connect_timeout = 30

[networks.production]
kind = "chopsticks-genesis"
port = 9944

[networks.lts]
name = "staging-lts"
kind = "chopsticks-fork"
fork_of = "production"
port = 9945

[networks.reckless]
kind = "endpoint"
endpoint = "ws://127.0.0.1:9946"

[sudo]
dev = "//Alice"

[council]
threshold = 2
member_key = { dev = "//Bob" }
"""

LIVE = """\
local = false

[networks.production]
kind = "endpoint"
endpoint = "wss://rpc.example.com"

[networks.lts]
kind = "chopsticks-fork"
fork_of = "production"
port = 9945

[networks.reckless]
kind = "endpoint"
endpoint = "wss://reckless.example.com:443"

[sudo]
env = "SUDO_KEY"
"""


def load_text(tmp_path: Path, text: str, name: str = "test") -> Environment:
    (tmp_path / "environments").mkdir(exist_ok=True)
    (tmp_path / "environments" / f"{name}.toml").write_text(text)
    return load_environment(name, root=tmp_path)


def edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def line_of(text: str, marker: str | int) -> int:
    if isinstance(marker, int):
        return marker
    return next(n for n, line in enumerate(text.splitlines(), 1) if marker in line)


def test_local_environment_is_three_chopsticks_networks_on_loopback() -> None:
    env = load_environment(root=REPO)
    assert env.name == "local" and env.local
    assert {role: (n.name, n.kind, n.port, n.fork_of) for role, n in env.networks.items()} == {
        "production": ("production", "chopsticks-genesis", 9944, None),
        "lts": ("staging-lts", "chopsticks-fork", 9945, "production"),
        "reckless": ("staging-reckless", "chopsticks-genesis", 9946, None),
    }
    assert [n.endpoint for n in env.networks.values()] == [
        "ws://127.0.0.1:9944",
        "ws://127.0.0.1:9945",
        "ws://127.0.0.1:9946",
    ]
    assert env.sudo_key == KeySource(dev="//Alice")
    assert env.council is not None and env.council.member_key == KeySource(dev="//Alice")
    assert env.council.threshold is None  # a majority of whoever the members are
    assert env.council.collective == "Council"
    assert env.council.root_dispatch == "CouncilRoot.dispatch_as_root"


def test_example_live_environment_is_endpoints_with_secrets_kept_elsewhere() -> None:
    env = load_environment("example-live", root=REPO)
    assert not env.local
    assert all(
        n.kind == "endpoint" and n.endpoint.startswith("wss://") for n in env.networks.values()
    )
    assert env.sudo_key == KeySource(env="PIPELINE_SUDO_KEY")
    assert env.council is not None and env.council.member_key.file is not None
    assert Path(env.council.member_key.file).is_absolute()
    assert (env.council.collective, env.council.root_dispatch) == (
        "Council",
        "CouncilRoot.dispatch_as_root",
    )


def test_local_nodes_environment_is_real_nodes_beside_the_chopsticks_ones() -> None:
    env = load_environment("local-nodes", root=REPO)
    assert env.local and env.inclusion_timeout == 120.0
    assert {
        role: (n.name, n.kind, n.port, n.fork_of, n.validators, n.preset)
        for role, n in env.networks.items()
    } == {
        "production": (
            "nodes-production", "nodes-genesis", 9954, None, ("alice", "bob"), "local_testnet"
        ),
        "lts": ("nodes-staging-lts", "nodes-fork", 9955, "production", ("alice",), None),
        "reckless": (
            "nodes-staging-reckless", "nodes-genesis", 9956, None, ("alice",), "development"
        ),
    }  # fmt: skip
    local = load_environment("local", root=REPO)
    ports = {n.port for n in env.networks.values()} | {n.port for n in local.networks.values()}
    assert len(ports) == 6  # both sets run at once
    # real nodes make their own blocks: the pipeline waits for them instead of asking chopsticks
    assert not blocks_on_demand(env) and blocks_on_demand(local)
    assert all(n.local_process and not n.chopsticks for n in env.networks.values())


def test_node_networks_take_dev_validators_and_a_preset(tmp_path: Path) -> None:
    text = edit(BASE, 'kind = "chopsticks-genesis"', 'kind = "nodes-genesis"\npreset = "local"')
    env = load_text(tmp_path, text)
    assert (env.networks["production"].validators, env.networks["production"].preset) == (
        ("alice",),  # the default: one validator
        "local",
    )
    with pytest.raises(PipelineError, match=r"networks.production.validators: mallory: list"):
        load_text(tmp_path, edit(text, 'preset = "local"', 'validators = ["alice", "mallory"]'))
    with pytest.raises(PipelineError, match=r"networks.production.validators: a repeated name"):
        load_text(tmp_path, edit(text, 'preset = "local"', 'validators = ["bob", "bob"]'))
    with pytest.raises(PipelineError, match=r"networks.lts.validators: only networks of real"):
        load_text(tmp_path, edit(BASE, "port = 9945", 'port = 9945\nvalidators = ["alice"]'))


def test_available_environments_are_the_shipped_files() -> None:
    assert available_environments(REPO) == ["example-live", "local", "local-nodes"]


def test_unknown_environment_lists_the_available_ones() -> None:
    with pytest.raises(
        PipelineError,
        match=r"unknown environment 'prod': choose one of example-live, local, local-nodes",
    ):
        load_environment("prod", root=REPO)


def test_environment_name_cannot_escape_the_directory(tmp_path: Path) -> None:
    (tmp_path / "secret.toml").write_text(BASE)
    load_text(tmp_path, BASE)
    with pytest.raises(PipelineError, match="unknown environment"):
        load_environment("../secret", root=tmp_path)


def test_defaults_and_values_of_a_minimal_file(tmp_path: Path) -> None:
    env = load_text(tmp_path, BASE)
    assert (env.ss58_format, env.connect_timeout, env.inclusion_timeout) == (42, 30.0, 120.0)
    assert env.block_time_estimate == 6.0
    assert env.networks["production"].name == "production"  # default name of the role
    assert env.networks["reckless"].name == "staging-reckless"
    assert env.networks["reckless"].port is None
    assert env.council is not None and env.council.threshold == 2
    # without collective/root_dispatch: the pallet named Council, the proposal sent as is
    assert (env.council.collective, env.council.root_dispatch) == ("Council", None)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ('collective = "Tech"\nroot_dispatch = "Gov.as_root"', ("Tech", "Gov.as_root")),
        ('root_dispatch = ""', ("Council", None)),  # empty: the runtime accepts the council
    ],
)  # fmt: skip
def test_council_pallet_and_root_dispatch(
    tmp_path: Path, lines: str, expected: tuple[str, str | None]
) -> None:
    env = load_text(tmp_path, BASE + lines + "\n")
    assert env.council is not None
    assert (env.council.collective, env.council.root_dispatch) == expected


def test_attestations_required_default_to_none_and_refuse_a_negative(tmp_path: Path) -> None:
    env = load_text(tmp_path, BASE)
    assert env.council is not None and env.council.attestations == 0
    env = load_text(tmp_path, BASE + "attestations = 2\n")
    assert env.council is not None and env.council.attestations == 2
    with pytest.raises(PipelineError, match=r"council\.attestations: -1 is out of range"):
        load_text(tmp_path, BASE + "attestations = -1\n")


def test_live_environment_may_fork_production_on_demand(tmp_path: Path) -> None:
    env = load_text(tmp_path, LIVE)
    lts = env.networks["lts"]
    assert (lts.kind, lts.fork_of, lts.endpoint) == (
        "chopsticks-fork",
        "production",
        "ws://127.0.0.1:9945",
    )
    assert env.sudo_key == KeySource(env="SUDO_KEY") and env.council is None


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "localhost", "[::1]"])
def test_local_accepts_every_loopback_endpoint(tmp_path: Path, host: str) -> None:
    text = edit(BASE, "ws://127.0.0.1:9946", f"ws://{host}:9946")
    assert load_text(tmp_path, text).networks["reckless"].endpoint == f"ws://{host}:9946"


def test_key_file_paths_are_resolved_against_the_project_root(tmp_path: Path) -> None:
    text = edit(LIVE, 'env = "SUDO_KEY"', 'file = "keys/sudo.key"')
    env = load_text(tmp_path, text)
    assert env.sudo_key == KeySource(file=str(tmp_path.resolve() / "keys" / "sudo.key"))


def test_network_by_role_or_by_name() -> None:
    env = load_environment(root=REPO)
    assert network(env, "lts") is env.networks["lts"]
    assert network(env, "staging-reckless") is env.networks["reckless"]
    with pytest.raises(PipelineError, match=r"no network 'staging'.*production, staging-lts"):
        network(env, "staging")


def test_toml_syntax_error_keeps_line_and_column(tmp_path: Path) -> None:
    with pytest.raises(PipelineError) as info:
        load_text(tmp_path, edit(BASE, "port = 9945", "port = = 9945"))
    message = str(info.value)
    assert "test.toml" in message and "line 13" in message and "column" in message
    assert "fix the TOML syntax" in message


# (case, text, field, problem, line: a marker text on it or its number, None for no line).
# The error must name file:line, field and problem.
INVALID = [
    (
        "unknown top key",
        edit(BASE, "ss58_format = 42", "colour = 42"),
        "colour",
        "unknown key",
        "colour",
    ),
    (
        "unknown network key",
        edit(BASE, "port = 9945", "prot = 9945"),
        "networks.lts.prot",
        "unknown key",
        "prot",
    ),
    (
        "unknown role",
        BASE + '[networks.staging]\nkind = "endpoint"\n',
        "networks.staging",
        "unknown key",
        "[networks.staging]",
    ),
    (
        "missing role",
        BASE.replace(
            '[networks.reckless]\nkind = "endpoint"\nendpoint = "ws://127.0.0.1:9946"\n', ""
        ),
        "networks",
        "missing role(s) reckless",
        "[networks.production]",
    ),
    (
        "string for int",
        edit(BASE, "port = 9945", 'port = "9945"'),
        "networks.lts.port",
        "must be an integer, not '9945'",
        'port = "9945"',
    ),
    (
        "bool for int",
        edit(BASE, "threshold = 2", "threshold = true"),
        "council.threshold",
        "must be an integer",
        "threshold",
    ),
    (
        "string for bool",
        edit(BASE, "local = true", 'local = "yes"'),
        "local",
        "must be true or false",
        "local =",
    ),
    (
        "port too high",
        edit(BASE, "port = 9945", "port = 70000"),
        "networks.lts.port",
        "70000 is out of range (1-65535)",
        "70000",
    ),
    (
        "port zero",
        edit(BASE, "port = 9944", "port = 0"),
        "networks.production.port",
        "out of range",
        "port = 0",
    ),
    (
        "http scheme",
        edit(BASE, "ws://127.0.0.1:9946", "http://127.0.0.1:9946"),
        "networks.reckless.endpoint",
        "not a ws:// or wss:// URL",
        "http://",
    ),
    (
        "url port out of range",
        edit(BASE, "ws://127.0.0.1:9946", "ws://127.0.0.1:99999"),
        "networks.reckless.endpoint",
        "port outside 1-65535",
        "99999",
    ),
    (
        "url without host",
        edit(BASE, "ws://127.0.0.1:9946", "ws://:9946"),
        "networks.reckless.endpoint",
        "has no host",
        "ws://:9946",
    ),
    (
        "not loopback",
        edit(BASE, "ws://127.0.0.1:9946", "wss://rpc.example.com"),
        "networks.reckless.endpoint",
        "rpc.example.com is not a loopback address",
        "wss://",
    ),
    (
        "private address",
        edit(BASE, "ws://127.0.0.1:9946", "ws://10.0.0.1:9946"),
        "networks.reckless.endpoint",
        "not a loopback",
        "10.0.0.1",
    ),
    (
        "unknown kind",
        edit(BASE, '"chopsticks-genesis"', '"zombienet"'),
        "networks.production.kind",
        "'zombienet' is not a known kind",
        "zombienet",
    ),
    (
        "missing kind",
        edit(BASE, 'kind = "chopsticks-genesis"\n', ""),
        "networks.production.kind",
        "missing: use one of endpoint",
        "[networks.production]",
    ),
    (
        "endpoint on chopsticks",
        edit(BASE, "port = 9944", 'endpoint = "ws://127.0.0.1:9944"'),
        "networks.production.endpoint",
        "set `port` instead",
        'endpoint = "ws://127.0.0.1:9944"',
    ),
    (
        "port on endpoint",
        edit(
            BASE,
            'endpoint = "ws://127.0.0.1:9946"',
            'endpoint = "ws://127.0.0.1:9946"\nport = 9946',
        ),
        "networks.reckless.port",
        "only local networks",
        "port = 9946",
    ),
    (
        "missing endpoint",
        edit(BASE, 'endpoint = "ws://127.0.0.1:9946"', ""),
        "networks.reckless.endpoint",
        "required",
        "[networks.reckless]",
    ),
    (
        "missing port",
        edit(BASE, "port = 9944\n", ""),
        "networks.production.port",
        "required",
        "[networks.production]",
    ),
    (
        "fork without fork_of",
        edit(BASE, 'fork_of = "production"\n', ""),
        "networks.lts.fork_of",
        "required",
        "[networks.lts]",
    ),
    (
        "fork_of on genesis",
        edit(BASE, "port = 9944", 'port = 9944\nfork_of = "lts"'),
        "networks.production.fork_of",
        "only fork networks",
        'fork_of = "lts"',
    ),
    (
        "fork of itself",
        edit(BASE, 'fork_of = "production"', 'fork_of = "lts"'),
        "networks.lts.fork_of",
        "not another, non-fork role",
        'fork_of = "lts"',
    ),
    (
        "fork of unknown",
        edit(BASE, 'fork_of = "production"', 'fork_of = "mainnet"'),
        "networks.lts.fork_of",
        "'mainnet' is not another",
        "mainnet",
    ),
    (
        "duplicate port",
        edit(BASE, "port = 9945", "port = 9944"),
        "networks.lts.port",
        "9944 is already used by networks.production",
        13,  # the second `port = 9944`
    ),
    (
        "duplicate name",
        edit(BASE, 'name = "staging-lts"', 'name = "production"'),
        "networks.lts.name",
        "already names",
        'name = "production"',
    ),
    (
        "name of another role",
        edit(BASE, 'name = "staging-lts"', 'name = "reckless"'),
        "networks.lts.name",
        "already names",
        'name = "reckless"',
    ),
    (
        "name with slash",
        edit(BASE, 'name = "staging-lts"', 'name = "a/b"'),
        "networks.lts.name",
        "not a plain name",
        "a/b",
    ),
    (
        "two key sources",
        edit(BASE, 'dev = "//Alice"', 'dev = "//Alice"\nenv = "SUDO"'),
        "sudo",
        "exactly one of env, file or dev",
        "[sudo]",
    ),
    (
        "bad env var name",
        edit(BASE, 'dev = "//Alice"', 'env = "MY-KEY"'),
        "sudo.env",
        "not an environment variable name: use",
        "MY-KEY",
    ),
    (
        "dev not a uri",
        edit(BASE, 'dev = "//Alice"', 'dev = "Alice"'),
        "sudo.dev",
        "well-known URIs",
        'dev = "Alice"',
    ),
    (
        "key source not a table",
        edit(BASE, 'member_key = { dev = "//Bob" }', 'member_key = "//Bob"'),
        "council.member_key",
        "must be a table",
        "member_key",
    ),
    (
        "unknown key source field",
        edit(BASE, '{ dev = "//Bob" }', '{ seed = "x" }'),
        "council.member_key.seed",
        "unknown key",
        "member_key",
    ),
    (
        "missing member key",
        edit(BASE, 'member_key = { dev = "//Bob" }', ""),
        "council.member_key",
        "required",
        "[council]",
    ),
    (
        "threshold zero",
        edit(BASE, "threshold = 2", "threshold = 0"),
        "council.threshold",
        "0 is out of range (>= 1)",
        "threshold",
    ),
    (
        "collective not a pallet name",
        BASE + 'collective = "the council"\n',
        "council.collective",
        "'the council' is not a pallet name",
        "collective",
    ),
    (
        "root dispatch not Module.function",
        BASE + 'root_dispatch = "dispatch_as_root"\n',
        "council.root_dispatch",
        "'dispatch_as_root' is not a call: write Module.function",
        "root_dispatch",
    ),
    (
        "negative timeout",
        edit(BASE, "connect_timeout = 30", "connect_timeout = -1"),
        "connect_timeout",
        "-1 is out of range: more than 0 and at most 3600 (an hour)",
        "connect_timeout",
    ),
    (
        "timeout over an hour",
        edit(BASE, "connect_timeout = 30", "connect_timeout = 3601"),
        "connect_timeout",
        "3601 is out of range",
        "connect_timeout",
    ),
    (
        "huge timeout",
        edit(BASE, "connect_timeout = 30", "connect_timeout = 1e308"),
        "connect_timeout",
        "1e+308 is out of range",
        "connect_timeout",
    ),
    (
        "nan timeout",
        edit(BASE, "connect_timeout = 30", "connect_timeout = 30\ninclusion_timeout = nan"),
        "inclusion_timeout",
        "nan is out of range",
        "inclusion_timeout",
    ),
    (
        "ss58 too large",
        edit(BASE, "ss58_format = 42", "ss58_format = 20000"),
        "ss58_format",
        "out of range (0-16383)",
        "ss58_format",
    ),
    (
        "networks not a table",
        "local = true\nnetworks = 3\n",
        "networks",
        "must be a table",
        "networks",
    ),
    ("no networks", "local = true\n", "networks", "missing", None),
]


@pytest.mark.parametrize(
    ("text", "field", "problem", "marker"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_environment_is_one_located_line(
    tmp_path: Path, text: str, field: str, problem: str, marker: str | int | None
) -> None:
    with pytest.raises(PipelineError) as info:
        load_text(tmp_path, text)
    message = str(info.value)
    path = tmp_path.resolve() / "environments" / "test.toml"
    where = f"{path}:{line_of(text, marker)}" if marker else str(path)
    assert message.startswith(f"{where}: {field}: "), message
    assert problem in message
    assert "\n" not in message


def test_dev_key_refused_outside_local_environments(tmp_path: Path) -> None:
    text = edit(LIVE, 'env = "SUDO_KEY"', 'dev = "//Alice"')
    with pytest.raises(PipelineError) as info:
        load_text(tmp_path, text, name="staging")
    assert str(info.value).endswith(
        "sudo.dev: dev key //Alice refused for environment staging: not local; "
        'use `env = "VAR"` or `file = …`'
    )


def test_dev_councillor_refused_outside_local_environments(tmp_path: Path) -> None:
    text = LIVE + '[council]\nmember_key = { dev = "//Bob" }\n'
    with pytest.raises(PipelineError, match=r"council.member_key.dev: dev key //Bob refused"):
        load_text(tmp_path, text)


PASTED = "legal winner thank year wave sausage worth useful legal winner thank yellow"


@pytest.mark.parametrize(
    "misplaced",
    [f'[sudo]\nenv = "{PASTED}"', f'[sudo]\ndev = "{PASTED}"', f'sudo = "{PASTED}"'],
)
def test_secret_pasted_into_the_file_is_not_echoed(tmp_path: Path, misplaced: str) -> None:
    text = edit(LIVE, '[sudo]\nenv = "SUDO_KEY"', misplaced)
    with pytest.raises(PipelineError) as info:
        load_text(tmp_path, text)
    assert "sudo" in str(info.value) and "thank" not in str(info.value)


def without_council(text: str) -> str:
    return text.split("[council]")[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (BASE, "collective"),  # a [council]: it votes (as every environment before `governance`)
        (without_council(BASE), "sudo"),  # only a sudo key: it decides
        ('governance = "sudo"\n' + BASE, "sudo"),  # a council on chain, but sudo upgrades
        (without_council(BASE).replace('[sudo]\ndev = "//Alice"\n', ""), None),
    ],
    ids=["council", "sudo-only", "explicit-sudo", "neither"],
)
def test_governance_named_or_implied_by_the_tables(
    tmp_path: Path, text: str, expected: str | None
) -> None:
    env = load_text(tmp_path, text)
    assert env.governance == expected
    if expected is None:
        with pytest.raises(PipelineError) as info:
            require_governance(env)
        assert str(info.value) == (
            "environment test says not how production is upgraded: add a [council] table (a "
            'collective votes) or a [sudo] key with governance = "sudo"'
        )
    else:
        assert require_governance(env) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('governance = "democracy"\n' + BASE, "'democracy' is not a governance: use one of"),
        ('governance = "collective"\n' + without_council(BASE), '"collective" needs a [council]'),
        ('governance = "sudo"\n' + BASE.replace('[sudo]\ndev = "//Alice"\n', ""), "a [sudo]"),
    ],
)
def test_governance_without_what_it_needs_is_one_located_line(
    tmp_path: Path, text: str, problem: str
) -> None:
    with pytest.raises(PipelineError) as info:
        load_text(tmp_path, text)
    path = tmp_path.resolve() / "environments" / "test.toml"
    assert str(info.value).startswith(f"{path}:1: governance: ")
    assert problem in str(info.value)
