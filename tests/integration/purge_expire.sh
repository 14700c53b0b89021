#!/bin/bash
# purge_expire.sh — retention end to end: check's statuses and exit codes (ok, expiring,
# OVERDUE, held, damaged, key-missing, key-present-after-expiry, expired, incomplete;
# 0/1/2), a legal hold survives expire, expire --dry-run changes nothing, expire shreds
# the epoch keys, deletes the volumes and leaves a tombstone, and afterwards a copy of the
# volumes saved elsewhere cannot be restored even with IT's key.
source "$(dirname "$0")/purge_lib.sh"

setup exp 120 purge-expire-1
# The first purge takes the mail before last month's cutoff; the second (near the end) the
# rest before this month's, the default: both always find mail, whatever today is.
mailret purge --cutoff "$(epoch_iso "$(month_start_epoch 1)")" > /dev/null 2> "$T/purge.log" ||
    fail "purge: $(tail -2 "$T/purge.log")"

check_at() {  # check_at WANT_EXIT [--at DATE]: runs check --offline --json, asserts exit
    local want=$1
    shift
    set +e
    mailret check --offline --json "$@" > "$T/check.json" 2> "$T/check.log"
    local rc=$?
    set -e
    [ "$rc" = "$want" ] || { cat "$T/check.json" >&2; fail "check $*: exit $rc, want $want"; }
}
status_of() { json_field "$T/check.json" "[b['status'] for b in j['batches'] if b['batch_id'] == '$1'][0]"; }
shift_days() {  # shift_days ISO DAYS -> ISO UTC
    python3 -c "import datetime,sys; t=datetime.datetime.strptime(sys.argv[1],'%Y-%m-%dT%H:%M:%SZ')+datetime.timedelta(days=float(sys.argv[2])); print(t.strftime('%Y-%m-%dT%H:%M:%SZ'))" "$1" "$2"
}

check_at 0
B=$(json_field "$T/check.json" 'j["batches"][0]["batch_id"]')
E=$(json_field "$T/check.json" 'j["batches"][0]["expires"]')
C=$(json_field "$T/check.json" 'j["batches"][0]["created"]')
# Five calendar years to the day (same Copenhagen wall-clock time).
python3 - "$C" "$E" <<'PY' || fail "expiry is not created + 5 years"
import datetime, sys, zoneinfo
z = zoneinfo.ZoneInfo("Europe/Copenhagen")
c = datetime.datetime.strptime(sys.argv[1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).astimezone(z)
e = datetime.datetime.strptime(sys.argv[2], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).astimezone(z)
try:
    want = c.replace(year=c.year + 5)
except ValueError:
    want = c.replace(year=c.year + 5, month=3, day=1)
assert (e.year, e.month, e.day, e.hour, e.minute) == (want.year, want.month, want.day, want.hour, want.minute), (c, e)
PY
BDIR=$(dirname "$(find "$T/archive" -name manifest.json)")
mkdir -p "$T/copy/INBOX"
cp -a "$BDIR" "$T/copy/INBOX/"               # the "backup of the backup" that survives
cp -a "$T/vault" "$T/vault-copy"             # for the key-present-after-expiry case

check_at 1 --at "$(shift_days "$E" -10)"
[ "$(status_of "$B")" = expiring ] || fail "10 days before expiry: $(status_of "$B")"
check_at 0 --at "$(shift_days "$E" -31)"
check_at 1 --at "$(shift_days "$E" -0.0001)"
[ "$(status_of "$B")" = expiring ] || fail "a moment before expiry: $(status_of "$B")"
check_at 2 --at "$E"
[ "$(status_of "$B")" = OVERDUE ] || fail "at expiry: $(status_of "$B")"

# Not expired one second early; expire --at in the past is refused.
mailret expire --at "$(shift_days "$E" -1)" > "$T/e0" 2>&1 || fail "expire a day early: $(cat "$T/e0")"
[ -f "$BDIR/manifest.json" ] || fail "expired a day early"

# Legal hold: survives expire, check says held (exit 0).
mailret hold "$B" --reason "Sag 2026-1234: retssag" > /dev/null 2> "$T/h.log" || fail "hold: $(cat "$T/h.log")"
check_at 0 --at "$(shift_days "$E" 1)"
[ "$(status_of "$B")" = held ] || fail "held batch: $(status_of "$B")"
mailret expire --at "$(shift_days "$E" 1)" > "$T/e1" 2>&1 || fail "expire with hold: $(cat "$T/e1")"
grep -q "HELD" "$T/e1" || fail "expire did not report the hold"
[ -f "$BDIR/manifest.json" ] && [ -f "$BDIR/vol-0001.p7m" ] || fail "held batch was expired"
[ "$(find "$T/vault" -name '*.key.p7m' | wc -l)" = 2 ] || fail "held batch lost its keys"
mailret hold --release "$B" --reason "Sag 2026-1234 afsluttet" > /dev/null || fail "release"
grep -q '"event":"batch.hold.request"' "$T/state/audit.log" || fail "hold not audited"

# Dry run: nothing changes.
mailret expire --dry-run --at "$(shift_days "$E" 1)" > "$T/e2" 2>&1 || fail "dry run: $(cat "$T/e2")"
grep -q "would expire" "$T/e2" || fail "dry run output: $(cat "$T/e2")"
[ -f "$BDIR/vol-0001.p7m" ] && [ "$(find "$T/vault" -name '*.key.p7m' | wc -l)" = 2 ] || fail "dry run changed something"

# Expire for real.
mailret expire --at "$(shift_days "$E" 1)" > "$T/e3" 2>&1 || fail "expire: $(cat "$T/e3")"
[ "$(find "$T/vault" -name '*.key.p7m' | wc -l)" = 0 ] || fail "epoch keys survive expire"
[ -z "$(find "$BDIR" -name 'vol-*' -o -name 'reid-*')" ] || fail "volumes survive expire"
[ ! -f "$BDIR/manifest.json" ] && [ -f "$BDIR/expired.json" ] || fail "no tombstone"
grep -q '"event":"batch.expire"' "$T/state/audit.log" || fail "expire not audited"
check_at 0 --at "$(shift_days "$E" 1)"
[ "$(status_of "$B")" = expired ] || fail "after expire: $(status_of "$B")"
mailret audit verify > /dev/null 2>&1 || fail "audit chain after expire"

# The surviving copy cannot be restored: the epoch key is gone.
set +e
"$MAILRET_BIN" restore --reason "expiry test" --it-key "$T/it.key" \
    --it-passphrase-file "$T/it.pass" --archive-dir "$T/copy" --vault-dir "$T/vault" \
    --host-key "$T/state/host-keys.pem" --ledger "$T/state/erasure.ledger" \
    --audit-log "$T/copy-audit.log" --maildir "$T/from-copy" > "$T/r.out" 2> "$T/r.err"
rc=$?
set -e
[ "$rc" != 0 ] || fail "the copy was restored after expiry"
[ -z "$(find "$T/from-copy" -type f 2>/dev/null | head -1)" ] || fail "messages restored from the copy"
echo "restore of the copy: $(tail -1 "$T/r.err")"
# ...while with the key (before expiry) it could be: the copy itself is sound.
"$MAILRET_BIN" restore --reason "control" --it-key "$T/it.key" \
    --it-passphrase-file "$T/it.pass" --archive-dir "$T/copy" --vault-dir "$T/vault-copy" \
    --host-key "$T/state/host-keys.pem" --ledger "$T/state/erasure.ledger" \
    --audit-log "$T/copy-audit.log" --maildir "$T/control" > /dev/null 2>&1 ||
    fail "control: the copy does not restore even with its key"

# An epoch key that survives expiry is a violation.
cp "$T/vault-copy"/*.key.p7m "$T/vault/"
check_at 2 --at "$(shift_days "$E" 1)"
[ "$(status_of "$B")" = key-present-after-expiry ] || fail "surviving key: $(status_of "$B")"
rm -f "$T/vault"/*.key.p7m
# A tampered tombstone is damage.
cp "$BDIR/expired.json" "$T/tomb"
sed -i 's/"message_count":[0-9]*/"message_count":1/' "$BDIR/expired.json"
check_at 2 --at "$(shift_days "$E" 1)"
[ "$(json_field "$T/check.json" 'j["batches"][0]["status"]')" = damaged ] || fail "tampered tombstone"
cp "$T/tomb" "$BDIR/expired.json"

# A live batch whose key vanished: key-missing.  A directory without manifest: incomplete.
mailret purge > /dev/null 2> "$T/p2.log" || fail "second purge: $(tail -2 "$T/p2.log")"
check_at 0
k=$(find "$T/vault" -name '*.key.p7m' | head -1)
[ -n "$k" ] || fail "second purge made no batch (no epoch key in the vault)"
mv "$k" "$T/stray.key"
check_at 2
json_field "$T/check.json" '[b["status"] for b in j["batches"]]' | grep -q key-missing || fail "key-missing"
mv "$T/stray.key" "$k"
mkdir "$T/archive/INBOX/2026-11-20261101T000000Z-deadbeef"
check_at 1
json_field "$T/check.json" '[b["status"] for b in j["batches"]]' | grep -q incomplete || fail "incomplete"
rmdir "$T/archive/INBOX/2026-11-20261101T000000Z-deadbeef"
# A broken audit chain is a violation.
cp "$T/state/audit.log" "$T/audit.bak"
sed -i '2s/"event":"[^"]*"/"event":"edited"/' "$T/state/audit.log"
check_at 2
[ "$(json_field "$T/check.json" 'j["audit"]["status"]')" = BROKEN ] || fail "audit chain break not seen"
cp "$T/audit.bak" "$T/state/audit.log"
# Online: the mailbox holds nothing older than the cutoff -> 0; an old message -> 2.
set +e; mailret check > "$T/online.txt" 2>&1; rc=$?; set -e
[ "$rc" = 0 ] || { cat "$T/online.txt"; fail "online check: exit $rc"; }
python3 - "$HOST" "$IMAPS_PORT" "$CA_FILE" "$USER_NAME" "$T/password" <<'PY'
import imaplib, ssl, sys
host, port, ca, user, pwf = sys.argv[1:]
m = imaplib.IMAP4_SSL(host, int(port), ssl_context=ssl.create_default_context(cafile=ca))
m.login(user, open(pwf).read().strip())
m.append("INBOX", None, imaplib.Time2Internaldate(1750000000),
         b"From: a@akasse.example\r\nSubject: old\r\n\r\nold mail\r\n")
m.logout()
PY
set +e; mailret check --json > "$T/check.json" 2> "$T/check.log"; rc=$?; set -e
[ "$rc" = 2 ] || fail "online check with an old message: exit $rc"
[ "$(json_field "$T/check.json" 'j["mailboxes"][0]["status"]')" = "NOT PURGED" ] || fail "mailbox status"
echo "PASS purge_expire"
