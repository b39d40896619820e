"""Deploy a runtime to a staging network with its sudo key: preflight, upgrade, verification.
Under sudo governance the same deploy is production's upgrade (the release's enact stage).

The order is the rule "refuse early, effects before submissions": the blob is checked offline
(valid wasm, readable version, its genesis builds) and the key resolved, then the chain is read
(is the code already there? spec name, spec version, code size limit, sudo key) and only then
is anything signed, through `submit_recorded` so the release ledger holds the intent first.
After the upgrade the chain must prove it took: `System.CodeUpdated`, the new version live,
blocks still made, `:code` hashing to the artifact, and every pallet's storage version equal
to the one its code declares.

The candidate and the checks of a chain against it (size limit, live check) are `upgrade`'s.

`dry_run` rehearses the same upgrade on a throwaway chopsticks fork of the target, with a dev
key made sudo there, and reports events, weight and the runtime's migration logs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Final, Literal

from substrateinterface import Keypair

from pipeline import config, devrpc, keys, localnet, metadata
from pipeline.chain import Call, Chain, Event, Receipt, connect
from pipeline.config import Environment, Governance, Network
from pipeline.errors import PipelineError
from pipeline.policy import (
    Preflight,
    chain_info,
    check_signer_is_sudo,
    confirmation_problem,
    preflight,
)
from pipeline.project import DEFAULT_PRESET, Project
from pipeline.submission import Recorder, submit_recorded
from pipeline.upgrade import (
    METHODS,
    UNCHECKED_WEIGHT,
    Candidate,
    Method,
    StorageVersionRow,
    check_live,
    code_size_limit,
    load_candidate,
    next_block,
    wait_for_migrations,
)

log = logging.getLogger(__name__)

Step = Literal["done", "set_code", "authorize", "apply"]

DRY_RUN_KEY: Final = "//Alice"
DRY_RUN_FUNDS: Final = 10**21  # enough for any fee on a fork, whatever the token's decimals
MIGRATION_LOG_LEVEL: Final = 4  # debug: what FRAME and migrations log while upgrading
LOG_LEVELS: Final = ("", "ERROR", "WARN", "INFO", "DEBUG", "TRACE")
RUN_BLOCK_TIMEOUT: Final = 120.0
FORK_READY_TIMEOUT: Final = 120.0


@dataclass(frozen=True)
class DeployResult:
    """What a deploy did and found; `skipped` when the code was already on chain."""

    network: str
    endpoint: str
    method: Method
    code_hash: str
    spec_before: int
    spec_after: int
    skipped: bool
    dry_run: bool = False
    block: int | None = None  # the block that included the upgrade
    activated_at: int | None = None  # the first block built by the new code
    head: int | None = None  # the block made after it, proving blocks continue
    events: tuple[str, ...] = ()
    storage_versions: tuple[StorageVersionRow, ...] = ()
    warnings: tuple[str, ...] = ()
    weight: dict[str, Any] = field(default_factory=dict)
    logs: tuple[str, ...] = ()
    activation_seconds: float | None = None  # from signing to the new version being live

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["storage_versions"] = [{**asdict(r), "ok": r.ok} for r in self.storage_versions]
        return data


class DeployVerificationError(PipelineError):
    """The upgrade went in, but the chain does not show what it should; `result` says what."""

    def __init__(self, message: str, result: DeployResult) -> None:
        super().__init__(message)
        self.result = result


# --- pure decisions ------------------------------------------------------------------------------


def next_step(on_chain_code: str, candidate: str, authorized: str | None, method: Method) -> Step:
    """What the upgrade still needs, from what the chain shows: nothing when the code is there;
    with `authorize`, the authorization unless that same hash is already authorized."""
    if on_chain_code == candidate:
        return "done"
    if method == "set_code":
        return "set_code"
    return "apply" if authorized == candidate else "authorize"


def staging_only(
    network: Network, dry_run: bool, governance: Governance | None = "collective"
) -> str | None:
    """Production changes through its council (`invoke propose`), never by a staging deploy;
    rehearsing its upgrade on a fork (`dry_run`) is fine. Under sudo governance this deploy is
    production's upgrade (confirmed by hash on real chains: `production_unconfirmed`)."""
    if network.role == "production" and not dry_run and governance != "sudo":
        return (
            f"{network.name} is production: it is upgraded through the council "
            "(`invoke propose`, `invoke enact`); rehearse it with --dry-run"
        )
    return None


def production_unconfirmed(
    network: Network, local: bool, confirm_hash: str | None, code_hash: str
) -> str | None:
    """Why a sudo upgrade of a real production may not go ahead: it must name the code it sets."""
    problem = None if local else confirmation_problem(confirm_hash, code_hash)
    if network.role != "production" or problem is None:
        return None
    return f"{network.name} is production, upgraded by sudo: its upgrade {problem}"


def refusal(checks: Preflight, network: str) -> PipelineError:
    return PipelineError(f"refusing to deploy to {network}: " + "; ".join(checks.errors))


# --- deploy --------------------------------------------------------------------------------------
def deploy(
    env: Environment,
    network: str,
    artifact: Path | Candidate,
    *,
    method: Method = "set_code",
    dry_run: bool = False,
    preset: str = DEFAULT_PRESET,
    recorder: Recorder | None = None,
    stage: str = "deploy",
    confirm_hash: str | None = None,
    progress: Callable[[str], None] = log.info,
) -> DeployResult:
    """Upgrade `network` (a role or name of `env`) to `artifact` (a blob's path, or the
    candidate already loaded from it) with the sudo key.

    Idempotent: when `:code` already is the artifact nothing is submitted (`skipped`), but the
    chain is still verified. Raises PipelineError before submitting anything when a check
    fails, DeployVerificationError when the upgrade went in but the chain does not show it.
    `preset` names the genesis preset whose storage gives the in-code storage versions.
    Production is upgraded here only under sudo governance, and on a non-local environment only
    with `confirm_hash` naming the candidate.
    """
    if method not in METHODS:
        raise PipelineError(f"unknown method {method!r}: use one of {', '.join(METHODS)}")
    net = config.network(env, network)
    refused = staging_only(net, dry_run, env.governance)
    if refused:
        raise PipelineError(refused)
    sudo = None if dry_run else keys.signer(env, "sudo")  # refused before the wasm is loaded
    candidate = artifact if isinstance(artifact, Candidate) else load_candidate(artifact, preset)
    unconfirmed = production_unconfirmed(net, env.local, confirm_hash, candidate.code_hash)
    if unconfirmed and not dry_run:
        raise PipelineError(unconfirmed)
    if sudo is None:
        return _dry_run(env, net, candidate, method, progress)
    job = _Job(net, candidate, sudo, method, recorder, stage, progress, env.inclusion_timeout)
    with connect(env, net, progress) as chain:
        return _deploy_on(chain, job)


@dataclass(frozen=True)
class _Job:
    """One upgrade to carry out: what, where, how, signed by whom, journaled where."""

    net: Network
    candidate: Candidate
    keypair: Keypair
    method: Method
    recorder: Recorder | None
    stage: str
    progress: Callable[[str], None]
    timeout: float  # the environment's inclusion timeout: how long one block may take

    @property
    def produces_blocks(self) -> bool:
        """Chopsticks makes blocks only when asked; other nodes make them on their own."""
        return self.net.chopsticks


def _deploy_on(chain: Chain, job: _Job) -> DeployResult:
    candidate, name = job.candidate, job.net.name
    before = chain.runtime_version()
    spec_before = int(before["specVersion"])
    authorized = metadata.authorized_upgrade(chain) if job.method == "authorize" else None
    step = next_step(chain.code_hash(), candidate.code_hash, authorized, job.method)
    base = DeployResult(
        network=name,
        endpoint=chain.endpoint,
        method=job.method,
        code_hash=candidate.code_hash,
        spec_before=spec_before,
        spec_after=spec_before,
        skipped=step == "done",
    )
    if step == "done":
        job.progress(f"{name} already runs {candidate.code_hash}: nothing to submit")
        return _verify(chain, job, base)
    checks = _chain_preflight(chain, candidate, before, job.keypair.ss58_address)
    if not checks.ok:
        raise refusal(checks, name)
    for warning in checks.warnings:
        job.progress(f"warning: {warning}")
    started = time.monotonic()
    receipts = _upgrade(chain, job, step)
    included = receipts[-1].block_number
    activation = next_block(chain, included, job.produces_blocks)
    version = int(chain.runtime_version()["specVersion"])
    seconds = time.monotonic() - started
    job.progress(
        f"{name}: spec_version {spec_before} -> {version} in block #{included}, "
        f"live from #{activation} ({seconds:.1f}s)"
    )
    upgraded = replace(
        base,
        block=included,
        activated_at=activation,
        events=tuple(_event_text(e) for receipt in receipts for e in receipt.events),
        warnings=tuple(checks.warnings),
        weight=_weights(chain, receipts[-1], activation),
        activation_seconds=seconds,
    )
    return _verify(chain, job, upgraded)


def _chain_preflight(
    chain: Chain, candidate: Candidate, rpc_version: Mapping[str, Any], signer: str | None
) -> Preflight:
    """The preflight against the chain's runtime, plus (given a signer) the sudo key check."""
    runtime = metadata.chain_metadata(chain)
    current = chain_info(rpc_version, len(chain.code()))
    limit = code_size_limit(runtime.constant("System", "BlockLength"))
    checks = preflight(candidate.info, current, limit)
    if signer is None:
        return checks
    sudo = chain.query("Sudo", "Key") if "Sudo" in runtime.pallet_names() else None
    sudo_error = check_signer_is_sudo(signer, None if sudo is None else str(sudo))
    return Preflight(checks.errors + ([sudo_error] if sudo_error else []), checks.warnings)


def _upgrade(chain: Chain, job: _Job, step: Step) -> list[Receipt]:
    """Submit what `step` says (authorize first when needed) and check that the code changed;
    the receipts in order, the last one holding System.CodeUpdated."""
    code = "0x" + job.candidate.blob.raw.hex()
    short = job.candidate.code_hash[:18] + "…"
    receipts: list[Receipt] = []

    def submit(call: Call, summary: str) -> None:
        job.progress(f"{job.net.name}: submitting {summary}")
        receipt = submit_recorded(
            chain,
            call,
            job.keypair,
            recorder=job.recorder,
            stage=job.stage,
            network=job.net.name,
            summary=summary,
        )
        _check_sudo_result(chain, receipt, summary)
        receipts.append(receipt)

    if step == "set_code":
        set_code = Call("System", "set_code", {"code": code})
        submit(
            Call("Sudo", "sudo_unchecked_weight", {"call": set_code, "weight": UNCHECKED_WEIGHT}),
            f"Sudo.sudo_unchecked_weight(System.set_code({short}))",
        )
    else:
        if step == "authorize":
            authorize = Call("System", "authorize_upgrade", {"code_hash": job.candidate.code_hash})
            submit(
                Call("Sudo", "sudo", {"call": authorize}),
                f"Sudo.sudo(System.authorize_upgrade({short}))",
            )
        submit(
            Call("System", "apply_authorized_upgrade", {"code": code}),
            f"System.apply_authorized_upgrade({short})",
        )
    last = receipts[-1]
    if not last.find("System", "CodeUpdated"):
        names = ", ".join(_event_text(e) for e in last.events) or "none"
        raise PipelineError(
            f"the upgrade was included in block #{last.block_number} of {job.net.name} without "
            f"System.CodeUpdated (events: {names}): check the chain's OnSetCode"
        )
    return receipts


def _check_sudo_result(chain: Chain, receipt: Receipt, summary: str) -> None:
    """Sudo reports the inner call's failure in `Sudid`, not as a failed extrinsic."""
    for event in receipt.find("Sudo", "Sudid"):
        result = event.attributes.get("sudo_result") if isinstance(event.attributes, dict) else None
        if isinstance(result, Mapping) and "Err" in result:
            raise PipelineError(
                f"{summary} was refused by the chain in block #{receipt.block_number}: "
                f"{chain.dispatch_error(result['Err'])}"
            )


def _weights(chain: Chain, receipt: Receipt, activation: int) -> dict[str, Any]:
    """The upgrade extrinsic's weight, and what the first block on the new code consumed
    (its mandatory part holds on_initialize and the migrations)."""
    success = receipt.find("System", "ExtrinsicSuccess")
    info = success[0].attributes.get("dispatch_info", {}) if success else {}
    return {
        "extrinsic": info.get("weight") if isinstance(info, Mapping) else None,
        "activation_block": chain.query(
            "System", "BlockWeight", block_hash=chain.block_hash(activation)
        ),
    }


def _verify(chain: Chain, job: _Job, result: DeployResult) -> DeployResult:
    """Blocks continue, :code is the artifact, versions and storage versions are the candidate's."""
    head = next_block(chain, chain.block_number(), job.produces_blocks)
    if waited := wait_for_migrations(chain, job.produces_blocks, job.timeout):
        job.progress(f"{result.network}: multi-block migrations ended after {waited} blocks")
        head = chain.block_number()
    live = check_live(chain, job.candidate, head)
    checked = replace(
        result, spec_after=live.spec_version, head=live.head, storage_versions=live.storage_versions
    )
    if live.problems:
        raise DeployVerificationError(
            f"{result.network} at block #{live.head}: " + "; ".join(live.problems), checked
        )
    job.progress(
        f"{result.network}: verified at block #{live.head}: :code is {job.candidate.code_hash}, "
        f"{len(live.storage_versions)} pallets at their in-code storage versions"
    )
    return checked


def _event_text(event: Event) -> str:
    attributes = event.attributes
    if not attributes:
        return f"{event.module}.{event.name}"
    text = json.dumps(attributes, separators=(",", ":"), default=str)
    return f"{event.module}.{event.name} {text if len(text) <= 160 else text[:159] + '…'}"


# --- dry run -------------------------------------------------------------------------------------
def _dry_run(
    env: Environment,
    net: Network,
    candidate: Candidate,
    method: Method,
    progress: Callable[[str], None],
) -> DeployResult:
    """The upgrade on a throwaway fork of the target, with a dev key made sudo on the fork."""
    with connect(env, net, progress) as target:
        before = target.runtime_version()
        if target.code_hash() == candidate.code_hash:
            spec = int(before["specVersion"])
            progress(f"{net.name} already runs {candidate.code_hash}: nothing to rehearse")
            return DeployResult(
                net.name, net.endpoint, method, candidate.code_hash, spec, spec, True, True
            )
        checks = _chain_preflight(target, candidate, before, None)  # the fork gets its own sudo
        if not checks.ok:
            raise refusal(checks, net.name)
    with throwaway_fork(net.endpoint, candidate.path, progress) as fork:
        progress(f"dry run: forked {net.endpoint} at {fork.endpoint}")
        # A well-known dev key, on purpose: it only ever signs on this machine's throwaway fork.
        key = keys.local_dev_keypair(fork.endpoint, DRY_RUN_KEY, env.ss58_format)
        _make_sudo(fork.endpoint, key)
        fork_net = replace(net, kind="chopsticks-fork", endpoint=fork.endpoint, port=fork.port)
        job = _Job(
            fork_net,
            candidate,
            key,
            method,
            None,
            "dry-run",
            _prefixed("fork: ", progress),
            env.inclusion_timeout,
        )
        with connect(env, fork_net, job.progress) as chain:
            try:
                result = _deploy_on(chain, job)
            except DeployVerificationError as exc:
                failed = _rehearsal(exc.result, net.endpoint, fork.endpoint)
                raise DeployVerificationError(f"dry run on a fork of {exc}", failed) from None
        return _rehearsal(result, net.endpoint, fork.endpoint)


def _prefixed(prefix: str, progress: Callable[[str], None]) -> Callable[[str], None]:
    return lambda line: progress(prefix + line)


def _rehearsal(result: DeployResult, target: str, fork: str) -> DeployResult:
    """A fork's result as the target's dry run, with the logs of the first block on the new
    code: chopsticks re-runs that block (`dev_runBlock`) and returns the runtime's own log."""
    logs: list[str] = []
    if result.activated_at is not None:
        phases = devrpc.run_block(fork, result.activated_at, RUN_BLOCK_TIMEOUT)
        logs = migration_log_lines(phases)
    return replace(result, endpoint=target, dry_run=True, logs=tuple(logs))


def migration_log_lines(phases: Sequence[Mapping[str, Any]]) -> list[str]:
    """The runtime's log from a re-run block's initialization, where on_runtime_upgrade (the
    migrations) runs: `LEVEL target: message`, down to debug."""
    lines = []
    for phase in phases:
        if phase.get("phase") != "Initialization":
            continue
        for entry in phase.get("logs") or []:
            level = int(entry.get("level") or 0)
            if 1 <= level <= MIGRATION_LOG_LEVEL:
                name = LOG_LEVELS[level]
                lines.append(f"{name} {entry.get('target', 'runtime')}: {entry.get('message', '')}")
    return lines


def _make_sudo(endpoint: str, key: Keypair) -> None:
    """On a fork only: make `key` the sudo key and give it funds for fees (dev_setStorage)."""
    with Chain(endpoint) as chain:
        account = chain.query("System", "Account", [key.ss58_address]) or {}
    data = {**account.get("data", {}), "free": DRY_RUN_FUNDS}
    info = {**account, "providers": max(1, int(account.get("providers", 0))), "data": data}
    devrpc.set_storage(
        endpoint,
        {
            "Sudo": {"Key": key.ss58_address},
            "System": {"Account": [[[key.ss58_address], _strings(info)]]},
        },
    )


def _strings(value: Any) -> Any:
    """Numbers as decimal strings: u128 values do not survive JSON numbers in JavaScript."""
    if isinstance(value, Mapping):
        return {k: _strings(v) for k, v in value.items()}
    if isinstance(value, bool) or not isinstance(value, int):
        return value
    return str(value)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((localnet.HOST, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def throwaway_fork(
    upstream: str, wasm: Path, progress: Callable[[str], None] = log.info
) -> Iterator[localnet.LocalNet]:
    """A chopsticks fork of `upstream` at its head, on a free port, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="pipeline-fork-") as tmp:
        project = Project(root=Path(tmp), runtime_path="", runtime_package="", suites={})
        port = _free_port()
        net = localnet.LocalNet(f"dry-run-{port}", port, fork_endpoint=upstream)
        try:
            localnet.start(
                project,
                {net.name: net},
                net.name,
                wasm,
                ready_timeout=FORK_READY_TIMEOUT,
                progress=progress,
            )
            yield net
        finally:
            localnet.stop(project, net)
            shutil.rmtree(localnet.net_dir(project, net.name), ignore_errors=True)
