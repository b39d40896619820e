"""Council members' attestations on chain: post a statement, read them back, tally them.

A statement travels in `System.remark_with_event`: its `System.Remarked` event names the signer
and the remark's blake2-256, the extrinsic holds the bytes. Reading takes both from the chain,
never from a local file, and keeps a remark only when its bytes hash to the event's hash. What a
statement says and how statements count is `attestation`'s (pure); this module is the chain side.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from substrateinterface import Keypair

from pipeline.artifact import blake2_256
from pipeline.attestation import Statement, Tally, blocking_reason, statements_from, tally
from pipeline.chain import Call, Chain, Receipt
from pipeline.config import Environment
from pipeline.errors import PipelineError
from pipeline.motions import Motion, council_members, council_settings, public_key
from pipeline.proposal import call_args, value_bytes, walk_calls
from pipeline.submission import Recorder, submit_recorded

STAGE_ATTEST = "attest"  # submissions are journaled (and crash points named) under it
REMARK_CALL = ("System", "remark_with_event")


def block_remarks(chain: Chain, number: int) -> list[tuple[str, int, bytes]]:
    """(signer, block, bytes) of every remark with event in block `number`."""
    block_hash = chain.block_hash(number)
    remarked = [e for e in chain.events(block_hash) if (e.module, e.name) == ("System", "Remarked")]
    if not remarked:
        return []
    calls = chain.extrinsic_calls(block_hash)
    found = []
    for event in remarked:
        attributes = event.attributes if isinstance(event.attributes, Mapping) else {}
        if event.extrinsic_idx is None or event.extrinsic_idx >= len(calls):
            continue
        for call in walk_calls(calls[event.extrinsic_idx]):
            if (call.get("call_module"), call.get("call_function")) != REMARK_CALL:
                continue
            data = value_bytes(call_args(call).get("remark", b""))
            if blake2_256(data) == str(attributes.get("hash", "")).lower():
                found.append((str(attributes["sender"]), number, data))
                break
    return found


@dataclass
class Reader:
    """The remarks signed on a chain from block `since` on, read once each (tracking reads
    again on every head and only the new blocks are fetched)."""

    since: int
    remarks: list[tuple[str, int, bytes]] = field(default_factory=list)

    def read(self, chain: Chain) -> list[tuple[str, int, bytes]]:
        head = chain.block_number()
        while self.since <= head:
            self.remarks += block_remarks(chain, self.since)
            self.since += 1
        return self.remarks


def motion_start(chain: Chain, motion: Motion) -> int:
    """The block the motion was proposed in: recorded by `propose`, else the first block whose
    state holds its votes (a statement about it cannot come earlier)."""
    if motion.proposed_block is not None:
        return motion.proposed_block

    def is_open(number: int) -> bool:
        votes = chain.query(
            motion.collective, "Voting", [motion.proposal_hash], block_hash=chain.block_hash(number)
        )
        return bool(votes)

    low, high = 0, chain.block_number()
    if not is_open(high):
        raise PipelineError(
            f"motion #{motion.index} is not open on {chain.endpoint} and its proposal block is "
            "unknown: read its attestations through the release that proposed it"
        )
    while low < high:
        middle = (low + high) // 2
        if is_open(middle):
            high = middle
        else:
            low = middle + 1
    return low


class Attestations:
    """The tally of a motion's statements, re-read from the chain on demand."""

    def __init__(self, chain: Chain, motion: Motion) -> None:
        self.motion = motion
        self.reader = Reader(motion_start(chain, motion))

    def tally(self, chain: Chain) -> Tally:
        members = council_members(chain, self.motion.collective)
        return tally(
            statements_from(self.reader.read(chain)),
            members=members,
            motion_index=self.motion.index,
            motion_hash=self.motion.proposal_hash,
            code_hash=self.motion.code_hash,
        )


def gate(env: Environment, chain: Chain, motion: Motion) -> tuple[Tally, str | None]:
    """The motion's attestations and why they keep it from being closed, enacted or replaced
    by the sudo fallback (None: they do not): `council.attestations` MATCHes needed, and no
    member's MISMATCH."""
    found = Attestations(chain, motion).tally(chain)
    return found, blocking_reason(council_settings(env).attestations, found)


def check_member(chain: Chain, motion: Motion, keypair: Keypair) -> None:
    """Refuse a signer whose statement would not count, before anything is rebuilt or sent."""
    members = council_members(chain, motion.collective)
    if public_key(keypair.ss58_address) not in {public_key(m) for m in members}:
        raise PipelineError(
            f"{keypair.ss58_address} is not a member of {motion.collective} on {chain.endpoint}: "
            "its statement would not count; set council.member_key to a councillor's key"
        )


def post(
    env: Environment,
    chain: Chain,
    motion: Motion,
    statement: Statement,
    keypair: Keypair,
    *,
    recorder: Recorder | None = None,
) -> Receipt | None:
    """Submit the statement, unless the signer's newest statement on chain about this motion
    already says the same (None: nothing sent, so a repeated command never posts twice)."""
    signer = public_key(keypair.ss58_address)
    mine = [
        said
        for who, _, said in statements_from(Reader(motion_start(chain, motion)).read(chain))
        if public_key(who) == signer
        and (said.motion_index, said.motion_hash) == (motion.index, motion.proposal_hash)
    ]
    if mine and mine[-1] == statement:
        return None
    receipt = submit_recorded(
        chain,
        Call(*REMARK_CALL, {"remark": "0x" + statement.encode().hex()}),
        keypair,
        recorder=recorder,
        stage=STAGE_ATTEST,
        network=env.networks["production"].name,
        summary=f"attest {statement.verdict} motion #{motion.index} {statement.code_hash}",
    )
    if not receipt.find("System", "Remarked"):
        raise PipelineError(
            f"the statement in block #{receipt.block_number} emitted no System.Remarked: "
            "inspect that block"
        )
    return receipt
