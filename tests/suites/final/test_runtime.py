"""The runtime as clients see it: its APIs answer, its version is the one reported, blocks go on."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from substrateinterface import Keypair

from pipeline.artifact import decode_runtime_version
from pipeline.chain import Call, Chain

from ..helpers import compact, state_call

pytestmark = pytest.mark.runtime


def test_core_version_is_the_version_the_node_reports(chain: Chain) -> None:
    version = decode_runtime_version(state_call(chain, "Core_version"))
    reported = chain.runtime_version()
    assert (version.spec_name, version.spec_version, version.transaction_version) == (
        reported["specName"],
        reported["specVersion"],
        reported["transactionVersion"],
    )


def test_metadata_api_returns_metadata(chain: Chain) -> None:
    answer = state_call(chain, "Metadata_metadata")
    length, start = compact(answer)
    assert length == len(answer) - start
    assert answer[start : start + 4] == b"meta"


def test_account_nonce_api_answers(chain: Chain, sudo: Keypair) -> None:
    answer = state_call(chain, "AccountNonceApi_account_nonce", sudo.public_key)
    on_chain = chain.query("System", "Account", [sudo.ss58_address])["nonce"]
    assert int.from_bytes(answer, "little") == on_chain


def test_transaction_payment_api_quotes_a_fee(chain: Chain, sudo: Keypair, unit: int) -> None:
    call = Call("Balances", "transfer_keep_alive", {"dest": sudo.ss58_address, "value": unit})
    encoded = bytes(chain.sign(call, sudo).extrinsic.data.data)  # signed, never sent
    answer = state_call(
        chain, "TransactionPaymentApi_query_info", encoded + len(encoded).to_bytes(4, "little")
    )
    ref_time, pos = compact(answer)
    _proof_size, pos = compact(answer, pos)
    dispatch_class = answer[pos]
    partial_fee = int.from_bytes(answer[pos + 1 : pos + 17], "little")
    assert ref_time > 0
    assert dispatch_class == 0  # Normal
    assert 0 < partial_fee < unit


def test_blocks_continue(chain: Chain, next_block: Callable[[], int]) -> None:
    before = chain.block_number()
    head = next_block()
    assert head > before
    header = chain.rpc("chain_getHeader", [chain.block_hash(head)])
    assert header["parentHash"] == chain.block_hash(head - 1)
