"""`invoke net.*`: the chopsticks networks of an environment (local: production, staging-lts,
staging-reckless on 127.0.0.1:9944-9946).

Several networks go as repeated flags (`invoke net.up -n production -n staging-lts`, or a comma
list): invoke has no optional variadic positionals. No -n means every network.
"""

from __future__ import annotations

import json as jsonlib
from pathlib import Path
from typing import TYPE_CHECKING

from invoke.context import Context
from invoke.tasks import task

from pipeline.cli import friendly
from pipeline.cli.render import make_console, stderr_lines
from pipeline.project import Project, load_project, write_atomic

if TYPE_CHECKING:
    from pipeline import localnet

NAMES_HELP = "network name or role (repeatable, or a comma list; default: all)"
ENV_HELP = "environment (environments/<env>.toml) whose chopsticks networks to use"


def _networks(env: str) -> tuple[Project, dict[str, localnet.LocalNet]]:
    from pipeline import config, localnet

    project = load_project()
    environment = config.load_environment(env, project.root)
    return project, localnet.networks_for(environment, project.preset)


def _names(nets: dict[str, localnet.LocalNet], env: str, name: list[str] | None) -> list[str]:
    """Names from repeated -n flags (names or roles, comma lists allowed); none means all."""
    from pipeline import config

    chosen = [part.strip() for item in name or [] for part in item.split(",") if part.strip()]
    if not chosen:
        return list(nets)
    environment = config.load_environment(env, load_project().root)
    return [config.network(environment, part).name for part in chosen]


def _blocks(status: localnet.NetStatus) -> str:
    """`#12`, or `#12 (final #10)` when finality lags the best block (real nodes)."""
    if status.block is None:
        return ""
    if status.finalized is None or status.finalized == status.block:
        return f"#{status.block}"
    return f"#{status.block} (final #{status.finalized})"


def _print(statuses: list[localnet.NetStatus]) -> None:
    from rich.table import Table

    table = Table()
    for column in ("name", "endpoint", "pid", "alive", "block", "runtime"):
        table.add_column(column, no_wrap=True)
    table.add_column("note", overflow="fold")
    for s in statuses:
        table.add_row(
            s.name,
            s.endpoint,
            "" if s.pid is None else str(s.pid),
            "yes" if s.alive else "no",
            _blocks(s),
            f"{s.spec_name} {s.spec_version}" if s.spec_name else "",
            s.note or (s.node or ""),
        )
    make_console().print(table)


@task(
    help={
        "wasm": "runtime wasm (.compact.compressed.wasm)",
        "preset": "genesis preset of the runtime (default: pipeline.toml's [runtime] preset)",
        "out": "write the spec to this file (default: stdout)",
    }
)
@friendly
def spec(c: Context, wasm: str, preset: str = "", out: str = "") -> None:
    """Build a raw chain spec from a runtime's genesis preset, without a node binary."""
    from pipeline import executor

    result = executor.genesis_spec(Path(wasm), preset or load_project().preset)
    text = jsonlib.dumps(result, indent=1)
    if out:
        Path(out).write_text(text + "\n")
        print(f"{out}: {len(result['genesis']['raw']['top'])} genesis keys")
    else:
        print(text)


@task(
    help={
        "source": "the network to fork off: a role or name of --env's networks, or a ws:// URL",
        "env": ENV_HELP,
        "out": "write the raw spec here (default: <chain id>.json in the state dir)",
        "preset": "genesis preset giving the fork's validators and sudo key (default: "
        "pipeline.toml's [runtime] preset)",
        "chain_id": "the fork's chain id (default: <network>-fork-off)",
        "block": "block hash whose state to take (default: the finalized head)",
    }
)
@friendly
def fork_off(
    c: Context,
    source: str = "production",
    env: str = "local",
    out: str = "",
    preset: str = "",
    chain_id: str = "",
    block: str = "",
) -> None:
    """A raw chain spec carrying a network's state, with fresh validators and sudo key."""
    from pipeline import chainstate, config
    from pipeline.chain import Chain, connect

    project = load_project()
    preset = preset or project.preset
    if source.startswith(("ws://", "wss://")):
        label, opened = source, Chain(source)
    else:
        environment = config.load_environment(env, project.root)
        network = config.network(environment, source)
        label, opened = network.name, connect(environment, network)
    ident = chain_id or f"{label.rsplit('/', 1)[-1].replace(':', '-')}-fork-off"
    with opened as chain:
        forked = chainstate.fork_off(
            chain, name=f"{ident} (fork-off)", chain_id=ident, preset=preset, block=block or None
        )
    path = Path(out) if out else project.state_dir / f"{ident}.json"
    write_atomic(path, jsonlib.dumps(forked.spec, indent=1).encode())
    print(
        f"{path}: {label} at #{forked.number} ({forked.block}): {forked.live_keys} keys of its"
        f" state, {forked.fresh_keys} from the {preset!r} preset (consensus, sudo, System)"
    )


@task(
    iterable=["name"],
    help={
        "name": NAMES_HELP,
        "wasm": "production's runtime (default: the committed release)",
        "env": ENV_HELP,
    },
)
@friendly
def up(c: Context, name: list[str] | None = None, wasm: str = "", env: str = "local") -> None:
    """Start networks (a fork starts what it forks first); local production is seeded once."""
    from pipeline import localnet

    project, nets = _networks(env)
    runtime = Path(wasm) if wasm else None
    names = _names(nets, env, name)
    if any(nets[n].nodes for n in names):
        from pipeline import nodebuild

        nodebuild.binary_for_networks(project, stderr_lines())  # built when there is none yet
    _print(localnet.up(project, nets, names, runtime, stderr_lines()))


@task(iterable=["name"], help={"name": NAMES_HELP, "env": ENV_HELP})
@friendly
def down(c: Context, name: list[str] | None = None, env: str = "local") -> None:
    """Stop networks (and forks of them); production keeps its chain for the next up."""
    from pipeline import localnet

    project, nets = _networks(env)
    stopped = localnet.down(project, nets, _names(nets, env, name))
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@task(help={"json": "print JSON instead of a table", "env": ENV_HELP})
@friendly
def status(c: Context, json: bool = False, env: str = "local") -> None:
    """Each network: endpoint, pid, alive, block height, runtime."""
    from pipeline import localnet

    project, nets = _networks(env)
    statuses = localnet.status(project, nets)
    if json:
        print(jsonlib.dumps([s.as_dict() for s in statuses], indent=1))
    else:
        _print(statuses)


@task(help={"env": ENV_HELP})
@friendly
def reset(c: Context, env: str = "local") -> None:
    """Stop all networks and delete their state; the next up re-creates (and re-seeds) them."""
    from pipeline import ledger, localnet

    project, nets = _networks(env)
    localnet.reset(project, nets)
    print(f"stopped and deleted {project.state_dir / 'net'}")
    for archived in ledger.archive_releases(project.state_dir, env):
        print(f"archived release {archived.name}: its ledger is now in {archived}")
