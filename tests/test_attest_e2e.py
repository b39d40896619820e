"""Attestations as users run them (subprocesses in a clone of this repo, real local networks):
a member's `invoke verify --attest`, `invoke track` showing it, and `invoke release` that
requires two members' statements before it enacts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_release_e2e import candidate_hash, invoke, make_clone, production_up, stop_networks

from pipeline.chain import Chain
from pipeline.statements import Reader

# Each test has its own clone, state dir and ports: workers take them one by one.
pytestmark = [
    pytest.mark.chain,
    pytest.mark.docker,
    pytest.mark.independent,
    pytest.mark.usefixtures("candidate_built"),
]
__all__ = ["candidate_hash"]  # the fixture, imported for this module's tests
CLEAN_REBUILD_TIMEOUT_S = 3600  # no cache, a fresh target dir: long on a busy machine
ALICE = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"  # local.toml's member_key, //Alice


def require_attestations(clone: Path, count: int) -> None:
    environment = clone / "environments/e2e.toml"
    environment.write_text(environment.read_text() + f"attestations = {count}\n")


def test_release_waits_for_two_members_statements_and_shows_them(tmp_path: Path) -> None:
    clone, production = make_clone(
        tmp_path, release="e2e-attest", first_deadline="2026-12-01T12:00:00+00:00"
    )
    require_attestations(clone, 2)
    try:
        production_up(clone, production)
        done = invoke(clone, "release")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "release e2e-attest complete" in done.stdout
        assert "2 of 3 members reproduced" in done.stdout  # track's progress and the status

        status = invoke(clone, "release.status", "--json")
        assert status.returncode == 0, status.stderr
        attested = json.loads(status.stdout)["attestations"]
        assert (len(attested["matches"]), attested["mismatches"], attested["members"]) == (
            2,
            [],
            3,
        )
        report = (clone / ".pipeline/releases/e2e-attest/report.md").read_text()
        assert "## Attestations" in report and "2 of 3 members reproduced" in report
        with Chain(f"ws://127.0.0.1:{production}") as chain:
            statements = [r for r in Reader(1).read(chain) if b"runtime-pipeline/attest/1" in r[2]]
            assert len(statements) == 2  # one per member, never twice
            signers = {signer for signer, _, _ in statements}
            assert signers == set(attested["matches"])
            again = invoke(clone, "release")  # complete: nothing more is posted
            assert again.returncode == 0, again.stdout + again.stderr
            assert len(Reader(1).read(chain)) == 2
    finally:
        stop_networks(clone)


def test_dev_councillors_attest_and_track_shows_it(tmp_path: Path, candidate_hash: str) -> None:
    clone, production = make_clone(
        tmp_path, release="e2e-simulate", first_deadline="2026-12-01T12:00:00+00:00"
    )
    try:
        production_up(clone, production)
        assert invoke(clone, "build").returncode == 0
        proposed = invoke(clone, "propose", "--artifact", candidate_hash, "--env", "e2e")
        assert proposed.returncode == 0, proposed.stdout + proposed.stderr

        # bad input: one line, before any rebuild
        wrong = invoke(clone, "verify", "--env", "e2e", "--attest")
        assert wrong.returncode == 1
        assert wrong.stderr.strip().splitlines()[-1] == (
            "error: --attest goes with --env NAME --motion only: a statement names a motion"
        )
        no_note = invoke(clone, "verify", "--env", "e2e", "--motion", "0", "--dossier", "README.md")
        assert no_note.returncode == 1 and "README.md: the note has no dossier mark" in (
            no_note.stderr
        )

        simulate = ("council.simulate", "--scenario", "approve", "--attest", "2", "--env", "e2e")
        simulated = invoke(clone, *simulate)
        assert simulated.returncode == 0, simulated.stdout + simulated.stderr
        assert simulated.stdout.count(" attested\n") == 2, simulated.stdout
        again = invoke(clone, *simulate)  # never twice
        assert again.stdout.count(" had already attested\n") == 2, again.stdout

        tracked = invoke(clone, "track", "--env", "e2e", "--json")
        assert tracked.returncode == 0, tracked.stdout + tracked.stderr
        last = json.loads(tracked.stdout.splitlines()[-1])
        assert last["state"] == "approved"
        found = last["attestations"]
        assert (found["code_hash"], found["mismatches"], found["ignored"]) == (
            candidate_hash,
            [],
            [],
        )
        assert set(found["matches"]) == set(last["ayes"])  # the two dev councillors who voted
        shown = invoke(clone, "track", "--env", "e2e")
        assert "  2 of 3 members reproduced 0x" in shown.stdout, shown.stdout
    finally:
        stop_networks(clone)


@pytest.mark.slow
def test_a_member_attests_a_clean_rebuild_of_the_dossier_s_motion_and_track_shows_it(
    tmp_path: Path, candidate_hash: str
) -> None:
    clone, production = make_clone(
        tmp_path, release="e2e-verify", first_deadline="2026-12-01T12:00:00+00:00"
    )
    try:
        production_up(clone, production)
        assert invoke(clone, "build").returncode == 0
        proposed = invoke(clone, "propose", "--artifact", candidate_hash, "--env", "e2e")
        assert proposed.returncode == 0, proposed.stdout + proposed.stderr

        wrong = invoke(clone, "verify", "--env", "e2e", "--attest")
        assert wrong.returncode == 1
        assert (
            wrong.stderr.strip()
            .splitlines()[-1]
            .endswith("--attest goes with --env NAME --motion only: a statement names a motion")
        )

        note = proposed.stdout.split("note for voters: ", 1)[1].strip()
        index = re.search(r"motion #(\d+) ", proposed.stdout)
        assert index, proposed.stdout  # after the seeded production's own motions
        attested = invoke(
            clone,
            *("verify", "--env", "e2e", "--motion", "latest", "--attest", "--dossier", note),
            timeout=CLEAN_REBUILD_TIMEOUT_S,
        )
        assert attested.returncode == 0, attested.stdout + attested.stderr
        assert attested.stdout.startswith("MATCH")
        assert f"dossier {note}: the one motion #{index[1]} commits to (0x" in attested.stdout
        assert f"attested MATCH for motion #{index[1]} as {ALICE}: block #" in attested.stdout

        # the dev councillors vote and attest too (a rebuild the build cache serves)
        simulated = invoke(
            clone, "council.simulate", "--scenario", "approve", "--attest", "2", "--env", "e2e"
        )
        assert simulated.returncode == 0, simulated.stdout + simulated.stderr
        assert simulated.stdout.count(" attested\n") == 2, simulated.stdout

        tracked = invoke(clone, "track", "--env", "e2e", "--json")
        assert tracked.returncode == 0, tracked.stdout + tracked.stderr
        lines = [json.loads(line) for line in tracked.stdout.splitlines()]
        assert lines[-1]["state"] == "approved"
        found = lines[-1]["attestations"]
        assert found["code_hash"] == candidate_hash and found["mismatches"] == []
        assert ALICE in found["matches"] and len(found["matches"]) == 3, found
        assert found["summary"].startswith("3 of 3 members reproduced")
    finally:
        stop_networks(clone)
