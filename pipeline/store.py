"""The artifact store: `artifacts/<hash>/` (the published builds: blobs and digest.json) and
the machine-wide build cache (blobs by hash, index records by cache key). The one owner of
their layout: the builder writes through it, diff, deploy, governance and release read it."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.artifact import RuntimeBlob, WasmFileNames, blake2_256, wasm_file_names
from pipeline.cache import mark_used
from pipeline.errors import PipelineError
from pipeline.project import Project, cache_dir, load_project, write_atomic

DIGEST_FILE = "digest.json"
RELEASES_SUBDIR = "releases"  # <runtime>/releases/<spec>/: production's committed release


_HASH = re.compile(r"(0x)?[0-9a-fA-F]{64}")


def resolve_artifact(project: Project | None, spec: str | None) -> Path:
    """The compressed blob a user names: a file, an artifact directory, or a hash (a directory
    name under `artifacts/`); nothing named means the newest build of HEAD's runtime source.

    `project` None: read from the current directory only for a name that needs one (a hash,
    or nothing), so a file or a directory is read anywhere."""
    if not spec:
        return head_artifact(project or load_project())
    path = Path(spec).expanduser()
    if path.exists() and not path.is_dir():  # a FIFO or device is refused when it is loaded
        return path
    if path.is_dir():
        return blob_in(path)
    if _HASH.fullmatch(spec):
        project = project or load_project()
        folder = project.artifacts_dir / spec.lower().removeprefix("0x")
        if not folder.is_dir():
            raise PipelineError(
                f"unknown artifact {spec}: no {folder} (built artifacts: "
                f"{_known_artifacts(project)}); run `invoke build` or pass the blob's path"
            )
        blob = blob_in(folder)
        actual = RuntimeBlob.load(blob).blake2_256
        if actual[2:] != folder.name:
            raise PipelineError(
                f"{blob} hashes to {actual}, not to its directory's name: the artifact was "
                "altered; delete it and run `invoke build` again"
            )
        return blob
    raise PipelineError(
        f"no artifact {spec!r}: pass a blob's path, an artifact directory or the 0x hash of a "
        "build under artifacts/"
    )


def head_artifact(project: Project) -> Path:
    """The newest release artifact whose digest names HEAD's runtime source tree (a
    try-runtime build of it is named explicitly, never picked by default)."""
    from pipeline import gitops  # GitPython loads only when HEAD is asked about

    repo = gitops.open_repo(project.root)
    try:
        head = repo.head.commit.hexsha
    except ValueError:
        raise PipelineError(
            f"{project.root} has no commit yet, so there is no HEAD build: pass --artifact"
        ) from None
    tree = gitops.tree_id(repo, head, project.runtime_path)
    builds = []
    for digest_file in project.artifacts_dir.glob("*/digest.json"):
        try:
            content = json.loads(digest_file.read_text())
        except (OSError, ValueError):
            continue
        if content.get("source_tree") == tree and not content.get("try_runtime"):
            builds.append((digest_file.stat().st_mtime, digest_file.parent))
    if not builds:
        raise PipelineError(
            f"no artifact was built from HEAD ({head[:12]}, runtime tree {tree[:12]}): "
            "run `invoke build` or pass --artifact"
        )
    return blob_in(max(builds)[1])


def blob_in(folder: Path) -> Path:
    found = sorted(folder.glob("*.compact.compressed.wasm"))
    if len(found) != 1:
        what = "no" if not found else f"{len(found)}"
        raise PipelineError(
            f"{folder} holds {what} *.compact.compressed.wasm: pass the blob's path instead"
        )
    return found[0]


def released_folder(project: Project) -> Path:
    """The newest release committed under `<runtime>/releases/<spec>/`: what production runs
    (its compressed blob, and its digest.json when the pipeline built it)."""
    folder = project.root / project.runtime_path / RELEASES_SUBDIR
    specs = sorted(
        int(p.name)
        for p in folder.glob("*")
        if p.name.isdigit()
        and ((p / DIGEST_FILE).is_file() or any(p.glob("*.compact.compressed.wasm")))
    )
    if not specs:
        raise PipelineError(
            f"no released runtime under {folder}/<spec>/: commit production's release there"
            " (its *.compact.compressed.wasm and digest.json), e.g. with `runtime-pipeline init`"
        )
    return folder / str(specs[-1])


def _known_artifacts(project: Project) -> str:
    names = sorted(p.parent.name for p in project.artifacts_dir.glob("*/digest.json"))
    return ", ".join(f"0x{n[:12]}…" for n in names[:5]) or "none"


def cached_build(key: str) -> dict[str, Any] | None:
    """The index record for `key` when its blobs are still in the cache and intact."""
    path = _index(key)
    try:
        record: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    blobs = blobs_dir(str(record.get("blake2_256", "")))
    names = wasm_file_names(str(record.get("package", "")))
    compressed = blobs / names.compressed
    if not (blobs / names.compact).is_file() or not compressed.is_file():
        return None
    if blake2_256(compressed.read_bytes()) != record["blake2_256"]:
        return None
    mark_used(blobs)
    mark_used(path)
    return record


def keep_build(record: Mapping[str, Any], out: Path, *files: str) -> None:
    """Keep the blobs (by hash) and the index record (by key) in the machine-wide cache."""
    blobs = blobs_dir(str(record["blake2_256"]))
    tmp = _temp_dir(blobs.parent, blobs.name)
    for name in files:
        shutil.copyfile(out / name, tmp / name)
    _swap_in(tmp, blobs)
    record_text = json.dumps(record, indent=2, sort_keys=True) + "\n"
    write_atomic(_index(str(record["key"])), record_text.encode())


def publish(
    artifacts_dir: Path,
    compact: RuntimeBlob,
    compressed: RuntimeBlob,
    names: WasmFileNames,
    digest_json: str,
) -> Path:
    """Write `artifacts/<hash>/` atomically (complete or absent, never half-written)."""
    dest = artifacts_dir / compressed.blake2_256.removeprefix("0x")
    if (dest / DIGEST_FILE).is_file() and (dest / DIGEST_FILE).read_text() == digest_json:
        return dest
    tmp = _temp_dir(artifacts_dir, dest.name)
    (tmp / names.compact).write_bytes(compact.raw)
    (tmp / names.compressed).write_bytes(compressed.raw)
    (tmp / DIGEST_FILE).write_text(digest_json)
    _swap_in(tmp, dest)
    return dest


def _temp_dir(parent: Path, name: str) -> Path:
    """A private work dir beside its final place (same filesystem, so rename is atomic)."""
    parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f".{name[:16]}-", dir=parent))
    path.chmod(0o755)  # mkdtemp's 0700 would stay on the published directory
    return path


def _swap_in(tmp: Path, dest: Path) -> None:
    """Replace `dest` by the finished directory `tmp` with renames only."""
    old = tmp.with_name(tmp.name + ".old")
    with contextlib.suppress(FileNotFoundError):
        dest.rename(old)
    try:
        tmp.rename(dest)
    except OSError:  # a concurrent writer published the same content first
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)


def blobs_dir(code_hash: str) -> Path:
    """Where the build cache keeps the blobs of one build, by their compressed blob's hash."""
    return cache_dir() / "blobs" / code_hash.removeprefix("0x")


def _index(key: str) -> Path:
    return cache_dir() / "builds" / f"{key}.json"


def artifact_blob(artifact_dir: Path, package: str) -> Path:
    """The compressed blob of a published artifact: what goes on chain."""
    return artifact_dir / wasm_file_names(package).compressed


def read_digest(blob: Path) -> dict[str, Any]:
    """The digest.json published beside a blob: the build's source facts, which voters need."""
    digest_path = blob.parent / DIGEST_FILE
    try:
        digest = json.loads(digest_path.read_text())
    except OSError:
        raise PipelineError(
            f"no readable {digest_path}: voters need the build's source facts; "
            "build the artifact with `invoke build`"
        ) from None
    except ValueError as exc:
        raise PipelineError(f"{digest_path} is not JSON ({exc}): rebuild the artifact") from None
    if not isinstance(digest, dict):
        raise PipelineError(f"{digest_path} is not a digest (a JSON object expected)")
    return digest
