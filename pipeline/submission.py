"""The one way the pipeline broadcasts: record the intent, send, record the outcome.

Every extrinsic goes through `submit_recorded`, so the ledger holds signer, nonce and call hash
before anything leaves the machine. After a crash the caller looks for the call's effect on
chain first; sent again, the call reuses the unresolved send's nonce (`resend_nonce`) while the
chain has not used it, so at most one of the two sends can land.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
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

    def unresolved_nonces(self, *, network: str, signer: str, call_hash: str) -> list[int]: ...

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


def resend_nonce(unresolved: Sequence[int], state_nonce: int) -> int | None:
    """The nonce for sending a call again when an earlier send of it has no known outcome (a run
    ended during it): that send's nonce while it is still the next one on chain, so at most one
    of the two can land. The pool's next nonce would let both land if the earlier one still
    waits in some node's pool. None: no such send (sign with the pool's next nonce)."""
    return state_nonce if state_nonce in unresolved else None


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
    is signed again (same nonce, fresh era) and sent once more, as a new intent; the missed send
    is settled only when the resend lands. A call whose earlier send (a previous run's) has no
    known outcome reuses that send's nonce."""
    signed = chain.sign(call, keypair)
    earlier = _earlier_nonce(chain, signed, recorder, network)
    if earlier is not None and earlier != signed.nonce:
        signed = chain.sign(call, keypair, nonce=earlier)
    journal = _Journal(recorder, stage, network, summary or str(call))
    missed: tuple[str | None, str] | None = None  # the first send, not included: (intent, why)
    while True:
        intent_id = journal.intent(signed)
        try:
            receipt = chain.broadcast(signed)
        except BroadcastUncertain:
            raise  # the intent stays unresolved: a resume looks for its effect on chain
        except NotIncluded as exc:
            state_nonce = chain.state_nonce(signed.signer)
            if after_not_included(state_nonce, signed.nonce, missed is not None) == "uncertain":
                raise BroadcastUncertain(str(exc)) from exc  # unresolved, as above
            # The missed send stays unresolved until its nonce is used by the resend: it may
            # still wait in some node's pool, and a resend refused for that must not settle it.
            missed = (intent_id, f"{exc}; nonce {signed.nonce} unused on chain")
            log.warning("%s; nonce %d unused on chain: signing it again", exc, signed.nonce)
            signed = chain.sign(call, keypair, nonce=signed.nonce)
            continue
        except PipelineError as exc:  # refused or failed: this send is settled
            journal.failed(intent_id, str(exc))
            raise
        crash_point(f"submit:{stage}:after-broadcast")
        if missed is not None:
            journal.failed(missed[0], f"{missed[1]}: replaced by a resend with it, which landed")
        journal.landed(intent_id, receipt)
        return receipt


def _earlier_nonce(
    chain: Chain, signed: Signed, recorder: Recorder | None, network: str
) -> int | None:
    """`resend_nonce` for the signed call, from the journal's unresolved sends and the chain's
    state (the call's hash comes with its signing: a first send composes the call once)."""
    if recorder is None:
        return None
    unresolved = recorder.unresolved_nonces(
        network=network, signer=signed.signer, call_hash=signed.call_hash
    )
    if not unresolved:
        return None
    nonce = resend_nonce(unresolved, chain.state_nonce(signed.signer))
    if nonce is not None:
        log.info(
            "%s: an earlier send has no known outcome: signing with its nonce %d",
            signed.call,
            nonce,
        )
    return nonce


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
