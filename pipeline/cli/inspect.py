"""`invoke inspect SOURCE [--json]`: what a runtime is, like `subwasm info`, of any era."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invoke.context import Context
from invoke.tasks import task

from pipeline.cli import friendly
from pipeline.cli.render import escape, make_console
from pipeline.shorthash import shorten_hashes

if TYPE_CHECKING:
    from rich.console import Console

    from pipeline.artifact import RuntimeBlob


@task(
    positional=["source"],
    help={
        "source": "a runtime blob (.compact.compressed.wasm or .compact.wasm), an artifact "
        "directory or hash, env:NAME[:role] or ws://HOST:PORT (the code on chain), "
        "optionally @BLOCK (a number or a 0x block hash)",
        "json": "print the facts as JSON (digest.json's `info` fields plus subwasm's `info -j`)",
    },
)
@friendly
def inspect(c: Context, source: str, json_: bool = False) -> None:
    """Show a runtime's versions, APIs, metadata, sizes, hashes and upgrade call hashes."""
    from pipeline.runtime_info import describe

    details = describe(_load(source))
    if json_:
        sys.stdout.write(json.dumps(details, indent=2, sort_keys=True) + "\n")
    else:
        _print(details, make_console())


def _load(source: str) -> RuntimeBlob:
    """A plain file is read here (no metadata decoder imported); everything else is named the
    way `diff` names it (a project only where the name needs one)."""
    from pipeline.artifact import RuntimeBlob

    if Path(source).expanduser().is_file():
        return RuntimeBlob.load(Path(source).expanduser())
    from pipeline.diff import load_runtime

    return load_runtime(None, source).blob


def _print(details: dict[str, Any], console: Console) -> None:
    """Label/value lines within 80 columns: short hashes (--json prints them whole)."""
    form = "compressed (zstd, Substrate prefix)" if details["compressed"] else "not compressed"
    offered = ", ".join(f"v{v}" for v in details["metadata_versions"]) or "none listed"
    if details["metadata_unstable_offered"]:
        offered += " and unstable"
    build = (
        "try-runtime (checks only; deploy/propose/enact refuse)"
        if details["try_runtime"]
        else "release (no TryRuntime API)"
    )
    rows = (
        ("Build", build),
        ("Core version", details["core_version_text"]),
        ("Version read from", details["version_source"]),
        ("spec_name", details["spec_name"]),
        ("impl_name", details["impl_name"]),
        ("spec_version", details["spec_version"]),
        ("impl_version", details["impl_version"]),
        ("authoring_version", details["authoring_version"]),
        ("transaction_version", details["transaction_version"]),
        (
            "state_version",
            f"{details['state_version']} (system_version {details['system_version']})",
        ),
        (
            "Metadata",
            f"v{details['metadata_version']} by Metadata_metadata; offered: {offered}"
            if details["metadata_version"] is not None
            else f"unavailable: {details.get('metadata_error', 'no metadata')}",
        ),
        ("Size", f"{details['size']:,} bytes, {form}"),
        ("Wasm size", f"{details['decompressed_size']:,} bytes"),
        ("Blake2-256", details["blake2_256"]),
        ("SHA-256", details["sha256"]),
        ("set_code hash", details["proposal_hash"]),
        ("authorize_upgrade hash", details["authorize_upgrade_hash"]),
    )
    for label, value in rows:
        shown = escape(shorten_hashes(str(value)))
        console.print(f"[bold]{label:<24}[/bold]{shown}", soft_wrap=True)
    console.print(f"\n[bold]Runtime APIs ({len(details['apis'])})[/bold]", soft_wrap=True)
    for api in details["apis"]:
        name = escape(api["name"] or "(unknown)")
        console.print(f"  {api['id']}  {name:<28}{api['version']:>3}", soft_wrap=True)
