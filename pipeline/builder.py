"""Hermetic runtime builds: the builder image, vendored crates, the build container, the cache.

The only place that talks to Docker. A build runs in a container with no network, from a clean
export of the git ref mounted read-only at a fixed path, with crates vendored on the host (keyed
by Cargo.lock) and a fixed environment: the wasm embeds source paths, so fixed paths are what
makes two machines produce the same blob. Outputs are content-addressed
(`artifacts/<blake2-256>/`), and so is the cache: its key hashes every input (runtime tree,
Cargo.lock, builder image id, build options), so a hit needs no container.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
import threading
import time
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import docker
import docker.errors
import git
import requests
from rich.console import Console
from rich.status import Status

from pipeline import gitops
from pipeline.artifact import (
    BuildFacts,
    RuntimeBlob,
    WasmFileNames,
    blake2_256,
    digest,
    dumps_digest,
    wasm_file_names,
)
from pipeline.errors import PipelineError
from pipeline.project import Project, cache_dir

DOCKERFILES: Final = Path(__file__).resolve().parents[1] / "dockerfiles"
DOCKERFILE: Final = "builder.Dockerfile"
IMAGE_REPO: Final = "runtime-pipeline-builder"
BASE_REPO: Final = "runtime-pipeline-base"
BASE_SUITE: Final = "bookworm"
TARGET_VOLUME: Final = "runtime-pipeline-target"  # cargo target dir kept between builds
LABEL: Final = "org.runtime-pipeline."
STD_LIBRARY: Final = "/usr/lib/rustlib/src/rust/library"  # rust-web-src, inside the image

# Fixed paths inside the build container. Source and crate paths end up in the wasm (panic
# locations), so changing them changes the blob; the target dir does not.
SRC_DIR: Final = "/build/runtime"
VENDOR_DIR: Final = "/vendor"
CARGO_CONFIG: Final = "/cargo/config.toml"
TARGET_DIR: Final = "/target"
OUT_DIR: Final = "/out"
SOURCE_MTIME: Final = 4102444800  # 2100-01-01: exported sources are newer than any build

# `cargo check` runs the runtime's build.rs, which builds the complete wasm, while only
# type-checking the native crate; it gives the same wasm as `cargo build` in less time.
CARGO_COMMAND: Final = "check"
PROFILE: Final = "release"

CONTAINER_ENV: Final[Mapping[str, str]] = {
    "CARGO_HOME": "/cargo",
    "CARGO_TARGET_DIR": TARGET_DIR,
    # substrate-wasm-builder's nested cargo does not inherit --offline.
    "CARGO_NET_OFFLINE": "true",
    "CARGO_TERM_COLOR": "never",
    "CARGO_INCREMENTAL": "0",
    "WASM_BUILD_TYPE": PROFILE,
    # With the target dir outside the workspace, wasm-builder cannot find Cargo.lock without it.
    "WASM_BUILD_WORKSPACE_HINT": SRC_DIR,
    "WASM_BUILD_NO_COLOR": "1",
    "SOURCE_DATE_EPOCH": "0",
    "TZ": "UTC",
    "LANG": "C.UTF-8",
}

_PACKAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_ERROR_LINE = re.compile(r"^\s*error(\[[A-Za-z0-9]+\])?: ")
_SUMMARY_ERROR = re.compile(
    r"error: (could not compile|aborting due to|failed to run custom build command)"
)
_STALE_LOCK = re.compile(r"needs to be updated but --locked was passed|cannot update the lock file")
# Offline against the vendor dir, a manifest asking for what Cargo.lock lacks fails resolution
# before cargo gets to compare the lock: the same stale lock, seen from inside the container.
_UNVENDORED = re.compile(
    r"(no matching package named|failed to select a version for the requirement)[^\n]*\n"
    r"(?:[^\n]*\n){0,6}?[^\n]*location searched: directory source"
)

_PING_TIMEOUT: Final = 20  # seconds for an engine to answer at all
# A run removes its build container the moment it exits; one exited longer ago than this was
# left by a run that died with the engine or the host.
STALE_CONTAINER_S: Final = 600.0
console = Console(stderr=True)


# ---------------------------------------------------------------- engine


def docker_client() -> docker.DockerClient:
    """A client for the local engine, or a one-line refusal saying how to start one."""
    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        docker.from_env(timeout=_PING_TIMEOUT).ping()
        # No read timeout from here on: a build's log stream is silent while
        # substrate-wasm-builder compiles (cargo shows a build script's output only at its end).
        client = docker.from_env(timeout=None)
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise PipelineError(
            f"Docker engine not running ({where}: {reason}): start it with"
            " `bash scripts/docker-up.sh`"
        ) from None
    return client


# ---------------------------------------------------------------- builder image


@dataclass(frozen=True)
class BuilderImage:
    """The builder image and what its labels say about the toolchain inside."""

    id: str
    tag: str
    toolchain: dict[str, str]
    base_source: str

    @property
    def name(self) -> str:
        return f"{self.tag} ({self.id})"


def files_digest(files: Mapping[str, bytes]) -> str:
    """Hash of a set of files by relative path and content; order and location do not matter."""
    hasher = hashlib.blake2b(digest_size=32)
    for rel in sorted(files):
        hasher.update(f"{rel}\0{len(files[rel])}\0".encode())
        hasher.update(files[rel])
    return hasher.hexdigest()


def builder_tag(context: Path = DOCKERFILES) -> str:
    """Image tag named after the Dockerfile and its context: a changed file is a new image."""
    files = {
        p.relative_to(context).as_posix(): p.read_bytes() for p in context.rglob("*") if p.is_file()
    }
    return f"{IMAGE_REPO}:{files_digest(files)[:16]}"


def base_reference(dockerfile: str) -> str:
    """The `ARG BASE=` default of the Dockerfile: the base image pinned by digest."""
    match = re.search(r"^ARG BASE=(\S+@sha256:[0-9a-f]{64})\s*$", dockerfile, re.MULTILINE)
    if match is None:
        raise PipelineError(
            f"{DOCKERFILE} has no `ARG BASE=<image>@sha256:<digest>` line: pin the base image"
            " by digest"
        )
    return match.group(1)


def ensure_builder_image(client: docker.DockerClient | None = None) -> str:
    """The builder image's id, building the base and the image first when they are missing."""
    client = client or docker_client()
    tag = builder_tag()
    with contextlib.suppress(docker.errors.ImageNotFound):
        return str(client.images.get(tag).id)
    log_path = cache_dir() / "logs" / f"image-{tag.partition(':')[2]}.log"
    with log_file(log_path) as log, console.status(f"building {tag}") as status:
        base, base_source = _ensure_base(client, log, status, log_path)
        with tempfile.TemporaryDirectory(prefix="pipeline-image-") as tmp:
            context = Path(tmp) / "context"
            shutil.copytree(DOCKERFILES, context)
            args = {"BASE": base, "BASE_SOURCE": base_source}
            toolchain = _build_stage(
                client, context, "toolchain", args, None, log, status, log_path
            )
            status.update("vendoring std's crates for the wasm32v1-none sysroot")
            _vendor_std(client, toolchain, context / "std-vendor", log, log_path)
            image_id = _build_stage(client, context, "builder", args, tag, log, status, log_path)
    console.print(f"built builder image {tag} ({image_id}); log: {log_path}")
    return image_id


def builder_image(client: docker.DockerClient, image_id: str) -> BuilderImage:
    """Read the toolchain pins and base provenance from the image's labels."""
    image = client.images.get(image_id)
    labels: dict[str, str] = image.labels or {}
    prefix = f"{LABEL}toolchain."
    current = builder_tag()
    tags = [t for t in image.tags if t.startswith(f"{IMAGE_REPO}:")]
    return BuilderImage(
        id=str(image.id),
        tag=current if current in tags else (tags[0] if tags else IMAGE_REPO),
        toolchain={
            k.removeprefix(prefix): v for k, v in sorted(labels.items()) if k.startswith(prefix)
        },
        base_source=labels.get(f"{LABEL}base-source", "unknown"),
    )


def _ensure_base(
    client: docker.DockerClient, log: IO[str], status: Status, log_path: Path
) -> tuple[str, str]:
    """(image reference for BASE, how it was obtained): the pinned pull, else debootstrap."""
    reference = base_reference((DOCKERFILES / DOCKERFILE).read_text())
    named, _, digest_ = reference.partition("@")
    repository = named.rsplit(":", 1)[0] if ":" in named.rsplit("/", 1)[-1] else named
    pinned = f"{repository}@{digest_}"
    try:
        client.images.get(pinned)
        return pinned, f"pulled {reference}"
    except docker.errors.ImageNotFound:
        pass
    status.update(f"pulling {reference}")
    try:
        client.images.pull(repository, tag=digest_)
        return pinned, f"pulled {reference}"
    except docker.errors.DockerException as exc:
        log.write(f"pull of {reference} failed: {exc}\n")
    local = f"{BASE_REPO}:{BASE_SUITE}-minbase"
    try:
        image = client.images.get(local)
    except docker.errors.ImageNotFound:
        status.update(f"cannot pull {reference}: debootstrap {BASE_SUITE} (about 30 s)")
        image = _debootstrap_base(client, local, reference, log, log_path)
    return local, f"debootstrap --variant=minbase {BASE_SUITE} ({image.id})"


def _debootstrap_base(
    client: docker.DockerClient, tag: str, reference: str, log: IO[str], log_path: Path
) -> Any:
    """A minimal bookworm rootfs imported as an image, for machines that cannot pull."""
    if shutil.which("debootstrap") is None:
        raise PipelineError(
            f"cannot pull {reference} and debootstrap is missing: run"
            " `bash scripts/docker-up.sh` (installs it) or make the base image pullable"
        )
    if os.geteuid() != 0:
        raise PipelineError(
            f"cannot pull {reference} and debootstrap needs root: build the image once as"
            " root or make the base image pullable"
        )
    with tempfile.TemporaryDirectory(prefix="pipeline-base-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        _run(["debootstrap", "--variant=minbase", BASE_SUITE, str(rootfs)], log, log_path)
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / cache).glob("*"):
                if entry.is_file():
                    entry.unlink()
        tarball = Path(tmp) / "rootfs.tar"
        _run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(tarball), "."], log, log_path)
        repository, _, name = tag.partition(":")
        client.api.import_image(
            src=str(tarball), repository=repository, tag=name, changes=['CMD ["/bin/bash"]']
        )
    return client.images.get(tag)


def _build_stage(
    client: docker.DockerClient,
    context: Path,
    target: str | None,
    args: Mapping[str, str],
    tag: str | None,
    log: IO[str],
    status: Status,
    log_path: Path,
    dockerfile: str = DOCKERFILE,
) -> str:
    """Build one Dockerfile stage (None: the last) with the host network (apt), streaming
    steps to the log."""
    image_id: str | None = None
    step = target or dockerfile
    try:
        for chunk in client.api.build(
            path=str(context),
            dockerfile=dockerfile,
            target=target,
            tag=tag,
            buildargs=dict(args),
            network_mode="host",
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
        ):
            text = chunk.get("stream", "")
            log.write(text)
            if text.startswith("Step "):
                step = text.strip()
                status.update(f"builder image: {step[:100]}")
            if "error" in chunk:
                last = str(chunk["error"]).strip().splitlines()[-1]
                raise PipelineError(
                    f"builder image build failed at {step[:120]}: {last}: full log {log_path}"
                )
            image_id = chunk.get("aux", {}).get("ID", image_id)
    except docker.errors.APIError as exc:
        raise PipelineError(
            f"builder image build failed ({exc.explanation}): full log {log_path}"
        ) from None
    if image_id is None:
        raise PipelineError(f"builder image build reported no image id: see {log_path}")
    return image_id


def _vendor_std(
    client: docker.DockerClient, toolchain: str, dest: Path, log: IO[str], log_path: Path
) -> None:
    """Vendor the crates std's Cargo.lock names, with the host's cargo, into the context.

    Building the wasm sysroot needs them (compiler_builtins); fetching them on the host keeps
    the image build's network use to apt.
    """
    container = client.containers.create(toolchain, command=["true"], network_mode="none")
    try:
        stream, _ = container.get_archive(STD_LIBRARY)
        with tempfile.TemporaryDirectory(prefix="pipeline-std-") as tmp:
            archive = Path(tmp) / "library.tar"
            with archive.open("wb") as out:
                for chunk in stream:
                    out.write(chunk)
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")
            _cargo(
                ["vendor", "--locked", "--versioned-dirs", str(dest)],
                Path(tmp) / "library",
                log,
                log_path,
                extra_env={"RUSTC_BOOTSTRAP": "1"},  # std's manifests use cargo-features
            )
    finally:
        container.remove(force=True)


# ---------------------------------------------------------------- crates


@dataclass(frozen=True)
class Vendor:
    """Crates of one Cargo.lock on the host, and the cargo config pointing the build at them."""

    crates: Path  # mounted read-only at VENDOR_DIR
    config: Path  # mounted read-only at CARGO_CONFIG


def container_cargo_config(vendor_output: str, host_dir: str) -> str:
    """Turn `cargo vendor`'s suggested config into the container's: fixed path, offline.

    A workspace without dependencies gets no suggestion; crates.io still points at the
    (empty) vendor dir so that nothing can be fetched.
    """
    if "replace-with" in vendor_output:
        body = vendor_output.replace(json.dumps(host_dir), json.dumps(VENDOR_DIR))
        body = body.replace(f"'{host_dir}'", json.dumps(VENDOR_DIR))
        if host_dir in body:
            raise PipelineError(
                f"cargo vendor's config names {host_dir} in an unexpected form: report this"
                " with the output of `cargo vendor --version`"
            )
    else:
        body = (
            '[source.crates-io]\nreplace-with = "vendored-sources"\n\n'
            f"[source.vendored-sources]\ndirectory = {json.dumps(VENDOR_DIR)}\n"
        )
    return (
        "# written by pipeline.builder: crates come from the vendor dir only\n"
        + body.strip()
        + "\n\n[net]\noffline = true\n"
    )


def vendor_crates(
    workspace: Path, lock_hash: str, where: str, log: IO[str], log_path: Path
) -> Vendor:
    """Vendored crates for this Cargo.lock and these manifests, fetched once per machine by the
    host's cargo.

    `cargo vendor --locked` also refuses a Cargo.lock that no longer matches the manifests, so
    the cache is keyed by both: a manifest changed without updating the lock is vendored (and
    refused) again, never served from an earlier vendoring. `where` names the runtime
    directory and ref for that message.
    """
    manifests = files_digest(
        {
            str(path.relative_to(workspace)): path.read_bytes()
            for path in workspace.rglob("Cargo.toml")
        }
    )
    root = cache_dir() / "vendor" / f"{lock_hash.removeprefix('0x')[:32]}-{manifests[:32]}"
    vendor = Vendor(crates=root / "crates", config=root / "config.toml")
    if vendor.config.is_file():
        return vendor
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root.parent))
    try:
        output = _cargo(
            ["vendor", "--locked", "--versioned-dirs", str(tmp / "crates")],
            workspace,
            log,
            log_path,
            where=where,
        )
        (tmp / "crates").mkdir(exist_ok=True)  # cargo creates none without dependencies
        (tmp / "config.toml").write_text(container_cargo_config(output, str(tmp / "crates")))
        with contextlib.suppress(OSError):  # another build vendored the same lock meanwhile
            tmp.rename(root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return vendor


def crate_version(cargo_lock: str, package: str) -> str:
    """The workspace package's version as Cargo.lock records it."""
    try:
        lock = tomllib.loads(cargo_lock)
    except tomllib.TOMLDecodeError as exc:
        raise PipelineError(f"Cargo.lock is not valid TOML ({exc}): regenerate it") from None
    for entry in lock.get("package", []):
        if entry.get("name") == package and "source" not in entry:
            return str(entry.get("version", ""))
    raise PipelineError(
        f"package {package} is not a workspace member in Cargo.lock: fix [runtime] package in"
        " pipeline.toml"
    )


# ---------------------------------------------------------------- build


def build_script(package: str, command: str = CARGO_COMMAND) -> str:
    """The shell run in the container: build, then copy the two blobs out."""
    if not _PACKAGE_NAME.fullmatch(package):
        raise PipelineError(f"{package!r} is not a cargo package name: fix pipeline.toml")
    names = wasm_file_names(package)
    wbuild = f"{TARGET_DIR}/{PROFILE}/wbuild/{package}"
    return "\n".join(
        [
            f"rm -f {wbuild}/{names.compact} {wbuild}/{names.compressed}",
            f"rustc -V > {OUT_DIR}/rustc.txt",
            f"cargo {command} --locked --offline --{PROFILE} -p {package}",
            f"if [ ! -f {wbuild}/{names.compressed} ]; then echo 'error: {package} produced no"
            f" {names.compressed} in {wbuild}: its build.rs must run substrate-wasm-builder'"
            " >&2; exit 1; fi",
            f"cp {wbuild}/{names.compact} {wbuild}/{names.compressed} {OUT_DIR}/",
            f"chmod a+rw {OUT_DIR}/*",
        ]
    )


def build_options(package: str, dirty: bool, command: str = CARGO_COMMAND) -> dict[str, object]:
    """Everything chosen for a build besides its inputs; `recipe` covers env, paths, script."""
    recipe = json.dumps(
        {
            "env": dict(CONTAINER_ENV),
            "paths": [SRC_DIR, VENDOR_DIR, CARGO_CONFIG],
            "script": build_script(package, command),
        },
        sort_keys=True,
    )
    return {
        "package": package,
        "profile": PROFILE,
        "cargo": command,
        "dirty": dirty,
        "recipe": hashlib.blake2b(recipe.encode(), digest_size=16).hexdigest(),
    }


def cache_key(
    source_tree: str, cargo_lock: str, image_id: str, options: Mapping[str, object]
) -> str:
    """Content address of a build: equal inputs, equal key; never time or path."""
    payload = json.dumps(
        {
            "source_tree": source_tree,
            "cargo_lock": cargo_lock,
            "builder_image": image_id,
            "options": dict(options),
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.blake2b(payload.encode(), digest_size=32).hexdigest()


def lock_is_stale(cargo_output: str) -> bool:
    """Whether cargo failed because Cargo.lock no longer matches the manifests."""
    return bool(_STALE_LOCK.search(cargo_output) or _UNVENDORED.search(cargo_output))


def stale_lock_error(where: str) -> PipelineError:
    """The one refusal for a stale lock, whether the host or the container noticed."""
    return PipelineError(
        f"Cargo.lock of {where} is out of date with its Cargo.toml files: run"
        " `cargo update --workspace` there and commit Cargo.lock"
    )


def failure_summary(log: str, blocks: int = 3, context: int = 4) -> str:
    """The compiler's error lines (each with a few lines after) from a failed build's log."""
    lines = [line.rstrip() for line in log.splitlines()]
    found: list[str] = []
    for i, line in enumerate(lines):
        if _ERROR_LINE.match(line) and not _SUMMARY_ERROR.search(line):
            block = [line.strip()]
            for after in lines[i + 1 :]:
                if not after.strip() or _ERROR_LINE.match(after) or len(block) > context:
                    break
                if after.strip(" |"):  # skip rustc's bare gutter lines
                    block.append(after.strip())
            if " | ".join(block) not in found:
                found.append(" | ".join(block))
    if not found:
        return " | ".join([line.strip() for line in lines if line.strip()][-3:]) or "no output"
    more = len(found) - blocks
    return " || ".join(found[:blocks]) + (f" (+{more} more errors)" if more > 0 else "")


@dataclass(frozen=True)
class BuildResult:
    """A finished build (or cache hit) and where its artifact now lives."""

    artifact_dir: Path
    compact: RuntimeBlob
    compressed: RuntimeBlob
    digest: dict[str, Any]
    cached: bool
    seconds: float  # wall time of the whole call
    container_seconds: float  # of which the build container ran (0 on a cache hit)
    log: Path | None


def build(
    project: Project,
    ref: str | None = None,
    *,
    no_cache: bool = False,
    dirty: bool = False,
    fresh_target: bool = False,
) -> BuildResult:
    """Build the runtime at `ref` (default HEAD) into `artifacts/<hash>/`, or serve it from cache.

    `fresh_target` builds without the persistent target volume (a clean, independent rebuild).
    """
    started = time.monotonic()
    repo = gitops.open_repo(project.root)
    revision = gitops.resolve(repo, ref, project.runtime_path, dirty)
    lock = cargo_lock(repo, revision, project.runtime_path)
    lock_hash = blake2_256(lock)
    client = docker_client()
    image = builder_image(client, ensure_builder_image(client))
    options = build_options(project.runtime_package, revision.dirty)
    key = cache_key(revision.source_tree, lock_hash, image.id, options)
    record = None if no_cache else _cached(key)
    log_path: Path | None = None
    container_seconds = 0.0
    if record is None:
        log_path = project.state_dir / "logs" / f"build-{key[:16]}.log"
        record, container_seconds = _build_in_container(
            client, repo, revision, image, options, lock, lock_hash, key, fresh_target, log_path
        )
    blobs = cache_dir() / "blobs" / str(record["blake2_256"]).removeprefix("0x")
    names = wasm_file_names(project.runtime_package)
    compact = RuntimeBlob.load(blobs / names.compact)
    compressed = RuntimeBlob.load(blobs / names.compressed)
    facts = BuildFacts(
        package=project.runtime_package,
        crate_version=str(record["crate_version"]),
        commit=revision.commit,
        tag=revision.tag,
        branch=revision.branch,
        dirty=revision.dirty,
        rustc=str(record["rustc"]),
        builder_image=str(record["builder_image"]),
        toolchain=dict(record["toolchain"]),
        cargo_lock_blake2_256=lock_hash,
        source_tree=revision.source_tree,
        build_options=dict(record["build_options"]),
        base_image_source=str(record["base_image_source"]),
    )
    content = digest(compact, compressed, facts)
    artifact_dir = _publish(
        project.artifacts_dir, compact, compressed, names, dumps_digest(content)
    )
    return BuildResult(
        artifact_dir=artifact_dir,
        compact=compact,
        compressed=compressed,
        digest=content,
        cached=log_path is None,
        seconds=time.monotonic() - started,
        container_seconds=container_seconds,
        log=log_path,
    )


def _build_in_container(
    client: docker.DockerClient,
    repo: git.Repo,
    revision: gitops.Revision,
    image: BuilderImage,
    options: Mapping[str, object],
    lock: bytes,
    lock_hash: str,
    key: str,
    fresh_target: bool,
    log_path: Path,
) -> tuple[dict[str, Any], float]:
    """Export, vendor, run the container; cache the blobs and the index record.

    Returns the record and how long the container ran.
    """
    package = str(options["package"])
    names = wasm_file_names(package)
    with (
        log_file(log_path) as log,
        exported_workspace(repo, revision, lock_hash, log, log_path) as workspace,
    ):
        out = workspace.out
        volumes = build_volumes(
            workspace.source, workspace.vendor, out, None if fresh_target else TARGET_VOLUME
        )
        script = build_script(package, str(options["cargo"]))
        log.write(f"$ {script}\n")
        log.flush()
        with contextlib.nullcontext() if fresh_target else target_volume_lock():
            container_started = time.monotonic()
            code = run_in_builder(client, image.id, script, volumes, key, log)
            container_seconds = time.monotonic() - container_started
        if code != 0:
            log.close()
            output = log_path.read_text(errors="replace")
            if lock_is_stale(output):
                raise stale_lock_error(workspace.where)
            summary = failure_summary(output)
            raise PipelineError(
                f"runtime build of {revision.ref} failed (exit {code}): {summary}: full log"
                f" {log_path}"
            )
        compressed = (out / names.compressed).read_bytes()
        record = {
            "key": key,
            "blake2_256": blake2_256(compressed),
            "package": package,
            "crate_version": crate_version(lock.decode(), package),
            "rustc": (out / "rustc.txt").read_text().strip(),
            "builder_image": image.name,
            "toolchain": image.toolchain,
            "base_image_source": image.base_source,
            "build_options": dict(options),
            "source_tree": revision.source_tree,
            "cargo_lock_blake2_256": lock_hash,
        }
        _store(record, out, names.compact, names.compressed)
    return record, container_seconds


def cargo_lock(repo: git.Repo, revision: gitops.Revision, runtime_path: str) -> bytes:
    """The runtime's committed Cargo.lock: builds and checks are `--locked` to it."""
    lock = gitops.read_file(repo, revision, "Cargo.lock")
    if lock is None:
        raise PipelineError(
            f"no Cargo.lock in {runtime_path} at {revision.ref}: run `cargo"
            f" generate-lockfile` in {runtime_path} and commit Cargo.lock"
        )
    return lock


@dataclass(frozen=True)
class Workspace:
    """A runtime tree exported for one container run, with its crates and an output dir."""

    source: Path  # mounted read-only at SRC_DIR
    vendor: Vendor
    out: Path  # mounted read-write at OUT_DIR
    where: str  # "<runtime dir> at <ref>", for messages


@contextlib.contextmanager
def exported_workspace(
    repo: git.Repo, revision: gitops.Revision, lock_hash: str, log: IO[str], log_path: Path
) -> Iterator[Workspace]:
    """Export `revision`'s runtime tree and vendor its crates, in a temp dir removed after."""
    with tempfile.TemporaryDirectory(prefix="pipeline-build-") as tmp:
        source = Path(tmp) / "runtime"
        source.mkdir()
        gitops.export(repo, revision, source)
        where = f"{revision.subdir or '.'} at {revision.ref}"
        with console.status("vendoring crates (once per Cargo.lock)"):
            vendor = vendor_crates(source, lock_hash, where, log, log_path)
        touch_tree(source)
        out = Path(tmp) / "out"
        out.mkdir()
        yield Workspace(source=source, vendor=vendor, out=out, where=where)


def build_volumes(
    source: Path, vendor: Vendor, out: Path, target_volume: str | None, src_dir: str = SRC_DIR
) -> dict[str, dict[str, str]]:
    """Mounts of a build: inputs read-only at fixed paths; no target volume means a fresh one."""
    volumes = {
        str(source): {"bind": src_dir, "mode": "ro"},
        str(vendor.crates): {"bind": VENDOR_DIR, "mode": "ro"},
        str(vendor.config): {"bind": CARGO_CONFIG, "mode": "ro"},
        str(out): {"bind": OUT_DIR, "mode": "rw"},
    }
    if target_volume is not None:
        volumes[target_volume] = {"bind": TARGET_DIR, "mode": "rw"}
    return volumes


def run_in_builder(
    client: docker.DockerClient,
    image_id: str,
    script: str,
    volumes: Mapping[str, Mapping[str, str]],
    key: str,
    log: IO[str],
    activity: str = "building the runtime",
    cpu_shares: int | None = None,
) -> int:
    """Run `script` in the builder with no network, streaming output to the log; exit code.

    `cpu_shares` below docker's 1024 lets a long build yield the cores to other work."""
    remove_stale_containers(client)
    container = client.containers.run(
        image_id,
        ["sh", "-euc", script],
        detach=True,
        network_mode="none",
        environment=dict(CONTAINER_ENV),
        working_dir=SRC_DIR,
        volumes={k: dict(v) for k, v in volumes.items()},
        labels={f"{LABEL}build": key},
        cpu_shares=cpu_shares,
    )
    try:
        with _terminate_as_exit(), console.status(activity) as status:
            for chunk in container.logs(stream=True, follow=True):
                text = chunk.decode(errors="replace")
                log.write(text)
                log.flush()  # the log is what users tail while a build runs
                lines = [x.strip() for x in text.splitlines() if x.strip()]
                if lines:
                    status.update(f"{activity}: {lines[-1][:100]}")
        return int(container.wait()["StatusCode"])
    finally:
        container.remove(force=True)


def remove_stale_containers(
    client: docker.DockerClient, older_than_s: float = STALE_CONTAINER_S
) -> list[str]:
    """Remove build containers that stopped `older_than_s` ago or more; their ids.

    Each holds a copy of a build's writable layer (hundreds of MB); running ones and those
    whose run is about to remove them are left alone.
    """
    now = datetime.datetime.now(datetime.UTC)
    removed = []
    stopped = client.containers.list(
        all=True, filters={"label": f"{LABEL}build", "status": ["exited", "dead"]}
    )
    for container in stopped:
        # FinishedAt is UTC with nanoseconds ("2026-11-25T22:45:11.123456789Z"): seconds do.
        finished = datetime.datetime.fromisoformat(
            str(container.attrs["State"]["FinishedAt"])[:19] + "+00:00"
        )
        if (now - finished).total_seconds() >= older_than_s:
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                container.remove(force=True)
                removed.append(str(container.id))
    return removed


def expected_hash(expect: str | None, digest_content: Mapping[str, Any] | None) -> str:
    """The hash a rebuild must reproduce: given directly, or read from a digest.json."""
    if (expect is None) == (digest_content is None):
        raise PipelineError("pass exactly one of --expect 0xHASH or --digest FILE")
    if digest_content is not None:
        runtimes = digest_content.get("runtimes")
        compressed = runtimes.get("compressed") if isinstance(runtimes, Mapping) else None
        value = compressed.get("blake2_256") if isinstance(compressed, Mapping) else None
        if not isinstance(value, str):
            raise PipelineError(
                "digest has no runtimes.compressed.blake2_256: pass a digest.json written by"
                " `invoke build` (or srtool)"
            )
        expect = value
    text = str(expect).strip().lower()
    if not re.fullmatch(r"0x[0-9a-f]{64}", text):
        raise PipelineError(
            f"{expect!r} is not a blake2-256 hash: pass 0x followed by 64 hex digits"
        )
    return text


# ---------------------------------------------------------------- cache and artifacts


def _cached(key: str) -> dict[str, Any] | None:
    """The index record for `key` when its blobs are still in the cache and intact."""
    path = cache_dir() / "builds" / f"{key}.json"
    try:
        record: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    blobs = cache_dir() / "blobs" / str(record.get("blake2_256", "")).removeprefix("0x")
    names = wasm_file_names(str(record.get("package", "")))
    compressed = blobs / names.compressed
    if not (blobs / names.compact).is_file() or not compressed.is_file():
        return None
    if blake2_256(compressed.read_bytes()) != record["blake2_256"]:
        return None
    return record


def _store(record: Mapping[str, Any], out: Path, *files: str) -> None:
    """Keep the blobs (by hash) and the index record (by key) in the machine-wide cache."""
    blobs = cache_dir() / "blobs" / str(record["blake2_256"]).removeprefix("0x")
    tmp = _temp_dir(blobs.parent, blobs.name)
    for name in files:
        shutil.copyfile(out / name, tmp / name)
    _swap_in(tmp, blobs)
    index = cache_dir() / "builds" / f"{record['key']}.json"
    index.parent.mkdir(parents=True, exist_ok=True)
    partial = index.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    partial.replace(index)


def _publish(
    artifacts_dir: Path,
    compact: RuntimeBlob,
    compressed: RuntimeBlob,
    names: WasmFileNames,
    digest_json: str,
) -> Path:
    """Write `artifacts/<hash>/` atomically (complete or absent, never half-written)."""
    dest = artifacts_dir / compressed.blake2_256.removeprefix("0x")
    if (dest / "digest.json").is_file() and (dest / "digest.json").read_text() == digest_json:
        return dest
    tmp = _temp_dir(artifacts_dir, dest.name)
    (tmp / names.compact).write_bytes(compact.raw)
    (tmp / names.compressed).write_bytes(compressed.raw)
    (tmp / "digest.json").write_text(digest_json)
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


# ---------------------------------------------------------------- helpers


@contextlib.contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """Let SIGTERM (CI cancelling a job) unwind like Ctrl-C, so the container is removed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def log_file(path: Path) -> Iterator[IO[str]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", errors="replace") as log:
        yield log


@contextlib.contextmanager
def target_volume_lock(volume: str = TARGET_VOLUME) -> Iterator[None]:
    """Hold the machine-wide lock of a shared target volume: one build script at a time.

    cargo locks the target dir only while it runs; the script around it (clearing the wbuild
    outputs, copying them out) must not interleave with another build's.
    """
    # Beside the volume's name, not in cache_dir(): every checkout and cache dir shares the volume.
    path = Path(tempfile.gettempdir()) / f"{volume}.lock"
    descriptor = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)  # flock needs no write access
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            with console.status("waiting for another build using the target volume"):
                fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def touch_tree(root: Path) -> None:
    """Date every exported file in the future, so cargo rebuilds the workspace crates.

    cargo judges path crates fresh when no source is newer than the start of their last
    compilation. `git archive` stamps the commit time, and even "now" can be older than a
    build of another tree that ran meanwhile in the shared target volume (or before a clock
    step): the stale crate of the other tree would be reused. A source date beyond any build
    makes every workspace crate dirty, always; vendored crates keep their cached builds.
    """
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            os.utime(path, (SOURCE_MTIME, SOURCE_MTIME))


def _cargo(
    args: list[str],
    cwd: Path,
    log: IO[str],
    log_path: Path,
    extra_env: Mapping[str, str] | None = None,
    where: str = "",
) -> str:
    """Run the host's cargo in the workspace `cwd` (`where` names it for users).

    Its stdout is returned, stderr goes to the log.
    """
    cargo = shutil.which("cargo")
    if cargo is None:
        raise PipelineError(
            "cargo not found on PATH: install Rust (rustup) on the host; it fetches the crates"
            " that the offline container build uses"
        )
    log.write(f"$ (cd {cwd} && cargo {' '.join(args)})\n")
    log.flush()
    result = subprocess.run(
        [cargo, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env={**os.environ, **(extra_env or {})},
        check=False,
    )
    if result.returncode != 0:
        log.flush()
        tail = log_path.read_text(errors="replace")
        if lock_is_stale(tail):
            raise stale_lock_error(where or str(cwd))
        raise PipelineError(f"cargo {args[0]} failed: {failure_summary(tail)}: full log {log_path}")
    return result.stdout


def _run(args: list[str], log: IO[str], log_path: Path) -> None:
    log.write(f"$ {' '.join(args)}\n")
    log.flush()
    result = subprocess.run(args, stdout=log, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise PipelineError(f"{args[0]} failed (exit {result.returncode}): see {log_path}")
