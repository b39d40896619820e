"""Submissions: what to do when an extrinsic was not included (pure)."""

from __future__ import annotations

import pytest

from pipeline.submission import PendingIntent, after_not_included, intent_outcome


@pytest.mark.parametrize(
    ("state_nonce", "nonce", "resubmitted", "expected"),
    [
        (5, 5, False, "resubmit"),  # nothing used nonce 5: sign it again, once
        (5, 5, True, "uncertain"),  # the second miss: never a third send
        (6, 5, False, "uncertain"),  # something with nonce 5 was included: look for the effect
        (6, 5, True, "uncertain"),
    ],
)
def test_after_not_included(state_nonce: int, nonce: int, resubmitted: bool, expected: str) -> None:
    assert after_not_included(state_nonce, nonce, resubmitted) == expected


@pytest.mark.parametrize(("account_nonce", "expected"), [(3, "not-sent"), (4, "landed")])
def test_intent_outcome_by_nonce(account_nonce: int, expected: str) -> None:
    assert intent_outcome(PendingIntent("5Grw", 3), account_nonce) == expected
