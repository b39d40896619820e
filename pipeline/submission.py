"""The one way the pipeline broadcasts: record the intent, send, record the outcome.

Every extrinsic goes through `submit_recorded`, so the ledger holds signer, nonce and call hash
before anything leaves the machine. After a crash, `intent_outcome` tells from the signer's
current nonce whether an unresolved intent may have landed: then the caller must look for its
effect on chain instead of sending again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from substrateinterface import Keypair

from pipeline.chain import BroadcastUncertain, Call, Chain, NotIncluded, Receipt, Signed
from pipeline.errors import PipelineError
from pipeline.faults import crash_point

log = logging.getLogger(__name__)


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
        finalized: bool = False,
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


def after_not_included(
    state_nonce: int, nonce: int, resubmitted: bool
) -> Literal["resubmit", "uncertain"]:
    """What to do when an extrinsic was dropped or not included in time, by the signer's nonce
    in the chain's state: moved past it, something with that nonce was included (it, most
    likely): never send again, look for the effect. Unchanged, it was not included: sign it
    again with the same nonce (a fresh mortal era) once; a second miss is left to the user.
    The same nonce makes a resubmission safe: at most one transaction can use it."""
    if state_nonce > nonce or resubmitted:
        return "uncertain"
    return "resubmit"


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
    """Sign, journal the intent, broadcast once, journal the result; raise if it failed.

    Dropped or not included in time with the signer's nonce unchanged on chain, the same call
    is signed again (same nonce, fresh era) and sent once more, as a new intent."""
    signed = chain.sign(call, keypair)
    journal = _Journal(recorder, stage, network, summary or str(call))
    for resubmitted in (False, True):
        intent_id = journal.intent(signed)
        try:
            receipt = chain.broadcast(signed)
        except BroadcastUncertain:
            raise  # the intent stays unresolved: a resume looks for its effect on chain
        except NotIncluded as exc:
            state_nonce = chain.state_nonce(signed.signer)
            if after_not_included(state_nonce, signed.nonce, resubmitted) == "uncertain":
                raise BroadcastUncertain(str(exc)) from exc  # unresolved, as above
            journal.failed(intent_id, f"{exc}; nonce {signed.nonce} unused on chain: resent")
            log.warning("%s; nonce %d unused on chain: signing it again", exc, signed.nonce)
            signed = chain.sign(call, keypair, nonce=signed.nonce)
            continue
        except PipelineError as exc:
            journal.failed(intent_id, str(exc))
            raise
        crash_point(f"submit:{stage}:after-broadcast")
        journal.landed(intent_id, receipt)
        return receipt
    raise AssertionError("unreachable: a second miss is uncertain")


@dataclass(frozen=True)
class _Journal:
    """submit_recorded's writes to an optional recorder."""

    recorder: Recorder | None
    stage: str
    network: str
    summary: str

    def intent(self, signed: Signed) -> str | None:
        intent_id = None
        if self.recorder is not None:
            intent_id = self.recorder.intent(
                stage=self.stage,
                network=self.network,
                signer=signed.signer,
                nonce=signed.nonce,
                call_hash=signed.call_hash,
                call=self.summary,
            )
        crash_point(f"submit:{self.stage}:after-intent")
        if self.recorder is not None and intent_id is not None:
            self.recorder.submitted(intent_id, signed.extrinsic_hash)
        return intent_id

    def failed(self, intent_id: str | None, error: str) -> None:
        if self.recorder is not None and intent_id is not None:
            self.recorder.result(
                intent_id, success=False, block_hash=None, block_number=None, error=error
            )

    def landed(self, intent_id: str | None, receipt: Receipt) -> None:
        if self.recorder is not None and intent_id is not None:
            self.recorder.result(
                intent_id,
                success=True,
                block_hash=receipt.block_hash,
                block_number=receipt.block_number,
                events=[f"{e.module}.{e.name}" for e in receipt.events],
                finalized=receipt.finalized,
            )
