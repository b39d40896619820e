"""The Docker engine and the builder image: the pinned Debian base (pulled by digest, or made
with debootstrap), the toolchain stage, std's vendored crates, the image's labels. With the
host processes (cargo, debootstrap, tar) that making it and vendoring crates run, logged, and
how cargo's output is read when they fail (stale lock, error summary)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import docker
import docker.errors
import requests

from pipeline.errors import PipelineError
from pipeline.project import cache_dir

logger = logging.getLogger(__name__)
# Where the builder reports what it is doing (a spinner's text in the CLI): one line at a time.
Progress = Callable[[str], None]


# inside the package, so an installed pipeline (not only a checkout) builds the same image
DOCKERFILES: Final = Path(__file__).resolve().parent / "dockerfiles"


DOCKERFILE: Final = "builder.Dockerfile"


IMAGE_REPO: Final = "runtime-pipeline-builder"


BASE_REPO: Final = "runtime-pipeline-base"


BASE_SUITE: Final = "bookworm"


LABEL: Final = "org.runtime-pipeline."


STD_LIBRARY: Final = "/usr/lib/rustlib/src/rust/library"  # rust-web-src, inside the image


_PING_TIMEOUT: Final = 20  # seconds for an engine to answer at all


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


def ensure_builder_image(
    client: docker.DockerClient | None = None, progress: Progress = logger.info
) -> str:
    """The builder image's id, building the base and the image first when they are missing."""
    client = client or docker_client()
    tag = builder_tag()
    return ensure_image(client, tag, lambda: _build_builder_image(client, tag, progress), progress)


def ensure_image(
    client: docker.DockerClient, tag: str, build: Callable[[], str], progress: Progress
) -> str:
    """The id of image `tag`, made by `build` when missing. One process builds it while the
    others wait for it (the engine is shared machine-wide): two workers of a fresh machine
    would otherwise build it side by side, and end with two images and two sets of caches."""

    def existing() -> str | None:
        with contextlib.suppress(docker.errors.ImageNotFound):
            return str(client.images.get(tag).id)
        return None

    found = existing()
    if found is not None:
        return found
    with engine_lock(
        tag.replace(":", "-"), f"waiting for another process building {tag}", progress
    ):
        return existing() or build()


@contextlib.contextmanager
def engine_lock(name: str, waiting: str, progress: Progress) -> Iterator[None]:
    """Hold the machine-wide lock `name` of something the docker engine keeps for every checkout
    and cache dir (an image, a target volume), saying `waiting` when another process holds it."""
    path = Path(tempfile.gettempdir()) / f"{name}.lock"  # beside the engine's, not in cache_dir()
    descriptor = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)  # flock needs no write access
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress(waiting)
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def _build_builder_image(client: docker.DockerClient, tag: str, progress: Progress) -> str:
    """The base image when missing, then the toolchain stage, std's crates, the builder stage."""
    log_path = cache_dir() / "logs" / f"image-{tag.partition(':')[2]}.log"
    progress(f"building {tag}")
    with log_file(log_path) as log:
        base, base_source = _ensure_base(client, log, progress, log_path)
        with tempfile.TemporaryDirectory(prefix="pipeline-image-") as tmp:
            context = Path(tmp) / "context"
            shutil.copytree(DOCKERFILES, context)
            args = {"BASE": base, "BASE_SOURCE": base_source}
            toolchain = _build_stage(
                client, context, "toolchain", args, None, log, progress, log_path
            )
            progress("vendoring std's crates for the wasm32v1-none sysroot")
            _vendor_std(client, toolchain, context / "std-vendor", log, log_path)
            image_id = _build_stage(client, context, "builder", args, tag, log, progress, log_path)
    progress(f"built builder image {tag} ({image_id}); log: {log_path}")
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
    client: docker.DockerClient, log: IO[str], progress: Progress, log_path: Path
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
    progress(f"pulling {reference}")
    try:
        client.images.pull(repository, tag=digest_)
        return pinned, f"pulled {reference}"
    except docker.errors.DockerException as exc:
        log.write(f"pull of {reference} failed: {exc}\n")
    local = f"{BASE_REPO}:{BASE_SUITE}-minbase"
    try:
        image = client.images.get(local)
    except docker.errors.ImageNotFound:
        progress(f"cannot pull {reference}: debootstrap {BASE_SUITE} (about 30 s)")
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
    progress: Progress,
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
                progress(f"builder image: {step[:100]}")
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


@contextlib.contextmanager
def log_file(path: Path) -> Iterator[IO[str]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", errors="replace") as log:
        yield log


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
