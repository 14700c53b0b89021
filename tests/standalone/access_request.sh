#!/bin/bash
# access_request.sh — one person's mail across batches and mailboxes, by the binary:
#   * a batch written before locators (its locator removed, its manifest re-signed without
#     one) restores by the slow path, and `locate --add` gives it a locator;
#   * `access-request` (identifiers on stdin) writes exactly that person's messages, byte
#     for byte the same mbox as `restore --person --no-locator`, decrypting fewer volumes,
#     and a summary that counts them per batch and names no person; the audit log says
#     "person", never the address or its token;
#   * selection options and an identifier on the command line are usage errors.
set -euo pipefail
source "$(dirname "$0")/offline_lib.sh"

printf 'it passphrase 123\n' > it.pass
export MAILRET_IT_PASSPHRASE="it passphrase 123"
"$MAILRET_BIN" keys init-it --key it.key --cert it.crt --passphrase-file it.pass >/dev/null
mkdir -p state
printf 'x\n' > imap.password
cat > mailret.conf <<CONF
[imap]
host = imap.invalid
user = mailret
password_file = $T/imap.password
[mailboxes]
mailbox = INBOX
mailbox = Sager
[archive]
dir = $T/archive
volume_size = 256K
[keys]
vault_dir = $T/vault
it_cert = $T/it.crt
[retention]
years = 1
[state]
dir = $T/state
[audit]
log = $T/state/audit.log
CONF
M keys init-host --it-cert it.crt > /dev/null

# Karen writes in messages 1, 4, 7, ...; others in the rest.  A 135 KB incompressible
# body per message fills a 256 KiB volume every message or two.
mkmail() {   # dir n tag
  mkdir -p "$1/cur" "$1/new" "$1/tmp"
  for i in $(seq 1 "$2"); do
    if [ $((i % 3)) = 1 ]; then who="Karen Holm <karen.holm@example.com>"; else who="Ole $i <ole$i@example.org>"; fi
    f="$1/cur/17000000$i.M$i.host:2,S"
    printf 'From: %s\r\nTo: post@fund.example.dk\r\nSubject: Sag %d\r\nMessage-ID: <%s-%d@example.com>\r\n\r\n' \
      "$who" "$i" "$3" "$i" > "$f"
    head -c 100000 /dev/urandom | base64 -w 76 | sed 's/$/\r/' >> "$f"
    touch -d "@$((1790000000 + i * 3600))" "$f"
  done
}
mkmail md1 9 a
mkmail md2 9 b
M backup --from-maildir md1 --mailbox INBOX --all > b1.out
M backup --from-maildir md2 --mailbox Sager --all > b2.out
B1=$(cut -f5 b1.out)
B2=$(cut -f5 b2.out)
[ -f "$B1/locator.p7m" ] || fail "no locator written with the batch"
grep -q '"locator":{"name":"locator.p7m"' "$B1/manifest.json" || fail "manifest lists no locator"
[ "$(ls "$B1" | grep -c '^vol-')" -ge 3 ] || fail "test set-up: want several volumes: $(ls "$B1")"

# B1 becomes a batch from before locators: no file, a re-signed manifest without one.
rm "$B1/locator.p7m"
manifest_drop_locator "$B1/manifest.json" state/signing-key.pem
M verify all > v.out || fail "verify after removing the locator: $(cat v.out)"

R=(--it-key it.key --reason "ticket 12" --no-ledger)
printf 'karen.holm@example.com\n' | M restore "${R[@]}" --person --mbox slow.mbox --no-locator --json > slow.json
printf 'karen.holm@example.com\n' | M restore "${R[@]}" --person --mbox old.mbox --json > old.json
cmp -s slow.mbox old.mbox || fail "restore with one old batch differs from the slow path"
grep -q '"slow_batches": 1' old.json || fail "the old batch was not read the slow way: $(cat old.json)"
grep -q '"located_batches": 1' old.json || fail "the new batch's locator was not used: $(cat old.json)"

M locate --add all --it-key it.key > loc.out || fail "locate --add: $(cat loc.out)"
grep -q "$(basename "$B1")	locator added	9 messages" loc.out || fail "locate: $(cat loc.out)"
grep -q "$(basename "$B2")	has a locator" loc.out || fail "locate: $(cat loc.out)"
M verify all > v.out || fail "verify after locate --add: $(cat v.out)"

printf 'karen.holm@example.com\n' | M access-request "${R[@]}" --mbox ar.mbox \
  --summary ar.txt --json > ar.json || fail "access-request: $(cat ar.json)"
cmp -s slow.mbox ar.mbox || fail "access-request output differs from restore --person --no-locator"
[ "$(grep -c '^From MAILER-DAEMON' ar.mbox)" = 6 ] || fail "want Karen's 6 messages: $(grep -c '^From ' ar.mbox)"
[ "$(grep -c '^From: Karen Holm' ar.mbox)" = 6 ] || fail "a message that is not Karen's"
grep -q '"located_batches": 2' ar.json || fail "locators not used: $(cat ar.json)"
grep -q '"slow_batches": 0' ar.json || fail "a batch was read whole: $(cat ar.json)"
read_fast=$(sed -n 's/.*"volumes_read": \([0-9]*\).*/\1/p' ar.json)
read_slow=$(sed -n 's/.*"volumes_read": \([0-9]*\).*/\1/p' slow.json)
[ "$read_fast" -lt "$read_slow" ] || fail "access-request decrypted $read_fast volumes, the slow path $read_slow"
grep -q '^access request: 6 messages from 2 batch(es)' ar.txt || fail "summary: $(cat ar.txt)"
grep -q "^  INBOX	$(basename "$B1" | cut -c9-)	3 messages" ar.txt || fail "summary per batch: $(cat ar.txt)"
grep -q "^  Sager	$(basename "$B2" | cut -c9-)	3 messages" ar.txt || fail "summary per batch: $(cat ar.txt)"
! grep -qi karen ar.txt state/audit.log || fail "the person's address in the summary or audit log"
grep -q '"selection":"person"' state/audit.log || fail "audit does not say what kind of search"

# usage errors: selections, the identifier on the command line, an existing summary
set +e
printf 'karen.holm@example.com\n' | M access-request "${R[@]}" --mbox x.mbox --batch "$(basename "$B1")" 2>/dev/null; rc1=$?
M access-request "${R[@]}" --mbox x.mbox karen.holm@example.com > err.out 2>&1; rc2=$?
printf 'karen.holm@example.com\n' | M access-request "${R[@]}" --mbox y.mbox --summary ar.txt 2>/dev/null; rc3=$?
printf 'nobody@example.com\n' | M access-request "${R[@]}" --mbox z.mbox 2>/dev/null; rc4=$?
set -e
[ $rc1 = 2 ] || fail "access-request with --batch exited $rc1"
[ $rc2 = 2 ] || fail "identifier on the command line exited $rc2"
! grep -q karen err.out || fail "the identifier was echoed"
[ $rc3 = 1 ] || fail "an existing summary file exited $rc3"
[ $rc4 = 1 ] || fail "nobody's access request exited $rc4"
echo "access_request: ok"
