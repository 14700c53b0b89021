#!/bin/bash
# purge_proxy.sh — the purge through the fault-injection proxy (tests/tools/faultproxy.py)
# between mailret and the real Dovecot: the connection cut in the middle of the purge's
# FETCH, a reset, and a corrupted TLS byte each end the run with a one-line error and a
# non-zero exit, delete nothing, and leave server + verified archive == the original set;
# a later run through a healthy path finishes the month.
source "$(dirname "$0")/purge_lib.sh"

setup proxy 200 purge-proxy-1
cut=$(month_start_epoch)
old=$(server_older "$cut")
[ "$old" -gt 30 ] || fail "corpus has only $old messages before the cutoff"

# Ingest first, directly: the purge's own "ingest first" then fetches nothing new, so the
# faults below hit the purge's FETCH of the old messages.
mailret ingest > /dev/null 2> "$T/ingest.log" || fail "ingest: $(tail -2 "$T/ingest.log")"

proxy_pid=""
stop_proxy() { [ -z "$proxy_pid" ] || { kill "$proxy_pid" 2>/dev/null || true; wait "$proxy_pid" 2>/dev/null || true; }; proxy_pid=""; }
trap 'stop_proxy; rm -rf "$T"' EXIT

# start_proxy MODE AFTER: a proxy to IMAPS; the config points at it.
start_proxy() {
    stop_proxy
    rm -f "$T/proxy.port"
    python3 "$MAILRET_SOURCE_DIR/tests/tools/faultproxy.py" --target-port "$IMAPS_PORT" \
        --mode "$1" --after "$2" --lifetime 120 --port-file "$T/proxy.port" > /dev/null &
    proxy_pid=$!
    for _ in $(seq 300); do [ -s "$T/proxy.port" ] && break; sleep 0.1; done
    [ -s "$T/proxy.port" ] || fail "proxy did not start"
    write_config "$(cat "$T/proxy.port")"
}

# faulty_purge MODE AFTER WHAT: the purge fails with one line naming WHAT, deletes nothing.
faulty_purge() {
    start_proxy "$1" "$2"
    set +e
    mailret -q purge --lock-wait 0 > "$T/out" 2> "$T/err"
    rc=$?
    set -e
    [ "$rc" = 1 ] || fail "$1: purge exited $rc: $(cat "$T/err")"
    [ "$(wc -l < "$T/err")" = 1 ] || fail "$1: error is not one line: $(cat "$T/err")"
    grep -qiE "$3" "$T/err" || fail "$1: error does not name the cause: $(cat "$T/err")"
    [ "$(server_shas | wc -l)" = "$TOTAL" ] || fail "$1: messages were deleted"
    check_invariant "after $1"
    echo "$1 after $2 bytes: $(cat "$T/err")"
}

faulty_purge cut 400000 "closed|connection|network"
faulty_purge reset 600000 "reset|connection|network"
faulty_purge corrupt 300000 "tls|bad record|decrypt|mac|connection"

# A healthy path (the proxy passing everything) finishes the month; the journal cleaned
# up what the interrupted runs left.
start_proxy pass 0
mailret purge > "$T/final.out" 2> "$T/final.log" || fail "purge through pass proxy: $(tail -3 "$T/final.log")"
stop_proxy
write_config
[ "$(server_older "$cut")" = 0 ] || fail "messages older than the cutoff remain"
[ "$(server_shas | wc -l)" = $((TOTAL - old)) ] || fail "newer messages were touched"
check_invariant "after the final purge"
[ "$(find "$T/archive" -name manifest.json | wc -l)" = 1 ] || fail "not exactly one verified batch"
mailret check --offline > /dev/null || fail "check after the final purge"
echo "purge_proxy: ok ($old messages purged after three faulty runs)"
