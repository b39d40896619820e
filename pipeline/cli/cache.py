"""`invoke cache.status` and `invoke cache.prune`: the machine-wide cache's size and upkeep
(its files, and the pipeline's Docker images)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from invoke.context import Context
from invoke.tasks import task

from pipeline.cli import friendly
from pipeline.cli.render import escape, make_console

if TYPE_CHECKING:
    from docker import DockerClient

T = TypeVar("T")


def _when(moment: float | None) -> str:
    if moment is None:
        return "-"
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M")


def _on_engine(read: Callable[[DockerClient], T]) -> T | None:
    """`read` on the Docker engine; nothing (said on stderr) when no engine answers: the files
    are looked after all the same."""
    from pipeline.builder_image import docker_client
    from pipeline.errors import PipelineError

    try:
        return read(docker_client())
    except PipelineError as exc:
        make_console(stderr=True).print(escape(f"images skipped: {exc}"), soft_wrap=True)
        return None


@task(help={"json": "print the table as JSON (sizes in bytes, times in epoch seconds)"})
@friendly
def status(c: Context, json_: bool = False) -> None:
    """Per kind of the machine-wide cache: entries, size on disk, oldest and newest last use."""
    from rich.table import Table

    from pipeline import cache
    from pipeline.cache_images import engine_entries
    from pipeline.project import cache_dir

    images = _on_engine(lambda client: engine_entries(client, current=set()))
    rows = cache.summarize([*cache.scan(), *(images or [])])
    if json_:
        sys.stdout.write(json.dumps([vars(row) for row in rows], indent=2) + "\n")
        return
    table = Table(title=f"cache {cache_dir()}")
    for column in ("kind", "entries", "size", "half-written", "oldest use", "newest use"):
        table.add_column(column, justify="right" if column in ("entries", "size") else "left")
    for row in rows:
        table.add_row(
            row.kind,
            str(row.entries),
            cache.format_size(row.size),
            str(row.partial or ""),
            _when(row.oldest),
            _when(row.newest),
        )
    table.add_row("total", "", cache.format_size(sum(row.size for row in rows)), "", "", "")
    make_console().print(table)


@task(
    help={
        "unused_for": "remove entries not used for this many days (default 14)",
        "max_size": "then the least recently used until each kind fits (default 10G per kind)",
        "keep_used_since": "keep every entry used since this time (epoch seconds, `date +%s`)",
        "dry_run": "list what would go and how much it frees; remove nothing",
    }
)
@friendly
def prune(
    c: Context,
    unused_for: str = "",
    max_size: str = "",
    keep_used_since: str = "",
    dry_run: bool = False,
) -> None:
    """Remove the least recently used cache entries no process is using, until no entry is
    unused for longer than `--unused-for` and each kind fits `--max-size`.

    Two weeks keeps what a paused branch needs when it resumes; 10G per kind keeps about ten
    Cargo.locks of vendored crates, so a CI disk stops growing a gigabyte per lock change.
    """
    from pipeline import cache
    from pipeline.cache_images import prune_images
    from pipeline.errors import PipelineError

    try:
        since = float(keep_used_since) if keep_used_since else None
    except ValueError:
        raise PipelineError(
            f"--keep-used-since {keep_used_since!r} is not a time: give epoch seconds (`date +%s`)"
        ) from None
    rules = cache.Rules(
        unused_for_s=cache.parse_days(unused_for or str(cache.DEFAULT_UNUSED_DAYS)),
        max_size=cache.parse_size(max_size or cache.DEFAULT_MAX_SIZE),
        keep_since=since,
    )
    result = cache.prune(rules, dry_run=dry_run)
    images = _on_engine(lambda client: prune_images(client, rules, dry_run))
    if images is not None:
        result = cache.Pruned(result.removed + images.removed, result.busy + images.busy)
    console = make_console()
    verb = "would remove" if dry_run else "removed"
    for entry, reason in result.removed:
        console.print(
            escape(
                f"{verb} {entry.kind}/{entry.name} ({cache.format_size(entry.frees)}, {reason})"
            ),
            soft_wrap=True,
        )
    for line in cache.busy_lines(result.busy):
        console.print(escape(line), soft_wrap=True)
    console.print(
        f"cache: {verb} {len(result.removed)} entries, freeing"
        f" {cache.format_size(result.freed)}; {len(result.busy)} busy kept"
    )
