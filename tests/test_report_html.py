"""report.html and the releases' index.html: from report data the report module builds on a real
ledger, escaped, self-contained, and drawn by a real browser (Debian's chromium, headless)."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.governance import EnactResult
from pipeline.ledger import open_ledger
from pipeline.motions import MotionStatus
from pipeline.plan import STAGES, load_plan
from pipeline.report import report_data, write_report
from pipeline.report_html import render_index, render_release
from pipeline.schedule import milestone_table

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium")
ARTIFACT = "0x589f8ab5" + "3e" * 26 + "7cd0"
COMMIT = "c0ffee" + "1" * 34
COUNCIL = ("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
           "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty",
           "5FLSigC9HGRKVhB9FiEo4Y3koPsNmBmLJbpXg2mp1hXcS59Y")  # fmt: skip


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 12, day, hour, tzinfo=UTC)


def release_ledger(state_dir: Path, release: str = "example-101") -> list[dict[str, Any]]:
    """A whole release journaled as `invoke release` journals it, with each stage's result."""
    motion = MotionStatus(
        collective="Council",
        index=0,
        proposal_hash="0x" + "ab" * 32,
        state="approved",
        threshold=2,
        ayes=COUNCIL[:2],
        nays=(),
        members=COUNCIL,
        head=41,
        end=60,
        deadline=60,
        block_time=6.0,
    )
    enacted = EnactResult("enacted", "the council approved", ARTIFACT, 0, "no-nays", COUNCIL[:2])
    results: dict[str, dict[str, Any]] = {
        "build": {"commit": COMMIT, "artifact": ARTIFACT, "spec_version": 101, "seconds": 412.3},
        "migrations": {
            "artifact": ARTIFACT,
            "report_lines": ["pass weight: 900,000,000 of 2,000,000,000,000 ref_time (0.04%)"],
            "seconds": 3.8,
        },
        "deploy-reckless": {"artifact": ARTIFACT, "block": 3, "seconds": 38.0},
        "suite-subsystem": {"artifact": ARTIFACT, "passed": 12, "failed": 0, "seconds": 95.1},
        "freeze": {"tag": "release/example-101/freeze", "commit": COMMIT, "seconds": 0.4},
        "deploy-lts": {"artifact": ARTIFACT, "block": 9, "seconds": 41.7},
        "suite-final": {"artifact": ARTIFACT, "passed": 20, "failed": 0, "seconds": 130.2},
        "propose": {"artifact": ARTIFACT, "seconds": 12.9},
        "track": {"artifact": ARTIFACT, "outcome": "approved", "votes": motion.as_dict()},
        "enact": {"artifact": ARTIFACT, **enacted.as_dict(), "seconds": 25.5},
        "verify": {"artifact": ARTIFACT, "code_hash": ARTIFACT, "spec_version": 101},
    }
    with open_ledger(state_dir, release, create={"candidate": "HEAD", "env": "local"}) as ledger:
        for stage, result in results.items():
            ledger.stage_started(stage)
            if stage == "propose":
                intent = ledger.intent(
                    stage=stage,
                    network="production",
                    signer=COUNCIL[0],
                    nonce=4,
                    call_hash="0x" + "ab" * 32,
                    call="Council.propose(2, System.authorize_upgrade)",
                )
                ledger.submitted(intent, "0x" + "22" * 32)
                ledger.result(intent, success=True, block_hash="0x" + "33" * 32, block_number=17)
            ledger.stage_done(stage, {**result, "seconds": result.get("seconds", 3.2)})
        return ledger.records


def release_data(state_dir: Path) -> dict[str, Any]:
    """The example plan's milestones: Sub-system Test done 3 h late, the rest on time."""
    plan = load_plan("example", root=REPO)
    done = {
        "deploy-reckless": at(1, 9),
        "suite-subsystem": at(4, 15),
        "suite-final": at(8),
        "propose": at(10),
        "enact": at(16),
    }
    rows = milestone_table(plan, done, now=at(17))
    return report_data(release_ledger(state_dir), rows, written_at=at(17))


def test_release_page_draws_each_milestone_and_marks_the_late_one(tmp_path: Path) -> None:
    page = render_release(release_data(tmp_path))
    groups = re.findall(r'<g class="milestone" data-state="([^"]+)">', page)
    assert groups == ["done", "late", "done", "done", "done"]
    assert page.count('class="deadline"') == 5 and page.count('class="actual"') == 5
    assert "late +3h" in page
    assert page.count('<g class="stage"') == len(STAGES)
    assert f'data-copy="{ARTIFACT}"' in page and f'data-copy="{COMMIT}"' in page
    assert "build.artifact, migrations.artifact, deploy-reckless.artifact" in page
    assert "Motion #0 on Council" in page and page.count("badge s-aye") == 2
    assert (
        "badge s-not-voted" in page
        and 'Enactment: <span class="badge s-enacted">enacted</span>' in page
    )
    # Self-contained: nothing is fetched; the policy forbids it even if something tried.
    assert "default-src 'none'" in page
    assert not re.search(r"""(src|href)=["'](https?:)?//""", page)


def test_everything_from_the_ledger_is_escaped(tmp_path: Path) -> None:
    hostile = '<img src=x onerror="alert(1)">'
    with open_ledger(tmp_path, "r1", create={"candidate": hostile}) as ledger:
        ledger.stage_started("build")
        ledger.stage_failed("build", hostile)
        records = ledger.records
    data = report_data(records, written_at=at(1))
    page = render_release(data)
    assert "<img" not in page
    assert (
        page.count("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;") == 3
    )  # error (listed, tooltip), settings
    assert "<img" not in render_index([data])


def test_write_report_writes_the_page_and_an_index_of_every_release(tmp_path: Path) -> None:
    write_report(tmp_path / "releases" / "example-101", release_data(tmp_path))
    with open_ledger(tmp_path, "hotfix-102", create={"candidate": "HEAD"}) as ledger:
        ledger.stage_started("build")
        ledger.stage_failed("build", "cargo build failed")
        records = ledger.records
    write_report(tmp_path / "releases" / "hotfix-102", report_data(records, written_at=at(18)))
    assert (tmp_path / "releases" / "hotfix-102" / "report.html").is_file()
    index = (tmp_path / "releases" / "index.html").read_text()
    rows = re.findall(
        r'<a href="([^"]+)">([^<]+)</a></td><td><span class="badge [^"]+">([^<]+)<', index
    )
    assert rows == [
        ("hotfix-102/report.html", "hotfix-102", "failed at build"),  # the newest report first
        ("example-101/report.html", "example-101", "complete"),
    ]
    assert "1 of 5 late" in index


# --- in a real browser --------------------------------------------------------------------------
def chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Debian chromium, offline and with a fresh profile, on a file:// page."""
    assert CHROMIUM is not None
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1200,1600",
    ]
    return subprocess.run(
        [CHROMIUM, *flags, *args, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )


def png_pixels(png: bytes) -> list[bytes]:
    """Every pixel (3 bytes, RGB) of an 8-bit RGB or RGBA PNG: the chunks' zlib stream, with each
    scanline's filter undone (PNG spec, section 9)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, bytearray(), b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, chunk = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour in (2, 6), (depth, colour)
    step = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * step
    previous, pixels = bytearray(stride), []
    for y in range(height):
        start = y * (stride + 1) + 1
        kind, line = raw[start - 1], bytearray(raw[start : start + stride])
        for i in range(stride) if kind else ():
            a = line[i - step] if i >= step else 0
            b = previous[i]
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            else:
                c = previous[i - step] if i >= step else 0
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        pixels += [bytes(line[i : i + 3]) for i in range(0, stride, step)]
        previous = line
    assert len(pixels) == width * height == 1200 * 1600, (width, height)
    return pixels


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="needs Debian's chromium (apt-get install -y chromium; scripts/bootstrap.sh does)",
)
def test_report_html_renders_in_headless_chromium(tmp_path: Path) -> None:
    release_dir = tmp_path / "releases" / "example-101"
    write_report(release_dir, release_data(tmp_path))
    page = release_dir / "report.html"
    dom = chromium(page, tmp_path / "profile-dom", "--dump-dom").stdout
    assert len(re.findall(r'<g class="milestone"', dom)) == 5  # drawn by the browser's DOM
    assert 'data-state="late"' in dom and "late +3h" in dom
    shot = tmp_path / "report.png"
    chromium(page, tmp_path / "profile-shot", f"--screenshot={shot}")
    pixels = png_pixels(shot.read_bytes())
    sample = pixels[::97]
    background = max(set(sample), key=sample.count)
    inked = sum(p != background for p in pixels) / len(pixels)
    assert inked > 0.02, f"the screenshot is nearly blank ({inked:.2%} non-background pixels)"
    assert len(set(pixels)) > 50  # text, bars, markers: not a flat fill
    assert bytes((0xC6, 0x28, 0x28)) in set(pixels)  # the late milestone's red span
