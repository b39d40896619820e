"""`invoke propose`, `invoke track`, `invoke enact` and `invoke council.simulate`: the council
upgrade of production, step by step (the release runs the same functions of pipeline.governance).

`propose` remembers its motion in `<state>/council/<env>.json`, so the next commands find it
without an index; `--motion INDEX|latest` picks an open motion on chain instead.
"""

from __future__ import annotations

import json as jsonlib
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from pipeline.cli import friendly
from pipeline.cli.render import escape, make_console, spinner, stderr_lines
from pipeline.errors import PipelineError
from pipeline.project import Project, load_project
from pipeline.shorthash import short_hash

if TYPE_CHECKING:
    from pipeline import motions
    from pipeline.config import Environment

ENV_HELP = "environment (environments/<env>.toml) whose production council votes"
MOTION_HELP = "open motion index or 'latest' (default: the motion `invoke propose` opened)"
ARTIFACT_HELP = "artifact: code hash (artifacts/<hash>/) or directory"


def _context(env: str) -> tuple[Project, Environment]:
    from pipeline.config import load_environment

    project = load_project()
    return project, load_environment(env, project.root)


def status_line(status: motions.MotionStatus) -> str:
    """One line per update: votes, who is missing, and time left."""
    waiting = ", ".join(short_hash(a) for a in status.not_voted) or "nobody"
    left = format_span_seconds(status.seconds_left)
    return (
        f"motion #{status.index} on {status.collective}: {status.state}; "
        f"ayes {len(status.ayes)}/{status.threshold} "
        f"({', '.join(short_hash(a) for a in status.ayes) or '-'}), "
        f"nays {len(status.nays)} ({', '.join(short_hash(a) for a in status.nays) or '-'}), "
        f"not voted: {waiting}; block #{status.head}, closable from #{status.end}, "
        f"deadline #{status.deadline} ({status.blocks_left} blocks, ~{left})"
    )


def format_span_seconds(seconds: float) -> str:
    from pipeline.schedule import format_span

    return format_span(timedelta(seconds=seconds))


@task(
    help={
        "env": ENV_HELP,
        "artifact": ARTIFACT_HELP,
        "method": "authorize (authorize_upgrade, then apply) or set_code (the code inline)",
        "note": "where to write the proposal note for voters (default: <state>/council/)",
    }
)
@friendly
def propose(
    c: Context, artifact: str, env: str = "local", method: str = "authorize", note: str = ""
) -> None:
    """Open the council motion upgrading production to an artifact (or find the open one)."""
    from pipeline import governance, keys, motions, upgrade
    from pipeline.chain import connect

    if method not in upgrade.METHODS:
        raise PipelineError(f"unknown --method {method!r}: use authorize or set_code")
    project, environment = _context(env)
    keys.signer(environment, "council")  # a refused key is said before the wasm is loaded
    candidate = governance.load_candidate(project, artifact)
    note_path = (
        Path(note)
        if note
        else project.state_dir
        / "council"
        / f"proposal-{env}-{candidate.code_hash.removeprefix('0x')[:16]}.md"
    )
    with connect(environment, progress=stderr_lines()) as chain:
        motion = governance.propose(
            environment,
            chain,
            candidate,
            method=method,
            note_path=note_path,
        )
    motions.record_proposed(project.state_dir, environment.name, motion)
    verb = "already open" if motion.reused else "proposed"
    console = make_console()
    console.print(
        f"motion #{motion.index} {verb} on {motion.collective}: {motion.proposal_hash} "
        f"({motion.method} {motion.code_hash}), {motion.threshold} ayes needed, closable from "
        f"block #{motion.end}",
        soft_wrap=True,
    )
    console.print(f"note for voters: {escape(str(note_path))}", soft_wrap=True)


@task(
    help={
        "env": ENV_HELP,
        "motion": MOTION_HELP,
        "json": "print each update as a JSON line",
        "advance": "make one block at a time until the motion is decided (local networks "
        "only; always on for a local environment, whose blocks come only when made)",
        "deadline": "block at which voting counts as over (default: council.voting_blocks after "
        "the proposal, else the motion's end)",
    }
)
@friendly
def track(
    c: Context,
    env: str = "local",
    motion: str = "",
    json: bool = False,
    advance: bool = False,
    deadline: int = 0,
) -> None:
    """Follow the motion live (new heads), until it is approved, disapproved or over, with the
    members' attestations read from the chain."""
    from pipeline import motions, statements
    from pipeline.chain import connect
    from pipeline.config import blocks_on_demand

    project, environment = _context(env)
    console = make_console()

    with connect(environment, progress=stderr_lines()) as chain:
        chosen = motions.chosen_motion(project.state_dir, environment, chain, motion)
        attested = statements.Attestations(chain, chosen)  # read from the chain on each update

        def show(status: motions.MotionStatus) -> None:
            found = attested.tally(chain)
            if json:
                line = {**status.as_dict(), "attestations": found.as_dict()}
                print(jsonlib.dumps(line), flush=True)
                return
            console.print(escape(status_line(status)), soft_wrap=True)
            for text in found.describe():
                console.print(f"  {escape(text)}", soft_wrap=True)

        motions.track(
            environment,
            chain,
            chosen,
            deadline_block=deadline or None,
            # time passes on demand locally, as in a release
            advance=advance or blocks_on_demand(environment),
            on_update=show,
        )


@task(
    help={
        "env": ENV_HELP,
        "motion": MOTION_HELP,
        "artifact": ARTIFACT_HELP + " (default: the one the motion proposes)",
        "policy": "sudo fallback when the council did not approve: never, no-nays, always",
        "confirm_hash": "non-local environments: the code hash the sudo fallback may enact",
        "deadline": "block at which voting counts as over (as for track)",
        "json": "print the result as JSON",
    }
)
@friendly
def enact(
    c: Context,
    env: str = "local",
    motion: str = "",
    artifact: str = "",
    policy: str = "no-nays",
    confirm_hash: str = "",
    deadline: int = 0,
    json: bool = False,
) -> None:
    """Close an approved motion and apply the upgrade, or take the sudo fallback if allowed."""
    from pipeline import governance, keys, motions
    from pipeline.chain import connect
    from pipeline.policy import FALLBACK_POLICIES, check_confirmation

    if policy not in FALLBACK_POLICIES:
        raise PipelineError(
            f"unknown --policy {policy!r}: use one of {', '.join(FALLBACK_POLICIES)}"
        )
    project, environment = _context(env)
    # Everything that needs no chain is checked before connecting, the quick checks first: the
    # confirmation's form, the councillor's key, the motion `propose` recorded, the artifact.
    if confirm_hash:
        check_confirmation(confirm_hash, None)
    keys.signer(environment, "council")
    recorded = None if motion else motions.recorded_motion(project.state_dir, environment)
    chosen_artifact = artifact or (recorded.code_hash if recorded else "")
    offline = governance.load_candidate(project, chosen_artifact) if chosen_artifact else None
    if confirm_hash and offline is not None:
        check_confirmation(confirm_hash, offline.code_hash)
    with connect(environment, progress=stderr_lines()) as chain:
        chosen = recorded or motions.motion_from_chain(environment, chain, motion)
        candidate = offline or governance.load_candidate(project, chosen.code_hash)
        result = governance.enact(
            environment,
            chain,
            candidate,
            chosen,
            policy=policy,
            confirm_hash=confirm_hash or None,
            deadline_block=deadline or None,
        )
    if json:
        print(jsonlib.dumps(result.as_dict(), indent=1))
    else:
        console = make_console()
        console.print(f"{result.outcome}: {escape(result.reason)}", soft_wrap=True)
        for step in result.steps:
            console.print(f"  {escape(step)}", soft_wrap=True)
        if result.spec_version is not None:
            console.print(
                f"  live: {result.code_hash} spec_version {result.spec_version}", soft_wrap=True
            )
    if not result.ok:
        raise Exit(f"error: {result.reason}", code=1)


@task(
    help={
        "env": ENV_HELP + " (local only)",
        "motion": MOTION_HELP,
        "scenario": "approve (enough ayes), reject (all nay), silent (nobody), split (one nay, "
        "ayes one short)",
        "attest": "then this many dev councillors rebuild the motion's commit (the build cache "
        "may serve it) and post their statements, as `invoke verify --attest` does",
    }
)
@friendly
def simulate(
    c: Context, scenario: str, env: str = "local", motion: str = "", attest: int = 0
) -> None:
    """Local networks: make the dev councillors vote on the motion as the scenario says (and
    attest it)."""
    from pipeline import governance, motions
    from pipeline import verify as verification
    from pipeline.chain import connect

    if scenario not in governance.SCENARIOS:
        raise PipelineError(
            f"unknown --scenario {scenario!r}: use one of {', '.join(governance.SCENARIOS)}"
        )
    project, environment = _context(env)
    governance.require_simulation_allowed(environment)  # before connecting anywhere
    with connect(environment, progress=stderr_lines()) as chain:
        chosen = motions.chosen_motion(project.state_dir, environment, chain, motion)
        votes = governance.simulate_votes(environment, chain, chosen, scenario)
        for vote in votes:
            done = "voted" if vote.submitted else "had already voted"
            print(f"{vote.member} {done} {'aye' if vote.approve else 'nay'}")
        if not votes:
            print("nobody voted (silent)")
        if attest:
            with spinner() as progress:
                attested = verification.rehearse_attestations(
                    project, environment, chain, chosen, attest, progress=progress
                )
            for member, posted in attested:
                print(f"{member} {'attested' if posted else 'had already attested'}")


ns = Collection("council", simulate)
