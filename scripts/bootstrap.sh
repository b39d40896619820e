#!/usr/bin/env bash
# Installs what the pipeline needs on a fresh Debian machine and starts the Docker engine.
# Idempotent: a second run only checks. Images and crates are built/fetched lazily by the
# pipeline itself and cached machine-wide (docker images and volumes, ~/.cache/runtime-pipeline).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/docker-up.sh

# The host's cargo vendors the crates the offline container build uses; any cargo >= 1.78
# reads the lockfile. Without one on PATH, take Debian's, pinned like the builder's toolchain.
if ! command -v cargo >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cargo-web=1.85.0+dfsg3-1~deb12u3
fi

# Debian's chromium draws report.html headless in the tests; CI runs that test, never skips it.
if ! command -v chromium >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi

bash scripts/python-up.sh  # .venv; its dependencies are shared machine-wide
bash scripts/node-up.sh
echo "bootstrap: ready (docker engine, .venv, node_modules, chromium)"
