#!/bin/bash
# state_owner.sh — mailret refuses to run as anyone but the owner of its state directory
# (a root-run command would leave root-owned files that the service user's next run reads
# as a damaged batch or a broken audit log): one line naming the directory and both uids,
# exit non-zero, nothing written.  Needs root (to hand the directory to another uid).
set -euo pipefail

: "${MAILRET_BIN:?}"
if [ "$(id -u)" != 0 ]; then echo "state_owner: skipped (needs root)"; exit 0; fi
T=$(mktemp -d "${TMPDIR:-/tmp}/state-owner.XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
umask 077
printf 'it passphrase 123\n' > it.pass
"$MAILRET_BIN" keys init-it --key it.key --cert it.crt --passphrase-file it.pass >/dev/null
mkdir -p state host
printf 'x\n' > imap.password
cat > mailret.conf <<CONF
[imap]
host = imap.invalid
user = mailret
password_file = $T/imap.password
[mailboxes]
mailbox = INBOX
[archive]
dir = $T/archive
[keys]
vault_dir = $T/vault
it_cert = $T/host/it.crt
[state]
dir = $T/state
[audit]
log = $T/state/audit.log
CONF
M() { "$MAILRET_BIN" -c "$T/mailret.conf" "$@"; }
M keys init-host --it-cert it.crt > /dev/null
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
