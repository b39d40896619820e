"""pipeline.builder: pure decisions (cache key, config, error summaries) and, marked `docker`,
the real engine: builder image, a reproducible build of the example runtime, cache hits."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import git
import pytest

from pipeline import builder, builder_image
from pipeline.artifact import blake2_256
from pipeline.errors import PipelineError
from pipeline.project import Project, load_project

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "examples/runtime/releases/100/digest.json"
IMAGE = "sha256:" + "1" * 64
OPTIONS: dict[str, object] = {"package": "example-runtime", "dirty": False, "cargo": "check"}


# ---------------------------------------------------------------- pure


def test_cache_key_is_deterministic_and_ignores_option_order() -> None:
    key = builder.cache_key("tree", "0xlock", IMAGE, OPTIONS)
    assert key == builder.cache_key("tree", "0xlock", IMAGE, dict(reversed(OPTIONS.items())))
    assert len(key) == 64 and int(key, 16) >= 0


@pytest.mark.parametrize(
    "changed",
    [
        {"source_tree": "other-tree"},
        {"cargo_lock": "0xotherlock"},
        {"image_id": "sha256:" + "2" * 64},
        {"options": {**OPTIONS, "dirty": True}},
        {"options": {**OPTIONS, "cargo": "build"}},
        {"options": {**OPTIONS, "package": "other-runtime"}},
    ],
)
def test_cache_key_changes_with_every_input(changed: dict[str, Any]) -> None:
    inputs: dict[str, Any] = {
        "source_tree": "tree",
        "cargo_lock": "0xlock",
        "image_id": IMAGE,
        "options": OPTIONS,
    }
    assert builder.cache_key(**inputs) != builder.cache_key(**{**inputs, **changed})


def test_build_options_record_dirty_and_the_recipe() -> None:
    clean = builder.build_options("example-runtime", dirty=False)
    dirty = builder.build_options("example-runtime", dirty=True)
    assert clean["dirty"] is False and dirty["dirty"] is True
    assert clean["recipe"] == dirty["recipe"]
    assert clean["recipe"] != builder.build_options("example-runtime", False, "build")["recipe"]


@pytest.mark.parametrize("package", ["", "-x", "a b", "x;rm -rf /", "x/../y"])
def test_build_script_refuses_odd_package_names(package: str) -> None:
    with pytest.raises(PipelineError, match="not a cargo package name"):
        builder.build_script(package)


def test_build_script_copies_both_blobs_out() -> None:
    script = builder.build_script("example-runtime")
    assert "cargo check --locked --offline --release -p example-runtime" in script
    assert "/target/release/wbuild/example-runtime/example_runtime.compact.wasm" in script
    assert "example_runtime.compact.compressed.wasm /out/" in script


def test_files_digest_names_content_not_order() -> None:
    files = {"a": b"1", "b/c": b"2"}
    assert builder_image.files_digest(files) == builder_image.files_digest(
        dict(reversed(files.items()))
    )
    assert builder_image.files_digest(files) != builder_image.files_digest({"a": b"1", "b/c": b"3"})
    assert builder_image.files_digest(files) != builder_image.files_digest({"a": b"1", "b/d": b"2"})
    assert builder_image.files_digest({"ab": b""}) != builder_image.files_digest({"a": b"b"})


def test_builder_tag_follows_dockerfile_content(tmp_path: Path) -> None:
    context = tmp_path / "dockerfiles"
    shutil.copytree(builder_image.DOCKERFILES, context)
    assert builder_image.builder_tag(context) == builder_image.builder_tag()
    dockerfile = context / builder_image.DOCKERFILE
    dockerfile.write_text(dockerfile.read_text() + "\n# changed\n")
    assert builder_image.builder_tag(context) != builder_image.builder_tag()
    assert builder_image.builder_tag(context).startswith(f"{builder_image.IMAGE_REPO}:")


def test_dockerfile_pins_base_by_digest() -> None:
    reference = builder_image.base_reference(
        (builder_image.DOCKERFILES / builder_image.DOCKERFILE).read_text()
    )
    assert reference.startswith("debian:bookworm-slim@sha256:")
    with pytest.raises(PipelineError, match="pin the base image by digest"):
        builder_image.base_reference("ARG BASE=debian:bookworm-slim\nFROM ${BASE}\n")


def test_container_cargo_config_points_at_the_fixed_vendor_dir() -> None:
    printed = (
        '[source.crates-io]\nreplace-with = "vendored-sources"\n\n'
        '[source.vendored-sources]\ndirectory = "/home/u/.cache/v/crates"\n'
    )
    config = builder.container_cargo_config(printed, "/home/u/.cache/v/crates")
    assert 'directory = "/vendor"' in config
    assert "/home/u" not in config
    assert "offline = true" in config
    without_dependencies = builder.container_cargo_config("", "/x")
    assert 'replace-with = "vendored-sources"' in without_dependencies
    assert 'directory = "/vendor"' in without_dependencies


def test_crate_version_reads_the_workspace_member() -> None:
    lock = (
        'version = 4\n[[package]]\nname = "example-runtime"\nversion = "9.9.9"\n'
        'source = "registry+https://example.invalid/index"\n'
        '[[package]]\nname = "example-runtime"\nversion = "0.1.0"\n'
    )
    assert builder.crate_version(lock, "example-runtime") == "0.1.0"
    with pytest.raises(PipelineError, match="not a workspace member"):
        builder.crate_version(lock, "other")


@pytest.mark.parametrize(
    ("log", "expected", "absent"),
    [
        (
            "   Compiling x v0.1.0\nerror[E0425]: cannot find value `y` in this scope\n"
            " --> runtime/src/lib.rs:3:5\n  |\n3 |     y\n  |     ^ not found\n\n"
            "error: could not compile `x` (lib) due to 1 previous error\n",
            ["error[E0425]: cannot find value `y`", "runtime/src/lib.rs:3:5"],
            ["could not compile"],
        ),
        (
            "warning: build failed, waiting for other jobs to finish...\n"
            "  error: failed to run custom build command for `example-runtime`\n"
            "  --- stderr\n      error[E0599]: no method named `foo`\n       --> src/lib.rs:9\n",
            ["error[E0599]: no method named `foo`", "src/lib.rs:9"],
            ["failed to run custom build"],
        ),
        ("cp: cannot stat '/target/x.wasm': No such file\n", ["cp: cannot stat"], []),
    ],
)
def test_failure_summary(log: str, expected: list[str], absent: list[str]) -> None:
    summary = builder_image.failure_summary(log)
    for text in expected:
        assert text in summary
    for text in absent:
        assert text not in summary


@pytest.mark.parametrize(
    ("log", "stale"),
    [
        (
            "error: the lock file /build/runtime/Cargo.lock needs to be updated but --locked"
            " was passed to prevent this\n",
            True,
        ),
        (
            "error: no matching package named `libm` found\n"
            "location searched: directory source `/vendor` (which is replacing registry"
            " `crates-io`)\nrequired by package `rt v0.1.0 (/build/runtime)`\n",
            True,
        ),
        (
            'error: failed to select a version for the requirement `foo = "^2"`\n'
            "candidate versions found which didn't match: 1.0.3\n"
            "location searched: directory source `/vendor` (which is replacing registry"
            " `crates-io`)\n",
            True,
        ),
        ("error[E0425]: cannot find value `y` in this scope\n --> src/lib.rs:3:5\n", False),
        (
            "error: no matching package named `libm` found\nlocation searched: crates.io index\n",
            False,
        ),
    ],
)
def test_lock_is_stale(log: str, stale: bool) -> None:
    assert builder_image.lock_is_stale(log) is stale


def test_failure_summary_caps_the_number_of_errors() -> None:
    log = "".join(f"error[E0{i:03}]: problem {i}\n" for i in range(10))
    summary = builder_image.failure_summary(log, blocks=3)
    assert "problem 0" in summary and "problem 2" in summary and "problem 3" not in summary
    assert "(+7 more errors)" in summary


@pytest.mark.parametrize(
    ("expect", "digest", "result"),
    [
        ("0x" + "AB" * 32, None, "0x" + "ab" * 32),
        (None, {"runtimes": {"compressed": {"blake2_256": "0x" + "cd" * 32}}}, "0x" + "cd" * 32),
    ],
)
def test_expected_hash(expect: str | None, digest: dict[str, Any] | None, result: str) -> None:
    assert builder.expected_hash(expect, digest) == result


@pytest.mark.parametrize(
    ("expect", "digest", "message"),
    [
        (None, None, "exactly one of"),
        ("0x" + "ab" * 32, {"runtimes": {}}, "exactly one of"),
        ("ab" * 32, None, "is not a blake2-256 hash"),
        (None, {"runtimes": {"compact": {}}}, "no runtimes.compressed.blake2_256"),
    ],
)
def test_expected_hash_refusals(
    expect: str | None, digest: dict[str, Any] | None, message: str
) -> None:
    with pytest.raises(PipelineError, match=message):
        builder.expected_hash(expect, digest)


# ---------------------------------------------------------------- engine down


def test_engine_down_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/dead.sock")
    with pytest.raises(PipelineError) as raised:
        builder_image.docker_client()
    message = str(raised.value)
    assert message.startswith(f"Docker engine not running (unix://{tmp_path}/dead.sock")
    assert message.endswith("start it with `bash scripts/docker-up.sh`")
    assert "\n" not in message


def test_engine_down_through_the_cli(tmp_path: Path) -> None:
    repo = _scratch_repo(tmp_path, lock=True)
    program = (
        "from invoke import Collection, Program\n"
        "from pipeline.cli.build import build\n"
        "Program(namespace=Collection(build)).run(['invoke', 'build'])\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", program],
        cwd=str(repo.working_tree_dir),
        env={**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/dead.sock"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith(f"error: Docker engine not running (unix://{tmp_path}/dead.sock")
    assert lines[0].endswith("start it with `bash scripts/docker-up.sh`")


def test_missing_cargo_lock_is_refused_before_docker(tmp_path: Path) -> None:
    repo = _scratch_repo(tmp_path, lock=False)
    with pytest.raises(PipelineError, match=r"no Cargo.lock in rt at HEAD: run `cargo"):
        builder.build(_project(Path(str(repo.working_tree_dir))))


# ---------------------------------------------------------------- real engine


@pytest.fixture(scope="module")
def client() -> Any:
    return builder_image.docker_client()


@pytest.fixture(scope="module")
def fixture_digest() -> dict[str, Any]:
    assert FIXTURE.is_file(), (
        f"{FIXTURE.relative_to(REPO)} is missing: build the runtime at the release commit"
        " (`invoke build --json`) and commit its digest there"
    )
    content: dict[str, Any] = json.loads(FIXTURE.read_text())
    return content


@pytest.fixture(scope="module")
def reference_build(
    tmp_path_factory: pytest.TempPathFactory, fixture_digest: dict[str, Any]
) -> Iterator[builder.BuildResult]:
    """A forced container build of the fixture's commit, from a fresh clone at another path."""
    clone = _clone(tmp_path_factory.mktemp("clone-a"))
    yield builder.build(_project(clone), fixture_digest["commit"], no_cache=True)


@pytest.mark.docker
def test_builder_image_pins_the_toolchain(client: Any) -> None:
    image_id = builder_image.ensure_builder_image(client)
    image = builder_image.builder_image(client, image_id)
    assert image.tag == builder_image.builder_tag()
    dockerfile = (builder_image.DOCKERFILES / builder_image.DOCKERFILE).read_text()
    assert f"ARG RUST_VERSION={image.toolchain['rustc-web']}" in dockerfile
    assert f"ARG LLD_VERSION={image.toolchain['lld-19']}" in dockerfile
    assert image.base_source.startswith(("pulled ", "debootstrap "))
    output = client.containers.run(
        image_id,
        ["sh", "-c", "rustc -vV; ls $(rustc --print sysroot)/lib/rustlib/wasm32v1-none/lib"],
        network_mode="none",
        remove=True,
    ).decode()
    assert "release: 1.85.0" in output
    assert "LLVM version: 19." in output
    assert "libcore-" in output and "liballoc-" in output and "libcompiler_builtins-" in output


@pytest.mark.docker
def test_processes_missing_an_image_at_once_build_it_once(client: Any) -> None:
    """Workers of a fresh machine all miss the builder image at first: one builds it, the
    others wait for it and take the same image (not one image each)."""
    existing = builder_image.ensure_builder_image(client)
    tag = f"runtime-pipeline-lock-test:{os.getpid()}-{time.monotonic_ns()}"
    builds: list[str] = []

    def build() -> str:
        builds.append(tag)
        time.sleep(1)  # long enough for every other worker to miss the image too
        client.images.get(existing).tag(*tag.split(":"))
        return existing

    waits: list[str] = []
    try:
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            ids = list(
                pool.map(
                    lambda _: builder_image.ensure_image(client, tag, build, waits.append),
                    range(3),
                )
            )
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(tag)
        lock_file(tag.replace(":", "-")).unlink()
    assert ids == [existing] * 3
    assert builds == [tag]
    assert waits and all(w == f"waiting for another process building {tag}" for w in waits)


@pytest.mark.docker
def test_a_build_container_a_killed_run_left_running_is_stopped_by_the_next_build(
    client: Any,
) -> None:
    """A run killed during its build leaves the container running (docker does not know the
    run is gone); the next build on that target volume, holding its lock, stops it instead of
    waiting behind cargo's lock for output nobody collects. Other volumes' builds run on."""
    image = builder_image.ensure_builder_image(client)
    volume = f"runtime-pipeline-test-target-{os.getpid()}-{time.monotonic_ns()}"
    volumes = (volume, f"{volume}-other")
    orphan, other = (
        client.containers.run(
            image,
            ["sleep", "600"],
            detach=True,
            network_mode="none",
            labels={f"{builder_image.LABEL}build": "test"},
            volumes={name: {"bind": builder.TARGET_DIR, "mode": "rw"}},
        )
        for name in volumes
    )
    said: list[str] = []
    try:
        with builder.target_volume_lock(client, said.append, volume):
            running = {c.id for c in client.containers.list()}
        assert orphan.id not in running and other.id in running
        assert said == [f"stopping build container {orphan.short_id} on {volume}: its run is gone"]
    finally:
        for container in (orphan, other):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        for name in volumes:
            client.volumes.get(name).remove()
            lock_file(name).unlink(missing_ok=True)


def lock_file(name: str) -> Path:
    return Path(tempfile.gettempdir()) / f"{name}.lock"


@pytest.mark.docker
def test_build_reproduces_the_committed_release(
    reference_build: builder.BuildResult, fixture_digest: dict[str, Any]
) -> None:
    assert not reference_build.cached
    assert reference_build.compressed.blake2_256 == builder.expected_hash(None, fixture_digest)
    assert reference_build.digest["commit"] == fixture_digest["commit"]
    directory = reference_build.artifact_dir
    assert directory.name == reference_build.compressed.blake2_256.removeprefix("0x")
    assert sorted(p.name for p in directory.iterdir()) == [
        "digest.json",
        "example_runtime.compact.compressed.wasm",
        "example_runtime.compact.wasm",
    ]
    written = json.loads((directory / "digest.json").read_text())
    assert written == reference_build.digest
    assert (
        written["runtimes"]["compressed"]["blake2_256"]
        == fixture_digest["runtimes"]["compressed"]["blake2_256"]
    )


@pytest.mark.docker
def test_cache_hit_in_a_fresh_clone_is_fast_and_starts_no_container(
    client: Any,
    reference_build: builder.BuildResult,
    fixture_digest: dict[str, Any],
    tmp_path: Path,
) -> None:
    clone = _clone(tmp_path)  # no artifacts/ yet: served from the machine-wide cache
    since = int(time.time()) - 1
    started = time.monotonic()
    hit = builder.build(_project(clone), fixture_digest["commit"])
    elapsed = time.monotonic() - started
    until = int(time.time()) + 1
    assert hit.cached
    assert elapsed <= 2.0, f"cache hit took {elapsed:.2f} s"
    assert hit.compressed.blake2_256 == reference_build.compressed.blake2_256
    assert hit.artifact_dir == clone / "artifacts" / hit.artifact_dir.name
    assert (hit.artifact_dir / "example_runtime.compact.compressed.wasm").read_bytes() == (
        reference_build.compressed.raw
    )
    created = list(
        client.events(
            since=since,
            until=until,
            decode=True,
            # this build's containers: other builds share the engine (other tests, other users)
            filters={
                "type": "container",
                "event": "create",
                "label": f"{builder_image.LABEL}build={hit.key}",
            },
        )
    )
    assert created == []


@pytest.mark.docker
@pytest.mark.parametrize("vendored_before", [False, True], ids=["by-host-cargo", "in-container"])
def test_stale_cargo_lock_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vendored_before: bool
) -> None:
    """Refused by `cargo vendor --locked` on a new lock, by the container when already vendored."""
    monkeypatch.setenv("PIPELINE_CACHE_DIR", str(tmp_path / "cache"))
    repo = _scratch_repo(tmp_path, lock=True)
    root = Path(str(repo.working_tree_dir))
    if vendored_before:
        # `rt` is no runtime, so the build fails after vendoring: at copying the wasm out.
        with pytest.raises(
            PipelineError, match=r"error: rt produced no rt.compact.compressed.wasm"
        ):
            builder.build(_project(root))
        assert any((tmp_path / "cache/vendor").glob("*/config.toml"))
    (root / "rt/Cargo.toml").write_text(
        (root / "rt/Cargo.toml").read_text() + '\n[dependencies]\nlibm = "0.2"\n'
    )
    repo.index.add(["rt/Cargo.toml"])
    repo.index.commit("add a dependency without updating the lock")
    with pytest.raises(PipelineError) as raised:
        builder.build(_project(root))
    assert str(raised.value) == (
        "Cargo.lock of rt at HEAD is out of date with its Cargo.toml files: run"
        " `cargo update --workspace` there and commit Cargo.lock"
    )


@pytest.mark.docker
def test_concurrent_builds_of_different_trees_share_the_target_volume(tmp_path: Path) -> None:
    """Builds of different trees at once (several CI jobs): each compiles its own path crates.

    cargo judges path crates fresh by mtime; a build must never take another tree's `dep` or
    `rt` for up to date, nor lose its outputs to another build's script.
    """
    repo = _scratch_repo(tmp_path, lock=True)
    root = Path(str(repo.working_tree_dir))
    _write_dep_variant(root, "f")
    repo.index.add(["rt/Cargo.toml", "rt/Cargo.lock", "rt/src/lib.rs", "rt/dep"])
    first = repo.index.commit("dep exports f").hexsha
    _write_dep_variant(root, "g")
    repo.index.add(["rt/src/lib.rs", "rt/dep/src/lib.rs"])
    second = repo.index.commit("dep exports g").hexsha
    program = (
        "import sys\n"
        "from pathlib import Path\n"
        "from pipeline import builder\n"
        "from pipeline.errors import PipelineError\n"
        "from pipeline.project import Project\n"
        "project = Project(root=Path(sys.argv[1]), runtime_path='rt', runtime_package='rt',"
        " suites={})\n"
        "try:\n"
        "    builder.build(project, sys.argv[2], no_cache=True)\n"
        "except PipelineError as exc:\n"
        "    print(exc)\n"
    )
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", program, str(root), ref],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PIPELINE_STATE_DIR": str(tmp_path / f"state{i}")},
        )
        for i, ref in enumerate((first, second, first, second))
    ]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    for i, output in enumerate(outputs):
        # cargo check passed; only the missing wasm (rt is no runtime) stops the build.
        assert "error: rt produced no rt.compact.compressed.wasm" in output, output
        (log,) = (tmp_path / f"state{i}" / "logs").glob("build-*.log")
        assert "Checking dep v0.1.0" in log.read_text(), log.read_text()
        assert "Checking rt v0.1.0" in log.read_text(), log.read_text()


@pytest.mark.slow
@pytest.mark.docker
def test_builds_of_one_new_tree_at_once_compile_it_once(tmp_path: Path) -> None:
    """Workers of a fresh machine (or CI jobs) ask for the same new tree at once: one compiles
    it, the others wait for the target volume and take its result from the cache."""
    clone = _clone(tmp_path)
    lib = clone / "examples/runtime/runtime/src/lib.rs"
    lib.write_text(lib.read_text() + f"\n// built once: {time.time_ns()}\n")
    repo = git.Repo(clone)
    repo.index.add([str(lib)])
    author = git.Actor("Builder Test", "builder@runtime-pipeline.invalid")
    repo.index.commit("a tree no build has seen", author=author, committer=author)
    program = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from pipeline import builder\n"
        "from pipeline.project import load_project\n"
        "result = builder.build(load_project(Path(sys.argv[1])))\n"
        "print(json.dumps([result.cached, result.compressed.blake2_256]))\n"
    )
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", program, str(clone)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PIPELINE_STATE_DIR": str(tmp_path / f"state{i}")},
        )
        for i in range(2)
    ]
    results = [json.loads(run.communicate(timeout=3600)[0].splitlines()[-1]) for run in runs]
    assert sorted(cached for cached, _ in results) == [False, True]
    assert results[0][1] == results[1][1]


@pytest.mark.docker
def test_only_build_containers_stopped_long_ago_are_removed() -> None:
    """What a run killed with the engine leaves behind goes; live and fresh containers stay."""
    client = builder_image.docker_client()
    image = builder_image.ensure_builder_image(client)
    label = {f"{builder_image.LABEL}build": "test-stale"}
    stopped = client.containers.run(image, ["true"], detach=True, network_mode="none", labels=label)
    running = client.containers.run(
        image, ["sleep", "60"], detach=True, network_mode="none", labels=label
    )
    unlabelled = client.containers.run(image, ["true"], detach=True, network_mode="none")
    try:
        stopped.wait()
        unlabelled.wait()
        assert stopped.id not in builder.remove_stale_containers(client)  # just stopped
        time.sleep(1.1)
        removed = builder.remove_stale_containers(client, older_than_s=1)
        assert stopped.id in removed
        assert running.id not in removed and unlabelled.id not in removed
        running.reload()
        unlabelled.reload()  # both still exist
        with pytest.raises(docker.errors.NotFound):
            stopped.reload()
    finally:
        for container in (stopped, running, unlabelled):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)


@pytest.mark.docker
def test_compile_error_names_the_error_and_the_log(tmp_path: Path) -> None:
    repo = _scratch_repo(tmp_path, lock=True)
    root = Path(str(repo.working_tree_dir))
    (root / "rt/src/lib.rs").write_text("pub fn f() -> u32 { missing_value }\n")
    repo.index.add(["rt/src/lib.rs"])
    repo.index.commit("break it")
    with pytest.raises(PipelineError) as raised:
        builder.build(_project(root), no_cache=True)
    message = str(raised.value)
    assert "error[E0425]: cannot find value `missing_value`" in message
    assert "src/lib.rs:1" in message
    log = Path(message.rsplit("full log ", 1)[1])
    assert log.is_file() and "missing_value" in log.read_text()


# ---------------------------------------------------------------- helpers


def _project(root: Path) -> Project:
    settings = load_project(REPO)
    if (root / "rt").is_dir():
        return Project(root=root, runtime_path="rt", runtime_package="rt", suites={})
    return Project(
        root=root,
        runtime_path=settings.runtime_path,
        runtime_package=settings.runtime_package,
        suites={},
    )


def _clone(dest: Path) -> Path:
    """A fresh clone of this repository (what CI sees), at a path no build used before."""
    git.Repo.clone_from(str(REPO), dest / "checkout")
    return dest / "checkout"


def _write_dep_variant(root: Path, function: str) -> None:
    """Make `rt` use a path crate `dep` whose only function is named `function`."""
    (root / "rt/dep/src").mkdir(parents=True, exist_ok=True)
    (root / "rt/dep/Cargo.toml").write_text(
        '[package]\nname = "dep"\nversion = "0.1.0"\nedition = "2021"\n'
    )
    (root / "rt/dep/src/lib.rs").write_text(f"pub fn {function}() -> u32 {{ 1 }}\n")
    (root / "rt/Cargo.toml").write_text(
        '[package]\nname = "rt"\nversion = "0.1.0"\nedition = "2021"\n\n'
        '[dependencies]\ndep = { path = "dep" }\n'
    )
    (root / "rt/Cargo.lock").write_text(
        "# This file is automatically @generated by Cargo.\n# It is not intended for manual"
        ' editing.\nversion = 4\n\n[[package]]\nname = "dep"\nversion = "0.1.0"\n\n'
        '[[package]]\nname = "rt"\nversion = "0.1.0"\ndependencies = [\n "dep",\n]\n'
    )
    (root / "rt/src/lib.rs").write_text(f"pub fn f() -> u32 {{ dep::{function}() }}\n")


def _scratch_repo(tmp_path: Path, lock: bool) -> git.Repo:
    """A one-crate workspace `rt` (no dependencies) committed in a new repository."""
    root = tmp_path / "scratch"
    (root / "rt/src").mkdir(parents=True)
    (root / "pipeline.toml").write_text('[runtime]\npath = "rt"\npackage = "rt"\n')
    (root / "rt/Cargo.toml").write_text(
        '[package]\nname = "rt"\nversion = "0.1.0"\nedition = "2021"\n'
    )
    (root / "rt/src/lib.rs").write_text("pub fn f() -> u32 { 1 }\n")
    files = ["pipeline.toml", "rt/Cargo.toml", "rt/src/lib.rs"]
    if lock:
        (root / "rt/Cargo.lock").write_text(
            "# This file is automatically @generated by Cargo.\n# It is not intended for manual"
            ' editing.\nversion = 4\n\n[[package]]\nname = "rt"\nversion = "0.1.0"\n'
        )
        files.append("rt/Cargo.lock")
    repo = git.Repo.init(root)
    repo.index.add(files)
    author = git.Actor("t", "t@example.invalid")
    repo.index.commit("scratch", author=author, committer=author)
    return repo


def test_vendored_crates_are_dated_alike_by_every_vendoring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two vendorings of the same crate (a new lock each time) leave identical dates on every
    file and directory, so build scripts watching a directory do not rerun after a lock change
    (they did: the node's whole tree recompiled after one crate was bumped)."""
    monkeypatch.setenv("PIPELINE_CACHE_DIR", str(tmp_path / "cache"))
    workspace = tmp_path / "ws"
    (workspace / "src").mkdir(parents=True)
    (workspace / "src/lib.rs").write_text("")
    dates = []
    for extra in ("", "\n# a manifest change: vendored again\n"):
        (workspace / "Cargo.toml").write_text(
            '[package]\nname = "ws"\nversion = "0.1.0"\nedition = "2021"\n\n'
            f'[dependencies]\nitoa = "=1.0.11"\n{extra}'
        )
        subprocess.run(["cargo", "generate-lockfile"], cwd=workspace, check=True)
        lock_hash = blake2_256((workspace / "Cargo.lock").read_bytes())
        with (
            (tmp_path / "log").open("w") as log,
            builder.vendor_crates(workspace, lock_hash, "ws", log, tmp_path / "log") as vendor,
        ):
            crate = vendor.crates / "itoa-1.0.11"
            assert crate.is_dir()
            dates.append(
                {p.relative_to(vendor.crates): p.stat().st_mtime for p in crate.rglob("*")}
            )
    first, second = dates
    assert first == second
    assert set(first.values()) == {builder.VENDOR_MTIME}
