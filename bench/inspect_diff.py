"""How long `invoke inspect` and `invoke diff` take as whole processes, in one run.

Prints ratios measured side by side in this run, with each figure's CPU time beside its wall
time (machines here are shared and noisy: the CPU time is what a command costs):
- `invoke inspect BLOB` (warm: the blob's metadata facts cached) against a bare Python reader
  of the same blob (read, decompress, parse the wasm's custom sections); goal within 1.5x;
  beside it, the same through the `runtime-pipeline` script, and what starting Python and
  importing invoke costs alone (the floor of any invoke command: its share of the gap);
- `invoke diff A B` cold (an empty cache: each runtime compiled, its metadata and genesis
  read) and warm (summaries from the cache); goal: cold under 3 s for two 1.5-2 MB runtimes.

    .venv/bin/python bench/inspect_diff.py [--a OLD.wasm] [--b NEW.wasm] [--runs 3]

Defaults to the example's committed spec 100 and HEAD's build; pass other chains' runtimes to
measure those (nothing is kept of them).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
INVOKE = str(REPO / ".venv" / "bin" / "invoke")
SCRIPT = str(REPO / ".venv" / "bin" / "runtime-pipeline")
BARE_READER = """
import sys, zstandard
raw = open(sys.argv[1], "rb").read()
prefix = bytes.fromhex("52bc537646db8e05")
wasm = zstandard.ZstdDecompressor().decompress(raw[8:], max_output_size=64 << 20) \\
    if raw.startswith(prefix) else raw
pos, names = 8, []
while pos < len(wasm):
    kind = wasm[pos]; pos += 1
    size = shift = 0
    while True:
        byte = wasm[pos]; pos += 1
        size |= (byte & 0x7F) << shift; shift += 7
        if not byte & 0x80:
            break
    if kind == 0:
        names.append(wasm[pos + 1 : pos + 1 + wasm[pos]])
    pos += size
print(len(wasm), names)
"""


CPU: list[float] = []  # CPU seconds (user + system) of each timed run, beside its wall time


def timed(command: list[str], env: dict[str, str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed: {done.stderr.strip().splitlines()[-1:]}")
    return elapsed


def with_cpu(figures: list[float]) -> tuple[float, float]:
    """(median wall, median CPU) of the runs just timed: on a shared machine the CPU time says
    what the command costs, the wall time what it cost today."""
    return statistics.median(figures), statistics.median(CPU[-len(figures) :])


def median(command: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    return with_cpu([timed(command, env) for _ in range(runs)])


def default_blobs() -> tuple[str, str]:
    sys.path.insert(0, str(REPO / "tests"))
    from fixtures.runtimes import runtime_wasm  # HEAD's build, from the build cache

    return str(runtime_wasm(100)), str(runtime_wasm(101))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", help="first runtime blob (default: the example's spec 100)")
    parser.add_argument("--b", help="second runtime blob (default: HEAD's build)")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    args = parser.parse_args()
    a, b = (args.a, args.b) if args.a and args.b else default_blobs()
    with tempfile.TemporaryDirectory(prefix="bench-inspect-") as cache:
        env = {**os.environ, "PIPELINE_CACHE_DIR": cache}
        timed([INVOKE, "inspect", a], env)  # fills the facts cache: `inspect` warm from here
        inspect_s = median([INVOKE, "inspect", a], env, args.runs)
        bare_s = median([sys.executable, "-c", BARE_READER, a], env, args.runs)
        script_s = median([SCRIPT, "inspect", a], env, args.runs)
        floor_s = median([sys.executable, "-c", "import invoke"], env, args.runs)
        colds = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory(prefix="bench-diff-") as empty:
                colds.append(timed([INVOKE, "diff", a, b], {**env, "PIPELINE_CACHE_DIR": empty}))
        cold_s = with_cpu(colds)
        timed([INVOKE, "diff", a, b], env)
        warm_s = median([INVOKE, "diff", a, b], env, args.runs)
    print(f"runtimes: {a} ({Path(a).stat().st_size:,} B), {b} ({Path(b).stat().st_size:,} B)")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("                   wall (CPU)")
    print(
        f"inspect (warm)     {inspect_s[0]:6.2f} s ({inspect_s[1]:5.2f} s)   bare reader "
        f"{bare_s[0]:5.2f} s ({bare_s[1]:5.2f} s)   ratio {inspect_s[0] / bare_s[0]:4.1f}x "
        "(goal <= 1.5x)"
    )
    print(
        f"  runtime-pipeline {script_s[0]:6.2f} s ({script_s[1]:5.2f} s)   import invoke "
        f"{floor_s[0]:5.2f} s ({floor_s[1]:5.2f} s)   invoke's share of the CPU gap "
        f"{(floor_s[1] - bare_s[1]) / max(inspect_s[1] - bare_s[1], 1e-9):4.0%}"
    )
    print(f"diff cold          {cold_s[0]:6.2f} s ({cold_s[1]:5.2f} s)   (goal < 3 s)")
    print(
        f"diff warm          {warm_s[0]:6.2f} s ({warm_s[1]:5.2f} s)   "
        f"cold/warm {cold_s[0] / warm_s[0]:4.1f}x"
    )


if __name__ == "__main__":
    main()
