"""Crash points for fault-injection tests: `PIPELINE_CRASH_AT=<point>` kills the process there.

The release must survive SIGKILL anywhere; tests set the variable to a point name (a stage
boundary such as `after:deploy-reckless`, or a submission step such as
`submit:propose:after-intent`) and resume the release afterwards. Unset, it costs one lookup.
"""

from __future__ import annotations

import os
import signal

CRASH_ENV = "PIPELINE_CRASH_AT"


def crash_point(name: str) -> None:
    """Die at once, like a power cut, when the crash hook names this point."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
