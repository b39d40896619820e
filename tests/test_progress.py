"""Progress of long steps: cargo's crate count, the time-so-far stamp and the heartbeat."""

from __future__ import annotations

import io
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from pipeline import builder
from pipeline.cli import render
from pipeline.errors import PipelineError
from pipeline.progress import CargoProgress, Heartbeat, elapsed, heartbeat_s, until, waiting

CARGO_OUTPUT = """\
   Compiling proc-macro2 v1.0.107
   Compiling quote v1.0.47
warning: unused import
   Compiling sc-network v0.50.1
"""


def test_cargo_progress_counts_crates_as_they_start() -> None:
    crates = CargoProgress("building the node", expected=900)
    assert crates.line() == "building the node"
    assert not crates.feed("    Updating crates.io index\n")
    assert crates.feed(CARGO_OUTPUT)
    assert crates.compiled == 3
    assert crates.line() == "building the node: 3 of ~900 crates (sc-network)"
    assert crates.feed("   Compiling example-node v0.1.0 (/build/examples/node)\n")
    assert crates.line() == "building the node: 4 of ~900 crates (example-node)"


def test_cargo_progress_without_a_total_or_past_it_shows_the_count_alone() -> None:
    first = CargoProgress("building the runtime")
    first.feed(CARGO_OUTPUT)
    assert first.line() == "building the runtime: 3 crates (sc-network)"
    beyond = CargoProgress("building the runtime", expected=2)
    beyond.feed(CARGO_OUTPUT)
    assert beyond.line() == "building the runtime: 3 crates (sc-network)"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0s"), (59.9, "59s"), (60, "1m00s"), (250, "4m10s"), (3720, "1h02m")],
)
def test_elapsed(seconds: float, shown: str) -> None:
    assert elapsed(seconds) == shown


def test_heartbeat_forwards_the_first_line_then_the_latest_every_interval() -> None:
    lines: list[str] = []
    with Heartbeat(lines.append, interval=0.2) as beat:
        beat("vendoring crates")
        assert lines == ["[0s] vendoring crates"]
        for n in range(50):  # frequent updates are thinned, not forwarded one by one
            beat(f"building: {n} crates")
        time.sleep(0.5)
    after = len(lines)
    time.sleep(0.3)
    assert len(lines) == after  # the thread stops with the step
    assert 2 <= after <= 4
    assert all(line.endswith("building: 49 crates") for line in lines[1:])


def test_until_names_the_moment_a_wait_gives_up_and_its_length() -> None:
    now = datetime(2026, 11, 30, 9, 58, 30, tzinfo=UTC)
    assert until(90, now) == "until 10:00:00 UTC, at most 1m30s"


def test_the_beat_comes_from_the_environment_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIPELINE_HEARTBEAT_S", raising=False)
    assert heartbeat_s() == 30.0
    monkeypatch.setenv("PIPELINE_HEARTBEAT_S", "0.5")
    assert heartbeat_s() == 0.5
    for bad in ("soon", "0", "-3"):
        monkeypatch.setenv("PIPELINE_HEARTBEAT_S", bad)
        with pytest.raises(PipelineError, match=r"PIPELINE_HEARTBEAT_S=.* is not a positive"):
            heartbeat_s()


def test_a_short_wait_says_nothing_and_a_long_one_says_what_until_when_every_beat() -> None:
    lines: list[str] = []
    with waiting(lines.append, "block #5", "until block #9", interval=0.3):
        time.sleep(0.1)
    assert lines == []
    with waiting(lines.append, "block #5", "until block #9", interval=0.2) as now_at:
        time.sleep(0.3)
        now_at("block #6")
        time.sleep(0.2)
    time.sleep(0.3)
    assert 2 <= len(lines) <= 3, lines  # one a beat, and none once the wait is over
    assert lines[0] == "[0s] waiting for block #5 (until block #9)"
    assert lines[-1] == "[0s] waiting for block #6 (until block #9)"


def test_spinner_in_a_log_prints_the_first_line_and_then_a_heartbeat(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = io.StringIO()
    monkeypatch.setattr(render, "make_console", lambda stderr=False: Console(file=out))
    with render.spinner(heartbeat_s=0.2) as progress:
        progress("building the runtime")
        time.sleep(0.5)  # a crate compiling for minutes without a line of output
    shown = out.getvalue().splitlines()
    assert shown[0] == "[0s] building the runtime"
    assert len(shown) >= 2 and all(line.endswith("building the runtime") for line in shown)
    assert not [t for t in threading.enumerate() if t.name == "progress-heartbeat"]


def test_a_complete_build_teaches_the_next_one_its_total(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_CACHE_DIR", str(tmp_path))
    assert builder.expected_units("node:0xabc") is None
    builder.remember_units("node:0xabc", 930)
    builder.remember_units("node:0xabc", 4)  # a warm build: the total stays
    builder.remember_units("runtime:0xdef", 700)
    assert builder.expected_units("node:0xabc") == 930
    assert builder.expected_units("runtime:0xdef") == 700
    (tmp_path / "progress-units.json").write_text("not json")
    assert builder.expected_units("node:0xabc") is None  # a broken cache only loses the total
