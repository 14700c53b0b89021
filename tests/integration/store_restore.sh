#!/bin/bash
# store_restore.sh — IT reads the archive from the object store (Swift's S3 API, fixture
# swift_server), with its own read-only credentials and an empty cache directory:
#   * the host writes two batches with `[archive] store = s3`; restore on IT's machine,
#     from the store into a fresh cache, gives byte for byte the mbox the host restores
#     from its local archive, and restore --list the same listing;
#   * restore --person, --message-id and access-request on another fresh cache equal the
#     slow path and fetch only manifests, locators and the volumes that hold a match: the
#     batch without the person leaves no volume in the cache;
#   * locate --add on IT's machine puts the new locator into the store: refused with one
#     line under the read-only credentials (nothing stored), done with credentials that
#     may write, and the next targeted restore uses it;
#   * a volume changed in the store is refused with one line naming the batch and the
#     file, nothing but correct mail is written, and the cached copy is dropped; a volume
#     missing from the store likewise; verify reports the changed object although the
#     cache still holds a good copy; the repaired store restores again.
# fixtures: swift
set -euo pipefail
source "$MAILRET_SOURCE_DIR/tests/standalone/offline_lib.sh"
SWENV="${MAILRET_TEST_SWIFT_DIR:?}/env"
[ -f "$SWENV" ] || fail "no Swift test server env at $SWENV"
sw() { sed -n "s/^$1=//p" "$SWENV"; }
OBJ() { python3 "$MAILRET_SOURCE_DIR/tests/tools/swift_obj.py" "$@"; }
PFX="store-restore-$$-$(date +%s)"
printf 'it passphrase 123\n' > it.pass
"$MAILRET_BIN" keys init-it --key it.key --cert it.crt --passphrase-file it.pass >/dev/null
printf 'x\n' > imap.password

# conf FILE ARCHIVE_DIR CREDENTIALS STATE_DIR [KEYS LINES...]
conf() {
  local f=$1 dir=$2 cred=$3 state=$4
  shift 4
  mkdir -p "$state"
  cat > "$f" <<CONF
[imap]
host = imap.invalid
user = mailret
password_file = $T/imap.password
[mailboxes]
mailbox = INBOX
mailbox = Sager
[archive]
dir = $dir
volume_size = 256K
store = s3
store_endpoint = $(sw ENDPOINT)
store_region = $(sw REGION)
store_bucket = $(sw BUCKET)
store_path_style = yes
store_prefix = $PFX
store_credentials_file = $cred
[retention]
years = 1
[state]
dir = $state
[audit]
log = $state/audit.log
[keys]
CONF
  printf '%s\n' "$@" >> "$f"
}
conf mailret.conf "$T/archive" "$(sw CREDENTIALS_FILE)" "$T/state" \
  "vault_dir = $T/vault" "it_cert = $T/it.crt"
M keys init-host --it-cert it.crt > /dev/null

# Karen writes in messages 1, 4, 7 of INBOX, never in Sager.  100 KB of incompressible
# body per message fills a 256 KiB volume every message or two.
mkmail() {   # dir n tag karen?
  mkdir -p "$1/cur" "$1/new" "$1/tmp"
  for i in $(seq 1 "$2"); do
    if [ "$4" = yes ] && [ $((i % 3)) = 1 ]; then who="Karen Holm <karen.holm@example.com>"
    else who="Ole $i <ole$i@example.org>"; fi
    f="$1/cur/17000000$i.M$i.host:2,S"
    printf 'From: %s\r\nTo: post@fund.example.dk\r\nSubject: Sag %d\r\nMessage-ID: <%s-%d@example.com>\r\n\r\n' \
      "$who" "$i" "$3" "$i" > "$f"
    head -c 100000 /dev/urandom | base64 -w 76 | sed 's/$/\r/' >> "$f"
    touch -d "@$((1790000000 + i * 3600))" "$f"
  done
}
mkmail md1 9 a yes
mkmail md2 5 b no
M backup --from-maildir md1 --mailbox INBOX --all > b1.out || fail "backup 1"
M backup --from-maildir md2 --mailbox Sager --all > b2.out || fail "backup 2"
B1=$(cut -f5 b1.out); B2=$(cut -f5 b2.out)
K1="$PFX/INBOX/$(basename "$B1")"; K2="$PFX/Sager/$(basename "$B2")"
nvol=$(ls "$B1" | grep -c '^vol-')
[ "$nvol" -ge 3 ] || fail "test set-up: want several volumes: $(ls "$B1")"
OBJ list "$PFX/" > objects.txt
for f in "$B1"/* "$B2"/*; do
  k="$PFX/$(basename "$(dirname "$(dirname "$f")")")/$(basename "$(dirname "$f")")/$(basename "$f")"
  grep -q "^$k	$(stat -c %s "$f")\$" objects.txt || fail "$k not in the store: $(cat objects.txt)"
done

# --- the reference: the host restores from its own archive --------------------------
R=(--it-key it.key --it-passphrase-file it.pass --reason "ticket 7")
M restore "${R[@]}" --mbox ref.mbox > ref.out || fail "host restore"
[ "$(grep -c '^From MAILER-DAEMON' ref.mbox)" = 14 ] || fail "host restore: $(cat ref.out)"
printf 'karen.holm@example.com\n' | M restore "${R[@]}" --person --no-locator --mbox ref-karen.mbox \
  > /dev/null || fail "host restore --person"
M restore "${R[@]}" --list > ref-list.out || fail "host restore --list"

# --- IT's machine: its vault copy, the pinned host key, the ledger, read-only access --
mkdir -p it
cp -a vault it/vault
cp state/host-keys.pem it/pinned.pem
cp state/erasure.ledger it/erasure.ledger
ITC() {  # ITC NAME: a configuration of IT's machine with the cache it/NAME
  conf "it/$1.conf" "$T/it/$1" "$(sw READONLY_CREDENTIALS_FILE)" "$T/it/state" \
    "vault_dir = $T/it/vault" "it_cert = $T/it.crt" "host_keyring = $T/it/pinned.pem"
}
IT() { local c=$1; shift; env -u MAILRET_CONFIG "$MAILRET_BIN" -c "it/$c.conf" "$@"; }
IR=("${R[@]}" --ledger it/erasure.ledger)
grep -q "^access_key_id = .*:reader$" "$(sw READONLY_CREDENTIALS_FILE)" || fail "IT is not the read-only user"

ITC full
IT full restore "${IR[@]}" --mbox s3.mbox > s3.out 2> s3.err || fail "IT restore from the store: $(cat s3.err)"
cmp -s ref.mbox s3.mbox || fail "restore from the store differs from the local restore"
[ "$(ls it/full/INBOX/"$(basename "$B1")" | grep -c '^vol-')" = "$nvol" ] || fail "cache: $(ls -R it/full)"
IT full restore "${IR[@]}" --list > s3-list.out || fail "IT restore --list"
diff <(grep -v '^$' ref-list.out) <(grep -v '^$' s3-list.out) > /dev/null ||
  fail "restore --list from the store differs: $(cat s3-list.out)"
IT full verify all > v.out || fail "verify from the store: $(cat v.out)"
[ "$(grep -c '	ok	' v.out)" = 2 ] || fail "verify: $(cat v.out)"

# --- targeted: only what matches is fetched -------------------------------------------
ITC karen
printf 'karen.holm@example.com\n' | IT karen restore "${IR[@]}" --person --mbox s3-karen.mbox --json \
  > karen.json || fail "IT restore --person: $(cat karen.json)"
cmp -s ref-karen.mbox s3-karen.mbox || fail "targeted restore from the store differs from the slow path"
[ "$(grep -c '^From: Karen Holm' s3-karen.mbox)" = 3 ] || fail "want Karen's 3 messages"
C1="it/karen/INBOX/$(basename "$B1")"; C2="it/karen/Sager/$(basename "$B2")"
for c in "$C1" "$C2"; do
  [ -f "$c/manifest.json" ] && [ -f "$c/locator.p7m" ] || fail "manifest or locator not fetched: $(ls "$c")"
done
[ -z "$(ls "$C2" | grep '^vol-\|^reid-')" ] || fail "volumes of a batch without a match fetched: $(ls "$C2")"
got=$(ls "$C1" | grep -c '^vol-' || true)
[ "$got" -ge 1 ] && [ "$got" -lt "$nvol" ] || fail "fetched $got of $nvol volumes: $(ls "$C1")"
read=$(sed -n 's/.*"volumes_read": \([0-9]*\).*/\1/p' karen.json)
[ "$got" = "$read" ] || fail "fetched $got volumes, decrypted $read"

ITC access
printf 'karen.holm@example.com\n' | IT access access-request "${IR[@]}" --mbox ar.mbox > ar.out ||
  fail "access-request from the store"
cmp -s ref-karen.mbox ar.mbox || fail "access-request from the store differs from the slow path"
[ -z "$(ls "it/access/Sager/$(basename "$B2")" | grep '^vol-\|^reid-')" ] ||
  fail "access-request fetched volumes of a batch without a match"

MID="<a-4@example.com>"
M restore "${R[@]}" --message-id "$MID" --no-locator --mbox ref-mid.mbox > /dev/null ||
  fail "host restore --message-id"
ITC mid
IT mid restore "${IR[@]}" --message-id "$MID" --mbox s3-mid.mbox > /dev/null ||
  fail "IT restore --message-id"
cmp -s ref-mid.mbox s3-mid.mbox || fail "restore --message-id from the store differs"
[ "$(grep -c '^From MAILER-DAEMON' s3-mid.mbox)" = 1 ] || fail "want one message by Message-ID"
[ "$(ls "it/mid/INBOX/$(basename "$B1")" | grep -c '^vol-')" = 1 ] ||
  fail "restore --message-id fetched more than one volume: $(ls "it/mid/INBOX/$(basename "$B1")")"

# --- locate --add from IT's machine: the locator goes to the store, which the ---------
# read-only user may not do.  The Sager batch becomes one from before locators: its
# manifest re-signed without one, the locator object gone.
manifest_drop_locator "$B2/manifest.json" state/signing-key.pem
! grep -q '"locator"' "$B2/manifest.json" || fail "test set-up: the manifest still lists a locator"
OBJ put "$K2/manifest.json" "$B2/manifest.json"
OBJ delete "$K2/locator.p7m"
ITC locate
if IT locate locate --add all "${R[@]:0:4}" > loc.out 2>&1; then fail "locate --add wrote with read-only credentials"; fi
grep -q "$(basename "$B2")	FAILED (auth)	.*not in the object store.*403" loc.out || fail "locate, read-only: $(cat loc.out)"
! OBJ list "$K2/locator.p7m" | grep -q . || fail "a locator reached the store"
conf it/locate-rw.conf "$T/it/locate" "$(sw CREDENTIALS_FILE)" "$T/it/state" \
  "vault_dir = $T/it/vault" "it_cert = $T/it.crt" "host_keyring = $T/it/pinned.pem"
IT locate-rw locate --add all "${R[@]:0:4}" > loc2.out 2>&1 || fail "locate --add: $(cat loc2.out)"
grep -q "$(basename "$B2")	locator added	5 messages" loc2.out || fail "locate: $(cat loc2.out)"
grep -q "$(basename "$B1")	has a locator" loc2.out || fail "locate: $(cat loc2.out)"
OBJ list "$K2/locator.p7m" | grep -q . || fail "the new locator is not in the store"
ITC located
printf 'karen.holm@example.com\n' | IT located restore "${IR[@]}" --person --mbox located.mbox --json \
  > located.json || fail "restore with the added locator: $(cat located.json)"
cmp -s ref-karen.mbox located.mbox || fail "restore with the added locator differs"
grep -q '"located_batches": 2' located.json || fail "the added locator was not used: $(cat located.json)"
[ -z "$(ls "it/located/Sager/$(basename "$B2")" | grep '^vol-\|^reid-')" ] ||
  fail "volumes of a batch without a match fetched after locate --add"

# --- a changed object: refused, one line, nothing wrong written, not kept ------------
OBJ get "$K1/vol-0002.p7m" good.p7m
python3 - good.p7m bad.p7m <<'PY'
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
b[len(b) // 2] ^= 0x01
open(sys.argv[2], 'wb').write(b)
PY
OBJ put "$K1/vol-0002.p7m" bad.p7m
ITC tamper
if IT tamper restore "${IR[@]}" --mbox tampered.mbox > t.out 2> t.err; then fail "restore of a changed object succeeded"; fi
[ "$(wc -l < t.err)" = 1 ] || fail "not one line: $(cat t.err)"
grep -q "batch .*vol-0002.p7m.*SHA-256 differs from the manifest" t.err || fail "unclear: $(cat t.err)"
if [ -s tampered.mbox ]; then
  cmp -s tampered.mbox <(head -c "$(stat -c %s tampered.mbox)" ref.mbox) || fail "wrong mail written"
fi
[ ! -e "it/tamper/INBOX/$(basename "$B1")/vol-0002.p7m" ] || fail "the changed object stayed in the cache"
# The full cache still holds the good copy: verify must check the store, not the cache.
if IT full verify all > v2.out 2>&1; then fail "verify missed the changed object: $(cat v2.out)"; fi
grep -q "$(basename "$B1")	FAILED (tampered)	vol-0002.p7m" v2.out || fail "verify: $(cat v2.out)"
OBJ put "$K1/vol-0002.p7m" good.p7m
IT tamper restore "${IR[@]}" --mbox repaired.mbox > /dev/null || fail "restore after the repair"
cmp -s ref.mbox repaired.mbox || fail "restore after the repair differs"

# --- a missing object --------------------------------------------------------------
OBJ get "$K2/vol-0001.p7m" keep.p7m
OBJ delete "$K2/vol-0001.p7m"
ITC missing
if IT missing restore "${IR[@]}" --batch "$(basename "$B2")" --mbox missing.mbox > m.out 2> m.err; then
  fail "restore with a missing object succeeded"
fi
[ "$(wc -l < m.err)" = 1 ] || fail "not one line: $(cat m.err)"
grep -q "batch .*vol-0001.p7m.* not in the object store" m.err || fail "unclear: $(cat m.err)"
[ ! -s missing.mbox ] || fail "mail written from a batch with a missing volume"
if IT missing verify "$(basename "$B2")" > v3.out 2>&1; then fail "verify missed the missing object"; fi
grep -q "FAILED (notfound)	vol-0001.p7m is not in the object store" v3.out || fail "verify: $(cat v3.out)"
OBJ put "$K2/vol-0001.p7m" keep.p7m

! grep -rqi 'karen' it/state/audit.log state/audit.log || fail "a person's address in an audit log"
echo "store_restore: ok"
