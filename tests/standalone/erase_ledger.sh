#!/bin/bash
# erase_ledger.sh — the erasure ledger, sealed to IT and anchored in the signed manifests:
#   * an old plaintext ledger is sealed by `erase --seal-ledger` (its entry no longer
#     readable in the file, audited);
#   * `erase` appends entries the host cannot read: IT opens each with stock
#     `openssl cms -decrypt` and its private key, and that token is nowhere in the ledger
#     file, the audit log or erase's output;
#   * on an "IT machine" (no configuration, no host secret) restore refuses to run
#     without --ledger, restores with it leaving the erased person's mail out, and
#     --no-ledger restores everything, printed loudly and audited;
#   * erase removes a temporary ledger file a killed writer left;
#   * a ledger with an entry removed, two entries swapped, or cut back to before the
#     newest batch (a valid ledger on its own) is refused, naming the cause.
source "$(dirname "$0")/offline_lib.sh"
offline_host "[retention]" "years = 1"
L=state/erasure.ledger

# IT's view of entry N (line N+1): the sealed DER opened with stock openssl.
it_open() {
  sed -n "$(($1 + 1))p" "$2" | cut -d' ' -f3 | base64 -d > sealed.der
  openssl cms -decrypt -inform DER -in sealed.der -inkey it.key -passin file:it.pass -binary
}

# --- an old plaintext ledger is sealed ------------------------------------------------
OLD="email:$(openssl rand -hex 20)"
printf '%s\n' "$OLD" > "$L"
M erase --seal-ledger > seal.out || fail "erase --seal-ledger"
grep -q 'sealed, 1 entries' seal.out || fail "seal output: $(cat seal.out)"
head -1 "$L" | grep -qx 'mailret-ledger/2' || fail "ledger not in the sealed format"
! grep -qF "${OLD#email:}" "$L" || fail "the plaintext token is still in the ledger"
[ "$(it_open 1 "$L")" = "$OLD" ] || fail "IT cannot open the migrated entry"
grep -q '"event":"erasure.ledger_sealed"' state/audit.log || fail "sealing not audited"

mkmail() {   # dir n from
  mkdir -p "$1/cur" "$1/new" "$1/tmp"
  for i in $(seq 1 "$2"); do
    printf 'From: %s\r\nTo: post@fund.example.dk\r\nSubject: Sag %d\r\nMessage-ID: <t-%d-%s-%s@example.com>\r\n\r\nBody %d\r\n' \
      "$3" "$i" "$i" "$1" "${3%% *}" "$i" > "$1/cur/17000000$i.M$i${3%% *}.host:2,S"
    touch -d "@$((1790000000 + i * 3600))" "$1/cur/17000000$i.M$i${3%% *}.host:2,S"
  done
}
mkmail md 3 'Karen <karen@example.com>'
mkmail md 2 'Ole <ole@example.net>'
M backup --from-maildir md --mailbox INBOX --all > backup.out || fail "backup 1"

# --- erase appends what the host cannot read --------------------------------------------
printf 'x' > state/erasure.ledger.tmp.999999.0          # a writer killed mid-write
printf 'karen@example.com\n' | M erase --email > erase.out 2> erase.err || fail "erase: $(cat erase.err)"
grep -q 'recorded as erasure ledger entry 2' erase.out || fail "erase output: $(cat erase.out)"
[ ! -e state/erasure.ledger.tmp.999999.0 ] || fail "stale temporary ledger file left"
printf 'ole@example.net\n' | M erase --email > erase2.out 2>&1 || fail "second erase"
[ "$(wc -l < "$L")" = 4 ] || fail "ledger lines: $(wc -l < "$L")"
KAREN=$(it_open 2 "$L")
[[ "$KAREN" =~ ^email:[0-9A-Za-z_-]{16,}$ ]] || fail "IT's view of entry 2: $KAREN"
TOK=${KAREN#email:}
for f in "$L" state/audit.log erase.out erase.err erase2.out; do
  ! grep -qF "$TOK" "$f" || fail "the token is readable in $f"
  ! grep -qiF 'karen@example.com' "$f" || fail "the address is in $f"
done
grep -q '"event":"erasure.record","kind":"email","entry":"2"' state/audit.log ||
  fail "erasure not audited with its entry number"

mkmail md2 1 'Karen <karen@example.com>'
mkmail md2 2 'Bo <bo@example.org>'
M backup --from-maildir md2 --mailbox INBOX --all > backup2.out || fail "backup 2"
grep -q '"erasure_ledger":{"count":3,"head":"[0-9a-f]\{64\}"}' "$(cut -f5 backup2.out)/manifest.json" ||
  fail "the newest manifest does not record the ledger's head"

# --- the host's own restore uses the configured ledger ----------------------------------
M restore --reason "host test" --it-key it.key --it-passphrase-file it.pass \
  --maildir "$T/out-host" > host.out || fail "host restore"
grep -q 'restored 2 messages from 2 batches.*; 6 left out by the erasure ledger' host.out ||
  fail "host restore: $(cat host.out)"
! grep -rqi 'karen@example.com\|ole@example.net' out-host || fail "erased mail came back (host)"

# --- the IT machine ------------------------------------------------------------------
ITM="$T/itmachine"
mkdir -p "$ITM"
cp -a archive vault it.key it.pass "$ITM/"
cp state/host-keys.pem "$ITM/pinned.pem"
cp "$L" "$ITM/erasure.ledger"
[ ! -e /etc/mailret/mailret.conf ] || { echo "skip: /etc/mailret/mailret.conf exists"; exit 77; }
IT() { (cd "$ITM" && env -u MAILRET_CONFIG "$MAILRET_BIN" "$@"); }
ITR() { IT restore --archive-dir archive --vault-dir vault --audit-log it-audit.log \
          --it-key it.key --it-passphrase-file it.pass --reason "ledger test" \
          --host-key pinned.pem "$@"; }

if ITR --maildir "$T/out-none" > r.out 2> err.txt; then fail "restore without a ledger ran"; fi
grep -q -- '--ledger FILE' err.txt || fail "no ledger: unclear error: $(cat err.txt)"
[ ! -e "$T/out-none" ] || fail "restore without a ledger wrote mail"

ITR --ledger erasure.ledger --maildir "$T/out-it" > r.out 2> r.err || fail "IT restore: $(cat r.err)"
grep -q 'restored 2 messages.*; 6 left out by the erasure ledger' r.out || fail "IT restore: $(cat r.out)"
! grep -rqi 'karen@example.com\|ole@example.net' out-it || fail "erased mail came back (IT)"
grep -rqi 'bo@example.org' out-it || fail "control: other mail missing"

ITR --no-ledger --maildir "$T/out-all" > r.out 2> r.err || fail "restore --no-ledger: $(cat r.err)"
grep -q 'restored 8 messages' r.out || fail "--no-ledger count: $(cat r.out)"
grep -q 'WARNING: restoring WITHOUT the erasure ledger' r.err || fail "--no-ledger not said loudly: $(cat r.err)"
grep -q '"event":"restore.no_ledger"' "$ITM/it-audit.log" || fail "--no-ledger not audited"
if ITR --no-ledger --ledger erasure.ledger --maildir "$T/out-both" 2> err.txt; then
  fail "--ledger with --no-ledger accepted"; fi

# --- tampering ----------------------------------------------------------------------
refused() {   # name expected-message
  if ITR --ledger bad.ledger --maildir "$T/out-$1" > r.out 2> err.txt; then
    fail "$1: restore with a tampered ledger succeeded"; fi
  grep -q "$2" err.txt || fail "$1: unclear error: $(cat err.txt)"
  [ ! -e "$T/out-$1" ] || fail "$1: wrote mail"
}
sed '3d' "$L" > "$ITM/bad.ledger"                               # entry 2 removed
refused removed 'removed or reordered'
{ sed -n '1,2p' "$L"; sed -n '4p' "$L"; sed -n '3p' "$L"; } > "$ITM/bad.ledger"   # 2, 3 swapped
refused swapped 'removed or reordered'
{ sed -n '1,2p' "$L"; sed -n '4p' "$L" | sed 's/^3 /2 /'; sed -n '3p' "$L" | sed 's/^2 /3 /'; } \
  > "$ITM/bad.ledger"                                           # swapped, numbers kept in place
refused swapped-renumbered 'chain does not match'
sed -n '1,3p' "$L" > "$ITM/bad.ledger"                          # cut back to 2 entries
refused truncated 'removed from the end'
grep -q 'checked against batch' err.txt || fail "truncation: the batch is not named"
echo "PASS erase_ledger"
