"""The project's own Node toolchain and the runtime calls made through it.

Chopsticks (local networks) and its wasm executor (genesis chain specs) need Node >= 22;
the host's node may be older, so the project installs its own (npm package `node`, pinned in
package.json) and never falls back to whatever is on PATH.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from pipeline import wasm_exec
from pipeline.artifact import RuntimeBlob
from pipeline.cache import read_entry
from pipeline.errors import PipelineError
from pipeline.project import DEFAULT_PRESET, cache_dir, write_atomic

NODE_MIN_MAJOR = 22
JS_DIR = Path(__file__).resolve().parent / "js"
# package.json and node_modules sit at the root of the pipeline's checkout (the scripts in js/
# import from there); an install from a wheel has no checkout around it.
JS_ROOT = JS_DIR.parent.parent
EXECUTOR_TIMEOUT_S = 300.0


def parse_node_version(text: str) -> tuple[int, int, int]:
    """`v22.23.3` -> (22, 23, 3); anything else is not a node version."""
    match = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)\S*", text.strip())
    if not match:
        raise ValueError(f"not a node version: {text.strip()!r}")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def install_hint() -> str:
    """How to install the JS part: node-up.sh of the checkout. node_modules is not package data
    (over 600 MB, a native sqlite3 built for the machine), so a wheel comes without it."""
    script = JS_ROOT / "scripts" / "node-up.sh"
    if script.is_file():
        return f"run `bash {script}`"
    return (
        "this pipeline was installed without its checkout, and its JS part (Node 22, chopsticks)"
        " comes with the checkout only: clone the pipeline, run `bash scripts/bootstrap.sh` in"
        " it, and install it from there (`pip install -e <checkout>`)"
    )


def node_binary() -> Path:
    """The project's node (>= 22) from node_modules, checked once per process."""
    return _checked_node(JS_ROOT / "node_modules" / ".bin" / "node")


@functools.cache
def _checked_node(path: Path) -> Path:
    if not path.exists():
        raise PipelineError(
            f"the pipeline's Node >= {NODE_MIN_MAJOR} is not installed ({path}): {install_hint()}"
        )
    try:
        out = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
        major = parse_node_version(out)[0]
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        raise PipelineError(f"{path} does not run ({exc}): {install_hint()}") from exc
    if major < NODE_MIN_MAJOR:
        raise PipelineError(
            f"{path} is Node {out.strip()}, chopsticks needs >= {NODE_MIN_MAJOR}: {install_hint()}"
        )
    return path


LOCALNET_SCRIPT = JS_DIR / "localnet.mjs"


def chopsticks_cli() -> Path:
    """The pinned chopsticks' command line (its package's `bin`)."""
    package = JS_ROOT / "node_modules" / "@acala-network" / "chopsticks" / "package.json"
    if not package.is_file():
        raise PipelineError(f"chopsticks is not installed ({package.parent}): {install_hint()}")
    return package.parent / str(json.loads(package.read_text())["bin"])


def localnet_command(config: Path) -> list[str]:
    """The command serving one chopsticks network from its config file (see localnet.mjs)."""
    chopsticks_cli()
    return [str(node_binary()), str(LOCALNET_SCRIPT), "--config", str(config)]


LOOPBACK = "127.0.0.1,localhost,::1"


def node_env(log_level: str = "error") -> dict[str, str]:
    """Environment for chopsticks/executor processes: none of chopsticks' own variables (PORT
    would move the server; a LOG_LEVEL it does not know crashes it) and loopback never proxied
    (chopsticks routes its connections through any configured proxy, npm's included)."""
    dropped = {"PORT", "LOG_LEVEL", "DISABLE_PLUGINS", "VERBOSE_LOG", "LOG_COMPACT", "NODE_OPTIONS"}
    env = {key: value for key, value in os.environ.items() if key not in dropped}
    for key in ("NO_PROXY", "no_proxy", "GLOBAL_AGENT_NO_PROXY"):
        env[key] = ",".join(filter(None, (env.get(key), LOOPBACK)))
    env["LOG_LEVEL"] = log_level
    env["LOG_COMPACT"] = "true"
    return env


def _run_script(script: str, args: list[str], what: str) -> dict[str, Any]:
    """Run one pipeline/js script; it writes its JSON answer to --out. `what` names the job
    in errors ("chain spec from X")."""
    node = node_binary()
    with tempfile.TemporaryDirectory(prefix="pipeline-js-") as tmp:
        out = Path(tmp) / "out.json"
        try:
            proc = subprocess.run(
                [str(node), str(JS_DIR / script), *args, "--out", str(out)],
                capture_output=True,
                text=True,
                timeout=EXECUTOR_TIMEOUT_S,
                env=node_env(),
                cwd=tmp,
            )
        except subprocess.TimeoutExpired as exc:
            raise PipelineError(
                f"{what}: {script} took over {EXECUTOR_TIMEOUT_S:.0f}s; "
                "the machine is overloaded or the wasm loops"
            ) from exc
        if proc.returncode != 0 or not out.is_file():
            lines = [line for line in proc.stderr.splitlines() if line.strip()]
            reason = lines[-1] if lines else f"exit code {proc.returncode}"
            raise PipelineError(f"{what} failed: {reason}")
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def _wasm_arg(wasm_path: Path) -> str:
    if not wasm_path.is_file():
        raise PipelineError(
            f"no runtime wasm at {wasm_path}: build it (`invoke build`) or fix the path"
        )
    return str(wasm_path.resolve())


def _require_preset(wasm_path: Path, preset: str) -> None:
    """A preset the runtime lacks is the user's to fix: one line naming the presets it has
    (a runtime this process cannot run leaves the script's own error standing)."""
    try:
        instance = wasm_exec.RuntimeInstance(RuntimeBlob.load(wasm_path).wasm)
    except PipelineError:
        return
    wasm_exec.require_preset(instance, preset)


def genesis_spec(
    wasm_path: Path,
    preset: str = DEFAULT_PRESET,
    *,
    token_symbol: str = "UNIT",
    token_decimals: int = 12,
    ss58_format: int = 42,
) -> dict[str, Any]:
    """A raw chain spec (genesis.raw.top incl. `:code`) from the runtime's genesis preset.

    It is a function of the wasm and these options alone, so it is kept in the machine-wide
    cache by their hash: building it runs the runtime in node (seconds), and a release needs
    the same runtime's genesis for networks and checks in several stages."""
    wasm = _wasm_arg(wasm_path)
    options = {
        "--preset": preset,
        "--token-symbol": token_symbol,
        "--token-decimals": str(token_decimals),
        "--ss58": str(ss58_format),
    }
    key = hashlib.blake2b(Path(wasm).read_bytes(), digest_size=32)
    key.update(json.dumps(options, sort_keys=True).encode())
    cached = cache_dir() / "genesis" / f"{key.hexdigest()}.json"
    with contextlib.suppress(OSError, ValueError):
        spec: dict[str, Any] = json.loads(read_entry(cached))
        return spec
    flat = [part for pair in {"--wasm": wasm, **options}.items() for part in pair]
    try:
        spec = _run_script("genesis.mjs", flat, f"chain spec from {wasm_path} ({preset})")
    except PipelineError:
        _require_preset(Path(wasm), preset)
        raise
    write_atomic(cached, json.dumps(spec).encode())
    return spec
