#!/usr/bin/env bash
# Fuzzes the TaskMesh codec with libFuzzer: one target per decoder that a socket feeds with bytes
# from the network (Fuzz/Sources/Fuzz*), each run for SECONDS (default 60), from a seed corpus made
# of the byte examples in docs/PROTOCOL.md, section 9. A target stops on a crash, a sanitizer
# report, or a message that does not survive its own round trip; the input that did it is left
# in Fuzz/.artifacts/ and the script exits 1.
#   bash scripts/fuzz.sh [SECONDS [TARGET...]]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(FuzzJobIntake FuzzSinkFromWorker FuzzClientFromSink FuzzBrokerFromWorker FuzzFromBroker)

bash scripts/setup.sh
swift build --package-path Fuzz --build-path Fuzz/.build -Xswiftc -sanitize=fuzzer,address \
    -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld \
    -Xswiftc -enable-testing 2>&1 | grep -vE "warning: Cannot export local symbol" | tail -3

# The seed corpus: each hex dump of section 9 (a header: line, maybe a body: line, and their
# indented continuation lines) as one file.
seeds=Fuzz/.corpus/seeds
rm -rf "$seeds" && mkdir -p "$seeds"
awk '/^## 9\. Example/ { on = 1; next }
     /^## / { on = 0 }
     on && /^header: / { if (dump != "") print dump; sub(/^header: */, ""); dump = $0; next }
     on && /^body: / { sub(/^body: */, ""); dump = dump " " $0; next }
     on && dump != "" && /^        [0-9A-F]/ { dump = dump " " $0; next }
     END { if (dump != "") print dump }' docs/PROTOCOL.md |
while read -r line; do
    n=$((${n:-0} + 1))
    printf "$(printf '\\x%s' $line)" > "$seeds/example-$n"
done
echo "fuzz: $(ls "$seeds" | wc -l) seeds from docs/PROTOCOL.md; ${seconds} s per target"

mkdir -p Fuzz/.artifacts
status=0
for target in "${targets[@]}"; do
    corpus="Fuzz/.corpus/$target"
    mkdir -p "$corpus"
    if Fuzz/.build/debug/"$target" "$corpus" "$seeds" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
        -rss_limit_mb=2048 -artifact_prefix=Fuzz/.artifacts/"$target"- -print_final_stats=1 > Fuzz/.artifacts/"$target".log 2>&1; then
        echo "fuzz: $target: $(grep -E '^stat::number_of_executed_units' Fuzz/.artifacts/"$target".log | awk '{print $2}') inputs, no crash"
    else
        echo "fuzz: $target FAILED:" >&2
        grep -vE "^#[0-9]|^INFO" Fuzz/.artifacts/"$target".log | tail -30 >&2
        status=1
    fi
done
exit $status
