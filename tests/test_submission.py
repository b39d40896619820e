"""Submissions: what to do when an extrinsic was not included or is sent again (pure)."""

from __future__ import annotations

import pytest

from pipeline.submission import after_not_included, resend_nonce


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


@pytest.mark.parametrize(
    ("unresolved", "state_nonce", "expected"),
    [
        ([], 3, None),  # no earlier send: the pool's next nonce
        ([3], 3, 3),  # the earlier send's nonce is still next: reuse it, one of them lands
        ([3], 4, None),  # something used it (the effect was looked for first): a fresh nonce
        ([2, 3], 3, 3),  # a send resent once in a run that then ended: the open one
        ([5], 3, None),  # it waited behind other sends: reusing it could wait forever
    ],
)
def test_resend_nonce(unresolved: list[int], state_nonce: int, expected: int | None) -> None:
    assert resend_nonce(unresolved, state_nonce) == expected
