"""Notes, the behaviour new in spec 101: a note is stored with the block it was set in."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from substrateinterface import Keypair

from pipeline.chain import Call, Chain


@pytest.mark.notes
def test_a_note_is_stored_with_its_block(chain: Chain, funded: Callable[[int], Keypair]) -> None:
    author = funded(1)
    text = f"written by the sub-system suite {os.urandom(4).hex()}"
    receipt = chain.submit(Call("Notes", "set_note", {"text": text}), author)
    [event] = receipt.find("Notes", "NoteSet")
    assert event.attributes["who"] == author.ss58_address
    note = chain.query("Notes", "Notes", [author.ss58_address])
    assert note == {"text": text, "set_at": receipt.block_number}


@pytest.mark.notes
def test_a_new_note_replaces_the_old_one_and_its_block(
    chain: Chain, funded: Callable[[int], Keypair], next_block: Callable[[], int]
) -> None:
    author = funded(1)
    first = chain.submit(Call("Notes", "set_note", {"text": "first"}), author)
    next_block()
    second = chain.submit(Call("Notes", "set_note", {"text": "second"}), author)
    assert second.block_number > first.block_number
    note = chain.query("Notes", "Notes", [author.ss58_address])
    assert note == {"text": "second", "set_at": second.block_number}
