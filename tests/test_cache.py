"""The machine-wide cache's upkeep: which entries go (pure), and pruning a real cache dir with
real locks held and real files run by other processes."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from pipeline import builder, builder_image, cache, cache_images, wasm_exec
from pipeline.cache import DAY_S, Entry, Rules, choose
from pipeline.errors import PipelineError

REPO = Path(__file__).resolve().parents[1]
NOW = 1_800_000_000.0
GB = 2**30


def entry(
    name: str,
    days_ago: float,
    size: int = GB,
    kind: str = "vendor",
    partial: bool = False,
    busy: str | None = None,
) -> Entry:
    return Entry(kind, name, size, size, NOW - days_ago * DAY_S, partial, busy)


def names(entries: object) -> list[str]:
    return [e.name for e, _ in entries]  # type: ignore[attr-defined]


# ---------------------------------------------------------------- pure decisions


def test_entries_unused_longer_than_the_rule_go_the_rest_stay() -> None:
    found = [entry("old", 20), entry("recent", 2), entry("edge", 13.9)]
    decision = choose(found, Rules(unused_for_s=14 * DAY_S), NOW)
    assert names(decision.remove) == ["old"]
    assert decision.remove[0][1] == "unused for 20.0 days"
    assert decision.busy == ()


def test_over_the_size_cap_the_least_recently_used_go_until_the_kind_fits() -> None:
    found = [entry(f"lock{i}", days_ago=i) for i in range(5)]  # 5 GB, lock4 the oldest
    decision = choose(found, Rules(unused_for_s=30 * DAY_S, max_size=2 * GB), NOW)
    assert names(decision.remove) == ["lock4", "lock3", "lock2"]
    assert {reason for _, reason in decision.remove} == {"vendor over 2.0G"}


def test_a_busy_entry_stays_and_counts_so_the_next_least_recent_goes_instead() -> None:
    found = [entry("new", 0), entry("mid", 1), entry("held", 2, busy="its lock is held")]
    decision = choose(found, Rules(max_size=2 * GB), NOW)
    assert names(decision.remove) == ["mid"]
    assert [e.name for e in decision.busy] == ["held"]


def test_kinds_are_capped_each_on_its_own() -> None:
    found = [
        entry("crates", 1, size=3 * GB),
        entry("module", 9, size=GB // 10, kind="wasm-modules"),
    ]
    decision = choose(found, Rules(max_size=GB), NOW)
    assert names(decision.remove) == ["crates"]


def test_what_this_run_used_stays_even_over_the_cap() -> None:
    found = [entry("used-now", 0.01), entry("used-too", 0.02), entry("yesterday", 1)]
    since = NOW - 0.5 * DAY_S
    decision = choose(found, Rules(max_size=GB, keep_since=since), NOW)
    assert names(decision.remove) == ["yesterday"]


def test_half_written_entries_go_after_a_day_whatever_the_rules() -> None:
    found = [
        entry(".tmp-dead", 1.5, partial=True),
        entry(".tmp-writing", 0.2, partial=True),
        entry("x.partial.77", 3, partial=True, kind="node_modules"),
    ]
    decision = choose(found, Rules(unused_for_s=30 * DAY_S, keep_since=NOW - 9 * DAY_S), NOW)
    assert sorted(names(decision.remove)) == [".tmp-dead", "x.partial.77"]


def test_sizes_and_day_counts_read_and_bad_ones_refused() -> None:
    assert cache.parse_size("20G") == 20 * GB
    assert cache.parse_size("1.5GiB") == int(1.5 * GB)
    assert cache.parse_size("512m") == 512 * 2**20
    assert cache.parse_size("4096") == 4096
    assert cache.parse_days("14") == 14 * DAY_S
    assert cache.parse_days("0.5") == DAY_S / 2
    for bad in ("12Q", "", "G", "-3G"):
        with pytest.raises(PipelineError, match="is not a size"):
            cache.parse_size(bad)
    for bad in ("-1", "soon", "nan", "inf"):
        with pytest.raises(PipelineError, match="is not a number of days"):
            cache.parse_days(bad)


def test_status_rows_count_complete_entries_and_all_bytes() -> None:
    found = [entry("a", 3), entry("b", 1), entry(".tmp-x", 0.1, partial=True)]
    (row,) = cache.summarize(found)
    assert (row.kind, row.entries, row.size, row.partial) == ("vendor", 2, 3 * GB, 1)
    assert (row.oldest, row.newest) == (NOW - 3 * DAY_S, NOW - DAY_S)
    assert cache.format_size(37 * 2**20) == "37.0M"


# ---------------------------------------------------------------- a real cache dir


@pytest.fixture
def cache_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("PIPELINE_CACHE_DIR", str(root))
    return root


def make_entry(path: Path, days_ago: float, size: int = 4096, is_dir: bool = True) -> Path:
    """A real entry: a folder holding a file of `size` bytes (or that file alone), last used
    `days_ago`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    target = path / "data" if is_dir else path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(os.urandom(size))
    when = time.time() - days_ago * DAY_S
    os.utime(path, (when, when))
    return path


@pytest.fixture
def lock_holder() -> Iterator[list[subprocess.Popen[str]]]:
    """Other processes holding flocks (as the builds and the install scripts do)."""
    held: list[subprocess.Popen[str]] = []
    yield held
    for process in held:
        process.kill()
        process.wait()


def hold_lock(held: list[subprocess.Popen[str]], lock: Path, shared: bool) -> None:
    mode = "fcntl.LOCK_SH" if shared else "fcntl.LOCK_EX"
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(lock)!r}, os.O_RDONLY | os.O_CREAT)\n"
            f"fcntl.flock(fd, {mode})\n"
            "print('locked', flush=True)\n"
            "time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    held.append(process)
    assert process.stdout is not None and process.stdout.readline() == "locked\n"


def test_scan_finds_each_kind_its_entries_sizes_and_last_use(cache_root: Path) -> None:
    make_entry(cache_root / "vendor" / "aaa-bbb", days_ago=3, size=100_000)
    (cache_root / "vendor" / "aaa-bbb.lock").touch()
    make_entry(cache_root / "vendor" / ".tmp-xyz", days_ago=0)
    make_entry(cache_root / "wasm-modules" / "m.cwasm", days_ago=1, size=50_000, is_dir=False)
    (cache_root / "progress-units.json").write_text("{}")  # a file of its own, no kind
    found = {(e.kind, e.name): e for e in cache.scan()}
    assert set(found) == {
        ("vendor", "aaa-bbb"),
        ("vendor", ".tmp-xyz"),
        ("wasm-modules", "m.cwasm"),
    }
    crates = found["vendor", "aaa-bbb"]
    assert 100_000 <= crates.size < 120_000 and crates.frees == crates.size
    assert abs(crates.last_used - (time.time() - 3 * DAY_S)) < 60
    assert found["vendor", ".tmp-xyz"].partial and not crates.partial
    assert all(e.busy is None for e in found.values())


def test_files_hard_linked_outside_an_entry_free_nothing(cache_root: Path, tmp_path: Path) -> None:
    """node-up's checkouts are hard-link copies of the cached install: removing the entry frees
    only what no checkout shares."""
    install = make_entry(cache_root / "node_modules" / "e5cd-x86_64", days_ago=1, size=200_000)
    (install / "own").write_bytes(os.urandom(50_000))
    os.link(install / "data", tmp_path / "checkout-copy")
    (found,) = cache.scan()
    assert found.size >= 250_000
    assert 50_000 <= found.frees < 100_000


def test_prune_removes_the_unused_keeps_the_rest_and_a_dry_run_removes_nothing(
    cache_root: Path,
) -> None:
    old = make_entry(cache_root / "vendor" / "old", days_ago=20)
    recent = make_entry(cache_root / "vendor" / "recent", days_ago=1)
    module = make_entry(cache_root / "wasm-modules" / "old.cwasm", days_ago=30, is_dir=False)
    dead = make_entry(cache_root / "blobs" / ".abc-tmp1", days_ago=2)
    dry = cache.prune(Rules(), dry_run=True)
    assert sorted(e.name for e, _ in dry.removed) == [".abc-tmp1", "old", "old.cwasm"]
    assert dry.freed >= 3 * 4096
    assert old.exists() and module.exists() and dead.exists()
    done = cache.prune(Rules())
    assert sorted(e.name for e, _ in done.removed) == [".abc-tmp1", "old", "old.cwasm"]
    assert done.freed == dry.freed
    assert not old.exists() and not module.exists() and not dead.exists()
    assert recent.is_dir()
    # The lock file stays: a process may have it open, about to lock it.
    assert sorted(os.listdir(cache_root / "vendor")) == ["old.lock", "recent"]


def test_an_entry_whose_lock_another_process_holds_stays_until_released(
    cache_root: Path, lock_holder: list[subprocess.Popen[str]]
) -> None:
    venv = make_entry(cache_root / "python" / "d60d76b2", days_ago=40)
    hold_lock(lock_holder, cache_root / "python" / "d60d76b2.lock", shared=False)
    kept = cache.prune(Rules())
    assert kept.removed == ()
    assert [(e.name, e.busy) for e in kept.busy] == [("d60d76b2", "its lock is held")]
    assert cache.busy_lines(kept.busy) == ["kept python/d60d76b2: busy (its lock is held)"]
    assert venv.is_dir()
    lock_holder.pop().kill()
    time.sleep(0.2)  # the killed holder's lock goes with its last descriptor
    assert [e.name for e, _ in cache.prune(Rules()).removed] == ["d60d76b2"]
    assert not venv.exists()


def test_a_lock_taken_between_the_choice_and_the_removal_keeps_the_entry(
    cache_root: Path, lock_holder: list[subprocess.Popen[str]]
) -> None:
    crates = make_entry(cache_root / "vendor" / "lock-manifests", days_ago=40)
    found = cache.scan()
    assert found[0].busy is None
    hold_lock(lock_holder, cache_root / "vendor" / "lock-manifests.lock", shared=True)
    assert cache._remove(crates) is False  # what prune does for each chosen entry
    assert crates.is_dir()


def test_a_binary_a_process_runs_is_in_use(cache_root: Path) -> None:
    node_dir = make_entry(cache_root / "nodes" / "0e86", days_ago=40)
    shutil.copy2(shutil.which("sleep") or "/bin/sleep", node_dir / "example-node")
    long_ago = time.time() - 40 * DAY_S
    os.utime(node_dir, (long_ago, long_ago))
    running = subprocess.Popen([str(node_dir / "example-node"), "60"])
    try:
        time.sleep(0.2)
        kept = cache.prune(Rules())
        assert [(e.name, e.busy) for e in kept.busy] == [("0e86", "a running process uses it")]
        assert (node_dir / "example-node").is_file()
    finally:
        running.kill()
        running.wait()
    assert [e.name for e, _ in cache.prune(Rules()).removed] == ["0e86"]


def test_a_file_a_process_holds_open_is_in_use(cache_root: Path) -> None:
    log = make_entry(cache_root / "logs" / "node-0e86.log", days_ago=40, is_dir=False)
    writer = subprocess.Popen(
        ["sh", "-c", f"exec 3>>'{log}'; echo open; exec sleep 60"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "open\n"
        kept = cache.prune(Rules())
        assert [(e.name, e.busy) for e in kept.busy] == [(log.name, "a running process uses it")]
    finally:
        writer.kill()
        writer.wait()
    assert [e.name for e, _ in cache.prune(Rules()).removed] == [log.name]


def test_vendored_crates_in_use_by_a_build_are_held_and_their_use_recorded(
    cache_root: Path, tmp_path: Path
) -> None:
    """`vendor_crates` holds the entry's shared lock while the build uses it; serving it from
    the cache is a use, so its last use moves to now."""
    workspace = tmp_path / "ws"
    (workspace / "src").mkdir(parents=True)
    (workspace / "src/lib.rs").write_text("")
    (workspace / "Cargo.toml").write_text(
        '[package]\nname = "ws"\nversion = "0.1.0"\nedition = "2021"\n'
    )
    subprocess.run(["cargo", "generate-lockfile", "--offline"], cwd=workspace, check=True)
    lock_hash = "0x" + "ab" * 32
    with (tmp_path / "log").open("w") as log:
        with builder.vendor_crates(workspace, lock_hash, "ws", log, tmp_path / "log") as vendor:
            assert vendor.config.is_file()
        root = vendor.config.parent
        long_ago = time.time() - 40 * DAY_S
        os.utime(root, (long_ago, long_ago))
        with builder.vendor_crates(workspace, lock_hash, "ws", log, tmp_path / "log") as vendor:
            assert time.time() - root.stat().st_mtime < 60  # served: a use
            os.utime(root, (long_ago, long_ago))
            kept = cache.prune(Rules())
            assert [e.name for e in kept.busy] == [root.name]
            assert vendor.crates.is_dir()
    assert [e.name for e, _ in cache.prune(Rules()).removed] == [root.name]


def test_a_compiled_module_served_from_the_cache_records_its_use(cache_root: Path) -> None:
    empty_module = b"\0asm\x01\0\0\0"
    wasm_exec.compile_module(empty_module)
    (module,) = (cache_root / "wasm-modules").iterdir()
    long_ago = time.time() - 40 * DAY_S
    os.utime(module, (long_ago, long_ago))
    wasm_exec.compile_module(empty_module)
    assert time.time() - module.stat().st_mtime < 60


def invoke(*args: str) -> subprocess.CompletedProcess[str]:
    """The command on the temp cache; no Docker engine, so the machine's images stay out."""
    return subprocess.run(
        [str(REPO / ".venv" / "bin" / "invoke"), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"},
    )


def test_commands_report_and_refuse_bad_input_removing_nothing(cache_root: Path) -> None:
    old = make_entry(cache_root / "vendor" / "old", days_ago=20, size=2 * 2**20)
    make_entry(cache_root / "genesis" / "g.json", days_ago=0, is_dir=False)
    status = invoke("cache.status", "--json")
    assert status.returncode == 0, status.stderr
    rows = {row["kind"]: row for row in json.loads(status.stdout)}
    assert set(rows) == {"vendor", "genesis"}
    assert rows["vendor"]["entries"] == 1 and rows["vendor"]["size"] >= 2 * 2**20
    table = invoke("cache.status")
    assert "vendor" in table.stdout and "total" in table.stdout
    assert table.stderr.startswith("images skipped: Docker engine not running")
    for bad, named in (
        ("--unused-for=-1", "--unused-for '-1'"),
        ("--max-size=12Q", "'12Q'"),
        ("--keep-used-since=yesterday", "'yesterday'"),
    ):
        refused = invoke("cache.prune", bad)
        assert refused.returncode != 0
        assert refused.stderr.strip().splitlines() == [refused.stderr.strip()]
        assert named in refused.stderr
        assert old.is_dir()
    dry = invoke("cache.prune", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would remove vendor/old (2.0M, unused for 20.0 days)" in dry.stdout
    assert old.is_dir()
    done = invoke("cache.prune", "--keep-used-since", str(int(time.time()) - 60))
    assert "cache: removed 1 entries, freeing 2.0M; 0 busy kept" in done.stdout
    assert not old.exists()


# ---------------------------------------------------------------- docker images


def test_stale_image_tags_are_entries_the_current_ones_are_not() -> None:
    facts = [
        cache_images.ImageFacts("sha256:cur", ("runtime-pipeline-builder:new",), GB, NOW),
        cache_images.ImageFacts("sha256:old", ("runtime-pipeline-builder:old",), GB, NOW - 9),
        cache_images.ImageFacts(
            "sha256:two", ("runtime-pipeline-node:a", "runtime-pipeline-node:b"), GB, NOW
        ),
        cache_images.ImageFacts("sha256:ran", ("runtime-pipeline-node:ran",), GB, NOW),
        cache_images.ImageFacts("sha256:else", ("postgres:16",), GB, 0.0),
    ]
    found = cache_images.image_entries(
        facts,
        cache_images.OUR_REPOSITORIES,
        current={"runtime-pipeline-builder:new"},
        in_use={"sha256:ran"},
    )
    assert [(e.kind, e.name, e.frees, e.busy) for e in found] == [
        ("docker:runtime-pipeline-builder", "runtime-pipeline-builder:old", GB, None),
        ("docker:runtime-pipeline-node", "runtime-pipeline-node:a", 0, None),
        ("docker:runtime-pipeline-node", "runtime-pipeline-node:b", 0, None),
        ("docker:runtime-pipeline-node", "runtime-pipeline-node:ran", GB, "a container uses it"),
    ]
    assert cache_images._epoch("2026-11-30T03:34:49.5Z") == 1796009689.5
    assert cache_images._epoch("") == 0.0


@pytest.mark.docker
def test_a_stale_image_goes_once_no_container_uses_it_and_the_current_one_stays() -> None:
    """On the real engine, with images of a repository of this test's own (the machine's real
    images are never candidates here)."""
    client = builder_image.docker_client()
    base = builder_image.ensure_builder_image(client)
    repository = f"runtime-pipeline-cachetest-{os.getpid()}"
    made = []
    for name in ("old", "current"):
        dockerfile = f"FROM {base}\nLABEL org.runtime-pipeline.cachetest={name}-{time.time()}\n"
        image, _ = client.images.build(
            fileobj=io.BytesIO(dockerfile.encode()), tag=f"{repository}:{name}", rm=True
        )
        made.append(image.id)
    container = client.containers.create(f"{repository}:old", ["true"])
    rules = Rules(unused_for_s=0)
    try:

        def prune() -> cache.Pruned:
            return cache_images.prune_images(
                client, rules, repositories=(repository,), current={f"{repository}:current"}
            )

        kept = prune()
        assert kept.removed == ()
        assert [(e.name, e.busy) for e in kept.busy] == [
            (f"{repository}:old", "a container uses it")
        ]
        container.remove()
        size = client.images.get(made[0]).attrs["Size"]
        gone = prune()
        assert [e.name for e, _ in gone.removed] == [f"{repository}:old"]
        assert gone.freed == size
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get(made[0])
        assert client.images.get(f"{repository}:current").id == made[1]
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)
        for image_id in made:
            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.remove(image_id, force=True)
