#!/usr/bin/env bash
# Installs what TaskMesh needs to build on Debian 12: libzmq3-dev (libzmq 4.3.4 with CURVE).
# Safe to run again: it installs nothing that is already there.
set -euo pipefail

need=()
[ -f /usr/include/zmq.h ] || need+=(libzmq3-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)

if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y "${need[@]}"
fi

command -v swift >/dev/null 2>&1 || { echo "setup: swift is not on PATH (Swift 6.0 or newer is required)" >&2; exit 1; }
