#!/usr/bin/env bash
# Build the sandbox images offline: a Debian base made with debootstrap and `docker import`
# (no registry needed), then the SWE sandbox Dockerfile FROM it. Idempotent: images that
# exist are kept (pass --force to rebuild). On a machine with a registry the same Dockerfile
# builds from a public base: docker build --build-arg BASE=debian:bookworm-slim containers/swe
set -euo pipefail
cd "$(dirname "$0")"
BASE=agentgym/base:bookworm
SWE=agentgym/swe:latest
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
force=${1:-}

have() { docker image inspect "$1" >/dev/null 2>&1; }

if [ "$force" = --force ] || ! have "$BASE"; then
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  echo "debootstrap bookworm (minbase + python3, pytest, git) into $root"
  debootstrap --variant=minbase --include=python3,python3-pytest,git,ca-certificates \
    bookworm "$root" "$MIRROR" >/dev/null
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import -c 'CMD ["/bin/bash"]' - "$BASE" >/dev/null
  echo "built $BASE"
fi
if [ "$force" = --force ] || ! have "$SWE"; then
  docker build --network none -q -t "$SWE" --build-arg BASE="$BASE" swe >/dev/null
  echo "built $SWE"
fi
