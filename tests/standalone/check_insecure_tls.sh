#!/bin/bash
# check_insecure_tls.sh — [imap] insecure_skip_verify (TLS verification off) cannot go
# unnoticed: every connection logs it at error level, which -q (errors only) still shows,
# and `check` counts it as a violation (exit 2, in the text, JSON and Nagios reports).
# A control run with verification on shows neither.
set -euo pipefail

source "$(dirname "$0")/offline_lib.sh"
# A loopback port nothing listens on: the connection fails after the warning is due.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
OFFLINE_IMAP=("host = 127.0.0.1" "port = $PORT" "connect_timeout = 2")
offline_host "[retention]" "years = 1"
conf() {   # insecure-line
  OFFLINE_IMAP=("host = 127.0.0.1" "port = $PORT" "connect_timeout = 2" "$1")
  offline_config "[retention]" "years = 1"
}

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
