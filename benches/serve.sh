#!/usr/bin/env bash
# serve.sh: throughput and latency of `rulec serve` against a bare hyper server.
#
# What it measures: `POST /v1/route` over keep-alive HTTP/1.1, driven by wrk, on
#   - rulec: target/release/rulec serve rules/examples/gateway
#   - bare:  target/release/examples/bare_server (examples/bare_server.rs), the same
#            tokio + hyper stack reading the body and answering a fixed ~300-byte
#            decision: the cost of HTTP alone, so rulec/bare is what routing costs.
# Two scenarios, the same requests for both targets:
#   - fixed:    one body, {"task_type":"content_creation","estimated_tokens":2000}: a
#               rule that names a model
#   - sessions: {"task_type":"classification",…,"session_id":"s-N"}, N random in
#               0..999: a pooled rule (pool `budget`, max_concurrent 200, more than
#               wrk's 64 connections) with session affinity; each decision is then
#               reported (POST /v1/report), so half the requests are reports
# Two load levels:
#   - saturating: wrk -t2 -c64 (as many requests as the server can take)
#   - moderate:   wrk -t1 -c4  (latency when the server is not the bottleneck)
# For each load, scenario and target (bare first, then rulec) one line:
#   target=<rulec|bare> load=<saturating|moderate> scenario=<fixed|sessions> rps=N p50_us=N p99_us=N errors=N
# where errors counts socket errors (connect, read, write, timeout) plus responses
# wrk counts as failed (status 400 and above). Around each saturating run, the
# server's resident memory (VmRSS of /proc/PID/status):
#   target=<..> load=saturating scenario=<..> rss_kb_before=N rss_kb_after=N
# and at the end, per load and scenario:
#   ratio load=<..> scenario=<..> rulec_over_bare=X.XX
# Lines starting with `#` are comments. wrk's full output (with its latency
# distribution) is kept in $OUT_DIR.
#
# Run from anywhere:   bash benches/serve.sh
# Needs wrk (apt-get install -y wrk) and Linux (/proc).
# Environment:
#   DURATION    length of each measured run, a wrk duration (default 10s)
#   WARMUP      length of an unmeasured run before each measured one (default 1s; 0 skips)
#   RULEC_ARGS  extra arguments for `rulec serve`, split on spaces (default none)
#   OUT_DIR     where wrk's full outputs go (default target/serve-bench)
#   CARGO_TARGET_DIR  honoured, as cargo does
# Exit codes: 0 done, 1 a server failed, 2 wrk missing.

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-1s}
RULEC_ARGS=${RULEC_ARGS:-}
OUT_DIR=${OUT_DIR:-target/serve-bench}
TARGET_DIR=${CARGO_TARGET_DIR:-target}

cargo build --release --bin rulec --example bare_server

if ! command -v wrk >/dev/null 2>&1; then
    echo "serve.sh: wrk is not installed; install it with:" >&2
    echo "    apt-get install -y wrk" >&2
    exit 2
fi

BENCH=serve.sh
# shellcheck source=benches/servers.sh
source benches/servers.sh  # the working directory is the repository root (above)

mkdir -p "$OUT_DIR"

rss_kb() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# lua TARGET LOAD SCENARIO: writes the wrk script for one run, prints its path.
lua() {
    local file="$tmp/$1-$2-$3.lua"
    cat >"$file" <<EOF
local target, load, scenario = "$1", "$2", "$3"
EOF
    cat >>"$file" <<'EOF'
wrk.method = "POST"
wrk.path = "/v1/route"
wrk.headers["Content-Type"] = "application/json"
-- a rule that names a model: no pool slot is taken
wrk.body = '{"task_type":"content_creation","estimated_tokens":2000}'

if scenario == "sessions" then
    -- a pooled rule with affinity; every decision is reported, as an agent would,
    -- so that the pool's slots are given back (half the requests are reports)
    local threads = 0
    setup = function(thread)
        threads = threads + 1
        thread:set("seed", threads)
    end
    local pending = {}
    init = function(args)
        math.randomseed(seed or 1)
    end
    local shape = '{"task_type":"classification","task_complexity":"complex","estimated_tokens":2000,"session_id":"s-%d"}'
    local report = '{"decision_id":"%s","outcome":"success","latency_ms":800,"tokens":1200,"cost":0.001}'
    request = function()
        local id = table.remove(pending)
        if id then
            return wrk.format("POST", "/v1/report", nil, string.format(report, id))
        end
        return wrk.format("POST", "/v1/route", nil, string.format(shape, math.random(0, 999)))
    end
    response = function(status, headers, body)
        if not body:find('"released"', 1, true) then
            local id = body:match('"decision_id":"(d%-[%w%-]+)"')
            if id then
                table.insert(pending, id)
            end
        end
    end
end

done = function(summary, latency, requests)
    local e = summary.errors
    local errors = e.connect + e.read + e.write + e.status + e.timeout
    io.write(string.format(
        "target=%s load=%s scenario=%s rps=%.0f p50_us=%d p99_us=%d errors=%d\n",
        target, load, scenario,
        summary.requests / (summary.duration / 1e6),
        latency:percentile(50), latency:percentile(99), errors))
end
EOF
    echo "$file"
}

# run TARGET PID PORT LOAD SCENARIO: one measured wrk run; prints its result line
# and records its rate in `rps`.
declare -A rps=()
run() {
    local target=$1 pid=$2 port=$3 load=$4 scenario=$5
    local shape script log line
    case $load in
        saturating) shape=(-t2 -c64) ;;
        moderate) shape=(-t1 -c4) ;;
    esac
    script=$(lua "$target" "$load" "$scenario")
    log="$OUT_DIR/$target-$load-$scenario.txt"
    local url="http://127.0.0.1:$port/v1/route"
    if [[ $WARMUP != 0 ]]; then
        wrk "${shape[@]}" -d"$WARMUP" -s "$script" "$url" >/dev/null
    fi
    local before
    before=$(rss_kb "$pid")
    wrk "${shape[@]}" -d"$DURATION" --latency -s "$script" "$url" >"$log"
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "serve.sh: $target died during the $load $scenario run" >&2
        exit 1
    fi
    line=$(grep -m1 '^target=' "$log")
    echo "$line"
    if [[ $load == saturating ]]; then
        echo "target=$target load=$load scenario=$scenario rss_kb_before=$before rss_kb_after=$(rss_kb "$pid")"
    fi
    rps[$target/$load/$scenario]=$(sed -E 's/.* rps=([0-9]+).*/\1/' <<<"$line")
}

start_server bare "$TARGET_DIR/release/examples/bare_server" --listen 127.0.0.1:0
bare_pid=$started_pid
bare_port=$started_port
# The example's providers are the public APIs, checked actively: a proxy that
# nothing listens on keeps every check on this machine (they fail at once).
export ALL_PROXY=http://127.0.0.1:1 NO_PROXY=127.0.0.0/8,localhost,::1
unset HTTPS_PROXY https_proxy HTTP_PROXY http_proxy
# shellcheck disable=SC2086 # RULEC_ARGS is a list of words on purpose
start_server rulec "$TARGET_DIR/release/rulec" serve rules/examples/gateway \
    --listen 127.0.0.1:0 $RULEC_ARGS
rulec_pid=$started_pid
rulec_port=$started_port

echo "# cpus=$(nproc) duration=$DURATION warmup=$WARMUP bare=127.0.0.1:$bare_port rulec=127.0.0.1:$rulec_port"
for load in saturating moderate; do
    for scenario in fixed sessions; do
        run bare "$bare_pid" "$bare_port" "$load" "$scenario"
        run rulec "$rulec_pid" "$rulec_port" "$load" "$scenario"
    done
done

for load in saturating moderate; do
    for scenario in fixed sessions; do
        awk -v r="${rps[rulec/$load/$scenario]}" -v b="${rps[bare/$load/$scenario]}" \
            -v load="$load" -v scenario="$scenario" \
            'BEGIN { printf "ratio load=%s scenario=%s rulec_over_bare=%.2f\n", load, scenario, (b > 0 ? r / b : 0) }'
    done
done
echo "# wrk's full outputs: $OUT_DIR/"
