"""The machine-wide cache's housekeeping: what each kind holds, when it was last used, and
removing the least recently used entries that no process is using.

Every folder under `cache_dir()` is a kind (vendor, wasm-modules, python, ...); each of its
children is an entry, except `<entry>.lock` files: the flock the entry's writers and readers
take. An entry's last use is its mtime: writers make it, and each reader touches it when it
serves the entry (`mark_used`). Names starting with a dot (temp dirs of an atomic rename) or
holding `.partial.` are half-written entries. Which entries go is `choose`'s pure decision;
`prune` then removes each under its lock, taken without waiting: a busy entry stays.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import stat
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pipeline.errors import PipelineError
from pipeline.project import cache_dir

DAY_S: Final = 86400.0
# Two weeks covers a release cycle's gaps (a branch picked up again next week still finds its
# crates), yet an abandoned lock's gigabyte of crates does not outlive the month.
DEFAULT_UNUSED_DAYS: Final = 14.0
# Per kind: vendored crates take about 1 GB per Cargo.lock, so 10 GB keeps the last ten locks
# (every kind at its cap still fits a CI disk beside Docker's images and target volumes).
DEFAULT_MAX_SIZE: Final = "10G"
# A half-written entry older than this belongs to a process that died: no write takes a day.
PARTIAL_AFTER_S: Final = DAY_S
LOCK_SUFFIX: Final = ".lock"
# Kinds whose readers hold the entry's lock while they use it (the others are files read whole,
# or binaries a process runs): their removal must create the lock file to exclude a reader
# that is about to take it. Lock files stay after their entry: deleting one while another
# process opens it would let two holders lock two different files.
LOCKED_KINDS: Final = frozenset({"vendor", "python", "node_modules"})
PRUNING_PREFIX: Final = ".pruning-"  # an entry being removed: renamed first, so never seen half
_UNITS: Final = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?", re.IGNORECASE)


@dataclass(frozen=True)
class Entry:
    """One cache entry as found on disk."""

    kind: str
    name: str
    size: int  # bytes on disk
    frees: int  # bytes its removal frees (files hard-linked elsewhere stay)
    last_used: float  # epoch seconds
    partial: bool = False  # a temp dir or file of a write that has not finished
    busy: str | None = None  # why it is in use (a process, a lock), if it is


@dataclass(frozen=True)
class Rules:
    """What `prune` keeps: entries used within `unused_for_s`, each kind within `max_size`
    bytes (least recently used go first), and every entry used since `keep_since` (epoch)."""

    unused_for_s: float = DEFAULT_UNUSED_DAYS * DAY_S
    max_size: int | None = None
    keep_since: float | None = None


@dataclass(frozen=True)
class Decision:
    """`choose`'s answer: the entries to remove (with why), and the busy ones it had to keep."""

    remove: tuple[tuple[Entry, str], ...]
    busy: tuple[Entry, ...]


@dataclass(frozen=True)
class KindStatus:
    """One kind's line of `cache.status`."""

    kind: str
    entries: int
    size: int
    partial: int
    oldest: float | None
    newest: float | None


# ---------------------------------------------------------------- pure decisions


def parse_size(text: str) -> int:
    """Bytes from `20G`, `512M`, `1.5GiB` or a plain count (binary units)."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise PipelineError(
            f"--max-size {text!r} is not a size: give bytes or a number with K, M, G or T"
            " (e.g. 20G)"
        )
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def parse_days(text: str) -> float:
    """Seconds from a day count (fractions allowed); a negative or unreadable one is refused."""
    try:
        days = float(text)
    except ValueError:
        days = -1.0
    if not days >= 0 or days == float("inf"):
        raise PipelineError(
            f"--unused-for {text!r} is not a number of days: give one >= 0 (e.g. 14)"
        )
    return days * DAY_S


def choose(entries: Iterable[Entry], rules: Rules, now: float) -> Decision:
    """Which entries go: half-written ones older than a day, then per kind those unused for
    longer than the rule, then the least recently used until the kind fits `max_size`.

    Busy entries never go (they still count towards their kind's size), nor do entries used
    since `keep_since`."""
    remove: list[tuple[Entry, str]] = []
    busy: list[Entry] = []
    kinds: dict[str, list[Entry]] = {}
    for entry in entries:
        kinds.setdefault(entry.kind, []).append(entry)
    for kind in sorted(kinds):
        size = sum(entry.size for entry in kinds[kind])
        for entry in sorted(kinds[kind], key=lambda e: (e.last_used, e.name)):
            idle = now - entry.last_used
            if entry.partial:
                reason = "half-written, left by a run that died" if idle > PARTIAL_AFTER_S else ""
            elif rules.keep_since is not None and entry.last_used >= rules.keep_since:
                reason = ""
            elif idle > rules.unused_for_s:
                reason = f"unused for {idle / DAY_S:.1f} days"
            elif rules.max_size is not None and size > rules.max_size:
                reason = f"{kind} over {format_size(rules.max_size)}"
            else:
                reason = ""
            if not reason:
                continue
            if entry.busy is not None:
                busy.append(entry)
                continue
            remove.append((entry, reason))
            size -= entry.size
    return Decision(tuple(remove), tuple(busy))


def summarize(entries: Iterable[Entry]) -> list[KindStatus]:
    """Per kind: complete entries, bytes (half-written ones too), oldest and newest use."""
    kinds: dict[str, list[Entry]] = {}
    for entry in entries:
        kinds.setdefault(entry.kind, []).append(entry)
    rows = []
    for kind in sorted(kinds):
        complete = [e.last_used for e in kinds[kind] if not e.partial]
        rows.append(
            KindStatus(
                kind=kind,
                entries=len(complete),
                size=sum(e.size for e in kinds[kind]),
                partial=sum(e.partial for e in kinds[kind]),
                oldest=min(complete, default=None),
                newest=max(complete, default=None),
            )
        )
    return rows


def format_size(size: int) -> str:
    """`1.1G`, `37.0M`, `512B`: the units `--max-size` reads."""
    for unit in ("T", "G", "M", "K"):
        if size >= _UNITS[unit]:
            return f"{size / _UNITS[unit]:.1f}{unit}"
    return f"{size}B"


def is_partial(name: str) -> bool:
    """A temp name of an atomic write (dot-prefixed) or of node-up's copy (`.partial.`)."""
    return name.startswith(".") or ".partial." in name


# ---------------------------------------------------------------- readers and writers


def mark_used(path: Path) -> None:
    """Record that a cache entry was served: its mtime is its last use. A cache that cannot be
    touched (read-only) still serves."""
    with contextlib.suppress(OSError):
        os.utime(path)


def read_entry(path: Path) -> str:
    """A cached file's text, its use recorded; OSError when it is not there."""
    text = path.read_text()
    mark_used(path)
    return text


@contextlib.contextmanager
def entry_lock(
    entry: Path, *, shared: bool = True, wait: bool = True, create: bool = True
) -> Iterator[bool]:
    """Hold `<entry>.lock`: shared while a reader uses the entry, exclusive while it is removed
    (or written). Without `wait`, yields False at once when another process holds it; without
    `create`, an entry with no lock file has no holder to wait for (yields True)."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(
            entry.with_name(entry.name + LOCK_SUFFIX), os.O_RDONLY | (os.O_CREAT * create), 0o666
        )
    except FileNotFoundError:
        yield True
        return
    try:
        mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB)
        try:
            fcntl.flock(descriptor, mode)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(descriptor)  # releases the lock


# ---------------------------------------------------------------- the cache on disk


def scan(root: Path | None = None, now: float | None = None) -> list[Entry]:
    """Every entry of every kind under the cache dir, with its size, last use and whether a
    process holds it (its lock, a file of it mapped or run, this very interpreter's venv)."""
    root = cache_dir() if root is None else root
    in_use = _paths_in_use()
    entries = []
    for kind_dir in sorted(p for p in _children(root) if p.is_dir() and not p.is_symlink()):
        for path in sorted(_children(kind_dir)):
            if path.name.endswith(LOCK_SUFFIX):
                continue
            try:
                last_used = path.lstat().st_mtime
            except FileNotFoundError:
                continue  # removed meanwhile
            size, frees = _disk_usage(path)
            entries.append(
                Entry(
                    kind=kind_dir.name,
                    name=path.name,
                    size=size,
                    frees=frees,
                    last_used=last_used,
                    partial=is_partial(path.name),
                    busy=_busy(path, in_use),
                )
            )
    return entries


@dataclass(frozen=True)
class Pruned:
    """What `prune` did (or, dry, would do)."""

    removed: tuple[tuple[Entry, str], ...]
    busy: tuple[Entry, ...]  # kept: in use when chosen or when its removal came

    @property
    def freed(self) -> int:
        return sum(entry.frees for entry, _ in self.removed)


def prune(rules: Rules, dry_run: bool = False, root: Path | None = None) -> Pruned:
    """Remove what `choose` picks, each entry under its exclusive lock taken without waiting:
    an entry a reader or writer holds is kept and reported busy. An entry is renamed away
    before it is deleted, so no reader ever finds half of one."""
    root = cache_dir() if root is None else root
    decision = choose(scan(root), rules, time.time())
    if dry_run:
        return Pruned(decision.remove, decision.busy)
    removed = []
    busy = list(decision.busy)
    for entry, reason in decision.remove:
        if _remove(root / entry.kind / entry.name):
            removed.append((entry, reason))
        else:
            busy.append(entry)
    return Pruned(tuple(removed), tuple(busy))


def _remove(path: Path) -> bool:
    """Remove one entry under its exclusive lock; False when another process holds it."""
    with entry_lock(
        path, shared=False, wait=False, create=path.parent.name in LOCKED_KINDS
    ) as locked:
        if not locked or _used_by_process(path, _paths_in_use()):
            return False
        doomed = path.with_name(f"{PRUNING_PREFIX}{path.name}-{os.getpid()}")
        try:
            path.rename(doomed)
        except FileNotFoundError:
            return True  # removed by another prune meanwhile
    if doomed.is_dir() and not doomed.is_symlink():
        shutil.rmtree(doomed, ignore_errors=True)
    else:
        doomed.unlink(missing_ok=True)
    return True


def _children(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _disk_usage(path: Path) -> tuple[int, int]:
    """(bytes on disk, bytes freed by removing it): each inode once; an inode with links
    outside the entry (node_modules copies are hard links) frees nothing."""
    seen: dict[tuple[int, int], list[int]] = {}  # inode -> [blocks, links, links seen here]
    pending = [str(path)]
    while pending:
        current = pending.pop()
        try:
            info = os.lstat(current)
        except OSError:
            continue
        is_dir = stat.S_ISDIR(info.st_mode)  # a folder's links are its subfolders' `..`
        key = (info.st_dev, info.st_ino)
        inode = seen.setdefault(key, [info.st_blocks * 512, 1 if is_dir else info.st_nlink, 0])
        inode[2] += 1
        if is_dir and inode[2] == 1:
            with contextlib.suppress(OSError), os.scandir(current) as listing:
                pending.extend(item.path for item in listing)
    size = sum(blocks for blocks, _, _ in seen.values())
    frees = sum(blocks for blocks, links, here in seen.values() if here >= links)
    return size, frees


def _paths_in_use() -> set[str]:
    """Files that processes run, map (libraries, mmapped modules) or hold open (a log being
    written), and the prefix this interpreter's modules come from (a shared venv on
    `sys.path`)."""
    paths = {os.path.realpath(p) for p in sys.path if p}
    for proc in _children(Path("/proc")):
        if not proc.name.isdigit():
            continue
        for link in [proc / "exe", *_children(proc / "fd")]:
            with contextlib.suppress(OSError):
                paths.add(os.readlink(link).removesuffix(" (deleted)"))
        with contextlib.suppress(OSError), open(proc / "maps") as maps:
            for line in maps:
                fields = line.split(None, 5)
                if len(fields) == 6 and fields[5].startswith("/"):
                    paths.add(fields[5].rstrip("\n").removesuffix(" (deleted)"))
    return paths


def _busy(path: Path, in_use: set[str]) -> str | None:
    """Why `path` is in use right now, or None: a process runs or maps a file of it, or its
    lock is held (by a writer, or a reader of a locked kind)."""
    if _used_by_process(path, in_use):
        return "a running process uses it"
    with entry_lock(path, shared=False, wait=False, create=False) as locked:
        return None if locked else "its lock is held"


def _used_by_process(path: Path, in_use: set[str]) -> bool:
    inside = os.path.realpath(path)
    return any(p == inside or p.startswith(inside + os.sep) for p in in_use)


def busy_lines(entries: Sequence[Entry]) -> list[str]:
    """One line per busy entry kept, for the report."""
    return [f"kept {e.kind}/{e.name}: busy ({e.busy or 'its lock is held'})" for e in entries]
