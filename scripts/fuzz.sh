#!/usr/bin/env bash
# Fuzzes every parser that hostile input reaches (Sources/MediaQueueFuzzTargets) with libFuzzer
# and AddressSanitizer, one target after another, starting from Fuzz/Corpus/<target>.
#
#   scripts/fuzz.sh                      # each target for 30 s (what the test command runs)
#   scripts/fuzz.sh --time 600 xml       # one target, 10 minutes
#   scripts/fuzz.sh --runs 1000000       # each target for a million executions (Docs/reliability.md)
#
# Prints one line of figures per target. A crash (a broken property, an ASan report, a timeout)
# stops the run: the input is kept in Fuzz/Regressions/<target>/, where the unit tests replay it
# from then on, and the script fails.
set -euo pipefail
cd "$(dirname "$0")/.."

limit=(-max_total_time=30)
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --time) limit=(-max_total_time="$2"); shift 2 ;;
        --runs) limit=(-runs="$2"); shift 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || targets=(xml create-media-jobs update-media-queue json cos-authorization retry-after object-key ci-time byte-range form-data)

# Its own build folder: every module of the harness is instrumented for coverage and ASan.
swift build --scratch-path .build-fuzz --product mediaqueue-fuzz --sanitize=address \
    -Xswiftc -sanitize=fuzzer -Xswiftc -DFUZZING -Xswiftc -use-ld=lld 2>&1 \
    | grep -E "error:|Compiling|Build" | grep -v "^warning" | tail -3 >&2
harness=.build-fuzz/debug/mediaqueue-fuzz
work=$(mktemp -d /tmp/mediaqueue-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT

printf '%-20s %12s %10s %8s %8s %s\n' target executions exec/s cov corpus result
for target in "${targets[@]}"; do
    [ -d "Fuzz/Corpus/$target" ] || { echo "no corpus for target '$target'" >&2; exit 2; }
    mkdir -p "$work/$target"
    cp "Fuzz/Corpus/$target"/* "$work/$target/"
    log="$work/$target.log"
    status=0
    MEDIAQUEUE_FUZZ_TARGET="$target" ASAN_OPTIONS=detect_leaks=0 "$harness" "${limit[@]}" \
        -timeout=10 -rss_limit_mb=4096 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$work/$target-" "$work/$target" >"$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2 || true)
    corpus=$(ls "$work/$target" | wc -l)
    if [ "$status" = 0 ]; then
        printf '%-20s %12s %10s %8s %8s %s\n' "$target" "${runs:-?}" "${speed:-?}" "${cov:-?}" "$corpus" ok
        continue
    fi
    printf '%-20s %12s %10s %8s %8s %s\n' "$target" "${runs:-?}" "${speed:-?}" "${cov:-?}" "$corpus" "CRASH (exit $status)"
    mkdir -p "Fuzz/Regressions/$target"
    for artifact in "$work/$target"-*; do
        [ -f "$artifact" ] || continue
        kept="Fuzz/Regressions/$target/$(basename "$artifact" | sed "s/^$target-//")"
        cp "$artifact" "$kept"
        echo "the input is kept in $kept (replay: swift run mediaqueue-fuzz $target $kept)" >&2
    done
    grep -E "Fatal error|ERROR: |SUMMARY" "$log" | head -5 >&2 || tail -20 "$log" >&2
    exit 1
done
