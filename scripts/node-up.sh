#!/usr/bin/env bash
# Install the pipeline's Node toolchain (Node 22 from the npm package `node`, chopsticks) exactly as
# package-lock.json pins it. Idempotent: a second run with an unchanged lockfile does nothing.
# The host's node/npm only drive the install; everything runs on node_modules/.bin/node afterwards.
#
# `npm ci` compiles sqlite3 (1-3 min), so its result is kept machine-wide, keyed by the content of
# package.json + package-lock.json: a fresh clone on a machine that installed the same lockfile
# before gets node_modules as a hardlink copy of that install in seconds. Entries are written
# under a lock and appear by an atomic rename, so clones installing at once never see half of one.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

stamp=node_modules/.pipeline-install.sha256
want="$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)"
cache="${PIPELINE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/runtime-pipeline}/node_modules"
entry="$cache/$want-$(uname -m)"  # native modules (sqlite3) are built for this architecture

healthy() {
  [[ -x node_modules/.bin/node && -f node_modules/@acala-network/chopsticks/chopsticks.cjs ]] || return 1
  node_modules/.bin/node -e '
    const major = Number(process.versions.node.split(".")[0]);
    if (major < 22) { console.error(`node ${process.version} < 22`); process.exit(1); }
    require("sqlite3");  // chopsticks --db; compiled from source at install time
  '
}

versions() {
  echo "$(node_modules/.bin/node --version), chopsticks $(node_modules/.bin/node -p 'require("./node_modules/@acala-network/chopsticks/package.json").version' 2>/dev/null || echo '?')"
}

# A hardlink copy of a tree when both are on one file system (npm ci replaces files rather than
# writing into them, so neither copy can change the other), else a plain copy.
copy_tree() {
  rm -rf "$2"
  cp -al "$1" "$2" 2>/dev/null || { rm -rf "$2"; cp -a "$1" "$2"; }
}

# This checkout's install, kept for the next clone: complete (stamp inside) before it gets its
# name. Only under the lock; a symlinked node_modules belongs to another checkout.
store() {
  [[ -f "$entry/.pipeline-install.sha256" || -L node_modules ]] && return 0
  copy_tree node_modules "$entry.partial.$$"
  mv -T "$entry.partial.$$" "$entry"
}

mkdir -p "$cache"
exec 9>"$entry.lock"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] && healthy 2>/dev/null; then
  # Seed the cache from this checkout, unless another clone holds the lock (it will fill it).
  [[ -f "$entry/.pipeline-install.sha256" ]] || { flock -n 9 && store; }
  touch -c "$entry"  # its last use: `invoke cache.prune` removes the least recently used
  echo "node-up: node_modules up to date ($(versions))"
  exit 0
fi

flock 9  # another clone installing the same lockfile: wait, then take its result
waited=$((SECONDS))
start=$SECONDS
rm -rf "$entry".partial.*  # left by a run that was killed

if [[ -f "$entry/.pipeline-install.sha256" ]]; then
  touch "$entry"
  copy_tree "$entry" "node_modules.partial.$$"
  rm -rf node_modules
  mv -T "node_modules.partial.$$" node_modules
  if healthy; then
    echo "node-up: node_modules from the machine's cache in $((SECONDS - start))s" \
      "$( ((waited > 1)) && echo "after waiting ${waited}s for another clone's install ")($(versions))"
    exit 0
  fi
  echo "node-up: the cached install $entry is unusable: removing it and running npm ci" >&2
  rm -rf "$entry"
fi

if ! command -v npm >/dev/null; then
  echo "node-up: npm is missing: apt-get install -y npm (any npm >= 9 drives the install)" >&2
  exit 1
fi

echo "node-up: npm ci (Node 22 + chopsticks; sqlite3 compiles from source, ~2 min on 2 cores)"
npm ci --no-audit --no-fund --loglevel=error
if ! healthy; then
  echo "node-up: install finished but node_modules/.bin/node or sqlite3 is unusable; see the npm output above" >&2
  exit 1
fi
echo "$want" > "$stamp"

store
echo "node-up: done in $((SECONDS - start))s ($(node_modules/.bin/node --version)); cached in $entry"
