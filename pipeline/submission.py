"""The one way the pipeline broadcasts: record the intent, send, record the outcome.

Every extrinsic goes through `submit_recorded`, so the ledger holds signer, nonce and call hash
before anything leaves the machine. After a crash, `intent_outcome` tells from the signer's
current nonce whether an unresolved intent may have landed: then the caller must look for its
effect on chain instead of sending again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from substrateinterface import Keypair

from pipeline.chain import BroadcastUncertain, Call, Chain, Receipt
from pipeline.errors import PipelineError
from pipeline.faults import crash_point


class Recorder(Protocol):
    """What a journal must offer to record submissions (the release ledger does)."""

    def intent(
        self, *, stage: str, network: str, signer: str, nonce: int, call_hash: str, call: str
    ) -> str: ...

    def submitted(self, intent_id: str, extrinsic_hash: str) -> Any: ...

    def result(
        self,
        intent_id: str,
        *,
        success: bool,
        block_hash: str | None,
        block_number: int | None,
        events: Any = (),
        error: str | None = None,
    ) -> Any: ...


@dataclass(frozen=True)
class PendingIntent:
    """An intent found in the journal without an outcome."""

    signer: str
    nonce: int


def intent_outcome(pending: PendingIntent, account_nonce: int) -> Literal["landed", "not-sent"]:
    """Whether an unresolved intent may have been included, judged by the signer's nonce.

    A nonce is consumed only by an included extrinsic: if the account moved past the intent's
    nonce, something with that nonce landed (check the effect); otherwise it never did and the
    call may be signed again.
    """
    return "landed" if account_nonce > pending.nonce else "not-sent"


def submit_recorded(
    chain: Chain,
    call: Call,
    keypair: Keypair,
    *,
    recorder: Recorder | None,
    stage: str,
    network: str,
    summary: str | None = None,
) -> Receipt:
    """Sign, journal the intent, broadcast once, journal the result; raise if it failed."""
    signed = chain.sign(call, keypair)
    intent_id = None
    if recorder is not None:
        intent_id = recorder.intent(
            stage=stage,
            network=network,
            signer=signed.signer,
            nonce=signed.nonce,
            call_hash=signed.call_hash,
            call=summary or str(call),
        )
    crash_point(f"submit:{stage}:after-intent")
    if recorder is not None and intent_id is not None:
        recorder.submitted(intent_id, signed.extrinsic_hash)
    try:
        receipt = chain.broadcast(signed)
    except BroadcastUncertain:
        raise  # the intent stays unresolved: a resume looks for its effect on chain
    except PipelineError as exc:
        if recorder is not None and intent_id is not None:
            recorder.result(
                intent_id, success=False, block_hash=None, block_number=None, error=str(exc)
            )
        raise
    crash_point(f"submit:{stage}:after-broadcast")
    if recorder is not None and intent_id is not None:
        recorder.result(
            intent_id,
            success=True,
            block_hash=receipt.block_hash,
            block_number=receipt.block_number,
            events=[f"{e.module}.{e.name}" for e in receipt.events],
        )
    return receipt
