"""The release state machine: look at the ledger and the world, derive what is left, act.

A release is converged, not scripted: `pending_stages` compares what the ledger says each stage
did with what the release needs now (the candidate's current commit, the artifact built from
it) and returns the stages still to run, in order. Each stage checks the chain for its effect
before acting and journals its result, so running the release again after any interruption
continues where it stopped and never submits twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal, cast

from pipeline import (
    builder,
    config,
    deploy,
    gitops,
    governance,
    keys,
    localnet,
    metadata,
    migrations,
    motions,
    nodebuild,
    statements,
    store,
    upgrade,
)
from pipeline.chain import Chain, connect
from pipeline.config import Environment, load_environment
from pipeline.errors import PipelineError
from pipeline.faults import crash_point
from pipeline.freeze import check_freeze, tag_freeze
from pipeline.ledger import Ledger, releases_dir
from pipeline.plan import STAGES, Stage, load_plan
from pipeline.policy import FallbackPolicy, FreezeRule, check_confirmation, governance_problem
from pipeline.progress import Heartbeat
from pipeline.project import Project
from pipeline.report import report_data, write_report
from pipeline.schedule import (
    done_from_ledger,
    milestone_table,
    outstanding_by_subsystem,
    release_deadline_blocks,
)
from pipeline.suites import run_suite
from pipeline.verify import rehearse_attestations

log = logging.getLogger(__name__)

# Stages whose result depends on the artifact: they are stale when the build changed.
ARTIFACT_STAGES = tuple(stage for stage in STAGES if stage not in ("build", "freeze"))
SUDO_GOVERNED = "production is upgraded by sudo"  # governance = "sudo": no motion, no votes


@dataclass(frozen=True)
class StageView:
    """One line of `release.status`: a stage, whether it is current, and why."""

    stage: str
    state: str  # done | stale | next | pending
    detail: str


def stage_current(stage: str, done: Mapping[str, Mapping[str, Any]], candidate_commit: str) -> bool:
    """Whether the ledger's result for `stage` still holds for the candidate as it is now.

    The build holds while the candidate's commit is the one it built; the freeze tag holds once
    made (moves of the candidate after it are judged by the freeze rule, not here); every other
    stage holds while it ran with the artifact the current build produced.
    """
    if stage not in done:
        return False
    if stage == "build":
        return done["build"].get("commit") == candidate_commit
    if stage == "freeze":
        return True
    build = done.get("build")
    if build is None or not stage_current("build", done, candidate_commit):
        return False
    return done[stage].get("artifact") == build.get("artifact")


def pending_stages(done: Mapping[str, Mapping[str, Any]], candidate_commit: str) -> list[str]:
    """The stages still to run, in pipeline order."""
    return [stage for stage in STAGES if not stage_current(stage, done, candidate_commit)]


def status_views(
    done: Mapping[str, Mapping[str, Any]], candidate_commit: str, failed: str | None = None
) -> list[StageView]:
    """Every stage with its state, for `release.status` and `release --dry-run`."""
    pending = pending_stages(done, candidate_commit)
    views = []
    for stage in STAGES:
        if stage not in pending:
            views.append(StageView(stage, "done", summarize(stage, done[stage])))
        elif stage in done:
            views.append(StageView(stage, "stale", "ran with an older candidate: runs again"))
        elif pending and stage == pending[0]:
            detail = "failed last time: runs again" if stage == failed else "runs next"
            views.append(StageView(stage, "next", detail))
        else:
            views.append(StageView(stage, "pending", ""))
    return views


def summarize(stage: str, result: Mapping[str, Any]) -> str:
    """A short human line for a stage's journaled result."""
    parts = [
        f"{key}={result[key]}"
        for key in ("artifact", "spec_version", "tag", "passed", "failed", "outcome")
        if key in result
    ]
    motion = result.get("motion")
    if isinstance(motion, Mapping):
        parts.append(
            f"motion #{motion.get('index')}" + (" (reused)" if motion.get("reused") else "")
        )
    attestations = result.get("attestations")
    if isinstance(attestations, Mapping) and any(
        attestations.get(key) for key in ("matches", "mismatches", "ignored")
    ):  # only where members gave some: a refusal for want of them says so in its reason
        parts.append(str(attestations["summary"]))
    if result.get("skipped"):
        parts.append("effect already on chain")
    return ", ".join(parts) or "done"


# --- acting: one stage at a time, each journaled ------------------------------------------------

Votes = Literal["approve", "reject", "silent", "split"]


@dataclass(frozen=True)
class ReleaseSettings:
    """What a release is: stored in the ledger's first record, so a resume needs no options."""

    release_id: str
    candidate: str  # git ref
    env: str
    policy: FallbackPolicy
    plan: str | None
    votes: Votes  # what the local councillors do (local environments only)
    confirm_hash: str | None = None  # non-local sudo fallback: the code hash, confirmed

    def ledger_fields(self) -> dict[str, Any]:
        fields = asdict(self)
        del fields["release_id"], fields["confirm_hash"]  # the id names the ledger; a flag
        return fields

    @classmethod
    def from_ledger(cls, release_id: str, record: Mapping[str, Any]) -> ReleaseSettings:
        return cls(
            release_id=release_id,
            candidate=str(record["candidate"]),
            env=str(record["env"]),
            policy=record["policy"],
            plan=record.get("plan"),
            votes=record.get("votes", "approve"),
        )


def no_longer_live(release_id: str, env: Environment, endpoint: str, code: str, spec: int) -> str:
    """Why a release whose stages are all done is not complete, and what to do about it."""
    said = (
        f"release {release_id}: every stage is journaled done, but production ({endpoint}) runs"
        f" {code} (spec_version {spec}), not the release's artifact"
    )
    if env.local:
        return (
            f"{said} (were the local networks reset?); to rehearse again run `invoke"
            f" net.reset --env {env.name}` (it archives this environment's release ledgers), or"
            " start the release under a new id (--id NAME)"
        )
    return f"{said}: something else changed production's code; investigate before releasing again"


def check_governance(env: Environment, chain: Chain) -> None:
    """Production (`chain`) has what the environment's governance needs: one line naming what
    it lacks, before anything is submitted to it."""
    council = env.council
    problem = governance_problem(
        config.require_governance(env),
        metadata.chain_metadata(chain).pallet_names(),
        network=f"production ({chain.endpoint})",
        collective=council.collective if council else None,
        root_dispatch=council.root_dispatch if council else None,
    )
    if problem is not None:
        raise PipelineError(f"{problem} (environment {env.name})")


def release_dir(project: Project, release_id: str) -> Path:
    return releases_dir(project.state_dir) / release_id


DEPLOY_STAGES: Final[Mapping[str, str]] = {"deploy-reckless": "reckless", "deploy-lts": "lts"}


class Release:
    """One run of the state machine over a release's ledger."""

    def __init__(
        self,
        project: Project,
        settings: ReleaseSettings,
        ledger: Ledger,
        progress: Callable[[str], None] = log.info,
    ) -> None:
        self.project = project
        self.settings = settings
        self.ledger = ledger
        self.progress = progress
        self.env = load_environment(settings.env, project.root)
        self.plan = load_plan(settings.plan, project.root) if settings.plan else None
        self.repo = gitops.open_repo(project.root)
        self.dir = release_dir(project, settings.release_id)
        self._loaded: upgrade.Candidate | None = None
        self._restarting: dict[str, Future[None]] = {}  # role -> its early fresh start
        if settings.votes != "approve" and not self.env.local:
            raise PipelineError(
                f"--votes {settings.votes} simulates councillors: only on local environments,"
                f" and {self.env.name} is not local; drop --votes"
            )
        if settings.confirm_hash is not None:
            check_confirmation(settings.confirm_hash, None)
        self.governance = config.require_governance(self.env)
        # refused now, not after the build and the suites; staging deploys always take sudo
        for which in ("sudo", "council") if self.governance == "collective" else ("sudo",):
            keys.signer(self.env, which)

    # -- observing --------------------------------------------------------------------------
    def candidate_commit(self) -> str:
        return gitops.resolve_runtime(self.repo, self.project, self.settings.candidate).commit

    def freeze_rule(self) -> FreezeRule:
        return self.plan.freeze if self.plan else FreezeRule()

    def pending(self) -> list[str]:
        """Stages left, after checking the freeze rule against where the candidate is now."""
        state = self.ledger.state
        if state.aborted:
            raise PipelineError(
                f"release {self.settings.release_id} was aborted ({state.aborted}): start a new"
                " release id"
            )
        commit = self.candidate_commit()
        check = check_freeze(
            self.repo,
            self.settings.release_id,
            commit,
            self.freeze_rule(),
            self.project.runtime_path,
            gitops.pipeline_pathspecs(self.project),
        )
        if not check.ok:
            raise PipelineError(
                f"{check.describe()}: only bugfixes may land after the freeze; revert them or"
                " start a new release"
            )
        return pending_stages(state.done, commit)

    # -- acting -----------------------------------------------------------------------------
    def run(self) -> None:
        """Run every pending stage in order; a failure is journaled and raised."""
        for warning in self.ledger.state.warnings():
            self.progress(f"warning: {warning}")
        if any(net.nodes for net in localnet.networks_for(self.env, self.project.preset).values()):
            nodebuild.binary_for_networks(self.project, self.progress)  # before any network starts
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fresh-networks") as pool:
            self._restarting = self._restart_early(pool, self.pending())
            try:
                while pending := self.pending():
                    self.run_stage(pending[0])
            finally:
                self._restarting = {}
        self.check_still_live()

    def _restart_early(
        self, pool: ThreadPoolExecutor, pending: list[str]
    ) -> dict[str, Future[None]]:
        """Start the fresh staging networks this run's deploys need, side by side and in the
        background from the first stage on: a chopsticks start costs seconds of node start-up
        each. Early is the same state: reckless starts from genesis, and lts forks production,
        which nothing before deploy-lts touches."""
        nets = localnet.networks_for(self.env, self.project.preset)
        names = {
            role: network.name
            for stage, role in DEPLOY_STAGES.items()
            if stage in pending and (network := config.network(self.env, role)).name in nets
        }
        if not names:
            return {}
        # Production first, here: the fork starts from it and the migrations stage reads it
        # right after the build; starting it twice at once races.
        self._production_up()

        def restart() -> None:
            for name in names.values():
                localnet.stop(self.project, nets[name])
            localnet.up(self.project, nets, list(names.values()), progress=self.progress)

        started = pool.submit(restart)
        return dict.fromkeys(names, started)

    def check_still_live(self) -> None:
        """A release is complete only while production runs its artifact: the ledger says
        what was done, the chain whether it still holds (a reset network does not)."""
        with self._production() as chain:
            on_chain = chain.code_hash()
            spec = int(chain.runtime_version()["specVersion"])
            endpoint = chain.endpoint
        if on_chain != self._artifact():
            raise PipelineError(
                no_longer_live(self.settings.release_id, self.env, endpoint, on_chain, spec)
            )

    def run_stage(self, stage: str) -> dict[str, Any]:
        action = STAGE_ACTIONS[cast(Stage, stage)]
        self.ledger.stage_started(stage)
        self.progress(f"{stage}: running")
        started = time.monotonic()
        try:
            result = action(self)
        except PipelineError as exc:
            self.ledger.stage_failed(stage, str(exc))
            self.write_report()
            raise PipelineError(f"{stage}: {exc}") from exc
        result["seconds"] = round(time.monotonic() - started, 1)
        self.ledger.stage_done(stage, result)
        crash_point(f"after:{stage}")
        self.progress(f"{stage}: done ({summarize(stage, result)})")
        self.write_report()
        return result

    def write_report(self) -> Path:
        records = self.ledger.records
        rows = (
            milestone_table(self.plan, done_from_ledger(records), datetime.now(UTC))
            if self.plan
            else []
        )
        data = report_data(records, rows, written_at=datetime.now(UTC))
        return write_report(self.dir, data)[1]

    # -- the stages -------------------------------------------------------------------------
    def _done(self, stage: str) -> Mapping[str, Any]:
        return cast(Mapping[str, Any], self.ledger.state.done[stage])

    def _artifact(self) -> str:
        return str(self._done("build")["artifact"])

    def _artifact_path(self) -> Path:
        """The compressed blob of the build: what goes on chain."""
        return Path(self._done("build")["blob"])

    def _candidate(self) -> upgrade.Candidate:
        """The build's blob as every later stage checks it, loaded once per run of the release
        (a new build, a new candidate)."""
        path = self._artifact_path()
        if self._loaded is None or self._loaded.path != path:
            self._loaded = upgrade.load_candidate(path, self.project.preset)
        return self._loaded

    def _build(self) -> dict[str, Any]:
        with Heartbeat(self.progress) as heartbeat:  # a cold build runs for many minutes
            result = builder.build(self.project, self.settings.candidate, progress=heartbeat)
        spec = result.compressed.version.spec_version
        if self.plan is not None and spec != self.plan.spec_version:
            raise PipelineError(
                f"the candidate carries spec_version {spec}, the plan {self.plan.name} expects"
                f" {self.plan.spec_version}: bump the runtime or fix the plan"
            )
        return {
            "commit": result.digest["commit"],
            "artifact": result.compressed.blake2_256,
            "blob": str(store.artifact_blob(result.artifact_dir, self.project.runtime_package)),
            "spec_version": spec,
            "cached": result.cached,
        }

    def _migrations(self) -> dict[str, Any]:
        """The migration gate before anything touches a network: the candidate's try-runtime
        build on production's state, and the diff's verdicts against production's code."""
        with self._production() as chain:
            problems = migrations.diff_problems(chain.code(), self._candidate().blob)
        report = migrations.gate_migrations(
            self.project,
            self.env,
            "production",
            ref=str(self._done("build")["commit"]),
            progress=self.progress,
        )
        for line in report.lines():
            self.progress(f"migrations: {line}")
        if problems:
            raise PipelineError(f"migration missing: {problems[0]}")
        if report.problem is not None:
            raise PipelineError(f"migrations refused: {report.problem}")
        return {
            "artifact": self._artifact(),
            "migrations": report.as_dict(),
            "report_lines": report.lines(),
        }

    def _fresh_network(self, role: str) -> None:
        """Restart a chopsticks network of this environment from scratch (reckless: production's
        genesis; lts: a fork of production's head). Submissions journaled against the old chain
        are closed: that chain is gone."""
        network = config.network(self.env, role)
        nets = localnet.networks_for(self.env, self.project.preset)
        if network.name not in nets:
            return  # a real endpoint: nothing of ours to restart
        if role in self._restarting:
            self._restarting.pop(role).result()  # started early by run(); its error is raised
        else:
            localnet.stop(self.project, nets[network.name])
            localnet.up(self.project, nets, [network.name], progress=self.progress)
        for intent in self.ledger.state.unresolved:
            if intent.network == network.name:
                self.ledger.result(
                    intent.id,
                    success=False,
                    block_hash=None,
                    block_number=None,
                    error="the network was restarted fresh: this submission's chain is gone",
                )

    def _deploy_to(self, role: str, stage: str) -> dict[str, Any]:
        self._fresh_network(role)
        result = deploy.deploy(
            self.env,
            role,
            self._candidate(),
            recorder=self.ledger,
            stage=stage,
            progress=self.progress,
        )
        return {
            "artifact": self._artifact(),
            "network": result.network,
            "spec_version": result.spec_after,
            "block": result.block,
            "skipped": result.skipped,
        }

    def _deploy_reckless(self) -> dict[str, Any]:
        return self._deploy_to("reckless", "deploy-reckless")

    def _deploy_lts(self) -> dict[str, Any]:
        return self._deploy_to("lts", "deploy-lts")

    def _suite(self, suite: str, role: str) -> dict[str, Any]:
        result = run_suite(
            self.project, self.env, suite, self.dir, network=role, artifact=self._artifact_path()
        )
        summary = {
            "artifact": self._artifact(),
            "passed": result.passed,
            "failed": result.failed,
            "skipped": result.skipped,
            "junit": result.junit,
        }
        if not result.ok:
            owners = ""
            if self.plan is not None:
                outstanding = outstanding_by_subsystem(
                    self.plan, [(f.nodeid, f.markers) for f in result.failures]
                )
                owners = "; ".join(
                    f"{name} ({item.owner}): {len(item.tests)} failing"
                    for name, item in outstanding.items()
                )
            raise PipelineError(
                f"{suite} suite: {result.failed} failed, {result.passed} passed"
                + (f" — {owners}" if owners else "")
                + f"; see {result.junit}"
            )
        return summary

    def _suite_subsystem(self) -> dict[str, Any]:
        return self._suite("subsystem", "reckless")

    def _suite_final(self) -> dict[str, Any]:
        return self._suite("final", "lts")

    def _freeze(self) -> dict[str, Any]:
        commit = str(self._done("build")["commit"])
        tag = tag_freeze(self.repo, self.settings.release_id, commit, self._artifact())
        return {"tag": tag, "commit": commit}

    def _production_up(self) -> None:
        nets = localnet.networks_for(self.env, self.project.preset)
        production = config.network(self.env, "production")
        if production.name in nets:
            localnet.up(self.project, nets, [production.name], progress=self.progress)

    def _production(self) -> Chain:
        self._production_up()
        return connect(self.env, progress=self.progress)

    def _motion(self) -> motions.Motion:
        return motions.Motion.from_dict(self._done("propose")["motion"])

    def _deadline_block(self, motion: motions.Motion) -> int | None:
        """The plan's Release deadline in blocks after the proposal (None: the motion's end)."""
        if self.plan is None or motion.proposed_block is None:
            return None
        proposed_at = done_from_ledger(self.ledger.records)["propose"]
        deadline = release_deadline_blocks(
            self.plan, proposed_at, self.env.block_time_estimate, self.env.local
        )
        self.progress(deadline.explanation)
        return motion.proposed_block + deadline.blocks

    def _propose(self) -> dict[str, Any]:
        with self._production() as chain:
            check_governance(self.env, chain)
            if self.governance == "sudo":
                return {"artifact": self._artifact(), "outcome": f"no motion: {SUDO_GOVERNED}"}
            motion = governance.propose(
                self.env,
                chain,
                self._candidate(),
                note_path=self.dir / "proposal.md",
                recorder=self.ledger,
                checks=self._done("migrations").get("report_lines", []),
            )
        return {"artifact": self._artifact(), "motion": motion.as_dict()}

    def _track(self) -> dict[str, Any]:
        if self.governance == "sudo":
            return {"artifact": self._artifact(), "outcome": f"no votes: {SUDO_GOVERNED}"}
        motion = self._motion()
        required = motions.council_settings(self.env).attestations
        with self._production() as chain:
            if self.env.local:
                governance.simulate_votes(
                    self.env, chain, motion, self.settings.votes, recorder=self.ledger
                )
                if required:  # dev members rebuild and attest, as real members would
                    rehearse_attestations(
                        self.project,
                        self.env,
                        chain,
                        motion,
                        required,
                        recorder=self.ledger,
                        progress=self.progress,
                    )
            attested = statements.Attestations(chain, motion)

            def attestations_said() -> str:
                """The tally, where the policy asks for attestations or a member gave one."""
                tally = attested.tally(chain)
                return "" if tally.empty and not required else f"; {tally.summary()}"

            status = motions.track(
                self.env,
                chain,
                motion,
                deadline_block=self._deadline_block(motion),
                advance=config.blocks_on_demand(self.env),
                on_update=lambda s: self.progress(
                    f"motion #{s.index}: {s.state}, {len(s.ayes)} aye / {len(s.nays)} nay of"
                    f" {s.threshold} needed, {s.blocks_left} blocks left" + attestations_said()
                ),
            )
            found = attested.tally(chain)
        return {
            "artifact": self._artifact(),
            "outcome": status.state,
            "votes": status.as_dict(),
            "attestations": found.as_dict(),
        }

    def _enact(self) -> dict[str, Any]:
        if self.governance == "sudo":
            return self._enact_by_sudo()
        motion = self._motion()
        with self._production() as chain:
            result = governance.enact(
                self.env,
                chain,
                self._candidate(),
                motion,
                policy=self.settings.policy,
                confirm_hash=self.settings.confirm_hash,
                deadline_block=self._deadline_block(motion),
                recorder=self.ledger,
            )
        if not result.ok:
            raise PipelineError(f"{result.outcome}: {result.reason}")
        return {"artifact": self._artifact(), "outcome": result.outcome, **result.as_dict()}

    def _enact_by_sudo(self) -> dict[str, Any]:
        """Production's upgrade is a sudo deploy: checked, journaled, verified like staging's
        (a non-local one only with --confirm-hash naming the artifact)."""
        self._production_up()
        result = deploy.deploy(
            self.env,
            "production",
            self._candidate(),
            recorder=self.ledger,
            stage="enact",
            confirm_hash=self.settings.confirm_hash,
            progress=self.progress,
        )
        done = "already ran it" if result.skipped else f"set it in block #{result.block}"
        return {
            "artifact": self._artifact(),
            "outcome": "already-live" if result.skipped else "enacted",
            "policy": "sudo governance",
            "reason": f"{SUDO_GOVERNED}: Sudo.sudo_unchecked_weight(System.set_code) {done}",
            "spec_version": result.spec_after,
            "upgraded_in_block": result.block,
        }

    def _verify(self) -> dict[str, Any]:
        with self._production() as chain:
            upgrade.wait_for_migrations(
                chain, config.blocks_on_demand(self.env), self.env.inclusion_timeout
            )
            on_chain = chain.code_hash()
            spec = int(chain.runtime_version()["specVersion"])
        if on_chain != self._artifact():
            raise PipelineError(
                f"production's :code is {on_chain}, not the release's {self._artifact()}:"
                " something else upgraded it; investigate before releasing again"
            )
        return {"artifact": self._artifact(), "code_hash": on_chain, "spec_version": spec}


# The release's stages in pipeline order, each with its action: the whole state machine's map.
STAGE_ACTIONS: Mapping[Stage, Callable[[Release], dict[str, Any]]] = {
    "build": Release._build,
    "migrations": Release._migrations,
    "deploy-reckless": Release._deploy_reckless,
    "suite-subsystem": Release._suite_subsystem,
    "freeze": Release._freeze,
    "deploy-lts": Release._deploy_lts,
    "suite-final": Release._suite_final,
    "propose": Release._propose,
    "track": Release._track,
    "enact": Release._enact,
    "verify": Release._verify,
}
