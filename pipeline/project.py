"""Where things live: the runtime repo's settings (`pipeline.toml`) and the pipeline's directories.

A runtime repo configures its own runtime crate and suites in `pipeline.toml` at its root; the
example runtime is only the default. Caches live outside the checkout so a fresh clone on the
same machine (CI) reuses them; per-checkout state (local networks, releases) lives in `.pipeline/`.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import PipelineError

SETTINGS_FILE = "pipeline.toml"
WORKFLOW_FILE = ".github/workflows/runtime-pipeline.yml"  # the CI workflow `init` writes
# The genesis preset local networks start production from and in-code storage versions are read
# from, unless pipeline.toml's [runtime] names another.
DEFAULT_PRESET = "development"


@dataclass(frozen=True)
class Project:
    """The runtime repo the pipeline works on, and the directories it uses."""

    root: Path
    runtime_path: str  # cargo workspace of the runtime, relative to root
    runtime_package: str  # cargo package name of the runtime crate
    suites: dict[str, str]  # suite name -> path relative to root
    preset: str = DEFAULT_PRESET  # the runtime's genesis preset for local networks

    @property
    def artifacts_dir(self) -> Path:
        return self.root / "artifacts"

    @property
    def state_dir(self) -> Path:
        return Path(os.environ.get("PIPELINE_STATE_DIR", self.root / ".pipeline"))

    @property
    def cache_dir(self) -> Path:
        return cache_dir()

    @property
    def own_dirs(self) -> tuple[Path, ...]:
        """The pipeline's own output (state, artifacts): never source. When the runtime sits at
        the repo root these directories are inside its tree, and must not make it dirty."""
        return (self.state_dir, self.artifacts_dir)


def cache_dir() -> Path:
    """Machine-wide cache (vendored crates, build index) shared by every checkout."""
    base = os.environ.get("PIPELINE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "runtime-pipeline"
    )
    return Path(base)


def write_atomic(path: Path, data: bytes | bytearray) -> None:
    """Write a cache file whole or not at all: readers (other processes too) never see half of
    it. Its folder is made when missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def find_root(start: Path) -> Path:
    """The nearest directory from `start` upwards holding `pipeline.toml`: commands run from
    anywhere inside the runtime repo, as git's do."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / SETTINGS_FILE).is_file():
            return folder
    raise PipelineError(
        f"no {SETTINGS_FILE} in {start} or above: run the command inside the runtime repo, "
        "or write one there with `runtime-pipeline init`"
    )


def load_project(root: Path | None = None) -> Project:
    """Read `pipeline.toml` from the repo root (default: found from the current directory up)."""
    root = root.resolve() if root is not None else find_root(Path.cwd())
    settings_path = root / SETTINGS_FILE
    if not settings_path.is_file():
        raise PipelineError(
            f"no {SETTINGS_FILE} in {root}: run the command from the runtime repo's root"
        )
    try:
        data = tomllib.loads(settings_path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise PipelineError(f"{settings_path}: {exc}: fix the TOML syntax") from exc
    runtime = data.get("runtime")
    if not isinstance(runtime, dict):
        raise PipelineError(f"{settings_path}: missing [runtime] table with `path` and `package`")
    for field in ("path", "package"):
        if not isinstance(runtime.get(field), str) or not runtime[field]:
            raise PipelineError(f"{settings_path}: [runtime] needs a non-empty string `{field}`")
    preset = runtime.get("preset", DEFAULT_PRESET)
    if not isinstance(preset, str) or not preset:
        raise PipelineError(
            f"{settings_path}: [runtime] preset names a genesis preset of the runtime (a"
            f" non-empty string), e.g. {DEFAULT_PRESET!r}"
        )
    suites = data.get("suites", {})
    if not isinstance(suites, dict) or not all(isinstance(v, str) for v in suites.values()):
        raise PipelineError(f"{settings_path}: [suites] maps suite names to paths (strings)")
    return Project(
        root=root,
        runtime_path=runtime["path"],
        runtime_package=runtime["package"],
        suites=dict(suites),
        preset=preset,
    )
