#!/usr/bin/env bash
# Create .venv with the pipeline installed (editable) and its dependencies, as pyproject.toml
# pins them. Idempotent: a second run with an unchanged pyproject.toml only checks.
#
# `pip install -e .[dev]` takes most of a minute, so the dependencies are installed once per
# machine into a shared environment, keyed by the dependency lists of pyproject.toml, the Python
# version and the architecture. A clone's .venv is a small venv of its own: a .pth line puts the
# shared site-packages on its path, its bin/ gets the shared console scripts pointed at its own
# python, and only the pipeline itself is installed into it (editable, offline, no deps). pip in
# the clone's venv never touches the shared environment (it lies outside the venv's prefix).
# The shared environment is built under a lock and marked complete last, so clones bootstrapping
# at once wait for one install instead of racing; a fresh machine pays one install, as before.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

python=python3.11
command -v "$python" >/dev/null 2>&1 || python=python3
stamp=.venv/.pipeline-install.sha256
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"

healthy() {
  .venv/bin/python -I -c 'import pipeline, invoke, substrateinterface, pytest, mypy' 2>/dev/null \
    && [[ -x .venv/bin/pytest && -x .venv/bin/invoke && -x .venv/bin/ruff ]]
}

if [[ "$(cat "$stamp" 2>/dev/null)" == "$want" ]] && healthy; then
  # The shared environment's last use (`invoke cache.prune` keeps what is used): the folder
  # three levels above the site-packages the .pth line names.
  shared_site="$(cat .venv/lib/python*/site-packages/_pipeline_dependencies.pth 2>/dev/null || true)"
  if [[ -n "$shared_site" ]]; then touch -c "$shared_site/../../.."; fi
  echo "python-up: .venv up to date"
  exit 0
fi
start=$SECONDS

# What the shared environment holds: pyproject.toml's dependencies and dev extras, and setuptools
# to install the pipeline itself offline. One line each, in pyproject's order.
requirements="$("$python" - <<'EOF'
import tomllib

project = tomllib.load(open("pyproject.toml", "rb"))["project"]
build = tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]
for requirement in [*project["dependencies"], *project["optional-dependencies"]["dev"], *build]:
    print(requirement)
EOF
)"
key="$(printf '%s\n%s\n%s\n' "$requirements" "$("$python" -VV)" "$(uname -m)" | sha256sum | cut -c1-32)"
cache="${PIPELINE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/runtime-pipeline}/python"
shared="$cache/$key"
mkdir -p "$cache"

exec 9>"$shared.lock"
flock 9  # another clone installing the same dependencies: wait, then use its environment
if [[ ! -f "$shared/.complete" ]] || ! "$shared/bin/python" -c 'import invoke, mypy' 2>/dev/null; then
  echo "python-up: installing the dependencies into $shared (once per machine and pyproject.toml)"
  rm -rf "$shared"
  "$python" -m venv "$shared"
  "$shared/bin/pip" install --quiet --upgrade pip
  mapfile -t wanted <<<"$requirements"
  "$shared/bin/pip" install --quiet "${wanted[@]}"
  touch "$shared/.complete"
fi
touch "$shared"  # its last use: `invoke cache.prune` removes the least recently used
flock -u 9

rm -rf .venv
"$python" -m venv --without-pip .venv
site="$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
shared_site="$("$shared/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$shared_site" >"$site/_pipeline_dependencies.pth"
# The shared environment's console scripts, run by this venv's python (a native one, ruff, as is).
for script in "$shared"/bin/*; do
  name="$(basename "$script")"
  [[ -e ".venv/bin/$name" || "$name" == activate* || "$name" == Activate.ps1 ]] && continue
  if head -c2 "$script" | grep -q '^#!'; then
    { echo "#!$root/.venv/bin/python"; tail -n +2 "$script"; } >".venv/bin/$name"
    chmod +x ".venv/bin/$name"
  else
    ln -s "$script" ".venv/bin/$name"
  fi
done
# setuptools warns about every editable install; nothing for the user to act on.
PYTHONWARNINGS=ignore .venv/bin/python -m pip install --quiet --no-index --no-deps \
  --no-build-isolation -e .
if ! healthy; then
  echo "python-up: .venv was made but does not import the pipeline; remove $shared and run again" >&2
  exit 1
fi
echo "$want" >"$stamp"
echo "python-up: .venv ready in $((SECONDS - start))s (dependencies from $shared)"
