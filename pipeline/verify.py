"""Anyone can check a runtime: rebuild a git ref and compare with a hash, a digest, the code on
a chain, or the runtime a council motion is voting on (read from the chain alone).

`expectation` decides what the rebuild must reproduce; `verify` rebuilds (clean: no cache, fresh
target dir) and compares. With `--env` and `--expect` only, nothing is built: the chain's
`:code` is compared with the hash.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from pipeline import builder, builder_image, config
from pipeline.artifact import ABSENT, diff_digests
from pipeline.chain import Chain, connect
from pipeline.errors import PipelineError
from pipeline.motions import council_settings, find_motion
from pipeline.project import Project
from pipeline.proposal import source_from_motion


@dataclass(frozen=True)
class Expectation:
    """The hash to reproduce, where it came from, and the ref to rebuild (if any)."""

    code_hash: str
    source: str  # human: "motion #3 on ws://…", "digest.json", "--expect"
    ref: str | None  # what to rebuild; None: compare without building
    digest: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Verdict:
    expected: Expectation
    actual: str
    built_from: str | None  # ref that was rebuilt, or the chain that was read
    differences: list[tuple[str, Any, Any]]

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
        collective = council_settings(environment).collective
        with _chain(project, env, network) as chain:
            found = find_motion(chain, motion if motion == "latest" else int(motion), collective)
            proposed = source_from_motion(found.proposal)
            where = f"motion #{found.index} on {chain.endpoint}"
        return Expectation(proposed["code_hash"], where, str(proposed["commit"]))
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


def verify(
    project: Project,
    expected: Expectation,
    *,
    env: str | None = None,
    network: str = "production",
    progress: builder_image.Progress = builder_image.logger.info,
) -> Verdict:
    """Rebuild cleanly (or read the chain) and compare with the expectation."""
    if expected.ref is None:
        if env is None:
            raise PipelineError(
                "nothing to compare: pass --ref to rebuild or --env to read a chain"
            )
        with _chain(project, env, network) as chain:
            return Verdict(expected, chain.code_hash(), f":code on {chain.endpoint}", [])
    result = builder.build(
        project, expected.ref, no_cache=True, fresh_target=True, progress=progress
    )
    differences = (
        diff_digests(dict(expected.digest), result.digest) if expected.digest is not None else []
    )
    return Verdict(
        expected,
        result.compressed.blake2_256,
        f"{expected.ref} ({result.artifact_dir})",
        differences,
    )


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
