"""The release report (`report.md`, `report.json`, `report.html`) and the webhook notification.

Rendering is pure: the report is a function of the ledger's records, the plan's milestone rows
and the time it is written. The notifier posts a summary to a webhook whose URL is a secret
(an environment variable); a failed notification is logged and never fails the release.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from pipeline.ledger import replay
from pipeline.plan import STAGES
from pipeline.report_html import block_cell, write_release_html
from pipeline.schedule import MilestoneRow, format_span

log = logging.getLogger(__name__)

WEBHOOK_ENV = "PIPELINE_WEBHOOK_URL"
WEBHOOK_ATTEMPTS = 4
WEBHOOK_TIMEOUT_S = 10.0


def stage_rows(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each stage's latest run: state, start, end, seconds, result."""
    runs: dict[str, dict[str, Any]] = {}
    for record in records:
        stage = str(record.get("stage"))
        kind = record.get("type")
        if kind == "stage_started":
            runs[stage] = {"stage": stage, "state": "running", "started": record.get("at")}
        elif kind in ("stage_done", "stage_failed") and stage in runs:
            run = runs[stage]
            run["finished"] = record.get("at")
            run["state"] = "done" if kind == "stage_done" else "failed"
            run["result"] = record.get("result") if kind == "stage_done" else None
            run["error"] = record.get("error")
            if run.get("started") and run.get("finished"):
                started = datetime.fromisoformat(run["started"])
                run["seconds"] = round(
                    (datetime.fromisoformat(run["finished"]) - started).total_seconds(), 1
                )
    return [runs[stage] for stage in STAGES if stage in runs]


def report_data(
    records: Sequence[Mapping[str, Any]],
    milestones: Sequence[MilestoneRow] = (),
    *,
    written_at: datetime,
) -> dict[str, Any]:
    """Everything the report says, as JSON-ready data."""
    state = replay(records)
    intents = [
        {
            "id": intent.id,
            "stage": intent.stage,
            "network": intent.network,
            "signer": intent.signer,
            "nonce": intent.nonce,
            "call": intent.call,
            "call_hash": intent.call_hash,
            "extrinsic_hash": intent.extrinsic_hash,
            "outcome": None if intent.result is None else intent.result.get("success"),
            "block": None if intent.result is None else intent.result.get("block_number"),
            "finalized": intent.result is not None and bool(intent.result.get("finalized")),
        }
        for intent in state.intents.values()
    ]
    return {
        "release": state.release.get("release"),
        "settings": {k: v for k, v in state.release.items() if k not in ("type", "schema", "at")},
        "written_at": written_at.isoformat(),
        "complete": all(stage in state.done for stage in STAGES),
        "stages": stage_rows(records),
        "submissions": intents,
        "milestones": [
            {
                "name": row.name,
                "stage": row.stage,
                "deadline": row.deadline.isoformat(),
                "actual": row.actual.isoformat() if row.actual else None,
                "state": row.state,
                "slip": format_span(row.slip) if row.slip else None,
                "manager": row.manager,
                "team": list(row.team),
            }
            for row in milestones
        ],
        "attestations": attestations(state.done),
        "warnings": state.warnings(),
        "aborted": state.aborted,
    }


def attestations(done: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The members' statements as the newest of enact and track read them from the chain."""
    for stage in ("enact", "track"):
        found = done.get(stage, {}).get("attestations")
        if isinstance(found, Mapping):
            return found
    return None


def render_markdown(data: Mapping[str, Any]) -> str:
    """The human report: stages with times and results, submissions, milestones, warnings."""
    lines = [f"# Release {data['release']}", ""]
    settings = data["settings"]
    lines += [f"- {key}: `{value}`" for key, value in sorted(settings.items())]
    lines += [f"- complete: {'yes' if data['complete'] else 'no'}", ""]
    lines += ["## Stages", "", "| stage | state | seconds | result |", "|---|---|---|---|"]
    for row in data["stages"]:
        outcome = row.get("error") or _short(row.get("result") or {})
        lines.append(f"| {row['stage']} | {row['state']} | {row.get('seconds', '')} | {outcome} |")
    migrations = next((r for r in data["stages"] if r["stage"] == "migrations"), None)
    if migrations and (migrations.get("result") or {}).get("report_lines"):
        lines += [
            "",
            "## Migrations",
            "",
            *(f"- {x}" for x in migrations["result"]["report_lines"]),
        ]
    if data["submissions"]:
        lines += ["", "## Submissions", "", "| stage | network | call | signer | nonce | block |"]
        lines.append("|---|---|---|---|---|---|")
        for sub in data["submissions"]:
            block = block_cell(sub)
            lines.append(
                f"| {sub['stage']} | {sub['network']} | {sub['call']} | {sub['signer']} "
                f"| {sub['nonce']} | {block} |"
            )
    if data["milestones"]:
        lines += ["", "## Milestones", "", "| milestone | deadline | actual | state | manager |"]
        lines.append("|---|---|---|---|---|")
        for m in data["milestones"]:
            state = m["state"] + (f" +{m['slip']}" if m["slip"] else "")
            actual = m["actual"] or ""
            lines.append(f"| {m['name']} | {m['deadline']} | {actual} | {state} | {m['manager']} |")
    attested = data.get("attestations")
    if attested:
        lines += ["", "## Attestations", "", f"- {attested['summary']}"]
        lines += [f"- MATCH: {member}" for member in attested["matches"]]
        lines += [f"- MISMATCH: {member}" for member in attested["mismatches"]]
        lines += [
            f"- not counted: {s['verdict']} by {s['signer']} in block #{s['block']} "
            f"({s['standing']})"
            for s in attested["ignored"]
        ]
    if data["warnings"]:
        lines += ["", "## Warnings", "", *[f"- {w}" for w in data["warnings"]]]
    return "\n".join(lines) + "\n"


def _short(result: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in result.items() if not isinstance(v, dict | list))[:300]


def write_report(release_dir: Path, data: Mapping[str, Any]) -> tuple[Path, Path]:
    """Write report.json, report.md and report.html next to the ledger (and the releases'
    index.html); returns the paths of report.json and report.md."""
    json_path = release_dir / "report.json"
    md_path = release_dir / "report.md"
    json_path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    md_path.write_text(render_markdown(data))
    write_release_html(release_dir, data)
    return json_path, md_path


def notify(summary: Mapping[str, Any], *, url: str | None = None, sleep: Any = time.sleep) -> bool:
    """POST the summary to the webhook, retrying with backoff; False (logged) when it fails.

    The URL is a secret: it comes from PIPELINE_WEBHOOK_URL and is never logged.
    """
    url = url if url is not None else os.environ.get(WEBHOOK_ENV)
    if not url:
        return False
    for attempt in range(WEBHOOK_ATTEMPTS):
        try:
            response = requests.post(url, json=summary, timeout=WEBHOOK_TIMEOUT_S)
            if response.status_code < 500:
                if response.ok:
                    return True
                log.warning("webhook refused the notification (HTTP %d)", response.status_code)
                return False
        except requests.RequestException as exc:
            log.warning("webhook attempt %d failed: %s", attempt + 1, type(exc).__name__)
        sleep(min(8.0, 0.5 * 2**attempt))
    log.warning("webhook: giving up after %d attempts", WEBHOOK_ATTEMPTS)
    return False
