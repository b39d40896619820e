"""How long a full local release takes with a warm build cache (goal <= 30 s), per stage.

Runs `invoke release` as a user would, in a clone of this repo's HEAD with its own state
directory and an environment on free ports, so a developer's networks are left alone. Build the
candidate once before (`invoke build`) so the build stage is a cache hit.
    .venv/bin/python bench/release.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import git

from pipeline.localnet import free_ports

REPO = Path(__file__).resolve().parents[1]
GOAL_S = 30.0


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-release-") as tmp:
        clone = Path(tmp) / "repo"
        source = git.Repo(REPO)
        # A worktree's clone starts at the main checkout's branch: check out this HEAD.
        source.clone(clone).git.checkout(source.head.commit.hexsha)
        (clone / "node_modules").symlink_to(REPO / "node_modules")
        environment = (REPO / "environments/local.toml").read_text()
        for default, port in zip((9944, 9945, 9946), free_ports(3), strict=True):
            environment = environment.replace(f"port = {default}", f"port = {port}")
        (clone / "environments/bench.toml").write_text(environment)
        plan = (
            (REPO / "releases/example.toml").read_text().replace('env = "local"', 'env = "bench"')
        )
        (clone / "releases/example.toml").write_text(plan)
        invoke = [sys.executable, "-m", "invoke"]
        started = time.monotonic()
        run = subprocess.run([*invoke, "release"], cwd=clone, capture_output=True, text=True)
        total = time.monotonic() - started
        subprocess.run([*invoke, "net.down", "--env", "bench"], cwd=clone, capture_output=True)
        if run.returncode != 0:
            print(run.stdout[-3000:], run.stderr[-3000:], sep="\n")
            return 1
        release_id = next(p for p in (clone / ".pipeline/releases").iterdir() if p.is_dir()).name
        report = json.loads((clone / f".pipeline/releases/{release_id}/report.json").read_text())
    print(f"{'stage':<18}{'seconds':>9}{'share':>8}")
    for row in report["stages"]:
        seconds = float(row.get("seconds") or 0.0)
        print(f"{row['stage']:<18}{seconds:>9.1f}{seconds / total:>8.0%}")
    print(f"{'total':<18}{total:>9.1f}   goal {GOAL_S:.0f} s: ratio {total / GOAL_S:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
