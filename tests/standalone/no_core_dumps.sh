#!/bin/bash
# no_core_dumps.sh — mailret holds private keys in memory during a run, so it switches
# core dumps off for itself whatever limit it was started with (RLIMIT_CORE 0, and
# PR_SET_DUMPABLE 0), and the systemd units say LimitCORE=0 as well.
# The process is caught while it waits for the run lock that this test holds.
set -euo pipefail

: "${MAILRET_BIN:?}"
: "${MAILRET_SOURCE_DIR:?}"
T=$(mktemp -d "${TMPDIR:-/tmp}/no-core.XXXXXX")
trap 'kill $holder 2>/dev/null || true; rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
mkdir -p "$T/state"
printf 'x\n' > "$T/pw"; chmod 600 "$T/pw"
cat > "$T/c.conf" <<CONF
[imap]
host = imap.invalid
user = u
password_file = $T/pw
[mailboxes]
mailbox = INBOX
[archive]
dir = $T/archive
[keys]
vault_dir = $T/vault
it_cert = $T/it.crt
[state]
dir = $T/state
CONF
# hold the run lock
python3 - "$T/state/mailret.lock" "$T/held" <<'PY' &
import fcntl, sys, time
f = open(sys.argv[1], "w"); fcntl.flock(f, fcntl.LOCK_EX); open(sys.argv[2], "w").close()
time.sleep(120)
PY
holder=$!
# the lock is held once the marker exists (a busy host may take seconds to get there)
for _ in $(seq 1 600); do [ -e "$T/held" ] && break; sleep 0.05; done
[ -e "$T/held" ] || fail "the lock holder did not start"
ulimit -c unlimited 2>/dev/null || ulimit -c "$(ulimit -H -c)"
[ "$(ulimit -c)" != 0 ] || echo "note: the hard core limit is 0 here already"
"$MAILRET_BIN" -c "$T/c.conf" expire --lock-wait 60 > /dev/null 2>&1 &
pid=$!
limits=""
# Poll until mailret's main() has run (the sanitiser runtime lowers the soft limit alone
# before that); it then waits for the lock for up to 60 s.
for _ in $(seq 1 600); do
  sleep 0.05
  limits=$(cat "/proc/$pid/limits" 2>/dev/null) || break
  grep -q mailret "/proc/$pid/comm" 2>/dev/null || continue
  [ "$(grep 'Max core file size' <<< "$limits" | awk '{print $5, $6}')" = "0 0" ] && break
done
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
core=$(grep 'Max core file size' <<< "$limits" | awk '{print $5, $6}')
[ "$core" = "0 0" ] || fail "core file size limit of a running mailret is '$core'"
for u in "$MAILRET_SOURCE_DIR"/scripts/systemd/mailret-{purge,ingest,expire,check}@.service; do
  grep -qx 'LimitCORE=0' "$u" || fail "$(basename "$u") lacks LimitCORE=0"
done
echo "no_core_dumps: ok"
