"""Anyone can check a runtime: rebuild a git ref and compare with a hash, a digest, the code on
a chain, or the runtime a council motion is voting on (read from the chain alone).

`expectation` decides what the rebuild must reproduce; `verify` rebuilds (clean: no cache, fresh
target dir) and compares. With `--env` and `--expect` only, nothing is built: the chain's
`:code` is compared with the hash. A council member who rebuilt a motion's runtime can `attest`
the verdict on chain, for the other members and the release manager to count.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from substrateinterface import Keypair

from pipeline import builder, builder_image, config, keys, statements
from pipeline.artifact import ABSENT, diff_digests
from pipeline.attestation import Statement, image_digest
from pipeline.chain import Chain, Receipt, connect, is_local_endpoint
from pipeline.config import Environment
from pipeline.errors import PipelineError
from pipeline.motions import (
    Motion,
    council_members,
    council_settings,
    find_motion,
    motion_from_chain,
    public_key,
)
from pipeline.project import Project
from pipeline.proposal import source_from_motion
from pipeline.submission import Recorder


@dataclass(frozen=True)
class Expectation:
    """The hash to reproduce, where it came from, and the ref to rebuild (if any)."""

    code_hash: str
    source: str  # human: "motion #3 on ws://…", "digest.json", "--expect"
    ref: str | None  # what to rebuild; None: compare without building
    digest: Mapping[str, Any] | None = None
    motion: Motion | None = None  # the council motion whose runtime this is
    dossier: str | None = None  # the blake2-256 of the dossier the motion commits to


@dataclass(frozen=True)
class Verdict:
    expected: Expectation
    actual: str
    built_from: str | None  # ref that was rebuilt, or the chain that was read
    differences: list[tuple[str, Any, Any]]
    rebuilt: Mapping[str, Any] | None = None  # the rebuild's digest.json (None: nothing built)

    @property
    def match(self) -> bool:
        return self.actual == self.expected.code_hash


def _chain(project: Project, env_name: str, role: str) -> Chain:
    return connect(config.load_environment(env_name, project.root), role)


def expectation(
    project: Project,
    *,
    ref: str | None,
    expect: str | None,
    digest: Mapping[str, Any] | None,
    env: str | None,
    network: str = "production",
    motion: str | None = None,
) -> Expectation:
    """What must be reproduced, from the options a user gave (exactly one source of truth)."""
    if motion is not None:
        if env is None or ref or expect or digest:
            raise PipelineError("--motion goes with --env only: the motion names commit and hash")
        environment = config.load_environment(env, project.root)
        with _chain(project, env, network) as chain:
            return motion_expectation(environment, chain, motion)
    if env is not None and not (expect or digest):
        if ref is None:
            raise PipelineError("--env needs --ref (rebuild and compare), --expect or --motion")
        with _chain(project, env, network) as chain:
            return Expectation(chain.code_hash(), f":code on {chain.endpoint}", ref)
    code_hash = builder.expected_hash(expect, digest)
    source = "digest.json" if digest is not None else "--expect"
    if env is not None:  # compare the chain with the hash: nothing to build
        return Expectation(code_hash, source, None, digest)
    if ref is None:
        raise PipelineError("--expect/--digest need --ref (what to rebuild) or --env (a chain)")
    return Expectation(code_hash, source, ref, digest)


def motion_expectation(env: Environment, chain: Chain, which: int | str) -> Expectation:
    """The runtime an open motion votes on: its code hash, and the commit its remark names."""
    collective = council_settings(env).collective
    found = find_motion(chain, which if which == "latest" else int(which), collective)
    proposed = source_from_motion(found.proposal)
    return Expectation(
        proposed["code_hash"],
        f"motion #{found.index} on {chain.endpoint}",
        str(proposed["commit"]),
        motion=motion_from_chain(env, chain, found.index),
        dossier=proposed.get("dossier"),
    )


def dossier_check(expected: Expectation, held: str, name: str) -> tuple[bool, str]:
    """Whether a voter's proposal note, whose dossier hashes to `held` (`dossier_hash`), holds
    the dossier the motion commits to, in one line."""
    if expected.motion is None:
        raise PipelineError("--dossier goes with --env NAME --motion: a motion commits to it")
    index = expected.motion.index
    if expected.dossier is None:
        return False, (
            f"dossier {name}: motion #{index} commits to no dossier (its source remark names "
            "none), so it cannot be checked"
        )
    if held == expected.dossier:
        return True, f"dossier {name}: the one motion #{index} commits to ({held})"
    return False, (
        f"dossier {name} is NOT the one motion #{index} commits to: it hashes to {held}, the "
        f"motion's source remark names {expected.dossier} (edited after proposing?)"
    )


def verify(
    project: Project,
    expected: Expectation,
    *,
    env: str | None = None,
    network: str = "production",
    progress: builder_image.Progress = builder_image.logger.info,
    clean: bool = True,
) -> Verdict:
    """Rebuild (clean unless told: no cache, fresh target dir; or read the chain) and compare
    with the expectation."""
    if expected.ref is None:
        if env is None:
            raise PipelineError(
                "nothing to compare: pass --ref to rebuild or --env to read a chain"
            )
        with _chain(project, env, network) as chain:
            return Verdict(expected, chain.code_hash(), f":code on {chain.endpoint}", [])
    result = builder.build(
        project, expected.ref, no_cache=clean, fresh_target=clean, progress=progress
    )
    differences = (
        diff_digests(dict(expected.digest), result.digest) if expected.digest is not None else []
    )
    return Verdict(
        expected,
        result.compressed.blake2_256,
        f"{expected.ref} ({result.artifact_dir})",
        differences,
        result.digest,
    )


# --- attestations -------------------------------------------------------------------------------
def statement(verdict: Verdict) -> Statement:
    """What a member states after rebuilding a motion's runtime: the hash they got, from which
    commit and builder image, MATCH or MISMATCH."""
    motion, rebuilt = verdict.expected.motion, verdict.rebuilt
    if motion is None or rebuilt is None:
        raise PipelineError(
            "only a rebuild of a motion's runtime can be attested: pass --env NAME --motion"
        )
    builder_record = rebuilt.get("builder")
    image = builder_record.get("image") if isinstance(builder_record, Mapping) else None
    return Statement(
        motion_index=motion.index,
        motion_hash=motion.proposal_hash.lower(),
        code_hash=verdict.actual,
        commit=str(rebuilt.get("commit")),
        image=image_digest(str(image)),
        verdict="MATCH" if verdict.match else "MISMATCH",
    )


def attester(env: Environment, chain: Chain, motion: Motion) -> Keypair:
    """The member's key (council.member_key: an env var or a 0600 file; dev keys only on local
    environments), refused unless it belongs to a member, before anything is rebuilt."""
    keypair = keys.signer(env, "council")
    statements.check_member(chain, motion, keypair)
    return keypair


def attest(
    env: Environment,
    chain: Chain,
    verdict: Verdict,
    keypair: Keypair,
    *,
    recorder: Recorder | None = None,
) -> Receipt | None:
    """Post the verdict as the member's statement (None: the same one is already on chain)."""
    said = statement(verdict)
    assert verdict.expected.motion is not None  # statement() refuses a verdict without one
    return statements.post(env, chain, verdict.expected.motion, said, keypair, recorder=recorder)


def rehearse_attestations(
    project: Project,
    env: Environment,
    chain: Chain,
    motion: Motion,
    count: int,
    *,
    recorder: Recorder | None = None,
    progress: builder_image.Progress = builder_image.logger.info,
) -> list[tuple[str, bool]]:
    """Local networks: the first `count` dev councillors attest the motion's runtime, rebuilt
    from the commit its remark names. The build cache may serve that commit's build: a
    rehearsal of the path, not an independent check. Returns (member, posted now)."""
    if not env.local or not is_local_endpoint(chain.endpoint):
        raise PipelineError(
            f"dev councillors attest only on local environments: {env.name} is not local, "
            "its members run `invoke verify --motion latest --attest` themselves"
        )
    dev = {kp.public_key.hex(): kp for kp in (keys.dev_keypair(env, n) for n in keys.DEV_ACCOUNTS)}
    members = [m for m in council_members(chain, motion.collective) if public_key(m) in dev]
    if count > len(members):
        raise PipelineError(
            f"{count} attestations wanted, but {motion.collective} has {len(members)} dev "
            "members: lower council.attestations"
        )
    verdict = verify(
        project, motion_expectation(env, chain, motion.index), progress=progress, clean=False
    )
    return [
        (
            member,
            attest(env, chain, verdict, dev[public_key(member)], recorder=recorder) is not None,
        )
        for member in members[:count]
    ]


# Top-level digest fields computed from the wasm bytes; every other field records how and from
# what the wasm was built (builder image, toolchain, commit, tool versions).
CODE_FIELDS: Final = frozenset({"call_hashes", "info", "prop", "runtimes", "sha256", "size"})


def touches_code(path: str) -> bool:
    """Whether a differing digest field is computed from the code (not a file name or a record)."""
    top = path.split(".", 1)[0].split("[", 1)[0]
    return top in CODE_FIELDS and not path.endswith(".wasm")


def digest_verdict(differences: list[tuple[str, Any, Any]]) -> str:
    """One plain sentence: does the digest difference touch the code, or only the record?"""
    code = [path for path, _, _ in differences if touches_code(path)]
    if code:
        return (
            f"the code differs: {len(code)} field(s) computed from the wasm differ"
            f" ({', '.join(code[:3])}{', …' if len(code) > 3 else ''})"
        )
    return (
        f"only the record differs ({len(differences)} field(s) about the builder, toolchain or"
        " source): the code fields are equal"
    )


def shown(value: object) -> str:
    """A digest value on one short line; a side that lacks the field shows as `(absent)`."""
    if value is ABSENT:
        return "(absent)"
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "…"


def report_lines(verdict: Verdict) -> list[str]:
    """What `invoke verify` prints: the verdict, both hashes, every differing digest field."""
    expected = verdict.expected
    lines = [
        "MATCH" if verdict.match else "MISMATCH",
        f"  expected {expected.code_hash}  ({expected.source})",
        f"  actual   {verdict.actual}  ({verdict.built_from})",
    ]
    lines += [
        f"  differs: {path}: {shown(want)} -> {shown(got)}"
        for path, want, got in verdict.differences
    ]
    if expected.digest is not None:
        lines.append(
            f"  {digest_verdict(verdict.differences)}"
            if verdict.differences
            else "  every digest field is equal"
        )
    return lines
