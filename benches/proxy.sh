#!/usr/bin/env bash
# proxy.sh: what `rulec serve` adds as an LLM proxy, against calling the upstream directly.
#
# What it measures: OpenAI chat completions (`POST /v1/chat/completions`) over
# keep-alive HTTP/1.1 on loopback, in the same run, for two targets:
#   - direct: the client calls target/release/examples/bare_upstream
#             (examples/bare_upstream.rs), a bare tokio + hyper server answering a
#             fixed completion at once: the cost of HTTP alone;
#   - proxy:  the client calls `rulec serve benches/proxy`, whose one model's
#             `openai_compatible` provider is that same upstream (benches/proxy/
#             policy.yaml, with the upstream's address put in), so proxy − direct is
#             what the proxy adds: a second HTTP hop, routing, relaying, bookkeeping.
# Every request is the same small body, {"model":"auto","messages":[…],"max_tokens":50}.
# Measurements, each for direct first, then proxy:
#   - latency one request at a time: oha -c 1 -n $REQUESTS, p50 and p99;
#   - throughput at 32 concurrent: oha -c 32 -n $LOAD_REQUESTS, requests per second;
#   - CPU per request: the server's utime+stime (/proc/PID/stat) after the run minus
#     before it, divided by the run's requests, for each of those two runs. For the
#     proxy it is rulec's CPU alone: nothing is subtracted, and the upstream's CPU
#     (also printed) is not added. The aim is checked on the 32-concurrent run, where
#     the server is busy, as the issue's figures for other gateways were taken;
#   - time to first streamed byte: target/release/examples/first_byte
#     (examples/first_byte.rs) sends $FIRST_BYTE_REQUESTS streamed requests
#     ("stream": true) one at a time over one connection and times each from its
#     write to the first `data:` bytes of the answer's body (oha times whole answers);
#   - resident memory of rulec after all the load: VmRSS and VmHWM (its peak) from
#     /proc/PID/status.
# Output, one line per measurement:
#   target=<direct|proxy> load=<c1|c32> requests=N rps=N p50_us=N p99_us=N errors=N cpu_us_per_request=N.N [upstream_cpu_us_per_request=N.N]
#   target=<direct|proxy> load=first_byte requests=N p50_us=N p99_us=N mean_us=N max_us=N
#   target=proxy memory rss_kb=N hwm_kb=N
# where errors counts oha's errors plus answers other than 200, then one line per aim:
#   aim=<name> measured=X limit=Y result=<ok|missed>
# for added_p50_us (≤ 100), added_p99_us (≤ 300), cpu_us_per_request (≤ 50),
# throughput_share (≥ 0.25), added_first_byte_p50_us (≤ 200) and hwm_mib (< 30).
# Lines starting with `#` are comments. oha's JSON outputs are kept in $OUT_DIR.
#
# Run from anywhere:   bash benches/proxy.sh
# Needs oha (cargo install oha --locked), jq (apt-get install -y jq) and Linux
# (/proc). Wants an idle machine: the load generator, rulec and the upstream share
# its cores.
# Environment:
#   REQUESTS             requests of each one-at-a-time run (default 20000)
#   LOAD_REQUESTS        requests of each 32-concurrent run (default 60000)
#   FIRST_BYTE_REQUESTS  streamed requests of each first-byte run (default 5000)
#   WARMUP               requests of an unmeasured run before each measured one
#                        (default 2000; 0 skips)
#   OHA                  the oha to run (default `oha` on PATH, else ~/.cargo/bin/oha)
#   RULEC_ARGS           extra arguments for `rulec serve`, split on spaces (default none)
#   OUT_DIR              where oha's outputs go (default target/proxy-bench)
#   CARGO_TARGET_DIR     honoured, as cargo does
# Exit codes: 0 done (whatever the aims say), 1 a server or a run failed, 2 oha or jq
# missing.

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

REQUESTS=${REQUESTS:-20000}
LOAD_REQUESTS=${LOAD_REQUESTS:-60000}
FIRST_BYTE_REQUESTS=${FIRST_BYTE_REQUESTS:-5000}
WARMUP=${WARMUP:-2000}
RULEC_ARGS=${RULEC_ARGS:-}
OUT_DIR=${OUT_DIR:-target/proxy-bench}
TARGET_DIR=${CARGO_TARGET_DIR:-target}

cargo build --release --bin rulec --example bare_upstream --example first_byte

OHA=${OHA:-$(command -v oha || echo "$HOME/.cargo/bin/oha")}
if [[ ! -x $OHA ]]; then
    echo "proxy.sh: oha is not installed; install it with:" >&2
    echo "    cargo install oha --locked" >&2
    exit 2
fi
if ! command -v jq >/dev/null 2>&1; then
    echo "proxy.sh: jq is not installed; install it with:" >&2
    echo "    apt-get install -y jq" >&2
    exit 2
fi

BENCH=proxy.sh
# shellcheck source=benches/servers.sh
source benches/servers.sh  # the working directory is the repository root (above)

mkdir -p "$OUT_DIR"

# cpu_ticks PID: the process's user + system CPU so far, in clock ticks.
cpu_ticks() {
    # the command name (field 2) may hold spaces: count the fields after its `)`
    sed -E 's/^.*\) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

status_kb() {
    awk -v key="$2:" '$1 == key { print $2 }' "/proc/$1/status"
}

alive() {
    if ! kill -0 "$2" 2>/dev/null; then
        echo "proxy.sh: $1 died during the $3 run" >&2
        exit 1
    fi
}

# per_request TICKS REQUESTS: microseconds of CPU per request.
ticks_per_s=$(getconf CLK_TCK)
per_request() {
    awk -v t="$1" -v n="$2" -v hz="$ticks_per_s" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }'
}

BODY='{"model":"auto","messages":[{"role":"user","content":"Say hello."}],"max_tokens":50}'

# oha_run PORT CONCURRENCY REQUESTS OUTPUT: one oha run of the fixed request.
oha_run() {
    "$OHA" --no-tui --output-format json -o "$4" -c "$2" -n "$3" -m POST \
        -T application/json -d "$BODY" "http://127.0.0.1:$1/v1/chat/completions"
}

# run TARGET PID PORT LOAD: one measured oha run (after a warmup) with the server's
# CPU around it; prints its result line and records it in `result`.
declare -A result=()
run() {
    local target=$1 pid=$2 port=$3 load=$4
    local concurrency requests
    case $load in
        c1) concurrency=1 requests=$REQUESTS ;;
        c32) concurrency=32 requests=$LOAD_REQUESTS ;;
    esac
    local json="$OUT_DIR/$target-$load.json"
    if [[ $WARMUP != 0 ]]; then
        oha_run "$port" "$concurrency" "$WARMUP" "$tmp/warmup.json"
    fi
    local cpu_before up_before
    cpu_before=$(cpu_ticks "$pid")
    up_before=$(cpu_ticks "$upstream_pid")
    oha_run "$port" "$concurrency" "$requests" "$json"
    local cpu=$(($(cpu_ticks "$pid") - cpu_before))
    local up_cpu=$(($(cpu_ticks "$upstream_pid") - up_before))
    alive "$target" "$pid" "$load"
    local stats
    # oha's latencies are in seconds; its errors are a map of message to count
    stats=$(jq -r '[
        (.summary.requestsPerSec | round),
        ((.latencyPercentiles.p50 // 0) * 1e6 | round),
        ((.latencyPercentiles.p99 // 0) * 1e6 | round),
        (((.errorDistribution // {}) | add // 0)
          + ((.statusCodeDistribution // {}) | to_entries
             | map(select(.key != "200") | .value) | add // 0))
      ] | @tsv' "$json")
    local rps p50 p99 errors
    read -r rps p50 p99 errors <<<"$stats"
    local line="target=$target load=$load requests=$requests rps=$rps p50_us=$p50 p99_us=$p99 errors=$errors cpu_us_per_request=$(per_request "$cpu" "$requests")"
    if [[ $target == proxy ]]; then
        line+=" upstream_cpu_us_per_request=$(per_request "$up_cpu" "$requests")"
    fi
    echo "$line"
    result[$target/$load/rps]=$rps
    result[$target/$load/p50]=$p50
    result[$target/$load/p99]=$p99
    result[$target/$load/cpu]=$(per_request "$cpu" "$requests")
    if [[ $errors != 0 ]]; then
        echo "proxy.sh: $target answered $errors of the $load run's requests with an error (see $json)" >&2
        exit 1
    fi
}

# first_byte TARGET PID PORT: the streamed run; prints its line and records its p50.
first_byte() {
    local target=$1 pid=$2 port=$3 line
    if ! line=$("$TARGET_DIR/release/examples/first_byte" --addr "127.0.0.1:$port" \
        -n "$FIRST_BYTE_REQUESTS" --warmup "$((WARMUP < FIRST_BYTE_REQUESTS ? WARMUP : FIRST_BYTE_REQUESTS))"); then
        echo "proxy.sh: the first-byte run against $target failed" >&2
        exit 1
    fi
    alive "$target" "$pid" first_byte
    echo "target=$target load=first_byte $line"
    result[$target/first_byte/p50]=$(sed -E 's/.* p50_us=([0-9]+).*/\1/' <<<"$line")
}

# aim NAME MEASURED LIMIT <le|lt|ge>: one aim's line.
aim() {
    awk -v name="$1" -v m="$2" -v limit="$3" -v cmp="$4" 'BEGIN {
        ok = (cmp == "le" && m <= limit) || (cmp == "lt" && m < limit) || (cmp == "ge" && m >= limit)
        printf "aim=%s measured=%s limit=%s%s result=%s\n", name, m,
            (cmp == "ge" ? ">=" : (cmp == "lt" ? "<" : "<=")), limit, (ok ? "ok" : "missed")
    }'
}

start_server upstream "$TARGET_DIR/release/examples/bare_upstream" --listen 127.0.0.1:0
upstream_pid=$started_pid
upstream_port=$started_port

# the committed policy names 127.0.0.1:1 (nothing listens there) for the upstream
mkdir -p "$tmp/policy"
sed "s#http://127\.0\.0\.1:1/v1#http://127.0.0.1:$upstream_port/v1#" \
    benches/proxy/policy.yaml >"$tmp/policy/policy.yaml"
if ! grep -q "127.0.0.1:$upstream_port/v1" "$tmp/policy/policy.yaml"; then
    echo "proxy.sh: benches/proxy/policy.yaml no longer names http://127.0.0.1:1/v1" >&2
    exit 1
fi
# A proxy that nothing listens on keeps any call that is not to loopback on this
# machine (it fails at once); the upstream on 127.0.0.1 is reached directly.
export ALL_PROXY=http://127.0.0.1:1 NO_PROXY=127.0.0.0/8,localhost,::1
unset HTTPS_PROXY https_proxy HTTP_PROXY http_proxy
# shellcheck disable=SC2086 # RULEC_ARGS is a list of words on purpose
start_server rulec "$TARGET_DIR/release/rulec" serve "$tmp/policy" \
    --listen 127.0.0.1:0 $RULEC_ARGS
rulec_pid=$started_pid
rulec_port=$started_port

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo "# cpus=$(nproc) cpu=\"$cpu_model\" loadavg=\"$(cut -d' ' -f1-3 /proc/loadavg)\" requests=$REQUESTS load_requests=$LOAD_REQUESTS first_byte_requests=$FIRST_BYTE_REQUESTS warmup=$WARMUP"
echo "# direct=127.0.0.1:$upstream_port proxy=127.0.0.1:$rulec_port"
for load in c1 c32; do
    run direct "$upstream_pid" "$upstream_port" "$load"
    run proxy "$rulec_pid" "$rulec_port" "$load"
done
first_byte direct "$upstream_pid" "$upstream_port"
first_byte proxy "$rulec_pid" "$rulec_port"
rss=$(status_kb "$rulec_pid" VmRSS)
hwm=$(status_kb "$rulec_pid" VmHWM)
echo "target=proxy memory rss_kb=$rss hwm_kb=$hwm"

aim added_p50_us "$((result[proxy/c1/p50] - result[direct/c1/p50]))" 100 le
aim added_p99_us "$((result[proxy/c1/p99] - result[direct/c1/p99]))" 300 le
aim cpu_us_per_request "${result[proxy/c32/cpu]}" 50 le
aim throughput_share "$(awk -v p="${result[proxy/c32/rps]}" -v d="${result[direct/c32/rps]}" \
    'BEGIN { printf "%.2f", (d > 0 ? p / d : 0) }')" 0.25 ge
aim added_first_byte_p50_us "$((result[proxy/first_byte/p50] - result[direct/first_byte/p50]))" 200 le
aim hwm_mib "$(awk -v kb="$hwm" 'BEGIN { printf "%.1f", kb / 1024 }')" 30 lt
echo "# oha's outputs: $OUT_DIR/"
echo "# end loadavg=\"$(cut -d' ' -f1-3 /proc/loadavg)\""
