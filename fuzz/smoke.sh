#!/usr/bin/env bash
# Smoke-fuzz every cargo-fuzz target for a short while (CI).
#
#   bash fuzz/smoke.sh                  # each target for 45 s
#   FUZZ_SECONDS=300 bash fuzz/smoke.sh # longer
#   FUZZ_TARGETS="expr" bash fuzz/smoke.sh
#
# Exits non-zero if any target finds a crash, a timeout or an out-of-memory input;
# the input is saved under fuzz/artifacts/<target>/.
set -euo pipefail

FUZZ_SECONDS="${FUZZ_SECONDS:-45}"
FUZZ_TARGETS="${FUZZ_TARGETS:-expr policy gateway sse}"
# a single input running longer than this counts as a hang
FUZZ_INPUT_TIMEOUT="${FUZZ_INPUT_TIMEOUT:-10}"
# address (default of cargo-fuzz), or none for a faster build and run
FUZZ_SANITIZER="${FUZZ_SANITIZER:-address}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! cargo fuzz --help >/dev/null 2>&1; then
    echo "smoke.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

# cargo-fuzz needs nightly-only rustc flags (-Zsanitizer, coverage instrumentation).
if cargo +nightly --version >/dev/null 2>&1; then
    fuzz() { cargo +nightly fuzz "$@"; }
    echo "smoke.sh: using $(cargo +nightly --version)" >&2
else
    fuzz() { RUSTC_BOOTSTRAP=1 cargo fuzz "$@"; }
    echo "smoke.sh: no nightly toolchain, using RUSTC_BOOTSTRAP=1 with $(cargo --version)" >&2
fi

start=$SECONDS
# one cargo invocation builds every target (they share the rulec build)
fuzz build --sanitizer "$FUZZ_SANITIZER"
echo "smoke.sh: build took $((SECONDS - start)) s" >&2

failed=()
for target in $FUZZ_TARGETS; do
    corpus="fuzz/corpus/$target"
    mkdir -p "$corpus"
    cp -f fuzz/seeds/"$target"/* "$corpus"/
    if [ "$target" = policy ] && [ -d rules ]; then
        # every policy in the repository is a seed too, including new examples
        while IFS= read -r -d '' f; do
            rel="${f#rules/}"
            cp -f "$f" "$corpus/rules-${rel//\//-}"
        done < <(find rules -type f \( -name '*.yaml' -o -name '*.yml' \) -print0)
    fi
    chmod -R u+w "$corpus"

    # inputs that once crashed must keep passing (each is run once)
    regressions=(fuzz/regressions/"$target"-*)
    if [ -e "${regressions[0]}" ]; then
        echo "smoke.sh: replaying ${#regressions[@]} regression input(s) for $target" >&2
        if ! fuzz run --sanitizer "$FUZZ_SANITIZER" "$target" "${regressions[@]}" -- \
            -rss_limit_mb=2048 -timeout="$FUZZ_INPUT_TIMEOUT"; then
            echo "smoke.sh: $target FAILED on a saved regression input" >&2
            failed+=("$target")
            continue
        fi
    fi

    echo "smoke.sh: fuzzing $target for $FUZZ_SECONDS s" >&2
    dict=()
    if [ -f "fuzz/dicts/$target.dict" ]; then
        dict=(-dict="fuzz/dicts/$target.dict")
    fi
    t=$SECONDS
    if ! fuzz run --sanitizer "$FUZZ_SANITIZER" "$target" "$corpus" -- \
        "${dict[@]}" \
        -max_total_time="$FUZZ_SECONDS" \
        -max_len=65536 \
        -rss_limit_mb=2048 \
        -timeout="$FUZZ_INPUT_TIMEOUT" \
        -print_final_stats=1; then
        echo "smoke.sh: $target FAILED, see fuzz/artifacts/$target/" >&2
        failed+=("$target")
    fi
    echo "smoke.sh: $target ran $((SECONDS - t)) s" >&2
done

echo "smoke.sh: total $((SECONDS - start)) s" >&2
if [ "${#failed[@]}" -gt 0 ]; then
    echo "smoke.sh: crashes found in: ${failed[*]}" >&2
    exit 1
fi
