"""Hermetic runtime builds: vendored crates, the build container, the cache (the builder image
is `builder_image`'s).

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
import hashlib
import json
import os
import re
import shutil
import signal
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

from pipeline import cache, gitops, store
from pipeline.artifact import (
    BuildFacts,
    RuntimeBlob,
    blake2_256,
    digest,
    dumps_digest,
    wasm_file_names,
)
from pipeline.builder_image import (
    LABEL,
    BuilderImage,
    Progress,
    _cargo,
    builder_image,
    docker_client,
    engine_lock,
    ensure_builder_image,
    failure_summary,
    files_digest,
    lock_is_stale,
    log_file,
    logger,
    stale_lock_error,
)
from pipeline.errors import PipelineError
from pipeline.faults import crash_point
from pipeline.progress import CargoProgress
from pipeline.project import Project, cache_dir, write_atomic

TARGET_VOLUME: Final = "runtime-pipeline-target"  # cargo target dir kept between builds
TRY_RUNTIME_FEATURE: Final = "try-runtime"


# Fixed paths inside the build container. Source and crate paths end up in the wasm (panic
# locations), so changing them changes the blob; the target dir does not.
SRC_DIR: Final = "/build/runtime"
VENDOR_DIR: Final = "/vendor"
CARGO_CONFIG: Final = "/cargo/config.toml"
TARGET_DIR: Final = "/target"
OUT_DIR: Final = "/out"
SOURCE_MTIME: Final = 4102444800  # 2100-01-01: exported sources are newer than any build
VENDOR_MTIME: Final = 946684800  # 2000-01-01: vendored crates are older than any build

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


# A run removes its build container the moment it exits; one exited longer ago than this was
# left by a run that died with the engine or the host.
STALE_CONTAINER_S: Final = 600.0


# ---------------------------------------------------------------- engine


# ---------------------------------------------------------------- builder image


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


@contextlib.contextmanager
def vendor_crates(
    workspace: Path, lock_hash: str, where: str, log: IO[str], log_path: Path
) -> Iterator[Vendor]:
    """Vendored crates for this Cargo.lock and these manifests, fetched once per machine by the
    host's cargo, and held (the entry's shared lock) while the build uses them: `cache.prune`
    skips them meanwhile.

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
    with cache.entry_lock(root):
        if vendor.config.is_file():
            cache.mark_used(root)
        else:
            _vendor_into(root, workspace, where, log, log_path)
        yield vendor


def _vendor_into(root: Path, workspace: Path, where: str, log: IO[str], log_path: Path) -> None:
    """Vendor the workspace's crates into a temp dir, renamed to `root` when complete."""
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
        date_vendored(tmp / "crates")
        (tmp / "config.toml").write_text(container_cargo_config(output, str(tmp / "crates")))
        with contextlib.suppress(OSError):  # another build vendored the same lock meanwhile
            tmp.rename(root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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


def build_script(package: str, command: str = CARGO_COMMAND, try_runtime: bool = False) -> str:
    """The shell run in the container: build, then copy the two blobs out.

    `try_runtime` enables the runtime's `try-runtime` feature, which substrate-wasm-builder
    forwards to the wasm: the blob exports the TryRuntime API for migration checks.
    """
    if not _PACKAGE_NAME.fullmatch(package):
        raise PipelineError(f"{package!r} is not a cargo package name: fix pipeline.toml")
    features = f" --features {TRY_RUNTIME_FEATURE}" if try_runtime else ""
    names = wasm_file_names(package)
    wbuild = f"{TARGET_DIR}/{PROFILE}/wbuild/{package}"
    return "\n".join(
        [
            f"rm -f {wbuild}/{names.compact} {wbuild}/{names.compressed}",
            f"rustc -V > {OUT_DIR}/rustc.txt",
            f"cargo {command} --locked --offline --{PROFILE} -p {package}{features}",
            f"if [ ! -f {wbuild}/{names.compressed} ]; then echo 'error: {package} produced no"
            f" {names.compressed} in {wbuild}: its build.rs must run substrate-wasm-builder'"
            " >&2; exit 1; fi",
            f"cp {wbuild}/{names.compact} {wbuild}/{names.compressed} {OUT_DIR}/",
            f"chmod a+rw {OUT_DIR}/*",
        ]
    )


def build_options(
    package: str, dirty: bool, command: str = CARGO_COMMAND, try_runtime: bool = False
) -> dict[str, object]:
    """Everything chosen for a build besides its inputs; `recipe` covers env, paths, script.

    Only a try-runtime build names its features: a release build's options (and so its cache
    key and digest) stay what they were before try-runtime builds existed.
    """
    recipe = json.dumps(
        {
            "env": dict(CONTAINER_ENV),
            "paths": [SRC_DIR, VENDOR_DIR, CARGO_CONFIG],
            "script": build_script(package, command, try_runtime),
        },
        sort_keys=True,
    )
    options: dict[str, object] = {
        "package": package,
        "profile": PROFILE,
        "cargo": command,
        "dirty": dirty,
        "recipe": hashlib.blake2b(recipe.encode(), digest_size=16).hexdigest(),
    }
    if try_runtime:
        options["features"] = [TRY_RUNTIME_FEATURE]
    return options


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


@dataclass(frozen=True)
class BuildResult:
    """A finished build (or cache hit) and where its artifact now lives."""

    key: str  # the build's content address; its containers carry it as a label
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
    try_runtime: bool = False,
    progress: Progress = logger.info,
) -> BuildResult:
    """Build the runtime at `ref` (default HEAD) into `artifacts/<hash>/`, or serve it from cache.

    `fresh_target` builds without the persistent target volume (a clean, independent rebuild);
    `try_runtime` builds the migration-check variant of the same commit (a second artifact,
    marked in its digest, that no chain may run); `progress` hears what a cold build is doing.
    """
    started = time.monotonic()
    repo = gitops.open_repo(project.root)
    revision = gitops.resolve_runtime(repo, project, ref, dirty)
    lock = cargo_lock(repo, revision, project.runtime_path)
    lock_hash = blake2_256(lock)
    client = docker_client()
    image = builder_image(client, ensure_builder_image(client, progress))
    options = build_options(project.runtime_package, revision.dirty, try_runtime=try_runtime)
    key = cache_key(revision.source_tree, lock_hash, image.id, options)
    record = None if no_cache else store.cached_build(key)
    log_path: Path | None = None
    container_seconds = 0.0
    if record is None:
        log_path = project.state_dir / "logs" / f"build-{key[:16]}.log"
        record, container_seconds = _build_in_container(
            client,
            repo,
            revision,
            image,
            options,
            lock,
            lock_hash,
            key,
            fresh_target,
            no_cache,
            log_path,
            progress,
        )
    blobs = store.blobs_dir(str(record["blake2_256"]))
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
    artifact_dir = store.publish(
        project.artifacts_dir, compact, compressed, names, dumps_digest(content)
    )
    return BuildResult(
        key=key,
        artifact_dir=artifact_dir,
        compact=compact,
        compressed=compressed,
        digest=content,
        cached=container_seconds == 0.0,  # no container: a cache hit, before or after waiting
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
    no_cache: bool,
    log_path: Path,
    progress: Progress,
) -> tuple[dict[str, Any], float]:
    """Export, vendor, run the container; cache the blobs and the index record.

    Returns the record and how long the container ran.
    """
    package = str(options["package"])
    names = wasm_file_names(package)
    with (
        log_file(log_path) as log,
        exported_workspace(repo, revision, lock_hash, log, log_path, progress) as workspace,
    ):
        out = workspace.out
        volumes = build_volumes(
            workspace.source, workspace.vendor, out, None if fresh_target else TARGET_VOLUME
        )
        script = build_script(package, str(options["cargo"]), "features" in options)
        log.write(f"$ {script}\n")
        log.flush()
        with contextlib.nullcontext() if fresh_target else target_volume_lock(client, progress):
            built = None if fresh_target or no_cache else store.cached_build(key)
            if built is not None:  # by the run this one waited for
                progress("built meanwhile by another run: taken from the cache")
                return built, 0.0
            container_started = time.monotonic()
            code = run_in_builder(
                client,
                image.id,
                script,
                volumes,
                key,
                log,
                progress=progress,
                units_key=f"runtime:{lock_hash}",
            )
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
            # Kept under the lock: a build waiting for this one finds it in the cache.
            store.keep_build(record, out, names.compact, names.compressed)
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
    repo: git.Repo,
    revision: gitops.Revision,
    lock_hash: str,
    log: IO[str],
    log_path: Path,
    progress: Progress = logger.info,
) -> Iterator[Workspace]:
    """Export `revision`'s runtime tree and vendor its crates, in a temp dir removed after."""
    with tempfile.TemporaryDirectory(prefix="pipeline-build-") as tmp:
        source = Path(tmp) / "runtime"
        source.mkdir()
        gitops.export(repo, revision, source)
        where = f"{revision.subdir or '.'} at {revision.ref}"
        progress("vendoring crates (once per Cargo.lock)")
        with vendor_crates(source, lock_hash, where, log, log_path) as vendor:
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
    progress: Progress = logger.info,
    cpu_shares: int | None = None,
    units_key: str | None = None,
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
    crates = CargoProgress(activity, expected_units(units_key))
    try:
        progress(activity)
        with _terminate_as_exit():
            for chunk in container.logs(stream=True, follow=True):
                text = chunk.decode(errors="replace")
                log.write(text)
                log.flush()  # the log is what users tail while a build runs
                crash_point("build:running")  # the container runs on without us
                if crates.feed(text):
                    progress(crates.line())
        code = int(container.wait()["StatusCode"])
        if code == 0:
            remember_units(units_key, crates.compiled)
        return code
    finally:
        container.remove(force=True)


def _units_file() -> Path:
    return cache_dir() / "progress-units.json"


def expected_units(units_key: str | None) -> int | None:
    """Crates the largest complete build of these inputs compiled on this machine, if any."""
    if units_key is None:
        return None
    try:
        known = json.loads(_units_file().read_text())
    except (OSError, ValueError):
        return None
    value = known.get(units_key) if isinstance(known, dict) else None
    return value if isinstance(value, int) else None


def remember_units(units_key: str | None, compiled: int) -> None:
    """Keep a complete build's crate count as the next build's total, when it is the largest
    (a warm build compiles a few crates of the same total)."""
    if units_key is None or compiled <= (expected_units(units_key) or 0):
        return
    path = _units_file()
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    known = known if isinstance(known, dict) else {}
    known[units_key] = compiled
    write_atomic(path, json.dumps(known, indent=1, sort_keys=True).encode())


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
def target_volume_lock(
    client: docker.DockerClient, progress: Progress = logger.info, volume: str = TARGET_VOLUME
) -> Iterator[None]:
    """Hold the machine-wide lock of a shared target volume: one build script at a time.

    cargo locks the target dir only while it runs; the script around it (clearing the wbuild
    outputs, copying them out) must not interleave with another build's. A build container
    still running on the volume once the lock is ours lost the run that started it (killed):
    it is stopped, or cargo would make this build wait for output nobody collects.
    """
    with engine_lock(volume, "waiting for another build using the target volume", progress):
        for orphan in orphaned_builds(client, volume):
            progress(f"stopping build container {orphan.short_id} on {volume}: its run is gone")
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                orphan.remove(force=True)
        yield


def orphaned_builds(client: docker.DockerClient, volume: str) -> list[Any]:
    """Running build containers that mount `volume`: orphans when its lock is held, since every
    run that mounts a target volume holds the volume's lock while its container runs."""
    return list(client.containers.list(filters={"label": f"{LABEL}build", "volume": volume}))


def date_vendored(crates: Path) -> None:
    """Date every vendored file and directory in the past, the same for every vendoring.

    `cargo vendor` keeps the crates' archive dates on files but makes directories (and
    `.cargo-checksum.json`) now. Build scripts that watch a directory (`rerun-if-changed=dir`:
    cranelift-isle, blake3, ...) would then rerun after any new vendoring, a new Cargo.lock for
    one bumped crate, and every crate above them would recompile: the node's ~900. A fixed past
    date keeps the target volume's builds of unchanged crates fresh across lock changes."""
    for path in [crates, *crates.rglob("*")]:
        if not path.is_symlink():
            os.utime(path, (VENDOR_MTIME, VENDOR_MTIME))


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
