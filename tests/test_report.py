"""Release report rendering from a real ledger, and the webhook notifier against a real server."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import pytest

from pipeline.ledger import open_ledger
from pipeline.report import notify, render_markdown, report_data, write_report

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def journal(tmp_path: Path) -> list[dict[str, object]]:
    with open_ledger(tmp_path, "r1", create={"candidate": "HEAD", "env": "local"}) as ledger:
        ledger.stage_started("build")
        ledger.stage_done("build", {"commit": "c" * 40, "artifact": "0xaa"})
        ledger.stage_started("deploy-reckless")
        intent = ledger.intent(
            stage="deploy-reckless",
            network="staging-reckless",
            signer="5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
            nonce=0,
            call_hash="0x" + "11" * 32,
            call="Sudo.sudo_unchecked_weight(System.set_code)",
        )
        ledger.submitted(intent, "0x" + "22" * 32)
        ledger.result(intent, success=True, block_hash="0x" + "33" * 32, block_number=7)
        ledger.stage_done("deploy-reckless", {"artifact": "0xaa", "spec_version": 101})
        ledger.stage_started("suite-subsystem")
        ledger.stage_failed("suite-subsystem", "2 tests failed")
        return ledger.records


def test_report_lists_stages_times_submissions_and_failure(tmp_path: Path) -> None:
    data = report_data(journal(tmp_path), written_at=NOW)
    stages = {row["stage"]: row for row in data["stages"]}
    assert list(stages) == ["build", "deploy-reckless", "suite-subsystem"]
    assert stages["build"]["state"] == "done" and stages["build"]["seconds"] >= 0
    assert stages["suite-subsystem"]["state"] == "failed"
    assert data["complete"] is False
    assert data["submissions"][0]["block"] == 7
    markdown = render_markdown(data)
    assert "| suite-subsystem | failed |" in markdown and "2 tests failed" in markdown
    assert "Sudo.sudo_unchecked_weight(System.set_code)" in markdown
    json_path, md_path = write_report(tmp_path, data)
    assert json.loads(json_path.read_text())["release"] == "r1"
    assert md_path.read_text() == markdown


def test_unresolved_submission_is_reported_as_unknown_outcome(tmp_path: Path) -> None:
    with open_ledger(tmp_path, "r2", create={"candidate": "HEAD"}) as ledger:
        ledger.stage_started("propose")
        ledger.intent(
            stage="propose",
            network="production",
            signer="5Grw",
            nonce=3,
            call_hash="0x" + "44" * 32,
            call="Council.propose",
        )
        records = ledger.records
    data = report_data(records, written_at=NOW)
    assert "unknown outcome" in render_markdown(data)
    assert data["warnings"]


class _Hook(http.server.BaseHTTPRequestHandler):
    statuses: ClassVar[list[int]] = []
    bodies: ClassVar[list[dict[str, object]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).bodies.append(json.loads(body))
        self.send_response(type(self).statuses.pop(0))
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def test_notify_retries_server_errors_then_delivers(hook: str) -> None:
    _Hook.statuses, _Hook.bodies = [503, 500, 200], []
    assert notify({"release": "r1"}, url=hook, sleep=lambda _: None) is True
    assert len(_Hook.bodies) == 3 and _Hook.bodies[-1] == {"release": "r1"}


def test_notify_failure_never_raises(hook: str) -> None:
    _Hook.statuses, _Hook.bodies = [500] * 4, []
    assert notify({"release": "r1"}, url=hook, sleep=lambda _: None) is False
    dead = "http://127.0.0.1:9/hook"  # discard port: connection refused
    assert notify({"release": "r1"}, url=dead, sleep=lambda _: None) is False


def test_notify_without_url_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIPELINE_WEBHOOK_URL", raising=False)
    assert notify({"release": "r1"}) is False


def test_the_report_shows_the_attestations_enact_read_from_the_chain(tmp_path: Path) -> None:
    member, mallory = "5Grw" + "a" * 44, "5Dal" + "b" * 44
    tally = {
        "summary": "1 of 3 members reproduced 0xcdcdcdcd…cdcd, 0 mismatches",
        "code_hash": "0x" + "cd" * 32,
        "members": 3,
        "matches": [member],
        "mismatches": [],
        "ignored": [
            {"signer": mallory, "block": 9, "standing": "not-a-member", "verdict": "MATCH"}
        ],
    }
    with open_ledger(tmp_path, "r3", create={"candidate": "HEAD"}) as ledger:
        ledger.stage_started("track")
        ledger.stage_done(
            "track", {"outcome": "approved", "attestations": {**tally, "matches": []}}
        )
        ledger.stage_started("enact")
        ledger.stage_done("enact", {"outcome": "enacted", "attestations": tally})
        records = ledger.records
    data = report_data(records, written_at=NOW)
    assert data["attestations"] == tally  # enact's, the newer reading
    markdown = render_markdown(data)
    assert (
        "## Attestations\n\n- 1 of 3 members reproduced 0xcdcdcdcd…cdcd, 0 mismatches" in markdown
    )
    assert f"- MATCH: {member}" in markdown
    assert f"- not counted: MATCH by {mallory} in block #9 (not-a-member)" in markdown
    assert "## Attestations" not in render_markdown(report_data(journal(tmp_path), written_at=NOW))
