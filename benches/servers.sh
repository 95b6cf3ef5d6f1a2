# servers.sh: what benches/serve.sh and benches/proxy.sh share — servers started in the
# background, waited for, and stopped on exit. Sourced, not run; the caller sets
# BENCH (its name, for messages) before sourcing.

tmp=$(mktemp -d)
pids=()

cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server NAME COMMAND...: runs COMMAND in the background and waits up to 30 s
# for its `listening on http://127.0.0.1:PORT` line; sets started_pid and started_port.
started_pid=
started_port=
start_server() {
    local name=$1
    shift
    local out="$tmp/$name.out" err="$tmp/$name.err"
    "$@" >"$out" 2>"$err" &
    local pid=$!
    pids+=("$pid")
    local line="" i
    for ((i = 0; i < 300; i++)); do
        line=$(grep -m1 -E '^listening on http://127\.0\.0\.1:[0-9]+$' "$out" || true)
        [[ -n $line ]] && break
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "$BENCH: $name exited before listening; its stderr:" >&2
            cat "$err" >&2
            exit 1
        fi
        sleep 0.1
    done
    if [[ -z $line ]]; then
        echo "$BENCH: $name printed no listening line within 30 s; its stderr:" >&2
        cat "$err" >&2
        exit 1
    fi
    started_pid=$pid
    started_port=${line##*:}
}
