#!/bin/bash
# state_owner.sh — mailret refuses to run as anyone but the owner of its state directory
# (a root-run command would leave root-owned files that the service user's next run reads
# as a damaged batch or a broken audit log): one line naming the directory and both uids,
# exit non-zero, nothing written.  Needs root (to hand the directory to another uid).
set -euo pipefail

if [ "$(id -u)" != 0 ]; then echo "state_owner: skipped (needs root)"; exit 77; fi
source "$(dirname "$0")/offline_lib.sh"
offline_host
M check --offline > /dev/null || fail "check as the owner"
# hand the state directory to another user: root may no longer run mailret on it
chown 65534 state
before=$(find state -newer mailret.conf -printf '%p %s %T@\n' | sort)
for cmd in "check --offline" "expire" "keys list" "verify all" "audit verify"; do
  rc=0; M $cmd > out.txt 2> err.txt || rc=$?
  [ $rc != 0 ] || fail "$cmd ran as root on a state directory of uid 65534"
  grep -q "state directory $T/state belongs to uid 65534, not to the user running mailret (uid 0)" err.txt ||
    fail "$cmd: unclear error: $(cat err.txt)"
  [ "$(grep -c . err.txt)" = 1 ] || fail "$cmd: not one line: $(cat err.txt)"
done
[ "$(find state -newer mailret.conf -printf '%p %s %T@\n' | sort)" = "$before" ] ||
  fail "something was written to the state directory"
chown 0 state
M check --offline > /dev/null || fail "check as the owner again"
echo "state_owner: ok"
