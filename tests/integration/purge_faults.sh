#!/bin/bash
# purge_faults.sh — purge refuses cleanly, deleting nothing: a server without UIDPLUS
# (and --allow-plain-expunge only while no other message carries \Deleted), a cutoff in
# the future, the run lock held by another process, and a full disk while volumes are
# written (a real 64 KiB tmpfs in a private mount namespace: the kernel says ENOSPC).
source "$(dirname "$0")/purge_lib.sh"

setup faults 120 purge-faults-1
cut=$(month_start_epoch)
old=$(server_older "$cut")

# flag_newest +FLAGS|-FLAGS: set/clear \Deleted on the newest message (one of the recent
# ones setup appended: newer than the cutoff whatever the day).
flag_newest() {
    python3 - "$HOST" "$IMAPS_PORT" "$CA_FILE" "$USER_NAME" "$T/password" "$1" <<'PY'
import imaplib, ssl, sys
host, port, ca, user, pwf, op = sys.argv[1:]
m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ssl.create_default_context(cafile=ca))
m.login(user, open(pwf).read().strip())
m.select("INBOX")
typ, data = m.uid("SEARCH", None, "ALL")
uid = data[0].split()[-1]
typ, _ = m.uid("STORE", uid, op, "(\\Deleted)")
assert typ == "OK"
m.logout()
PY
}

# 1. No UIDPLUS: refused, nothing archived or deleted.
write_config "$NOPLUS_PORT"
set +e; mailret purge > "$T/o1" 2> "$T/e1"; rc=$?; set -e
[ "$rc" = 1 ] || fail "noplus: exit $rc"
grep -q "UIDPLUS" "$T/e1" || fail "noplus: error does not name UIDPLUS: $(cat "$T/e1")"
[ "$(wc -l < "$T/e1")" -le 3 ] || true
[ "$(server_shas | wc -l)" = "$TOTAL" ] || fail "noplus: something was deleted"
[ -z "$(find "$T/archive" -name manifest.json 2>/dev/null)" ] || fail "noplus: archived anyway"

# 2. --allow-plain-expunge while another (newer) message carries \Deleted: refused.
flag_newest "+FLAGS"
set +e; mailret purge --allow-plain-expunge > "$T/o2" 2> "$T/e2"; rc=$?; set -e
[ "$rc" = 1 ] || fail "plain with foreign \\Deleted: exit $rc"
grep -q "carry \\\\Deleted" "$T/e2" || fail "plain: error: $(cat "$T/e2")"
[ "$(server_shas | wc -l)" = "$TOTAL" ] || fail "plain with foreign \\Deleted: something was deleted"

# 3. The flag cleared: plain EXPUNGE is allowed and takes exactly the old messages.
flag_newest "-FLAGS"
mailret purge --allow-plain-expunge > "$T/o3" 2> "$T/e3" || fail "plain: $(tail -2 "$T/e3")"
[ "$(server_older "$cut")" = 0 ] || fail "plain: old messages remain"
[ "$(server_shas | wc -l)" = $((TOTAL - old)) ] || fail "plain: wrong number left"
check_invariant "plain expunge"

# 4. A cutoff in the future is refused.
write_config
set +e; mailret purge --cutoff 2999-01-01 > /dev/null 2> "$T/e4"; rc=$?; set -e
[ "$rc" = 1 ] && grep -q "future" "$T/e4" || fail "future cutoff: exit $rc $(cat "$T/e4")"

# 5. The run lock: with --lock-wait 0 a second run is refused at once; a scheduled run
#    (default wait) waits for the holder instead of failing, since the monthly purge
#    timer and the five-minute ingest timer fire together.
#    The holder lets go only when told (not after a fixed time, which a busy host can
#    overrun before the waiting run has even started).
: > "$T/hold"
flock "$T/state/mailret.lock" sh -c 'while [ -e "$1" ]; do sleep 0.1; done' _ "$T/hold" &
holder=$!
for _ in $(seq 1 300); do flock -n "$T/state/mailret.lock" true || break; sleep 0.1; done
set +e; mailret purge --lock-wait 0 > /dev/null 2> "$T/e5"; rc=$?; set -e
[ "$rc" = 1 ] && grep -q "another mailret run" "$T/e5" || fail "lock: exit $rc $(cat "$T/e5")"
set +e; mailret expire --lock-wait 0 > /dev/null 2> "$T/e5x"; rc=$?; set -e
[ "$rc" = 1 ] && grep -q "another mailret run" "$T/e5x" || fail "expire lock: exit $rc"
set +e; mailret ingest > "$T/o5i" 2> "$T/e5i"; rc=$?; set -e
[ "$rc" = 0 ] && grep -q "ingest skipped" "$T/e5i" || fail "ingest under lock: exit $rc $(cat "$T/e5i")"
mailret purge --dry-run --lock-wait 120 > "$T/o5w" 2> "$T/e5w" &
waiter=$!
sleep 2
# Still waiting, its plan not yet written: it has not run past the lock.
kill -0 "$waiter" 2>/dev/null && [ ! -s "$T/o5w" ] ||
    { rm -f "$T/hold"; fail "purge did not wait for the lock holder: $(cat "$T/e5w")"; }
rm "$T/hold"
wait "$holder"
set +e; wait "$waiter"; rc=$?; set -e
[ "$rc" = 0 ] || fail "purge waiting for the lock: exit $rc $(cat "$T/e5w")"
[ -s "$T/o5w" ] || fail "purge after the wait said nothing: $(cat "$T/e5w")"

# 6. Disk full while writing volumes (root only: private mount namespace + tmpfs).
if [ "$(id -u)" = 0 ] && command -v unshare > /dev/null; then
    new_user full
    gen_corpus 150 purge-full-1
    rm -rf "$T/archive" "$T/vault" "$T/state" "$T"/it.* "$T"/it-*
    write_config
    setup_keys
    server_shas > "$T/original.sha"
    mkdir -p "$T/archive"
    set +e
    unshare -m bash -c 'mount -t tmpfs -o size=64k,mode=0700 tmpfs "$1" && shift && exec "$@"' \
        _ "$T/archive" "$MAILRET_BIN" -c "$T/mailret.conf" purge > "$T/o6" 2> "$T/e6"
    rc=$?
    set -e
    [ "$rc" = 1 ] || fail "disk full: exit $rc: $(tail -2 "$T/e6")"
    grep -qi "space" "$T/e6" || fail "disk full: error does not say so: $(tail -2 "$T/e6")"
    [ "$(server_shas | wc -l)" = 150 ] || fail "disk full: something was deleted"
    [ "$(find "$T/vault" -name '*.key.p7m' | wc -l)" = 0 ] || fail "disk full: epoch keys left"
    # Space again: the same purge now succeeds.
    mailret purge > "$T/o7" 2> "$T/e7" || fail "after disk full: $(tail -2 "$T/e7")"
    check_invariant "after disk full"
    echo "disk full: $(grep -o 'No space[^;]*' "$T/e6" | head -1)"
else
    echo "SKIP disk full (needs root for a private tmpfs)"
fi
echo "PASS purge_faults"
