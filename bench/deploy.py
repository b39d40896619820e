"""How long a staging deploy and a runtime diff take.

- deploy: from signing the upgrade to the new spec_version being live on a local reckless
  network (goal <= 3 s), and the whole `deploy` call (preflight, genesis of the candidate for
  its storage versions, verification);
- diff of two runtimes (goal <= 1 s): cold (each wasm's Metadata API run in node) and warm
  (summaries from the cache, what a repeated `invoke diff` does).

Runs in a temporary state and cache dir on a free port, so a developer's networks are left alone:
    .venv/bin/python bench/deploy.py --old OLD.wasm --new NEW.wasm
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pipeline import config, deploy, diff, localnet
from pipeline.artifact import RuntimeBlob
from pipeline.project import Project

T = TypeVar("T")
ENVIRONMENT = """
local = true
ss58_format = 42
[networks.production]
name = "production"
kind = "endpoint"
endpoint = "ws://127.0.0.1:1"  # never contacted
[networks.lts]
name = "staging-lts"
kind = "endpoint"
endpoint = "ws://127.0.0.1:2"  # never contacted
[networks.reckless]
name = "staging-reckless"
kind = "chopsticks-genesis"
port = {port}
[sudo]
dev = "//Alice"
"""


def timed(label: str, action: Callable[[], T]) -> tuple[T, float]:
    started = time.monotonic()
    result = action()
    seconds = time.monotonic() - started
    print(f"{label:<52} {seconds:7.2f} s", flush=True)
    return result, seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bench_deploy(old: Path, new: Path, root: Path) -> None:
    port = free_port()
    text = ENVIRONMENT.format(port=port)
    env = config.parse_environment("bench", text, root / "bench.toml", root)
    project = Project(root=root, runtime_path="", runtime_package="", suites={})
    net = localnet.LocalNet("staging-reckless", port, spec_owner="staging-reckless")
    nets = {net.name: net}
    try:
        timed(
            "reckless up (spec 100, fresh genesis)",
            lambda: localnet.up(project, nets, [net.name], old),
        )
        result, _ = timed(
            "deploy 100 -> 101 (whole call, incl. verification)",
            lambda: deploy.deploy(env, "reckless", new, progress=lambda line: None),
        )
        seconds = result.activation_seconds or 0.0
        verdict = "ok" if seconds <= 3.0 else "OVER GOAL"
        print(
            f"{'  submit -> new spec_version live (goal <= 3 s)':<52} {seconds:7.2f} s  {verdict}"
        )
        timed(
            "deploy again (already on chain: verify only)",
            lambda: deploy.deploy(env, "reckless", new, progress=lambda line: None),
        )
    finally:
        localnet.reset(project, nets)


def bench_diff(old: Path, new: Path, root: Path) -> None:
    os.environ["PIPELINE_CACHE_DIR"] = str(root / "cache")  # start cold
    runtimes = [diff.Runtime(str(p), RuntimeBlob.load(p), p) for p in (old, new)]

    def run() -> int:
        a, b = diff.summaries(runtimes)
        return len(diff.diff_summaries(a, b))

    changes, _ = timed("diff cold (both Metadata APIs run in node)", run)
    _, warm = timed("diff warm (summaries cached by blob hash)", run)
    verdict = "ok" if warm <= 1.0 else "OVER GOAL"
    print(f"{'  warm diff (goal <= 1 s)':<52} {warm:7.2f} s  {verdict}; {changes} changes")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="spec 100 blob (production's)")
    parser.add_argument("--new", type=Path, required=True, help="spec 101 blob (the candidate)")
    args = parser.parse_args()
    print(f"old: {args.old}\nnew: {args.new}")
    os.environ.pop("PIPELINE_STATE_DIR", None)
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as tmp:
        bench_diff(args.old, args.new, Path(tmp))
        bench_deploy(args.old, args.new, Path(tmp))


if __name__ == "__main__":
    main()
