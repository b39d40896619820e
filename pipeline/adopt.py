"""`init`: adopt the pipeline in a runtime repo it was not written for, with no file hand-written.

It finds the runtime crate (the cargo workspace member that builds with substrate-wasm-builder),
records what production runs as the repo's committed release (`<runtime>/releases/<spec>/`, from
which the local networks start), reads that runtime's metadata in this process (wasm_exec +
metadata, through `diff.summary_of`) and writes what follows from it: `pipeline.toml`,
`environments/local.toml` with the governance the chain has, a release plan for the next
spec_version, a starter suite running the generic upgrade checks and a CI workflow running the
gates. Every guess and every gap is
said in the result's notes. A file that exists is never overwritten.
"""

from __future__ import annotations

import fnmatch
import getpass
import json
import os
import shutil
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata as distributions
from pathlib import Path, PurePosixPath
from typing import Any, Final

from pipeline import builder, diff, store, wasm_exec
from pipeline.artifact import RuntimeBlob
from pipeline.errors import PipelineError
from pipeline.plan import plan_template
from pipeline.project import DEFAULT_PRESET, SETTINGS_FILE, WORKFLOW_FILE, Project, load_project

WASM_BUILDER: Final = "substrate-wasm-builder"
SKIPPED_DIRS: Final = frozenset({"target", "node_modules", "artifacts"})
SUITE_DIR: Final = "suites/upgrade"
GITIGNORED: Final = ("/.pipeline/", "/artifacts/")
WORKFLOW: Final = WORKFLOW_FILE
DISTRIBUTION: Final = "runtime-pipeline"
COLLECTIVE_CALLS: Final = frozenset({"propose", "vote", "close"})
COLLECTIVE_STORAGE: Final = frozenset({"Members", "Voting", "ProposalOf"})
# genesis presets with dev keys that local networks can start from, preferred first
LOCAL_PRESETS: Final = (DEFAULT_PRESET, "local_testnet")


@dataclass(frozen=True)
class RuntimeCrate:
    workspace: str  # the cargo workspace root, relative to the repo root ("." for the root)
    package: str  # the runtime crate's package name


@dataclass(frozen=True)
class Governance:
    """What production's metadata says about how it can be upgraded."""

    kind: str | None  # "collective", "sudo", or None: neither was found
    collective: str | None = None
    root_dispatch: str | None = None  # `Module.function` lifting a motion to Root, if one looks so
    notes: tuple[str, ...] = ()


@dataclass
class InitResult:
    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)  # existed already: left as they were
    notes: list[str] = field(default_factory=list)  # what init guessed or could not tell


# --- pure decisions -------------------------------------------------------------------------------
def builds_with_wasm_builder(manifest: Mapping[str, Any]) -> bool:
    """A crate whose build script compiles it to wasm: substrate-wasm-builder among its build
    dependencies (by name or renamed with `package`), for any target."""
    tables = [manifest.get("build-dependencies", {})]
    tables += [t.get("build-dependencies", {}) for t in manifest.get("target", {}).values()]
    return any(
        name == WASM_BUILDER or (isinstance(spec, Mapping) and spec.get("package") == WASM_BUILDER)
        for table in tables
        for name, spec in table.items()
    )


def runtime_crates(manifests: Mapping[str, Mapping[str, Any]]) -> list[RuntimeCrate]:
    """Runtime crates among cargo manifests (by directory, posix, relative to the repo root):
    each workspace's members that build with substrate-wasm-builder, and such crates that are
    their own workspace."""
    found: list[RuntimeCrate] = []
    members_of_any: set[str] = set()
    for directory, manifest in sorted(manifests.items()):
        workspace = manifest.get("workspace")
        if not isinstance(workspace, Mapping):
            continue
        patterns = [str(m) for m in workspace.get("members", [])]
        excluded = {str(e) for e in workspace.get("exclude", [])}
        for candidate in sorted(manifests):
            relative = _relative(candidate, directory)
            if relative is None or relative in excluded:
                continue
            member = relative == "." and "package" in manifest
            if member or any(fnmatch.fnmatchcase(relative, p) for p in patterns):
                members_of_any.add(candidate)
                if builds_with_wasm_builder(manifests[candidate]):
                    package = str(manifests[candidate].get("package", {}).get("name", ""))
                    found.append(RuntimeCrate(directory, package))
    for directory, manifest in sorted(manifests.items()):
        if directory not in members_of_any and builds_with_wasm_builder(manifest):
            found.append(RuntimeCrate(directory, str(manifest.get("package", {}).get("name"))))
    return found


def governance_of(summary: diff.RuntimeSummary) -> Governance:
    """Production's governance read from its pallets: a collective (pallet_collective's calls
    and storage) votes, with sudo as the fallback; else sudo alone; else neither."""
    calls = summary.items.get("call", {})
    storage = summary.items.get("storage", {})

    def names(items: Mapping[str, Any], pallet: str) -> set[str]:
        return {key.split(".", 1)[1] for key in items if key.split(".", 1)[0] == pallet}

    collectives = [
        p
        for p in summary.pallets
        if names(calls, p) >= COLLECTIVE_CALLS and names(storage, p) >= COLLECTIVE_STORAGE
    ]
    has_sudo = "sudo_unchecked_weight" in names(calls, "Sudo")
    if not collectives:
        if has_sudo:
            return Governance("sudo", notes=("governance: sudo (a Sudo pallet, no collective)",))
        return Governance(
            None,
            notes=(
                "governance: found neither a Sudo pallet nor a pallet_collective: set `governance`"
                " and a [sudo] or [council] table in environments/local.toml",
            ),
        )
    collective = "Council" if "Council" in collectives else collectives[0]
    notes = [f"governance: collective {collective} (pallet_collective's calls and storage)"]
    if len(collectives) > 1:
        notes.append(f"several collectives ({', '.join(collectives)}): chose {collective}")
    # a pallet whose only argument is a call, other than sudo's: it may dispatch it as Root
    lifts = sorted(
        key
        for key, entry in calls.items()
        if key.split(".", 1)[0] != "Sudo" and "(call: RuntimeCall)" in entry.signature
    )
    root_dispatch = lifts[0] if len(lifts) == 1 else None
    if root_dispatch:
        notes.append(
            f"council.root_dispatch: guessed {root_dispatch} (its one argument is a call): "
            "check that it dispatches as Root for a council majority"
        )
    else:
        notes.append(
            "council.root_dispatch: could not tell which call lifts a motion to Root; set it "
            "when the council's own origin cannot upgrade the runtime"
        )
    if not has_sudo:
        notes.append("no Sudo pallet: staging deploys and the fallback need one; set [sudo]")
    return Governance("collective", collective, root_dispatch, tuple(notes))


def local_preset(offered: list[str] | None) -> tuple[str | None, str]:
    """The genesis preset local networks start production from, among those the runtime
    offers (None: it could not list them), and the note saying how it was chosen."""
    if offered is None:
        return None, (
            f"genesis preset: could not read the runtime's presets; local networks use"
            f" {DEFAULT_PRESET!r} unless [runtime] preset in {SETTINGS_FILE} names another"
        )
    listed = ", ".join(offered) or "none"
    chosen = next((p for p in LOCAL_PRESETS if p in offered), None)
    if chosen is None:
        return None, (
            f"genesis preset: the runtime offers none of {', '.join(LOCAL_PRESETS)} (it has:"
            f" {listed}): set [runtime] preset in {SETTINGS_FILE} to one with dev keys"
        )
    return chosen, f"genesis preset: {chosen} (the runtime offers: {listed})"


def settings_toml(crate: RuntimeCrate, preset: str | None) -> str:
    preset_line = f'preset = "{preset}"' if preset else f'# preset = "{DEFAULT_PRESET}"'
    return f"""\
# Which runtime this repo releases, and where its chain suites live (written by `init`).
[runtime]
path = "{crate.workspace}"  # cargo workspace root, relative to this file
package = "{crate.package}"  # the runtime crate (built with substrate-wasm-builder)
{preset_line}  # the genesis preset local networks start production from

[suites]  # pytest directories run against a network: sub-system on reckless, final on lts
subsystem = "{SUITE_DIR}"
final = "{SUITE_DIR}"
"""


def environment_toml(governance: Governance) -> str:
    """Three chopsticks networks on this machine, dev keys, and the governance found."""
    lines = [
        "# Three chopsticks networks on this machine running the real runtime (written by `init`).",
        "local = true               # loopback only; dev keys (//Alice) are allowed only here",
        "ss58_format = 42",
        "inclusion_timeout = 60.0",
    ]
    if governance.kind is not None:
        lines.append(f'governance = "{governance.kind}"  # how production is upgraded')
    lines += [
        "",
        "[networks.production]      # from the committed release's genesis; state kept",
        'kind = "chopsticks-genesis"',
        "port = 9944",
        "",
        "[networks.lts]             # a fork of production's head, fresh for each release",
        'name = "staging-lts"',
        'kind = "chopsticks-fork"',
        'fork_of = "production"',
        "port = 9945",
        "",
        "[networks.reckless]        # fresh from production's genesis",
        'name = "staging-reckless"',
        'kind = "chopsticks-genesis"',
        "port = 9946",
        "",
        "[sudo]",
        'dev = "//Alice"            # the dev presets make //Alice sudo',
    ]
    if governance.kind == "collective":
        lines += [
            "",
            "[council]",
            'member_key = { dev = "//Alice" }',
            f'collective = "{governance.collective}"',
            f'root_dispatch = "{governance.root_dispatch or ""}"',
        ]
    return "\n".join(lines) + "\n"


WORKFLOW_TEMPLATE: Final = """\
# The runtime pipeline's gates on every push and pull request (written by `runtime-pipeline init`):
# rustfmt, cargo test, the freeze, the spec_version bump, the upgrade diff against production and
# the reproducible build (`runtime-pipeline gate`). They need Docker and cargo, both on GitHub's
# ubuntu runners; no Node.
name: runtime-pipeline
on:
  push:
    branches: [main, master]
  pull_request:
    branches: [main, master]

jobs:
  gates:
    runs-on: ubuntu-latest
    timeout-minutes: 120
    env:
      # where pip installs the pipeline from (a requirement: `runtime-pipeline @ git+https://...`)
      RUNTIME_PIPELINE: "@REQUIREMENT@"
      # the release in progress (its plan under releases/) and the code hash its build produced
      RELEASE_PLAN: "@PLAN@"
      RELEASE_CODE_HASH: ""
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0  # the freeze gate reads history and tags
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - name: Cache the pipeline's build cache
        uses: actions/cache@v4
        with:
          path: ~/.cache/runtime-pipeline
          key: runtime-pipeline-${{ hashFiles('@CARGO_LOCK@') }}
      - name: Install the runtime pipeline
        run: |
          if [ -z "$RUNTIME_PIPELINE" ]; then
            echo "set RUNTIME_PIPELINE in @WORKFLOW@ to a pip requirement for the pipeline"
            exit 1
          fi
          python -m pip install "$RUNTIME_PIPELINE"
      - name: Gates
        run: |
          args="--plan $RELEASE_PLAN"
          if [ -n "$RELEASE_CODE_HASH" ]; then args="$args --expect $RELEASE_CODE_HASH"; fi
          runtime-pipeline gate $args
"""


def workflow_yml(plan: str, requirement: str | None, workspace: str) -> str:
    """The CI workflow running the gates for `plan`, installing the pipeline by `requirement`
    (empty when unknown: the workflow then says what to set); the build cache is keyed by the
    runtime `workspace`'s Cargo.lock."""
    return (
        WORKFLOW_TEMPLATE.replace("@REQUIREMENT@", requirement or "")
        .replace("@PLAN@", plan)
        .replace("@CARGO_LOCK@", (PurePosixPath(workspace) / "Cargo.lock").as_posix())
        .replace("@WORKFLOW@", WORKFLOW)
    )


def pipeline_requirement(direct_url: Mapping[str, Any] | None) -> str | None:
    """A pip requirement that installs this pipeline on a CI runner, from how it was installed
    here (PEP 610's direct_url.json): a git commit or an archive on the web; None for a local
    path or an index install (the runner cannot tell which)."""
    if not direct_url:
        return None
    url = str(direct_url.get("url", ""))
    vcs = direct_url.get("vcs_info")
    if isinstance(vcs, Mapping) and vcs.get("vcs") == "git" and vcs.get("commit_id"):
        return f"{DISTRIBUTION} @ git+{url}@{vcs['commit_id']}"
    if "archive_info" in direct_url and url.startswith("https://"):
        return f"{DISTRIBUTION} @ {url}"
    return None


STARTER_SUITE: Final = '''\
"""This runtime's chain suite, run by the pipeline against a network of an environment.

The generic upgrade checks every FRAME runtime passes come from `pipeline.upgrade_suite`; add
this runtime's own tests beside them (plain pytest; the fixtures `chain`, `target` and `sudo`
come with the import).
"""

from pipeline.upgrade_suite import *  # noqa: F403
'''


# --- acting ---------------------------------------------------------------------------------------
def find_runtime_crate(root: Path) -> RuntimeCrate:
    """The one runtime crate of the repo at `root`, or one line saying why there is none."""
    crates = runtime_crates(_manifests(root))
    if len(crates) == 1:
        return crates[0]
    if not crates:
        raise PipelineError(
            f"no crate under {root} builds with {WASM_BUILDER}: write pipeline.toml's [runtime]"
            " (path, package) by hand"
        )
    listed = ", ".join(f"{c.package} ({c.workspace})" for c in crates)
    raise PipelineError(
        f"several runtime crates under {root}: {listed}; keep the one to release in"
        f" {SETTINGS_FILE} [runtime] and run init again"
    )


def init(
    root: Path, production: str | None = None, progress: Callable[[str], None] = print
) -> InitResult:
    """Adopt the pipeline in the repo at `root`. `production` names what production runs (an
    artifact directory, blob or hash); default: a build of HEAD."""
    result = InitResult()
    settings = root / SETTINGS_FILE
    crate = None
    if settings.is_file():
        project = load_project(root)
    else:
        crate = find_runtime_crate(root)
        result.notes.append(f"runtime crate: {crate.package} in workspace {crate.workspace}")
        suites = {"subsystem": SUITE_DIR, "final": SUITE_DIR}
        project = Project(root.resolve(), crate.workspace, crate.package, suites)
    # built before anything is written: with the runtime at the root, a new file is a change
    blob = _production_release(project, production, result, progress)
    summary = diff.summary_of(diff.Runtime(str(blob), RuntimeBlob.load(blob), blob))
    offered = _preset_names(blob)
    if crate is None:
        result.kept.append(settings)
        if offered is not None and project.preset not in offered:
            result.notes.append(wasm_exec.missing_preset(project.preset, offered))
    else:
        preset, note = local_preset(offered)
        result.notes.append(note)
        _write(result, settings, settings_toml(crate, preset))
    governance = governance_of(summary)
    result.notes += governance.notes
    if summary.storage_versions is None:
        result.notes.append(
            "the runtime's genesis builder did not run: local networks need a genesis preset,"
            " and pallets' in-code storage versions cannot be checked"
        )
    _write(result, root / "environments" / "local.toml", environment_toml(governance))
    spec_name, spec = str(summary.versions["spec_name"]), int(summary.versions["spec_version"])
    name = f"{spec_name}-{spec + 1}"
    plan = plan_template(name, datetime.now(UTC).date(), getpass.getuser(), spec + 1)
    _write(result, root / "releases" / f"{name}.toml", plan)
    _write(result, root / SUITE_DIR / "test_upgrade.py", STARTER_SUITE)
    requirement = pipeline_requirement(_direct_url())
    if requirement is None:
        result.notes.append(
            f"CI: could not tell where a runner installs the pipeline from: set RUNTIME_PIPELINE"
            f" in {WORKFLOW} (e.g. `{DISTRIBUTION} @ git+https://<host>/<repo>@<commit>`)"
        )
    _write(result, root / WORKFLOW, workflow_yml(name, requirement, project.runtime_path))
    _ignore_state(root, result)
    return result


def _production_release(
    project: Project, production: str | None, result: InitResult, progress: Callable[[str], None]
) -> Path:
    """What production runs, committed as the repo's release (`<runtime>/releases/<spec>/`)."""
    try:
        return store.blob_in(store.released_folder(project))
    except PipelineError:
        pass
    if production:
        blob = store.resolve_artifact(project, production)
    else:
        progress("building HEAD's runtime: it becomes production's release")
        built = builder.build(project, progress=progress)
        blob = store.blob_in(built.artifact_dir)
    spec = RuntimeBlob.load(blob).version.spec_version
    folder = project.root / project.runtime_path / store.RELEASES_SUBDIR / str(spec)
    folder.mkdir(parents=True, exist_ok=True)
    for source in (blob, blob.parent / store.DIGEST_FILE):
        if source.is_file():
            shutil.copyfile(source, folder / source.name)
            result.written.append(folder / source.name)
    if not (folder / store.DIGEST_FILE).is_file():
        result.notes.append(
            f"{folder} has no digest.json (production was not built by the pipeline): the"
            " spec-bump and upgrade-diff gates need one"
        )
    result.notes.append(f"production runs spec_version {spec}: committed under {folder}")
    return folder / blob.name


def _direct_url() -> dict[str, Any] | None:
    """How this pipeline was installed (PEP 610), when pip recorded it."""
    try:
        text = distributions.distribution(DISTRIBUTION).read_text("direct_url.json")
        return dict(json.loads(text)) if text else None
    except (distributions.PackageNotFoundError, ValueError):
        return None


def _preset_names(blob: Path) -> list[str] | None:
    """The runtime's genesis presets; None when it cannot list them (no GenesisBuilder v2)."""
    try:
        return wasm_exec.preset_names(wasm_exec.RuntimeInstance(RuntimeBlob.load(blob).wasm))
    except PipelineError:
        return None


def _write(result: InitResult, path: Path, text: str) -> None:
    if path.exists():
        result.kept.append(path)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    result.written.append(path)


def _ignore_state(root: Path, result: InitResult) -> None:
    """The pipeline's state never counts as source anyway; ignoring it keeps it out of commits."""
    path = root / ".gitignore"
    present = path.read_text().splitlines() if path.is_file() else []
    missing = [line for line in GITIGNORED if line not in present]
    if missing:
        with path.open("a") as file:
            file.write("".join(f"{line}\n" for line in missing))
        result.written.append(path)


def _manifests(root: Path) -> dict[str, dict[str, Any]]:
    """Every readable Cargo.toml under `root` by directory (posix, relative), skipping build
    output and hidden directories."""
    found: dict[str, dict[str, Any]] = {}
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if d not in SKIPPED_DIRS and not d.startswith(".")]
        if "Cargo.toml" in files:
            try:
                manifest = tomllib.loads((Path(directory) / "Cargo.toml").read_text())
            except (OSError, tomllib.TOMLDecodeError):
                continue
            found[Path(directory).relative_to(root).as_posix()] = manifest
    return found


def _relative(path: str, base: str) -> str | None:
    """`path` relative to `base` (both posix, relative to one root), or None when outside it."""
    if base == ".":
        return path
    try:
        return PurePosixPath(path).relative_to(base).as_posix()
    except ValueError:
        return None
