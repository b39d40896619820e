#!/usr/bin/env bash
# Install the pipeline's Node toolchain (Node 22 from the npm package `node`, chopsticks) exactly as
# package-lock.json pins it. Idempotent: a second run with an unchanged lockfile does nothing.
# The host's node/npm only drive the install; everything runs on node_modules/.bin/node afterwards.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

stamp=node_modules/.pipeline-install.sha256
want="$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)"

healthy() {
  [[ -x node_modules/.bin/node && -f node_modules/@acala-network/chopsticks/chopsticks.cjs ]] || return 1
  node_modules/.bin/node -e '
    const major = Number(process.versions.node.split(".")[0]);
    if (major < 22) { console.error(`node ${process.version} < 22`); process.exit(1); }
    require("sqlite3");  // chopsticks --db; compiled from source at install time
  '
}

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && healthy 2>/dev/null; then
  echo "node-up: node_modules up to date ($(node_modules/.bin/node --version), chopsticks $(node_modules/.bin/node -p 'require("./node_modules/@acala-network/chopsticks/package.json").version' 2>/dev/null || echo '?'))"
  exit 0
fi

if ! command -v npm >/dev/null; then
  echo "node-up: npm is missing: apt-get install -y npm (any npm >= 9 drives the install)" >&2
  exit 1
fi

echo "node-up: npm ci (Node 22 + chopsticks; sqlite3 compiles from source, ~2 min on 2 cores)"
start=$SECONDS
npm ci --no-audit --no-fund --loglevel=error
if ! healthy; then
  echo "node-up: install finished but node_modules/.bin/node or sqlite3 is unusable; see the npm output above" >&2
  exit 1
fi
echo "$want" > "$stamp"
echo "node-up: done in $((SECONDS - start))s ($(node_modules/.bin/node --version))"
