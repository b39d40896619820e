"""Balances and fees: a transfer moves exactly the amount, and the sender pays a fee for it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from substrateinterface import Keypair

from pipeline.chain import Call, Chain
from pipeline.errors import PipelineError

from ..conftest import Target, fresh_account


def free(chain: Chain, who: Keypair) -> int:
    return int(chain.query("System", "Account", [who.ss58_address])["data"]["free"])


@pytest.mark.balances
def test_transfer_moves_the_amount_and_charges_the_fee(
    target: Target, chain: Chain, funded: Callable[[int], Keypair], unit: int
) -> None:
    sender, receiver = funded(10), fresh_account(target)
    before = free(chain, sender)
    call = Call(
        "Balances", "transfer_keep_alive", {"dest": receiver.ss58_address, "value": 3 * unit}
    )
    receipt = chain.submit(call, sender)
    [transfer] = receipt.find("Balances", "Transfer")
    assert (transfer.attributes["from"], transfer.attributes["to"]) == (
        sender.ss58_address,
        receiver.ss58_address,
    )
    assert transfer.attributes["amount"] == 3 * unit
    [paid] = receipt.find("TransactionPayment", "TransactionFeePaid")
    fee = int(paid.attributes["actual_fee"])
    assert paid.attributes["who"] == sender.ss58_address
    assert 0 < fee < unit
    assert free(chain, receiver) == 3 * unit
    assert free(chain, sender) == before - 3 * unit - fee - int(paid.attributes["tip"])


@pytest.mark.balances
def test_transfer_beyond_the_balance_fails_and_moves_nothing(
    target: Target, chain: Chain, funded: Callable[[int], Keypair], unit: int
) -> None:
    sender, receiver = funded(2), fresh_account(target)
    call = Call(
        "Balances", "transfer_keep_alive", {"dest": receiver.ss58_address, "value": 5 * unit}
    )
    with pytest.raises(PipelineError, match=r"failed in block #\d+: (Token|Balances)\."):
        chain.submit(call, sender)
    assert chain.query("System", "Account", [receiver.ss58_address])["data"]["free"] == 0
    assert unit < free(chain, sender) < 2 * unit  # only the fee went
