"""`invoke inspect PATH [--json]`: what a runtime blob is, offline, like `subwasm info`."""

from __future__ import annotations

import json
import sys
from typing import Any

from invoke.context import Context
from invoke.tasks import task
from rich.console import Console
from rich.markup import escape

from pipeline.artifact import RuntimeBlob, info
from pipeline.cli import friendly
from pipeline.cli.render import make_console


@task(
    positional=["path"],
    help={
        "path": "runtime blob: <pkg>.compact.compressed.wasm or <pkg>.compact.wasm",
        "json": "print the info block as JSON (the `info` field of digest.json)",
    },
)
@friendly
def inspect(c: Context, path: str, json_: bool = False) -> None:
    """Show a runtime blob's versions, APIs, sizes, hashes and upgrade call hashes."""
    details = info(RuntimeBlob.load(path))
    if json_:
        sys.stdout.write(json.dumps(details, indent=2, sort_keys=True) + "\n")
    else:
        _print(details, make_console())


def _print(details: dict[str, Any], console: Console) -> None:
    """Label/value lines that never wrap or truncate, so hashes stay copyable."""
    form = "compressed (zstd, Substrate prefix)" if details["compressed"] else "not compressed"
    rows = (
        ("Core version", details["core_version"]),
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
        ("Size", f"{details['size']:,} bytes, {form}"),
        ("Wasm size", f"{details['decompressed_size']:,} bytes"),
        ("Blake2-256", details["blake2_256"]),
        ("SHA-256", details["sha256"]),
        ("set_code hash", details["proposal_hash"]),
        ("authorize_upgrade hash", details["authorize_upgrade_hash"]),
    )
    for label, value in rows:
        console.print(f"[bold]{label:<24}[/bold]{escape(str(value))}", soft_wrap=True)
    console.print(f"\n[bold]Runtime APIs ({len(details['apis'])})[/bold]", soft_wrap=True)
    for api in details["apis"]:
        name = escape(api["name"] or "(unknown)")
        console.print(f"  {api['id']}  {name:<28}{api['version']:>3}", soft_wrap=True)
