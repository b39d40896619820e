"""`runtime-pipeline init`: adopt the pipeline in the runtime repo this command runs in."""

from __future__ import annotations

from pathlib import Path

from invoke.context import Context
from invoke.tasks import task

from pipeline.cli import friendly
from pipeline.cli.render import escape, make_console, spinner


@task(
    help={
        "production": "what production runs: an artifact directory, blob or 0x hash under "
        "artifacts/ (default: a build of HEAD)",
    },
)
@friendly
def init(c: Context, production: str | None = None) -> None:
    """Write pipeline.toml, environments/local.toml, a release plan, a starter suite and a CI
    workflow, from the repo's runtime crate and its runtime's metadata; say what could not be
    told."""
    from pipeline import adopt, gitops

    root = Path(str(gitops.open_repo(Path.cwd()).working_tree_dir))
    with spinner() as progress:
        result = adopt.init(root, production, progress)
    console = make_console()
    for path in result.written:
        console.print(f"wrote {escape(str(path.relative_to(root)))}", soft_wrap=True)
    for path in result.kept:
        console.print(f"kept {escape(str(path.relative_to(root)))} (exists)", soft_wrap=True)
    for note in result.notes:
        console.print(f"note: {escape(note)}", soft_wrap=True)
    console.print("next: commit these files, then `runtime-pipeline release`", soft_wrap=True)
