#!/bin/bash
# check_insecure_tls.sh — [imap] insecure_skip_verify (TLS verification off) cannot go
# unnoticed: every connection logs it at error level, which -q (errors only) still shows,
# and `check` counts it as a violation (exit 2, in the text, JSON and Nagios reports).
# A control run with verification on shows neither.
set -euo pipefail

: "${MAILRET_BIN:?}"
T=$(mktemp -d "${TMPDIR:-/tmp}/check-insecure.XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
umask 077

printf 'it passphrase 123\n' > it.pass
"$MAILRET_BIN" keys init-it --key it.key --cert it.crt --passphrase-file it.pass >/dev/null
mkdir -p state host
printf 'x\n' > imap.password
# A loopback port nothing listens on: the connection fails after the warning is due.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
conf() {   # insecure-line
  cat > mailret.conf <<CONF
[imap]
host = 127.0.0.1
port = $PORT
connect_timeout = 2
user = mailret
password_file = $T/imap.password
$1
[mailboxes]
mailbox = INBOX
[archive]
dir = $T/archive
[keys]
vault_dir = $T/vault
it_cert = $T/host/it.crt
[retention]
years = 1
[state]
dir = $T/state
[audit]
log = $T/state/audit.log
CONF
}
M() { "$MAILRET_BIN" -c "$T/mailret.conf" "$@"; }
conf ""
M keys init-host --it-cert it.crt > /dev/null

# control: verification on
set +e; M -q check --offline > ok.out 2> ok.err; rc=$?; set -e
[ "$rc" = 0 ] || fail "control check: exit $rc: $(cat ok.out ok.err)"
! grep -qi 'DISABLED' ok.out ok.err || fail "control mentions DISABLED"

conf "insecure_skip_verify = yes-for-testing-only"
set +e; M -q check --offline > c.out 2> c.err; rc=$?; set -e
[ "$rc" = 2 ] || fail "check with TLS verification off: exit $rc (want 2, violation)"
grep -q 'IMAP TLS verification: DISABLED.*VIOLATION' c.out || fail "check text: $(cat c.out)"
grep -q '1 violation' c.out || fail "not counted: $(cat c.out)"
M check --offline --json > c.json 2>/dev/null || true
python3 - c.json <<'PY' || fail "check --json: $(cat c.json)"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["insecure_tls"] is True and j["result"] == "violation" and j["violations"] >= 1, j
PY
set +e; M check --offline --nagios > n.out 2>/dev/null; rc=$?; set -e
[ "$rc" = 2 ] || fail "nagios state $rc"
grep -q 'TLS verification DISABLED' n.out || fail "nagios text: $(cat n.out)"

# -q leaves errors only: the connection's warning is an error, so it is still shown.
set +e; M -q check > q.out 2> q.err; set -e
grep -q 'ERROR IMAP: TLS certificate and host-name verification are DISABLED' q.err ||
  fail "insecure mode not logged at error level under -q: $(cat q.err)"
echo "PASS check_insecure_tls"
