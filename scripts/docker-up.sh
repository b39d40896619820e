#!/usr/bin/env bash
# Make a Docker engine answer on this machine, idempotently.
#
# - installs docker.io and debootstrap through apt when they are missing
#   (debootstrap builds the builder's base image when no registry can be pulled);
# - when no engine answers, starts `dockerd` in the background without a bridge
#   or iptables rules (containers use the host network or none at all),
#   logging to $DOCKERD_LOG;
# - waits until the engine answers (at most $DOCKERD_WAIT seconds).
set -euo pipefail

DOCKERD_LOG="${DOCKERD_LOG:-/var/log/dockerd-pipeline.log}"
DOCKERD_WAIT="${DOCKERD_WAIT:-60}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

engine_answers() {
    docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v docker >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ "${#missing[@]}" -gt 0 ]; then
    mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | sort -u)
    echo "installing ${pkgs[*]} via apt"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${pkgs[@]}"
fi

if engine_answers; then
    echo "docker engine answers ($(docker version --format '{{.Server.Version}}'))"
    exit 0
fi

if [ -n "${DOCKER_HOST:-}" ] && [ "${DOCKER_HOST#unix://}" = "$DOCKER_HOST" ]; then
    echo "DOCKER_HOST=$DOCKER_HOST points at a remote engine that does not answer: start it there" >&2
    exit 1
fi

echo "starting dockerd (log: $DOCKERD_LOG)"
$SUDO mkdir -p "$(dirname "$DOCKERD_LOG")"
# setsid: the daemon survives the shell (and CI step) that started it.
$SUDO setsid nohup dockerd --bridge=none --iptables=false >>"$DOCKERD_LOG" 2>&1 </dev/null &

for _ in $(seq "$DOCKERD_WAIT"); do
    if engine_answers; then
        echo "docker engine answers ($(docker version --format '{{.Server.Version}}'))"
        exit 0
    fi
    sleep 1
done
echo "dockerd did not answer within ${DOCKERD_WAIT}s: see $DOCKERD_LOG" >&2
tail -n 20 "$DOCKERD_LOG" >&2 || true
exit 1
