#!/usr/bin/env bash
# Fuzz smoke test: build every cargo-fuzz target and run each for SECONDS (default 60).
#
#   scripts/fuzz-smoke.sh [SECONDS]
#
# Works on the pinned stable toolchain: `--sanitizer none` needs no nightly flag (AddressSanitizer,
# cargo-fuzz's default, would need `-Zsanitizer`, i.e. nightly). Rust code is memory-safe
# without it; libzstd (C) is what ASan would add coverage for.
# Exits non-zero if cargo-fuzz cannot be installed, a target fails to build, or any run finds
# a crash, a timeout or a leak (the reproducer is left in fuzz/artifacts/<target>/).
set -euo pipefail

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
    echo "usage: $0 [SECONDS]  (a positive whole number, default 60)" >&2
    exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/fuzz"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz not found: installing it" >&2
    cargo install cargo-fuzz --locked
fi

targets=()
while IFS= read -r target; do
    targets+=("$target")
done < <(cargo fuzz list)
if [ "${#targets[@]}" -eq 0 ]; then
    echo "no fuzz targets found" >&2
    exit 1
fi

failed=()
for target in "${targets[@]}"; do
    echo "==> building $target" >&2
    if ! cargo fuzz build --sanitizer none "$target"; then
        failed+=("$target (build)")
        continue
    fi
    mkdir -p "corpus/$target"
    # Committed seeds (valid inputs the fuzzer would take long to find) are read as a second
    # corpus directory; new inputs go to the first, which is not committed.
    corpora=("corpus/$target")
    if [ -d "seeds/$target" ]; then
        corpora+=("seeds/$target")
    fi
    echo "==> fuzzing $target for ${seconds}s" >&2
    # libFuzzer exits non-zero on a crash, a timeout, an out-of-memory or a leak.
    if ! cargo fuzz run --sanitizer none "$target" "${corpora[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1; then
        failed+=("$target (run)")
    fi
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzz smoke FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz smoke passed: ${targets[*]} (${seconds}s each, no crash)" >&2
