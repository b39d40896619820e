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

if [ ! -x .venv/bin/python ]; then
    python3.11 -m venv .venv 2>/dev/null || python3 -m venv .venv
fi
# Reinstall when pyproject.toml changed (a pulled commit may add a dependency), not only when
# the venv is new.
stamp=.venv/.pipeline-install.sha256
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] \
    || ! .venv/bin/python -c 'import pipeline, invoke, substrateinterface' 2>/dev/null; then
    .venv/bin/pip install --quiet --upgrade pip
    # setuptools warns about every editable install; nothing for the user to act on.
    PYTHONWARNINGS=ignore .venv/bin/pip install --quiet -e '.[dev]'
    echo "$want" > "$stamp"
fi

bash scripts/node-up.sh
echo "bootstrap: ready (docker engine, .venv, node_modules)"
