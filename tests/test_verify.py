"""Comparing a rebuild's digest with a digest an older pipeline wrote: every field, both sides."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pipeline.artifact import ABSENT, diff_digests
from pipeline.attestation import parse
from pipeline.errors import PipelineError
from pipeline.motions import Motion
from pipeline.proposal import DOSSIER_MARK, dossier_hash
from pipeline.verify import (
    Expectation,
    Verdict,
    digest_verdict,
    dossier_check,
    report_lines,
    statement,
    touches_code,
)

COMMITTED = Path(__file__).parent.parent / "examples/runtime/releases/100/digest.json"


@pytest.fixture
def committed() -> dict[str, Any]:
    """The committed release's digest as a pipeline from before rustfmt-web was recorded wrote
    it: the digest a voter holds is often older than the pipeline that rebuilds."""
    content: dict[str, Any] = json.loads(COMMITTED.read_text())
    content["builder"]["toolchain"].pop("rustfmt-web", None)
    return content


def newer_builder(digest: dict[str, Any]) -> dict[str, Any]:
    """The same code recorded by a builder that lists one more toolchain package."""
    newer = copy.deepcopy(digest)
    newer["builder"]["toolchain"]["rustfmt-web"] = "1.85.0+dfsg3-1~deb12u3"
    del newer["builder"]["toolchain"]["g++"]
    return newer


def test_a_newer_builder_changes_only_the_record(committed: dict[str, Any]) -> None:
    differences = diff_digests(committed, newer_builder(committed))
    assert differences == [
        ("builder.toolchain.g++", "4:12.2.0-3", ABSENT),
        ("builder.toolchain.rustfmt-web", ABSENT, "1.85.0+dfsg3-1~deb12u3"),
    ]
    assert not any(touches_code(path) for path, _, _ in differences)
    assert digest_verdict(differences).startswith("only the record differs (2 field(s)")


def test_a_different_hash_touches_the_code(committed: dict[str, Any]) -> None:
    other = newer_builder(committed)
    other["runtimes"]["compressed"]["blake2_256"] = "0x" + "ab" * 32
    other["runtimes"]["compressed"]["wasm"] = "renamed.wasm"
    del other["info"]["sha256"]
    differences = diff_digests(committed, other)
    code = [path for path, _, _ in differences if touches_code(path)]
    assert code == ["info.sha256", "runtimes.compressed.blake2_256"]
    assert digest_verdict(differences) == (
        "the code differs: 2 field(s) computed from the wasm differ"
        " (info.sha256, runtimes.compressed.blake2_256)"
    )


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("runtimes.compact.subwasm.apis[3].version", True),
        ("size", True),
        ("prop", True),
        ("runtimes.compact.wasm", False),
        ("builder.image", False),
        ("reproducibility.rustc", False),
        ("commit", False),
        ("wasm", False),
    ],
)
def test_touches_code(path: str, code: bool) -> None:
    assert touches_code(path) is code


def test_report_prints_absent_sides_and_what_the_difference_touches(
    committed: dict[str, Any],
) -> None:
    rebuilt = newer_builder(committed)
    code_hash = committed["runtimes"]["compressed"]["blake2_256"]
    verdict = Verdict(
        Expectation(code_hash, "digest.json", "bc1eddc", committed),
        code_hash,
        "bc1eddc (artifacts/…)",
        diff_digests(committed, rebuilt),
    )
    lines = report_lines(verdict)
    assert lines[0] == "MATCH"
    assert "  differs: builder.toolchain.g++: 4:12.2.0-3 -> (absent)" in lines
    assert "  differs: builder.toolchain.rustfmt-web: (absent) -> 1.85.0+dfsg3-1~deb12u3" in lines
    assert lines[-1].startswith("  only the record differs")
    assert json.dumps(lines)  # plain text, nothing left unrendered


def test_report_of_an_equal_digest(committed: dict[str, Any]) -> None:
    code_hash = committed["runtimes"]["compressed"]["blake2_256"]
    verdict = Verdict(Expectation(code_hash, "digest.json", "bc1eddc", committed), "0x00", "x", [])
    assert report_lines(verdict)[0] == "MISMATCH"
    assert report_lines(verdict)[-1] == "  every digest field is equal"


def test_a_rebuild_of_a_motion_states_what_the_member_got(committed: dict[str, Any]) -> None:
    code = committed["runtimes"]["compressed"]["blake2_256"]
    motion = Motion("Council", 4, "0x" + "AB" * 32, code, "authorize", 2, 30,
                    100, None, True)  # fmt: skip
    expected = Expectation(motion.code_hash, "motion #4", committed["commit"], motion=motion)
    match = statement(Verdict(expected, motion.code_hash, "HEAD", [], committed))
    assert (match.verdict, match.code_hash, match.motion_hash) == (
        "MATCH",
        motion.code_hash,
        "0x" + "ab" * 32,  # as the chain's events spell it
    )
    assert (match.motion_index, match.commit) == (4, committed["commit"])
    assert match.image.startswith("sha256:") and match.image in committed["builder"]["image"]
    assert parse(match.encode()) == match

    other = "0x" + "99" * 32  # a mismatch states the hash the member got, as a warning
    mismatch = statement(Verdict(expected, other, "HEAD", [], committed))
    assert (mismatch.verdict, mismatch.code_hash) == ("MISMATCH", other)

    with pytest.raises(PipelineError, match="only a rebuild of a motion's runtime"):
        statement(Verdict(Expectation(other, "--expect", "HEAD"), other, "HEAD", [], committed))


def test_the_dossier_a_voter_holds_is_checked_against_the_motion_s() -> None:
    voters = "## What is proposed\n- Code hash: `0x12`\n"
    note = f"# Runtime upgrade proposal\nMotion #4\n\n{DOSSIER_MARK}\n{voters}"
    motion = Motion("Council", 4, "0x" + "ab" * 32, "0x12", "authorize", 2, 30, 100, None, True)
    held_hash = dossier_hash(note)
    committed_to = Expectation("0x12", "motion #4", "HEAD", motion=motion, dossier=held_hash)
    held, line = dossier_check(committed_to, held_hash, "proposal.md")
    assert held and line.startswith("dossier proposal.md: the one motion #4 commits to (0x")
    edited = dossier_hash(note.replace("0x12", "0x13"))
    held, line = dossier_check(committed_to, edited, "proposal.md")
    assert not held and line.startswith("dossier proposal.md is NOT the one motion #4 commits to")
    assert "(edited after proposing?)" in line
    held, line = dossier_check(replace(committed_to, dossier=None), held_hash, "proposal.md")
    assert not held and "commits to no dossier" in line
    with pytest.raises(PipelineError, match="--dossier goes with --env NAME --motion"):
        dossier_check(Expectation("0x12", "--expect", "HEAD"), held_hash, "proposal.md")
