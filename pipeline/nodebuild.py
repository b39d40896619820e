"""Native builds of the example chain's node (`examples/node`), cached by content.

A node binary is a tool to run networks, not a release artifact: it need not be reproducible,
but it is expensive (about 16 minutes cold on 2 cores), so it is built like the runtime (a clean
export, vendored crates, no network) and kept by a key over every input: the `examples/` tree
(node and the runtime crate it takes its types from), the node's Cargo.lock, the node image,
the build options. An unchanged input is a cache hit without a container. The node embeds no
runtime wasm (`SKIP_WASM_BUILD=1`): chains start from chain spec files of built runtimes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Final

import docker
import docker.errors

from pipeline import builder, builder_image, gitops, nodenet, store
from pipeline.artifact import blake2_256
from pipeline.builder_image import Progress, logger
from pipeline.cache import mark_used
from pipeline.errors import PipelineError
from pipeline.project import Project, cache_dir

# exported whole (the node path-depends on ../runtime/runtime); the node's workspace inside it
EXAMPLES: Final = PurePosixPath(nodenet.NODE_SOURCES).parent.as_posix()
NODE_WORKSPACE: Final = PurePosixPath(nodenet.NODE_SOURCES).name
BINARY: Final = nodenet.BINARY
CONTEXT: Final = Path(__file__).resolve().parent / "dockerfiles-node"
DOCKERFILE: Final = "node.Dockerfile"
IMAGE_REPO: Final = "runtime-pipeline-node"
TARGET_VOLUME: Final = "runtime-pipeline-node-target"  # the node's own, kept between builds
SRC_DIR: Final = "/build/examples"
PROFILE: Final = "testnet"  # examples/node/Cargo.toml says why
# Relative CPU weight of the build container among containers (docker's default is 1024): a
# quarter hour of compiling yields to other builds and checks. (With cgroup v1 all of docker
# weighs as much as one host process, so host processes, tests included, are not slowed much.)
CPU_SHARES: Final = 512
TIMINGS: Final = "cargo-timing.html"  # cargo's report of the build, kept beside the binary


def node_image_tag(builder_id: str, context: Path = CONTEXT) -> str:
    """The node image's tag: its Dockerfile and the builder image it starts from."""
    files = {
        p.relative_to(context).as_posix(): p.read_bytes() for p in context.rglob("*") if p.is_file()
    }
    files["builder-image-id"] = builder_id.encode()
    return f"{IMAGE_REPO}:{builder_image.files_digest(files)[:16]}"


def ensure_node_image(
    client: docker.DockerClient, builder_id: str, progress: Progress = logger.info
) -> str:
    """The node image's id, built from the builder image (apt adds protoc) when missing."""
    tag = node_image_tag(builder_id)
    return builder_image.ensure_image(
        client, tag, lambda: _build_node_image(client, builder_id, tag, progress), progress
    )


def _build_node_image(
    client: docker.DockerClient, builder_id: str, tag: str, progress: Progress
) -> str:
    log_path = cache_dir() / "logs" / f"node-image-{tag.partition(':')[2]}.log"
    progress(f"building {tag}")
    with (
        builder_image.log_file(log_path) as log,
        tempfile.TemporaryDirectory(prefix="pipeline-node-image-") as tmp,
    ):
        context = Path(tmp) / "context"
        shutil.copytree(CONTEXT, context)
        image_id = builder_image._build_stage(
            client,
            context,
            None,
            {"BUILDER": builder_id},
            tag,
            log,
            progress,
            log_path,
            dockerfile=DOCKERFILE,
        )
    progress(f"built node image {tag} ({image_id}); log: {log_path}")
    return image_id


def build_script(binary: str = BINARY) -> str:
    """The shell run in the container: build the node natively, copy the binary out."""
    return "\n".join(
        [
            # The runtime crate lends types only: no wasm build, no binaryen run.
            "export SKIP_WASM_BUILD=1",
            f"rustc -V > {builder.OUT_DIR}/rustc.txt",
            f"cd {SRC_DIR}/{NODE_WORKSPACE}",
            f"cargo build --locked --offline --profile {PROFILE} --timings --bin {binary}",
            f"cp {builder.TARGET_DIR}/{PROFILE}/{binary} {builder.OUT_DIR}/",
            f"cp {builder.TARGET_DIR}/cargo-timings/{TIMINGS} {builder.OUT_DIR}/",
            f"chmod a+rwx {builder.OUT_DIR}/*",
        ]
    )


def build_options(binary: str = BINARY) -> dict[str, object]:
    """Everything chosen for a node build besides its inputs."""
    recipe = json.dumps(
        {
            "env": dict(builder.CONTAINER_ENV),
            "paths": [SRC_DIR, builder.VENDOR_DIR, builder.CARGO_CONFIG],
            "script": build_script(binary),
        },
        sort_keys=True,
    )
    return {
        "binary": binary,
        "profile": PROFILE,
        "recipe": hashlib.blake2b(recipe.encode(), digest_size=16).hexdigest(),
    }


@dataclass(frozen=True)
class NodeBuild:
    """A node binary in the cache, and how it got there."""

    binary: Path
    key: str
    cached: bool
    seconds: float  # wall time of the whole call
    container_seconds: float  # of which the build container ran (0 on a cache hit)
    log: Path | None

    @property
    def size(self) -> int:
        return self.binary.stat().st_size


def node_dir(key: str) -> Path:
    return nodenet.built_nodes() / key


def cached_binary(key: str) -> Path | None:
    """The cached binary of `key`, when a finished build left it there."""
    binary = node_dir(key) / BINARY
    record = node_dir(key) / nodenet.BUILD_RECORD
    if not (binary.is_file() and record.is_file()):
        return None
    mark_used(binary.parent)
    return binary


def build(
    project: Project,
    ref: str | None = None,
    *,
    no_cache: bool = False,
    dirty: bool = False,
    progress: Progress = logger.info,
) -> NodeBuild:
    """The node binary of `examples/` at `ref` (default HEAD): from the cache, or built.

    `progress` hears what a cold build (about 16 minutes) is doing."""
    started = time.monotonic()
    repo = gitops.open_repo(project.root)
    revision = gitops.resolve(repo, ref, EXAMPLES, dirty)
    lock = gitops.read_file(repo, revision, f"{NODE_WORKSPACE}/Cargo.lock")
    if lock is None:
        raise PipelineError(
            f"no Cargo.lock in {EXAMPLES}/{NODE_WORKSPACE} at {revision.ref}: make it there"
            " (see examples/node/README.md) and commit it"
        )
    lock_hash = blake2_256(lock)
    client = builder_image.docker_client()
    image_id = ensure_node_image(
        client, builder_image.ensure_builder_image(client, progress), progress
    )
    key = builder.cache_key(revision.source_tree, lock_hash, image_id, build_options())
    found = None if no_cache else cached_binary(key)
    if found is not None:
        return NodeBuild(found, key, True, time.monotonic() - started, 0.0, None)
    log_path = cache_dir() / "logs" / f"node-{key[:16]}.log"
    container_seconds = _build_in_container(
        client, repo, revision, image_id, lock_hash, key, log_path, progress
    )
    return NodeBuild(
        node_dir(key) / BINARY,
        key,
        False,
        time.monotonic() - started,
        container_seconds,
        log_path,
    )


def _build_in_container(
    client: docker.DockerClient,
    repo: Any,
    revision: gitops.Revision,
    image_id: str,
    lock_hash: str,
    key: str,
    log_path: Path,
    progress: Progress,
) -> float:
    """Export, vendor, build in the node image; keep the binary under the key. Seconds run."""
    where = f"{EXAMPLES}/{NODE_WORKSPACE} at {revision.ref}"
    with (
        builder_image.log_file(log_path) as log,
        tempfile.TemporaryDirectory(prefix="pipeline-node-") as tmp,
        contextlib.ExitStack() as held,  # the vendored crates, until the build is done
    ):
        source = Path(tmp) / EXAMPLES
        source.mkdir()
        gitops.export(repo, revision, source)
        progress("vendoring the node's crates (once per Cargo.lock)")
        vendor = held.enter_context(
            builder.vendor_crates(source / NODE_WORKSPACE, lock_hash, where, log, log_path)
        )
        builder.touch_tree(source)
        out = Path(tmp) / "out"
        out.mkdir()
        volumes = builder.build_volumes(source, vendor, out, TARGET_VOLUME, src_dir=SRC_DIR)
        script = build_script()
        log.write(f"$ {script}\n")
        log.flush()
        # The binary is published under the lock: a build waiting for this one finds it.
        with builder.target_volume_lock(client, progress, TARGET_VOLUME):
            if cached_binary(key) is not None:
                return 0.0  # built by the run this one waited for
            started = time.monotonic()
            code = builder.run_in_builder(
                client,
                image_id,
                script,
                volumes,
                key,
                log,
                activity="building the node",
                progress=progress,
                cpu_shares=CPU_SHARES,
                units_key=f"node:{lock_hash}",
            )
            seconds = time.monotonic() - started
            if code != 0:
                log.close()
                output = log_path.read_text(errors="replace")
                if builder_image.lock_is_stale(output):
                    raise builder_image.stale_lock_error(where)
                raise PipelineError(
                    f"node build of {revision.ref} failed (exit {code}):"
                    f" {builder_image.failure_summary(output)}: full log {log_path}"
                )
            _store(
                key,
                out / BINARY,
                {
                    "key": key,
                    "binary": BINARY,
                    "source_tree": revision.source_tree,
                    "node_tree": nodenet.node_tree(repo, revision.commit),
                    "commit": revision.commit,
                    "cargo_lock_blake2_256": lock_hash,
                    "image": image_id,
                    "rustc": (out / "rustc.txt").read_text().strip(),
                    "build_options": build_options(),
                    "container_seconds": round(seconds, 1),
                },
            )
    return seconds


def binary_for_networks(project: Project, progress: Progress = logger.info) -> Path:
    """The node binary networks of real nodes run (see `nodenet.find_binary`), built from HEAD
    when there is none yet."""
    try:
        return nodenet.find_binary(project)
    except nodenet.NodeBinaryMissing:
        return build(project, progress=progress).binary


def _store(key: str, binary: Path, record: Mapping[str, Any]) -> None:
    """Publish the binary and its record under the key, complete or not at all."""
    dest = node_dir(key)
    tmp = store._temp_dir(dest.parent, dest.name)
    shutil.copy2(binary, tmp / BINARY)
    os.chmod(tmp / BINARY, 0o755)
    shutil.copy2(binary.parent / TIMINGS, tmp / TIMINGS)
    (tmp / nodenet.BUILD_RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    store._swap_in(tmp, dest)
