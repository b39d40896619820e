"""How long a full local release takes with a warm build cache, per stage, in one run.

Runs `invoke release` as a user would, in a clone of this repo's HEAD with its own state
directory and an environment on free ports, so a developer's networks are left alone. Build the
candidate once before (`invoke build`) so the build stage is a cache hit.

    .venv/bin/python bench/release.py                     # chopsticks (goal <= 30 s)
    .venv/bin/python bench/release.py --env local-nodes   # real nodes: blocks come every 6 s

Besides each stage's wall time it prints how many blocks production made meanwhile (sampled
every second over RPC): on real nodes that is how many blocks the stage waited.
"""

from __future__ import annotations

import argparse
import bisect
import json
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import git

from pipeline import devrpc
from pipeline.localnet import free_ports

REPO = Path(__file__).resolve().parents[1]
GOAL_S = 30.0
SHIPPED_PORTS = {"local": (9944, 9945, 9946), "local-nodes": (9954, 9955, 9956)}


class HeadSampler(threading.Thread):
    """Production's best block number, once a second, with the wall time it was read."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(daemon=True)
        self.endpoint = endpoint
        self.samples: list[tuple[float, int]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                head = int(devrpc.rpc(self.endpoint, "chain_getHeader", timeout=2.0)["number"], 16)
                self.samples.append((time.time(), head))
            except Exception:  # not up yet, or restarting: no sample
                pass
            self.done.wait(1.0)

    def head_at(self, at: float) -> int | None:
        """The last head read at or before `at`."""
        index = bisect.bisect_right([t for t, _ in self.samples], at) - 1
        return self.samples[index][1] if index >= 0 else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="local", choices=sorted(SHIPPED_PORTS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-release-") as tmp:
        clone = Path(tmp) / "repo"
        source = git.Repo(REPO)
        # A worktree's clone starts at the main checkout's branch: check out this HEAD.
        source.clone(clone).git.checkout(source.head.commit.hexsha)
        (clone / "node_modules").symlink_to(REPO / "node_modules")
        environment = (REPO / f"environments/{args.env}.toml").read_text()
        ports = free_ports(3)
        for default, port in zip(SHIPPED_PORTS[args.env], ports, strict=True):
            environment = environment.replace(f"port = {default}", f"port = {port}")
        (clone / "environments/bench.toml").write_text(environment)
        plan = (
            (REPO / "releases/example.toml").read_text().replace('env = "local"', 'env = "bench"')
        )
        (clone / "releases/example.toml").write_text(plan)
        invoke = [sys.executable, "-m", "invoke"]
        sampler = HeadSampler(f"ws://127.0.0.1:{ports[0]}")
        sampler.start()
        started = time.monotonic()
        run = subprocess.run([*invoke, "release"], cwd=clone, capture_output=True, text=True)
        total = time.monotonic() - started
        sampler.done.set()
        subprocess.run([*invoke, "net.down", "--env", "bench"], cwd=clone, capture_output=True)
        if run.returncode != 0:
            print(run.stdout[-3000:], run.stderr[-3000:], sep="\n")
            return 1
        release_id = next(p for p in (clone / ".pipeline/releases").iterdir() if p.is_dir()).name
        report = json.loads((clone / f".pipeline/releases/{release_id}/report.json").read_text())
    print(f"environment {args.env}")
    print(f"{'stage':<18}{'seconds':>9}{'share':>8}{'blocks':>8}")
    for row in report["stages"]:
        seconds = float(row.get("seconds") or 0.0)
        blocks = ""
        if row.get("started") and row.get("finished"):
            first = sampler.head_at(datetime.fromisoformat(row["started"]).timestamp())
            last = sampler.head_at(datetime.fromisoformat(row["finished"]).timestamp())
            blocks = "" if first is None or last is None else str(last - first)
        print(f"{row['stage']:<18}{seconds:>9.1f}{seconds / total:>8.0%}{blocks:>8}")
    print(f"{'total':<18}{total:>9.1f}", end="")
    if args.env == "local":
        print(f"   goal {GOAL_S:.0f} s: ratio {total / GOAL_S:.2f}")
    else:
        span = sampler.samples[-1][0] - sampler.samples[0][0] if len(sampler.samples) > 1 else 0
        made = sampler.samples[-1][1] - sampler.samples[0][1] if len(sampler.samples) > 1 else 0
        print(f"   production made {made} blocks in {span:.0f} s", end="")
        print(f" ({span / made:.1f} s per block)" if made else "")
    print(f"measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    return 0


if __name__ == "__main__":
    sys.exit(main())
