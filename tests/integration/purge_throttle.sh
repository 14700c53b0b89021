#!/bin/bash
# purge_throttle.sh — a whole purge, logged in with XOAUTH2 and a token_command, while
# Exchange-style throttling hits it: the proxy (ending TLS on both sides) answers "NO
# Request is throttled. Suggested Backoff Time: 1200 milliseconds" part-way through the
# ingest's UID FETCH, part-way through the purge's UID FETCH and instead of the UID
# STORE's OK.  The run must wait, resume and finish: exit 0, every old message archived
# and verified and gone, the newer ones untouched, one fresh token per connection, and
# no token in any file.
source "$(dirname "$0")/purge_lib.sh"

setup throttle 120 purge-throttle-1
cut=$(month_start_epoch)
old=$(server_older "$cut")
[ "$old" -gt 20 ] || fail "corpus has only $old messages before the cutoff"

cat > "$T/tok.sh" <<EOF
#!/bin/sh
echo run >> "$T/runs"
tok=\$(python3 "$MAILRET_SOURCE_DIR/tests/tools/jwt_hs256.py" --key-file "$OAUTH2_KEY_FILE" --sub "$USER_NAME") || exit 1
echo "\$tok" >> "$T/tokens"
echo "\$tok"
EOF
chmod 700 "$T/tok.sh"

proxy_pid=""
stop_proxy() { [ -z "$proxy_pid" ] || { kill "$proxy_pid" 2>/dev/null || true; wait "$proxy_pid" 2>/dev/null || true; }; proxy_pid=""; }
trap 'stop_proxy; rm -rf "$T"' EXIT
TLSDIR="$(dirname "$CA_FILE")"
python3 "$MAILRET_SOURCE_DIR/tests/tools/faultproxy.py" --target-port "$IMAPS_PORT" \
    --tls-cert "$TLSDIR/server.crt" --tls-key "$TLSDIR/server.key" \
    --record-client "$T/wire" --throttle "UID (FETCH 1:|STORE)" --throttle-mode mid \
    --throttle-after 5 --throttle-times 3 --backoff-ms 1200 \
    --lifetime 300 --port-file "$T/proxy.port" > /dev/null &
proxy_pid=$!
for _ in $(seq 300); do [ -s "$T/proxy.port" ] && break; sleep 0.1; done
[ -s "$T/proxy.port" ] || fail "proxy did not start"

write_config "$(cat "$T/proxy.port")" "[log]" "file = $T/mailret.log"
sed -i "s|^password_file = .*|auth = xoauth2\ntoken_command = $T/tok.sh|" "$T/mailret.conf"
t0=$(date +%s.%N)
mailret purge > "$T/out" 2> "$T/err" || fail "throttled purge failed: $(cat "$T/err")"
dt=$(python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$t0" "$(date +%s.%N)")
stop_proxy

# It waited each time, as suggested (the first FETCH of each connection and the STORE
# are throttled; the resumed FETCHes, which start further on, are not).
[ "$(grep -c "throttles this client; waiting 1200 ms" "$T/mailret.log")" = 3 ] ||
    fail "expected three waits: $(grep -i throttl "$T/mailret.log")"
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) >= 3.5 else 1)" "$dt" ||
    fail "the purge took $dt s: it did not wait"
# Two FETCHes resumed and a STORE sent again.
[ "$(grep -c "UID STORE" "$T/wire")" -ge 2 ] || fail "the STORE was not sent again"
[ "$(grep -c "UID FETCH" "$T/wire")" -ge 4 ] || fail "the FETCHes were not resumed"

# The month is done: nothing older than the cutoff, the rest untouched, all verified.
[ "$(server_older "$cut")" = 0 ] || fail "messages older than the cutoff remain"
[ "$(server_shas | wc -l)" = $((TOTAL - old)) ] || fail "newer messages were touched"
check_invariant "after the throttled purge"   # on the server or archived, exactly once
[ "$(find "$T/archive" -name manifest.json | wc -l)" = 1 ] || fail "not exactly one verified batch"
# One token per connection (ingest first, then the purge), each different.
[ "$(wc -l < "$T/runs")" = 2 ] || fail "token_command ran $(wc -l < "$T/runs") times for 2 connections"
[ "$(sort -u "$T/tokens" | wc -l)" = 2 ] || fail "the connections shared a token"
[ "$(grep -c "Login: user=<$USER_NAME>, method=XOAUTH2," "$LOG")" = 2 ] || fail "not two XOAUTH2 logins"
while read -r tok; do
    if grep -rqF "${tok##*.}" "$T/state" "$T/archive" "$T/vault" "$T/mailret.log" "$T/out" "$T/err"; then
        fail "a token was written to a file"
    fi
done < "$T/tokens"
echo "purge_throttle: ok ($old messages purged through 3 throttled commands in $dt s)"
