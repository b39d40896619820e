"""The council: a motion is proposed, voted, closed and executed with the council's origin.

The motion is `System.remark`, which any origin may dispatch: a motion executes with the
collective's origin, not a signed one nor Root (`remark_with_event` would fail with BadOrigin).
"""

from __future__ import annotations

import os

import pytest
from substrateinterface import Keypair

from pipeline.chain import Call, Chain


@pytest.mark.council
def test_motion_round_trip(chain: Chain, councillors: list[Keypair]) -> None:
    proposer, seconder = councillors[0], councillors[1]
    remark = Call("System", "remark", {"remark": f"suite motion {os.urandom(8).hex()}"})
    length = len(chain.compose(remark).data.data)
    proposal = {"threshold": 2, "proposal": remark, "length_bound": length}
    receipt = chain.submit(Call("Council", "propose", proposal), proposer)
    [proposed] = receipt.find("Council", "Proposed")
    index, proposal_hash = (
        proposed.attributes["proposal_index"],
        proposed.attributes["proposal_hash"],
    )
    assert proposal_hash in chain.query("Council", "Proposals")

    for voter in (proposer, seconder):
        vote = {"proposal": proposal_hash, "index": index, "approve": True}
        [voted] = chain.submit(Call("Council", "vote", vote), voter).find("Council", "Voted")
        assert voted.attributes["account"] == voter.ss58_address
    votes = chain.query("Council", "Voting", [proposal_hash])
    assert set(votes["ayes"]) == {proposer.ss58_address, seconder.ss58_address}

    close = {
        "proposal_hash": proposal_hash,
        "index": index,
        "proposal_weight_bound": {"ref_time": 10**10, "proof_size": 10**6},
        "length_bound": length,
    }
    closed = chain.submit(Call("Council", "close", close), proposer)
    [tally] = closed.find("Council", "Closed")
    assert (tally.attributes["yes"], tally.attributes["no"]) == (2, 0)
    assert closed.find("Council", "Approved")
    [executed] = closed.find("Council", "Executed")
    assert "Ok" in executed.attributes["result"]
    assert proposal_hash not in chain.query("Council", "Proposals")
