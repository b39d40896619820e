"""The voters' dossier and the proposal note around it.

The dossier is fixed before the motion exists: what is proposed, where it came from, how to
reproduce it, the runtime diff against production. The motion's source remark carries its
blake2-256, so a voter can tell whether the dossier they hold is the one the motion commits to
(`invoke verify --motion N --dossier NOTE`). The proposal note is the motion's facts (which do
not exist before it), `proposal.DOSSIER_MARK`, then the dossier.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pipeline import diff
from pipeline.artifact import RuntimeBlob, blake2_256, dumps_digest
from pipeline.chain import Chain
from pipeline.motions import Motion
from pipeline.proposal import DOSSIER_MARK
from pipeline.upgrade import Candidate, Method


def diff_lines(chain: Chain, candidate: Candidate) -> list[str]:
    """`invoke diff` of production's code against the candidate, for the voters' note."""
    production = diff.Runtime(
        f"production ({chain.endpoint})", RuntimeBlob.from_bytes(chain.code()), None
    )
    proposed = diff.Runtime("candidate", candidate.blob, candidate.path)
    before, after = diff.summaries([production, proposed])
    return diff.render(production.label, proposed.label, before, after)


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def render(
    *,
    env_name: str,
    candidate: Candidate,
    method: Method,
    changes: Sequence[str],
    warnings: Sequence[str],
    checks: Sequence[str] = (),
) -> str:
    """Markdown for voters, fixed before the motion exists (its source remark commits to the
    blake2-256): what is proposed, where it came from, how to reproduce it, the diff, and the
    migration checks when the release ran them."""
    digest = candidate.digest
    builder = _table(digest, "builder")
    toolchain = _table(builder, "toolchain")
    options = _table(_table(digest, "reproducibility"), "build_options")
    commit = digest.get("commit") or "(unknown)"
    how = (
        "`System.authorize_upgrade(code_hash)`; once approved anyone applies the code with "
        "`System.apply_authorized_upgrade`"
        if method == "authorize"
        else "`System.set_code(code)` with the runtime inline"
    )
    lines = [
        "## What is proposed",
        f"- Code hash (blake2-256 of the compressed runtime): `{candidate.code_hash}`",
        f"- Upgrade: {how}",
        f"- Size: {candidate.blob.size:,} bytes compressed",
        "",
        "## Where it came from",
        f"- Commit: `{commit}`" + (" (dirty: uncommitted changes)" if digest.get("dirty") else ""),
        f"- Tag: `{digest.get('tag') or '(none)'}`, branch: `{digest.get('branch') or '(none)'}`",
        f"- Builder image: `{builder.get('image', '(unknown)')}`",
        f"- rustc: `{digest.get('rustc', '(unknown)')}`",
    ]
    lines += [f"- {name}: `{value}`" for name, value in sorted(toolchain.items())]
    lines += [f"- Build option {name}: `{value}`" for name, value in sorted(options.items())]
    lines += [
        f"- digest.json blake2-256: `{blake2_256(dumps_digest(digest).encode())}`",
        "",
        "## Reproduce the hash",
        "```",
        f"invoke verify --ref {commit} --expect {candidate.code_hash}",
        "```",
        f"or from the chain alone: `invoke verify --env {env_name} --motion INDEX --dossier "
        "NOTE` (reads the commit from the motion's remark, rebuilds it and compares, and says "
        "whether NOTE holds the dossier the motion commits to).",
        "",
        "## Against production (`invoke diff`)",
        "```",
        *changes,
        "```",
    ]
    lines += [f"- warning: {warning}" for warning in warnings]
    if checks:
        lines += ["", "## Migration checks (try-runtime on production's state)", ""]
        lines += [f"- {line}" for line in checks]
    return "\n".join(lines) + "\n"


def proposal_note(
    *,
    env_name: str,
    motion: Motion,
    candidate: Candidate,
    dossier: str,
    remark: str,
    members: int,
    block_time: float,
) -> str:
    """Markdown for voters: the motion's facts, then the dossier its source remark commits to."""
    version = candidate.blob.version
    lines = [
        f"# Runtime upgrade proposal: {version.spec_name} spec_version {version.spec_version}",
        "",
        f"Motion #{motion.index} on {motion.collective} ({env_name}), "
        f"proposal hash `{motion.proposal_hash}`.",
        f"It needs {motion.threshold} of {members} ayes; the council can close it from block "
        f"#{motion.end} (about {block_time:g}s per block).",
        f"Source remark in the proposal: `{remark}`",
        f"Check it all: `invoke verify --env {env_name} --motion {motion.index} --dossier NOTE`.",
        "",
        DOSSIER_MARK,
    ]
    return "\n".join(lines) + "\n" + dossier
