"""Fault-injection hooks for tests: crash points and pause points, named by env vars.

The release must survive SIGKILL anywhere; tests set `PIPELINE_CRASH_AT=<point>` to a point
name (a stage boundary such as `after:deploy-reckless`, a submission step such as
`submit:propose:after-intent`, or a point inside a long wait: `build:running`,
`suite:subsystem:in-test`, `track:between-heads`) and resume the release afterwards.

`PIPELINE_PAUSE_AT=<point>` with `PIPELINE_PAUSE_FILE=<path>` makes the process stop at that
point once: it creates the file and waits until the test deletes it, so that the test can act
on the world in between (restart a node mid-tracking) without racing the release.
Unset, each hook costs one lookup.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

CRASH_ENV = "PIPELINE_CRASH_AT"
PAUSE_ENV = "PIPELINE_PAUSE_AT"
PAUSE_FILE_ENV = "PIPELINE_PAUSE_FILE"
PAUSE_LIMIT_S = 600.0  # a test that never releases the pause must not hang CI forever

_paused: set[str] = set()


def crash_point(name: str, *, with_parent: bool = False) -> None:
    """Die at once, like a power cut, when the crash hook names this point; `with_parent`: the
    process that started this one dies first (a suite's process takes its release down)."""
    if os.environ.get(CRASH_ENV) == name:
        if with_parent:
            os.kill(os.getppid(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)


def pause_point(name: str) -> None:
    """Wait here, the first time only, while the pause file exists, when the hook names this
    point."""
    if os.environ.get(PAUSE_ENV) != name or name in _paused:
        return
    _paused.add(name)
    marker = Path(os.environ[PAUSE_FILE_ENV])
    marker.write_text(f"{os.getpid()} paused at {name}\n")
    deadline = time.monotonic() + PAUSE_LIMIT_S
    while marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
