"""Council members' attestations on real chopsticks chains: posted once, read back from the
chain alone, forged statements shown and not counted, and the policy that blocks close, enact
and the sudo fallback; and the dossier the motion commits to.

The motion proposes HEAD's real build (its digest names this repo's commit), so the rehearsal's
rebuild is a real build of that commit (served by the build cache after the session's first).
The networks and the project come from test_governance's fixtures.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fixtures.runtimes import candidate_build
from test_governance import ALICE, BOB, CHARLIE, DAVE, Net, live, make_chain_project, net

from pipeline import governance, motions, proposal, statements
from pipeline import verify as verification
from pipeline.attestation import Statement, image_digest
from pipeline.chain import Call, Chain
from pipeline.errors import PipelineError
from pipeline.motions import Motion
from pipeline.project import load_project

REPO = Path(__file__).resolve().parent.parent
__all__ = ["net"]  # the fixture, imported for this module's tests


@pytest.fixture(scope="module")
def chain_project(
    tmp_path_factory: pytest.TempPathFactory, upgrade_wasms: tuple[Path, Path]
) -> Iterator[tuple[Path, dict[str, str]]]:
    """test_governance's project, but the candidate is HEAD's artifact with its real digest."""
    built = candidate_build()

    def copy_build(artifacts: Path) -> str:
        shutil.copytree(built.artifact_dir, artifacts / built.compressed.blake2_256[2:])
        return built.compressed.blake2_256

    root = tmp_path_factory.mktemp("attest")
    yield root, make_chain_project(root, upgrade_wasms[0], copy_build)


def statement_of(motion: Motion, verdict: str = "MATCH", **changes: object) -> Statement:
    """A statement about `motion` naming HEAD's build, as a member's rebuild states it."""
    digest = candidate_build().digest
    said = Statement(
        motion.index,
        motion.proposal_hash,
        motion.code_hash,
        str(digest["commit"]),
        image_digest(digest["builder"]["image"]),
        verdict,  # type: ignore[arg-type]
    )
    return replace(said, **changes)  # type: ignore[arg-type]


def remark_count(chain: Chain, since: int) -> int:
    return len(statements.Reader(since).read(chain))


@pytest.mark.chain
def test_members_attest_once_and_forgeries_are_shown_not_counted(net: Net) -> None:
    env = net.env(extra="attestations = 2")
    candidate = net.candidate()
    with net.chain() as chain:
        motion = governance.propose(env, chain, candidate)
        governance.simulate_votes(env, chain, motion, "approve")
        motions.track(env, chain, motion, advance=True)
        waiting = governance.enact(env, chain, candidate, motion)
        assert waiting.outcome == "waiting"
        assert waiting.reason.startswith("0 of the 2 required attestations")

        posted = verification.rehearse_attestations(load_project(REPO), env, chain, motion, 2)
        members = motions.council_members(chain, "Council")
        assert posted == [(members[0], True), (members[1], True)]
        assert remark_count(chain, motion.proposed_block or 0) == 2
        again = verification.rehearse_attestations(load_project(REPO), env, chain, motion, 2)
        assert again == [(members[0], False), (members[1], False)]  # never twice
        assert remark_count(chain, motion.proposed_block or 0) == 2

        third = next(k for k in (ALICE, BOB, CHARLIE) if k.ss58_address == members[2])
        forged = [
            (DAVE, statement_of(motion)),  # not a member
            (third, statement_of(motion, motion_index=motion.index + 1)),  # another motion
            (third, statement_of(motion, code_hash="0x" + "11" * 32)),  # another runtime
        ]
        for keypair, said in forged:
            assert statements.post(env, chain, motion, said, keypair) is not None
        plain = Call("System", "remark_with_event", {"remark": "0x" + b"hello council".hex()})
        chain.submit(plain, DAVE)  # another remark: not read as a statement at all

        found = statements.Attestations(chain, motion).tally(chain)
        assert (found.matches, found.mismatches) == (tuple(members[:2]), ())
        assert [(s.signer, s.standing) for s in found.ignored] == [
            (DAVE.ss58_address, "not-a-member"),
            (members[2], "other-motion"),
            (members[2], "other-hash"),
        ]
        assert found.summary().startswith(f"2 of 3 members reproduced {candidate.code_hash[:10]}…")
        assert found.summary().endswith(", 0 mismatches (3 statements not counted)")
        # the same tally from a motion found on chain (its proposal block searched, not known)
        from_chain = motions.motion_from_chain(env, chain, motion.index)
        assert statements.motion_start(chain, from_chain) == motion.proposed_block
        assert statements.Attestations(chain, from_chain).tally(chain) == found

        result = governance.enact(env, chain, candidate, motion)
        assert (result.outcome, result.spec_version) == ("enacted", 101), result
        assert result.attestations is not None
        assert result.attestations["matches"] == list(members[:2])
    assert live(net) == (candidate.code_hash, 101)


@pytest.mark.chain
def test_a_member_s_mismatch_blocks_the_fallback_and_the_close(net: Net) -> None:
    env = net.env(extra="attestations = 1\nvoting_blocks = 3")
    candidate = net.candidate()
    with net.chain() as chain:
        motion = governance.propose(env, chain, candidate)
        members = motions.council_members(chain, "Council")
        keypairs = {k.ss58_address: k for k in (ALICE, BOB, CHARLIE)}
        for member in members[:2]:
            statements.post(env, chain, motion, statement_of(motion), keypairs[member])
        warning = statement_of(motion, "MISMATCH", code_hash="0x" + "99" * 32)
        statements.post(env, chain, motion, warning, keypairs[members[2]])
        final = motions.track(env, chain, motion, advance=True)  # nobody votes
        assert final.state == "expired"
        head = chain.block_number()
        fallback = governance.enact(env, chain, candidate, motion, policy="always")
        assert fallback.outcome == "refused" and not fallback.ok
        assert fallback.reason.startswith(f"council member(s) {members[2]} attested MISMATCH")
        assert chain.block_number() == head  # nothing submitted

        governance.simulate_votes(env, chain, motion, "approve")
        assert motions.motion_status(env, chain, motion).state == "approved"
        head = chain.block_number()
        close = governance.enact(env, chain, candidate, motion)
        assert close.outcome == "refused" and "attested MISMATCH" in close.reason
        assert close.attestations is not None and close.attestations["mismatches"] == [members[2]]
        assert chain.block_number() == head
        assert chain.query("Council", "Voting", [motion.proposal_hash]) is not None

        # the member's newer statement replaces the warning: the release may go on
        statements.post(env, chain, motion, statement_of(motion), keypairs[members[2]])
        enacted = governance.enact(env, chain, candidate, motion)
        assert enacted.outcome == "enacted", enacted
    assert live(net) == (candidate.code_hash, 101)


@pytest.mark.chain
def test_editing_the_dossier_after_proposing_is_reported(net: Net, tmp_path: Path) -> None:
    note = tmp_path / "proposal.md"
    with net.chain() as chain:
        motion = governance.propose(net.env(), chain, net.candidate(), note_path=note)
        expected = verification.motion_expectation(net.env(), chain, "latest")
    assert expected.motion is not None and expected.motion.index == motion.index
    assert expected.dossier == proposal.dossier_hash(note.read_text())  # read from the chain
    committed_to = proposal.dossier_hash(note.read_text())
    held, line = verification.dossier_check(expected, committed_to, "proposal.md")
    assert held, line
    edited = note.read_text().replace("## Against production", "## Against production (fine)")
    held, line = verification.dossier_check(expected, proposal.dossier_hash(edited), "proposal.md")
    assert not held and f"NOT the one motion #{motion.index} commits to" in line


@pytest.mark.chain
def test_statements_need_a_member_s_key_and_dev_rehearsals_a_local_chain(net: Net) -> None:
    candidate = net.candidate()
    with net.chain() as chain:
        motion = governance.propose(net.env(), chain, candidate)
        head = chain.block_number()
        with pytest.raises(PipelineError, match=rf"{DAVE.ss58_address} is not a member"):
            verification.attester(net.env(member='{ dev = "//Dave" }'), chain, motion)
        remote = net.env(
            "remote",
            local=False,
            member='{ env = "ATTEST_TEST_UNSET" }',
            sudo='[sudo]\nenv = "ATTEST_TEST_UNSET"\n',
        )
        with pytest.raises(PipelineError, match="ATTEST_TEST_UNSET is not set"):
            verification.attester(remote, chain, motion)
        with pytest.raises(PipelineError, match="dev councillors attest only on local"):
            verification.rehearse_attestations(load_project(REPO), remote, chain, motion, 1)
        with pytest.raises(PipelineError, match=r"3 dev members: lower council\.attestations"):
            verification.rehearse_attestations(load_project(REPO), net.env(), chain, motion, 4)
        assert chain.block_number() == head
