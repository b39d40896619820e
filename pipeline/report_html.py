"""`report.html` (one release, at a glance) and `index.html` (every release of a checkout).

Fed by the same data as report.json, so the page never says more or less than the report. Each
page is one self-contained file: inline CSS, SVG and script, and a content security policy that
forbids any fetch, so it opens offline from disk and shows the same thing anywhere. Every value
from the ledger is escaped: release ids, milestone names and results are user input.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any

from pipeline.schedule import format_span

REPORT_HTML = "report.html"
INDEX_HTML = "index.html"
_HASH = re.compile(r"0x[0-9a-fA-F]{64}|[0-9a-f]{40}")  # code/call/block hashes, git commits

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#1d2430;
 padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde;
 padding-bottom:4px}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:4px 8px;
 border-bottom:1px solid #eef;vertical-align:top}th{background:#f4f6fa;font-weight:600}
code{font:12px ui-monospace,monospace;word-break:break-all}
.hashes code{white-space:nowrap;word-break:normal}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;color:#fff;
 background:#78828f}.s-complete,.s-done,.s-aye,.s-approved,.s-enacted{background:#2e7d32}
.s-failed,.s-aborted,.s-missed,.s-late,.s-nay,.s-disapproved{background:#c62828}
.s-running,.s-in-progress,.s-on-time,.s-open{background:#1565c0}
button.copy{font-size:11px;padding:0 6px;margin-left:6px;cursor:pointer}
svg text{font:12px system-ui,sans-serif;fill:#1d2430}svg .dim{fill:#78828f}
svg .late{fill:#c62828}.meta{color:#5a6472}ul{margin:4px 0;padding-left:20px}
"""

_COPY_JS = """
document.addEventListener('click', function (event) {
  var button = event.target.closest('button.copy');
  if (!button) return;
  var text = button.getAttribute('data-copy');
  function shown() {
    button.textContent = 'copied';
    setTimeout(function () { button.textContent = 'copy'; }, 1200);
  }
  function fallback() {
    var area = document.createElement('textarea');
    area.value = text;
    document.body.appendChild(area);
    area.select();
    document.execCommand('copy');
    area.remove();
    shown();
  }
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(shown, fallback);
  } else {
    fallback();
  }
});
"""

_COLORS = {"done": "#2e7d32", "late": "#c62828", "missed": "#c62828", "on time": "#1565c0"}
_STAGE_COLORS = {"done": "#2e7d32", "failed": "#c62828", "running": "#1565c0"}


def release_state(data: Mapping[str, Any]) -> str:
    """One word or phrase for the release: aborted, complete, failed at <stage>, in progress."""
    if data.get("aborted"):
        return "aborted"
    if data.get("complete"):
        return "complete"
    failed = [row["stage"] for row in data.get("stages", []) if row.get("state") == "failed"]
    return f"failed at {failed[-1]}" if failed else "in progress"


def render_release(data: Mapping[str, Any]) -> str:
    """The release's page: state, milestones timeline, stage bars, votes, hashes, submissions."""
    release = str(data.get("release"))
    state = release_state(data)
    body = [
        f"<h1>Release {escape(release)} {_badge(state)}</h1>",
        f'<p class="meta">report written {escape(str(data.get("written_at")))}; '
        f'<a href="../{INDEX_HTML}">all releases</a></p>',
    ]
    if data.get("aborted"):
        body.append(f"<p>Aborted: {escape(str(data['aborted']))}</p>")
    body += ["<h2>Milestones</h2>", _timeline(data.get("milestones", []), data.get("written_at"))]
    body += ["<h2>Stage durations</h2>", _stage_bars(data.get("stages", []))]
    body += ["<h2>Council votes</h2>", _votes(data.get("stages", []))]
    if data.get("attestations"):
        body += ["<h2>Attestations</h2>", _records(data["attestations"])]
    body += ["<h2>Hashes</h2>", _hashes(data)]
    if data.get("submissions"):
        body += ["<h2>Submissions</h2>", _submissions(data["submissions"])]
    body += ["<h2>Settings</h2>", _records([data.get("settings", {})])]
    if data.get("warnings"):
        items = "".join(f"<li>{escape(str(w))}</li>" for w in data["warnings"])
        body += ["<h2>Warnings</h2>", f"<ul>{items}</ul>"]
    return _page(f"Release {release}", body)


def render_index(reports: Sequence[Mapping[str, Any]]) -> str:
    """Every release with its state, newest report first, each linking to its page."""
    rows = []
    for data in sorted(reports, key=lambda d: str(d.get("written_at")), reverse=True):
        release = str(data.get("release"))
        milestones = data.get("milestones", [])
        late = sum(m.get("state") in ("late", "missed") for m in milestones)
        done = sum(row.get("state") == "done" for row in data.get("stages", []))
        rows.append(
            [
                f'<a href="{escape(release)}/{REPORT_HTML}">{escape(release)}</a>',
                _badge(release_state(data)),
                escape(f"{done} done"),
                escape(f"{late} of {len(milestones)} late" if milestones else "no plan"),
                escape(str(data.get("written_at"))),
            ]
        )
    headers = ["Release", "State", "Stages", "Milestones", "Report written"]
    table = _table(headers, rows) if rows else "<p>No release has a report yet.</p>"
    return _page("Releases", ["<h1>Releases</h1>", table])


def write_release_html(release_dir: Path, data: Mapping[str, Any]) -> Path:
    """Write the release's report.html, then refresh the index of all releases beside it."""
    path = release_dir / REPORT_HTML
    path.write_text(render_release(data))
    reports = []
    for report in sorted(release_dir.parent.glob("*/report.json")):
        try:
            reports.append(json.loads(report.read_text()))
        except (OSError, ValueError):
            continue  # a report being written right now: the next write lists it
    (release_dir.parent / INDEX_HTML).write_text(render_index(reports))
    return path


# --- sections -----------------------------------------------------------------------------------
def _timeline(milestones: Sequence[Mapping[str, Any]], written_at: object) -> str:
    """One row per milestone on a shared time axis: planned deadline (diamond), actual (dot),
    a red span when late or missed, and a dashed line when the report was written."""
    if not milestones:
        return "<p>No release plan: no milestones.</p>"
    now = datetime.fromisoformat(str(written_at))
    moments = [now] + [
        datetime.fromisoformat(str(m[key]))
        for m in milestones
        for key in ("deadline", "actual")
        if m.get(key)
    ]
    start, end = min(moments), max(moments)
    span = max(end - start, timedelta(hours=1))
    start, end = start - span * 0.04, end + span * 0.04
    left, right, row, top = 230.0, 1040.0, 46, 34

    def x(moment: datetime) -> float:
        return left + (moment - start) / (end - start) * (right - left)

    height = top + row * len(milestones) + 10
    parts = [
        f'<svg id="timeline" viewBox="0 0 1060 {height}" width="100%" role="img" '
        'aria-label="milestones: planned deadline and actual">'
    ]
    for i in range(5):
        moment = start + (end - start) * (0.05 + 0.225 * i)
        parts.append(
            f'<text class="dim" x="{x(moment):.1f}" y="14" text-anchor="middle">'
            f"{escape(moment.strftime('%m-%d %H:%M'))}</text>"
            f'<line x1="{x(moment):.1f}" y1="20" x2="{x(moment):.1f}" y2="{height - 6}" '
            'stroke="#eef"/>'
        )
    for index, milestone in enumerate(milestones):
        parts.append(_milestone_row(milestone, top + row * index + row / 2, x, now))
    parts.append(
        f'<line x1="{x(now):.1f}" y1="20" x2="{x(now):.1f}" y2="{height - 6}" '
        'stroke="#78828f" stroke-dasharray="4 3"><title>report written '
        f"{escape(str(written_at))}</title></line>"
    )
    parts.append("</svg>")
    legend = (
        '<p class="meta">◆ planned deadline · ● actual · red: late or missed · dashed: when this'
        " report was written (UTC times)</p>"
    )
    return "".join(parts) + legend


def _milestone_row(
    milestone: Mapping[str, Any], y: float, x: Callable[[datetime], float], now: datetime
) -> str:
    state = str(milestone.get("state"))
    color = _COLORS.get(state, "#78828f")
    deadline = datetime.fromisoformat(str(milestone["deadline"]))
    actual = datetime.fromisoformat(str(milestone["actual"])) if milestone.get("actual") else None
    late = state in ("late", "missed")
    name = escape(str(milestone.get("name")))
    stage = escape(str(milestone.get("stage")))
    tip = escape(
        f"{milestone.get('name')} ({milestone.get('stage')}): deadline {milestone['deadline']}, "
        f"actual {milestone.get('actual') or '—'}, {state}"
        + (f" +{milestone['slip']}" if milestone.get("slip") else "")
        + f", manager {milestone.get('manager')}"
    )
    dx = x(deadline)
    parts = [
        f'<g class="milestone" data-state="{escape(state)}"><title>{tip}</title>',
        f'<text x="10" y="{y - 3:.1f}">{name}</text>',
        f'<text class="dim" x="10" y="{y + 12:.1f}">{stage}</text>',
        f'<line x1="230" y1="{y:.1f}" x2="1040" y2="{y:.1f}" stroke="#e4e7ee"/>',
    ]
    end = actual if actual is not None else (now if state == "missed" else None)
    if end is not None and late:
        dash = "" if actual is not None else ' stroke-dasharray="5 3"'
        parts.append(
            f'<line x1="{dx:.1f}" y1="{y:.1f}" x2="{x(end):.1f}" y2="{y:.1f}" '
            f'stroke="#c62828" stroke-width="4"{dash}/>'
        )
    parts.append(
        f'<path class="deadline" d="M{dx:.1f} {y - 8:.1f}l8 8l-8 8l-8 -8z" fill="#fff" '
        f'stroke="{color}" stroke-width="2"/>'
    )
    if actual is not None:
        parts.append(
            f'<circle class="actual" cx="{x(actual):.1f}" cy="{y:.1f}" r="6" fill="{color}"/>'
        )
    label = state + (f" +{milestone['slip']}" if milestone.get("slip") else "")
    anchor_x = max(dx, x(end)) if end is not None else dx
    flip = anchor_x > 900
    parts.append(
        f'<text class="{"late" if late else "dim"}" x="{anchor_x + (-12 if flip else 12):.1f}" '
        f'y="{y - 9:.1f}" text-anchor="{"end" if flip else "start"}">{escape(label)}</text>'
    )
    parts.append("</g>")
    return "".join(parts)


def _stage_bars(stages: Sequence[Mapping[str, Any]]) -> str:
    if not stages:
        return "<p>No stage has run yet.</p>"
    seconds = [_seconds(row) for row in stages]
    longest = max([s for s in seconds if s is not None] or [0.0]) or 1.0
    left, width, row = 150.0, 760.0, 26
    parts = [f'<svg id="stages" viewBox="0 0 1060 {row * len(stages) + 6}" width="100%">']
    for index, (stage, took) in enumerate(zip(stages, seconds, strict=True)):
        y = index * row + 4
        state = str(stage.get("state"))
        bar = max(2.0, width * (took or 0.0) / longest)
        shown = _duration(took) if took is not None else state
        detail = stage.get("error") or ""
        parts.append(
            f'<g class="stage" data-state="{escape(state)}">'
            f"<title>{escape(str(stage.get('stage')))}: {escape(state)} {escape(shown)}"
            f"{escape(' — ' + str(detail)) if detail else ''}</title>"
            f'<text x="10" y="{y + 14}">{escape(str(stage.get("stage")))}</text>'
            f'<rect class="bar" x="{left}" y="{y + 2}" width="{bar:.1f}" height="16" rx="3" '
            f'fill="{_STAGE_COLORS.get(state, "#78828f")}"/>'
            f'<text class="dim" x="{left + bar + 8:.1f}" y="{y + 14}">{escape(shown)}'
            f"{escape(' (' + state + ')') if state != 'done' else ''}</text></g>"
        )
    parts.append("</svg>")
    failures = [
        f"<li>{escape(str(row.get('stage')))} failed: {escape(str(row.get('error')))}</li>"
        for row in stages
        if row.get("state") == "failed"
    ]
    if failures:
        parts.append(f"<ul>{''.join(failures)}</ul>")
    return "".join(parts)


def _seconds(stage: Mapping[str, Any]) -> float | None:
    """The stage's own measure when it journaled one (sub-second), else the ledger's times."""
    result = stage.get("result")
    if isinstance(result, Mapping) and isinstance(result.get("seconds"), int | float):
        return float(result["seconds"])
    value = stage.get("seconds")
    return float(value) if isinstance(value, int | float) else None


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{format_span(timedelta(seconds=seconds))} ({seconds:.0f} s)"


def _votes(stages: Sequence[Mapping[str, Any]]) -> str:
    results = {str(row.get("stage")): row.get("result") or {} for row in stages}
    votes = results.get("track", {}).get("votes")
    enact = results.get("enact", {})
    if not votes and not enact:
        return "<p>No votes yet: the release has not reached the council.</p>"
    parts = []
    if votes:
        ayes, nays = list(votes.get("ayes", [])), list(votes.get("nays", []))
        parts.append(
            f"<p>Motion #{escape(str(votes.get('index')))} on "
            f"{escape(str(votes.get('collective')))}: {_badge(str(votes.get('state')))} "
            f"{len(ayes)} aye / {len(nays)} nay, {escape(str(votes.get('threshold')))} ayes "
            f"needed; closed at block #{escape(str(votes.get('head')))}</p>"
        )
        rows = [[f"<code>{escape(str(a))}</code>", _badge("aye")] for a in ayes]
        rows += [[f"<code>{escape(str(a))}</code>", _badge("nay")] for a in nays]
        rows += [
            [f"<code>{escape(str(a))}</code>", _badge("not voted")]
            for a in votes.get("not_voted", [])
        ]
        parts.append(_table(["Councillor", "Vote"], rows))
    if enact:
        parts.append(
            f"<p>Enactment: {_badge(str(enact.get('outcome')))} under policy "
            f"{escape(str(enact.get('policy')))}: {escape(str(enact.get('reason')))}</p>"
        )
    return "".join(parts)


def _hashes(data: Mapping[str, Any]) -> str:
    """Every hash the report names, once, with where it appears and a copy button."""
    found: dict[str, list[str]] = {}
    sources: list[tuple[str, Any]] = [("settings", data.get("settings"))]
    sources += [(str(row.get("stage")), row.get("result")) for row in data.get("stages", [])]
    for label, value in sources:
        for path, text in _strings(label, value):
            if _HASH.fullmatch(text):
                found.setdefault(text, []).append(path)
    if not found:
        return "<p>No hashes yet.</p>"
    rows = [[_hash(value), escape(", ".join(paths))] for value, paths in found.items()]
    return f'<div class="hashes">{_table(["Hash", "Where"], rows)}</div>'


def _strings(path: str, value: Any) -> Iterable[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(f"{path}.{key}", item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(path, item)


def block_cell(submission: Mapping[str, Any]) -> str:
    """Where a submission landed: `#12 finalized`, `#12` (included), or `unknown outcome`."""
    if submission.get("outcome") is None:
        return "unknown outcome"
    finalized = " finalized" if submission.get("finalized") else ""
    return f"#{submission['block']}{finalized}"


def _submissions(submissions: Sequence[Mapping[str, Any]]) -> str:
    rows = [
        [
            escape(str(sub.get("stage"))),
            escape(str(sub.get("network"))),
            escape(str(sub.get("call"))),
            escape(str(sub.get("nonce"))),
            _hash(sub.get("call_hash")),
            _hash(sub.get("extrinsic_hash")),
            escape(block_cell(sub)),
        ]
        for sub in submissions
    ]
    headers = ["Stage", "Network", "Call", "Nonce", "Call hash", "Extrinsic hash", "Block"]
    return _table(headers, rows)


def _records(records: Any) -> str:
    """Mappings as a table with one column per key (attestations, settings); else as JSON."""
    rows = records if isinstance(records, list) else [records]
    if not all(isinstance(row, Mapping) for row in rows):
        return f"<pre>{escape(json.dumps(records, indent=2, default=str))}</pre>"
    keys = list(dict.fromkeys(key for row in rows for key in row))
    return _table(keys, [[_value(row.get(key)) for key in keys] for row in rows])


def _value(value: Any) -> str:
    if isinstance(value, str) and _HASH.fullmatch(value):
        return _hash(value)
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return escape(text)


# --- building blocks ----------------------------------------------------------------------------
def _hash(value: object) -> str:
    if not value:
        return "—"
    text = escape(str(value))
    return f'<code>{text}</code><button class="copy" data-copy="{text}">copy</button>'


def _badge(state: str) -> str:
    css = "s-" + re.sub(r"[^a-z]+", "-", state.split(" at ")[0].lower()).strip("-")
    return f'<span class="badge {escape(css)}">{escape(state)}</span>'


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table of cells that are already HTML (each escaped where it was made)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _page(title: str, body: Sequence[str]) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(body)
        + f"\n<script>{_COPY_JS}</script></body></html>\n"
    )
