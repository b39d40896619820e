"""Progress of long steps in words: how far a cargo build is, how long a step has run, and a
heartbeat so that a log never goes quiet for long.

A build streams cargo's output through `CargoProgress`; what it says reaches the user through a
`Heartbeat`: the first line at once, then the latest one every `HEARTBEAT_S` with the time so
far (a cargo crate can compile for minutes without a line). A cargo build prints no total when
its output is not a terminal, so the total is what the last complete build of the same inputs
compiled (`expected`), shown as an estimate; the first build shows the count alone.

A wait on a chain (a submission's inclusion, the new runtime going live, multi-block
migrations, a motion's voting window, a network starting) reports through the same heartbeat
with `waiting`: what it waits for and until when it gives up, stamped with the time so far.
A wait that ends within one beat says nothing (chopsticks makes blocks on demand: the local
path stays as quiet as before); a longer one says so every beat.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Final

from pipeline.errors import PipelineError

HEARTBEAT_S: Final = 30.0  # at most this long without a line in a log
HEARTBEAT_VAR: Final = "PIPELINE_HEARTBEAT_S"  # a shorter beat, for logs that want one
_COMPILING: Final = re.compile(r"^\s*Compiling (\S+) v\S+", re.MULTILINE)


@dataclass
class CargoProgress:
    """Counts the crates a cargo build compiled, from its output as it streams."""

    activity: str  # "building the runtime"
    expected: int | None = None  # crates the last complete build of the same inputs compiled
    compiled: int = 0
    latest: str = ""  # the crate compiling now

    def feed(self, text: str) -> bool:
        """Read a chunk of cargo's output; whether a crate started compiling in it."""
        crates = _COMPILING.findall(text)
        if crates:
            self.compiled += len(crates)
            self.latest = crates[-1]
        return bool(crates)

    def line(self) -> str:
        """`building the runtime: 312 of ~936 crates (sc-network)`."""
        if self.compiled == 0:
            return self.activity
        if self.expected and self.expected >= self.compiled:
            count = f"{self.compiled} of ~{self.expected} crates"
        else:
            count = f"{self.compiled} crates"
        return f"{self.activity}: {count} ({self.latest})"


def elapsed(seconds: float) -> str:
    """`45s`, `4m10s`, `1h02m`: how long a step has run, for a progress line."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def heartbeat_s() -> float:
    """Seconds between two lines of a long step: `HEARTBEAT_S`, or `PIPELINE_HEARTBEAT_S`."""
    value = os.environ.get(HEARTBEAT_VAR)
    if not value:
        return HEARTBEAT_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise PipelineError(f"{HEARTBEAT_VAR}={value!r} is not a positive number of seconds")
    return seconds


class Heartbeat:
    """A progress callback that forwards to `emit`, stamped with the time so far: the first
    line at once (or, `at_once=False`, only once the step outlasts one beat), then the latest
    line every `interval` seconds (default `heartbeat_s()`) while it runs (a thread), so
    frequent updates are thinned and a long silence still shows the step is alive."""

    def __init__(
        self,
        emit: Callable[[str], None],
        interval: float | None = None,
        *,
        at_once: bool = True,
    ) -> None:
        self._emit = emit
        self._interval = heartbeat_s() if interval is None else interval
        self._at_once = at_once
        self._started = time.monotonic()
        self._latest: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="progress-heartbeat", daemon=True)

    def __call__(self, line: str) -> None:
        first = self._latest is None
        self._latest = line
        if first:
            if self._at_once:
                self._emit(self.stamped())
            self._thread.start()

    def stamped(self) -> str:
        """The latest line with the time since the step started: `[4m10s] building …`."""
        return f"[{elapsed(time.monotonic() - self._started)}] {self._latest or ''}"

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            self._emit(self.stamped())

    def __enter__(self) -> Heartbeat:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def until(seconds: float, now: datetime | None = None) -> str:
    """`until 10:04:05 UTC, at most 2m00s`: when a wait bounded by `seconds` gives up."""
    end = (now or datetime.now(UTC)) + timedelta(seconds=seconds)
    return f"until {end:%H:%M:%S} UTC, at most {elapsed(seconds)}"


@contextlib.contextmanager
def waiting(
    progress: Callable[[str], None], what: str, bound: str, interval: float | None = None
) -> Iterator[Callable[[str], None]]:
    """Report a wait through a heartbeat: `[1m30s] waiting for <what> (<bound>)` every beat
    once it outlasts one; the callback it yields says what the wait is at now (a block)."""
    with Heartbeat(progress, interval, at_once=False) as beat:

        def now_at(state: str) -> None:
            beat(f"waiting for {state} ({bound})")

        now_at(what)
        yield now_at
