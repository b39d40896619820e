"""Sudo: the sudo key dispatches root calls; nobody else can."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from substrateinterface import Keypair

from pipeline.chain import Call, Chain
from pipeline.errors import PipelineError

# A storage key no pallet uses (pallets hash their names into their keys).
KEY = "0x" + b":pipeline-suite:sudo".hex()


@pytest.mark.sudo
def test_sudo_dispatches_a_root_call(chain: Chain, sudo: Keypair) -> None:
    value = os.urandom(8)
    items = [(KEY, "0x" + value.hex())]
    receipt = chain.submit(
        Call("Sudo", "sudo", {"call": Call("System", "set_storage", {"items": items})}), sudo
    )
    [sudid] = receipt.find("Sudo", "Sudid")
    assert "Ok" in sudid.attributes["sudo_result"]
    assert chain.storage(KEY) == value
    chain.submit(
        Call("Sudo", "sudo", {"call": Call("System", "kill_storage", {"keys": [KEY]})}), sudo
    )
    assert chain.storage(KEY) is None


@pytest.mark.sudo
def test_only_the_sudo_key_may_use_sudo(
    chain: Chain, sudo: Keypair, funded: Callable[[int], Keypair]
) -> None:
    other = funded(1)
    remark = Call("System", "remark", {"remark": "not the sudo key"})
    with pytest.raises(PipelineError, match=r"failed in block #\d+: Sudo.RequireSudo"):
        chain.submit(Call("Sudo", "sudo", {"call": remark}), other)
    assert chain.query("Sudo", "Key") == sudo.ss58_address
