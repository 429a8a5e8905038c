#!/usr/bin/env bash
# Installs what TaskMesh needs to build and test on Debian 12: libzmq3-dev (libzmq 4.3.4 with
# CURVE), pkg-config, tshark for the security tests, faketime for the clock-skew tests, and
# iproute2 and iptables for the chaos tests' network namespaces.
# Safe to run again: it installs nothing that is already there.
set -euo pipefail

need=()
[ -f /usr/include/zmq.h ] || need+=(libzmq3-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
# tshark: the security tests capture loopback traffic to prove nothing crosses it in the clear.
command -v tshark >/dev/null 2>&1 || need+=(tshark)
# faketime: the clock-skew tests run a worker whose wall clock is a minute off (ClockSkewProcessTests).
command -v faketime >/dev/null 2>&1 || need+=(faketime)
# ip and iptables: the chaos tests run each role in a network namespace and cut its links (ChaosProcessTests).
[ -x /usr/sbin/ip ] || need+=(iproute2)
[ -x /usr/sbin/iptables ] || need+=(iptables)
# python3: scripts/slowlink.py, the slow link of the slow-link tests (SlowLinkProcessTests).
command -v python3 >/dev/null 2>&1 || need+=(python3)

if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}"
fi

command -v swift >/dev/null 2>&1 || { echo "setup: swift is not on PATH (Swift 6.0 or newer is required)" >&2; exit 1; }
