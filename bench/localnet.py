"""How long the local networks take: spec build, `net.up` of all three (cold, with seeding, and
warm, resuming production's db), and each network's first block after up.

Runs in a temporary state dir on free ports, so a developer's networks are left alone:
    .venv/bin/python bench/localnet.py [--wasm PATH]
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pipeline import devrpc, executor, localnet
from pipeline.project import Project, load_project

T = TypeVar("T")


def timed(label: str, action: Callable[[], T]) -> T:
    started = time.monotonic()
    result = action()
    print(f"{label:<44} {time.monotonic() - started:7.2f} s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wasm", type=Path, help="runtime (default: the committed release)")
    args = parser.parse_args()
    wasm = args.wasm or localnet.released_wasm(load_project(Path(__file__).resolve().parent.parent))
    print(f"runtime: {wasm} ({wasm.stat().st_size} bytes)")
    timed("node toolchain check", executor.node_binary)
    timed("chain spec (genesis preset -> raw)", lambda: executor.genesis_spec(wasm))
    with tempfile.TemporaryDirectory(prefix="bench-localnet-") as tmp:
        project = Project(root=Path(tmp), runtime_path="", runtime_package="", suites={})
        nets = localnet.default_networks(
            dict(zip(localnet.DEFAULT_PORTS, localnet.free_ports(3), strict=True))
        )
        try:
            timed(
                "up all (cold: spec, seeding production)",
                functools.partial(localnet.up, project, nets, list(nets), wasm),
            )
            for name, net in nets.items():
                timed(
                    f"first block on {name}",
                    functools.partial(devrpc.produce_blocks, net.endpoint),
                )
            timed("down all", lambda: localnet.down(project, nets, list(nets)))
            timed(
                "up all (warm: production resumes its db)",
                lambda: localnet.up(project, nets, list(nets), wasm),
            )
            for name, net in nets.items():
                timed(
                    f"first block on {name} (warm)",
                    functools.partial(devrpc.produce_blocks, net.endpoint),
                )
        finally:
            localnet.reset(project, nets)


if __name__ == "__main__":
    main()
