"""State carried over from production is intact, and migrated as the Notes migration promises:
every note production held at the fork now reads as a v1 `Note` with its original text and
`set_at = 0` (the block a version 0 note was set in was never recorded)."""

from __future__ import annotations

import pytest
from substrateinterface import Keypair

from pipeline.chain import Chain
from pipeline.upgrade import decode_storage_version, storage_version_key

from ..conftest import Target
from ..helpers import map_accounts, note_text


@pytest.mark.notes
def test_production_notes_read_as_v1_notes_with_their_text(
    target: Target, chain: Chain, production: Chain, forked_at: str
) -> None:
    authors = map_accounts(production, "Notes", "Notes", target.env.ss58_format, forked_at)
    assert authors, "production held no notes at the fork: nothing shows the migration"
    for author in authors:
        original = production.query("Notes", "Notes", [author], block_hash=forked_at)
        migrated = chain.query("Notes", "Notes", [author])
        if isinstance(original, dict):  # production runs the new layout already: kept as is
            assert migrated == original
            continue
        assert migrated == {"text": note_text(original), "set_at": 0}, author


@pytest.mark.notes
def test_notes_storage_version_is_1(chain: Chain) -> None:
    assert decode_storage_version(chain.storage(storage_version_key("Notes"))) == 1


@pytest.mark.runtime
def test_accounts_the_suites_do_not_touch_are_as_production_left_them(
    target: Target, chain: Chain, production: Chain, forked_at: str, sudo: Keypair
) -> None:
    """Balances, nonces and reserves of every other account survive the upgrade byte for byte."""
    touched = {sudo.ss58_address, *production.query("Council", "Members", block_hash=forked_at)}
    accounts = map_accounts(production, "System", "Account", target.env.ss58_format, forked_at)
    untouched = [a for a in accounts if a not in touched]
    assert untouched, "production has no account besides the sudo key and the council"
    for account in untouched:
        before = production.query("System", "Account", [account], block_hash=forked_at)
        assert chain.query("System", "Account", [account]) == before, account


@pytest.mark.council
def test_the_council_is_carried_over(chain: Chain, production: Chain, forked_at: str) -> None:
    assert chain.query("Council", "Members") == production.query(
        "Council", "Members", block_hash=forked_at
    )
    assert chain.query("Council", "ProposalCount") >= production.query(
        "Council", "ProposalCount", block_hash=forked_at
    )
