#!/usr/bin/env bash
# Makes the key pairs topologies/secure.yaml names (sink, broker, worker, client) in the given
# folder (default topologies/keys), keeping any that exist. Secret keys get mode 0600.
set -euo pipefail
cd "$(dirname "$0")/.."
folder="${1:-topologies/keys}"
mkdir -p "$folder"
swift build --product taskmesh >/dev/null
for name in sink broker worker client; do
  [ -f "$folder/$name.key" ] || .build/debug/taskmesh keygen "$name" --dir "$folder"
done
