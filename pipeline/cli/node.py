"""`invoke node.build`: the example chain's node binary, built natively or served from cache."""

from __future__ import annotations

from invoke.context import Context
from invoke.tasks import task

from pipeline.cli import friendly
from pipeline.cli.render import make_console, spinner
from pipeline.project import load_project


@task(
    help={
        "ref": "git ref whose examples/ to build (default HEAD)",
        "no_cache": "build even when the cache has this exact input",
        "dirty": "build the working tree with its uncommitted changes",
    },
)
@friendly
def build(c: Context, ref: str | None = None, no_cache: bool = False, dirty: bool = False) -> None:
    """Build examples/node (about 16 minutes cold; unchanged, a cache hit) and print its path."""
    from pipeline import nodebuild

    with spinner() as progress:
        result = nodebuild.build(
            load_project(), ref, no_cache=no_cache, dirty=dirty, progress=progress
        )
    how = (
        "cache hit"
        if result.cached
        else f"built in {result.container_seconds:.0f}s, log {result.log}"
    )
    make_console(stderr=True).print(
        f"{nodebuild.BINARY}: {result.size / 2**20:.1f} MiB, {how} ({result.seconds:.1f}s)"
    )
    print(result.binary)
