"""What the pipeline costs on top of cargo: pipeline builds vs plain cargo in the same container.

Not a test. One run measures, for the runtime at a ref:
  cold   pipeline build (no cache, fresh target dir)  vs  plain `cargo check` (fresh target dir)
  warm   pipeline build (no cache, warm target volume) vs  plain `cargo check` in the same
         volume right after it, both after the same source change (every runtime file touched)
  hit    pipeline build served from the build cache
and, with --cargo-build, a cold plain `cargo build` whose wasm must equal the `cargo check` one.
Goals: overhead <= 1.05x, cache hit <= 2 s.

    .venv/bin/python bench/build_overhead.py [--ref REF] [--cargo-build | --skip-cold]
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pipeline import builder, builder_image, gitops
from pipeline.artifact import blake2_256, wasm_file_names
from pipeline.project import load_project

console = Console(highlight=False)


def timed(what: str, action: Callable[[], object]) -> float:
    console.print(f"[bold]{what}[/bold] …")
    started = time.monotonic()
    action()
    seconds = time.monotonic() - started
    console.print(f"  {seconds:.1f} s")
    return seconds


def children_cpu_seconds(log: str) -> float:
    """User + system CPU of the children from the last `times` output in the log."""
    found = re.findall(r"^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$", log, re.MULTILINE)
    user_m, user_s, sys_m, sys_s = found[-1]
    return int(user_m) * 60 + float(user_s) + int(sys_m) * 60 + float(sys_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default=None, help="git ref to build (default HEAD)")
    parser.add_argument(
        "--cargo-build", action="store_true", help="also time a cold plain `cargo build`"
    )
    parser.add_argument("--skip-cold", action="store_true", help="only the warm cases and the hit")
    args = parser.parse_args()

    project = load_project()
    client = builder_image.docker_client()
    image = builder_image.builder_image(client, builder_image.ensure_builder_image(client))
    repo = gitops.open_repo(project.root)
    revision = gitops.resolve(repo, args.ref, project.runtime_path)
    names = wasm_file_names(project.runtime_package)
    blobs: dict[str, str] = {}
    own: dict[str, float] = {}  # pipeline time outside the build container, per case
    cpu: dict[str, float] = {}  # CPU seconds of plain cargo runs: comparable under load

    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        source, out = Path(tmp) / "runtime", Path(tmp) / "out"
        source.mkdir()
        out.mkdir()
        gitops.export(repo, revision, source)
        log_path = Path(tmp) / "plain.log"
        lock = (source / "Cargo.lock").read_bytes()
        with (
            log_path.open("w") as log,
            builder.vendor_crates(
                source, blake2_256(lock), project.runtime_path, log, log_path
            ) as vendor,
        ):

            def plain(case: str, command: str, volume: str | None) -> Callable[[], object]:
                def run() -> None:
                    builder.touch_tree(source)
                    # dash's `times`: CPU of the shell, then of its children (cargo, rustc, …)
                    script = builder.build_script(project.runtime_package, command) + "\ntimes"
                    volumes = builder.build_volumes(source, vendor, out, volume)
                    with builder.target_volume_lock(client):
                        code = builder.run_in_builder(
                            client, image.id, script, volumes, "bench", log
                        )
                    if code != 0:
                        raise SystemExit(f"plain cargo {command} failed: see {log_path}")
                    blobs[case] = blake2_256((out / names.compressed).read_bytes())
                    cpu[case] = children_cpu_seconds(log_path.read_text())

                return run

            def pipeline(case: str, fresh_target: bool) -> Callable[[], object]:
                def run() -> None:
                    result = builder.build(
                        project, args.ref, no_cache=True, fresh_target=fresh_target
                    )
                    blobs[case] = result.compressed.blake2_256
                    own[case] = result.seconds - result.container_seconds

                return run

            rows: list[tuple[str, float, float | None]] = []
            if not args.skip_cold:
                cold_pipeline = timed("cold pipeline build", pipeline("pipeline cold", True))
                cold_plain = timed("cold plain cargo check", plain("check cold", "check", None))
                rows.append(("cold", cold_pipeline, cold_plain))
            if args.cargo_build and not args.skip_cold:
                cold_build = timed("cold plain cargo build", plain("build cold", "build", None))
                rows.append(("cold cargo build (plain)", cold_build, None))
            timed("warming the pipeline's target volume", pipeline("pipeline warm-up", False))
            # Alternate twice and keep the faster of each: the machine may be shared.
            warm_pipeline, warm_plain = float("inf"), float("inf")
            for round_ in (1, 2):
                warm_pipeline = min(
                    warm_pipeline,
                    timed(f"warm pipeline build #{round_}", pipeline("pipeline warm", False)),
                )
                warm_plain = min(
                    warm_plain,
                    timed(
                        f"warm plain cargo check #{round_}",
                        plain("check warm", "check", builder.TARGET_VOLUME),
                    ),
                )
            rows.append(("warm (best of 2)", warm_pipeline, warm_plain))
            hit = timed("cache hit", lambda: builder.build(project, args.ref))

    table = Table(title=f"pipeline vs plain cargo, {revision.ref} ({revision.commit[:12]})")
    for column in ("case", "pipeline s", "plain s", "ratio"):
        table.add_column(column)
    for case, ours, theirs in rows:
        ratio = f"{ours / theirs:.3f}x" if theirs else "-"
        table.add_row(case, f"{ours:.1f}", f"{theirs:.1f}" if theirs else "-", ratio)
    table.add_row("cache hit", f"{hit:.2f}", "-", "goal <= 2 s")
    console.print(table)
    console.print("pipeline time outside the container (export, vendor check, publish):")
    for case, seconds in sorted(own.items()):
        console.print(f"  {case:<16} {seconds:.2f} s")
    console.print("CPU seconds of the plain cargo runs (user + system, all processes):")
    for case, seconds in sorted(cpu.items()):
        console.print(f"  {case:<16} {seconds:.0f} s")
    console.print("compressed blake2-256 per way of building:")
    for way, value in sorted(blobs.items()):
        console.print(f"  {way:<16} {value}")
    console.print("identical wasm: " + ("yes" if len(set(blobs.values())) == 1 else "NO"))


if __name__ == "__main__":
    main()
