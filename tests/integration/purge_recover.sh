#!/bin/bash
# purge_recover.sh — host disaster recovery (docs/DISASTER-RECOVERY.md): host A purges
# (batches signed by A), A's disk is lost except the archive; IT holds its pinned keyring
# and a copy of the vault.  A new host B is set up with `keys init-host --recover`, IT's
# re-identification holder re-provisions the pseudonym key (import-pseudonym --request,
# export-pseudonym, import-pseudonym) and IT pins B's key beside A's.  B purges more mail:
# the same person gets the same token; check, verify, expire and restore --person work
# across A's and B's batches, with no legacy manifest key anywhere.
source "$(dirname "$0")/purge_lib.sh"

setup_reid_holder recover 160 purge-recover-1

cut1=$(month_start_epoch)
cut2=$(month_start_epoch 2)
# The address with the most messages on both sides of the second cutoff.
read -r ADDR N1 N2 < <(address_on_both_sides "$cut2" "$cut1")
[ -n "$ADDR" ] && [ "$N1" -ge 1 ] && [ "$N2" -ge 1 ] || fail "no address on both sides: $ADDR $N1 $N2"

# Host A purges the older mail.  IT keeps what the documentation tells it to keep: the
# pinned keyring and a copy of the vault (the archive itself survives on its own storage).
mailret purge --cutoff "$(epoch_iso "$cut2")" > /dev/null 2> "$T/purge-a.log" ||
    fail "purge A: $(tail -2 "$T/purge-a.log")"
BA=$(dirname "$(find "$T/archive" -name manifest.json)")
ITM="$T/itmachine"
mkdir -p "$ITM"
cp "$T/state/host-keys.pem" "$ITM/pinned.pem"
cp -a "$T/vault" "$ITM/vault"
[ ! -f "$T/state/erasure.ledger" ] || cp "$T/state/erasure.ledger" "$ITM/erasure.ledger"
SIGNER_A=$(json_field "$BA/manifest.json" 'j["signer"]')

# A's disk is lost: state directory (pseudonym, signing and manifest keys, keyring, audit
# log) and vault.  Only the archive directory is left.
rm -rf "$T/state" "$T/vault"
[ -f "$BA/manifest.json" ] || fail "the archive should have survived"

# Host B: same configuration, new keys; the vault comes back from IT's copy.
mkdir -p "$T/state" && chmod 700 "$T/state"
cp -a "$ITM/vault" "$T/vault"
if mailret keys init-host --it-cert "$T/it-handover.crt" --reid-cert "$T/reid-handover.crt" \
    > "$T/init-wrong.out" 2>&1; then
    fail "init-host without --recover made a new pseudonym key beside the archive's"
fi
grep -q "import-pseudonym" "$T/init-wrong.out" || fail "init-host refusal: $(cat "$T/init-wrong.out")"
[ ! -e "$T/state/pseudonym.key" ] || fail "a refused init-host left a pseudonym key"
rm -f "$T/state/signing-key.pem" "$T/state/host-keys.pem"
mailret keys init-host --it-cert "$T/it-handover.crt" --reid-cert "$T/reid-handover.crt" \
    --recover --previous-keys "$ITM/pinned.pem" > "$T/init-b.out" 2>&1 ||
    fail "init-host --recover: $(cat "$T/init-b.out")"
FPR_B=$(grep -o 'SHA256:[0-9a-f]*' "$T/init-b.out" | cut -d: -f2)
[ -n "$FPR_B" ] || fail "no fingerprint: $(cat "$T/init-b.out")"
[ ! -e "$T/state/pseudonym.key" ] || fail "--recover made a pseudonym key"
# Nothing can be archived before the archive's pseudonym key is back.
if mailret purge > "$T/purge-early.out" 2>&1; then fail "purge ran without the pseudonym key"; fi

[ ! -f "$ITM/erasure.ledger" ] || cp "$ITM/erasure.ledger" "$T/state/erasure.ledger"

# The re-identification holder re-provisions the pseudonym key to B through a transfer key.
mailret keys import-pseudonym --request "$T/transfer.crt" > "$T/req.out" 2>&1 ||
    fail "request: $(cat "$T/req.out")"
(cd "$ITM" && env -u MAILRET_CONFIG "$MAILRET_BIN" keys export-pseudonym \
    --key "$T/reid.key" --passphrase-file "$T/reid.pass" --to "$T/transfer.crt" \
    --out "$T/pseudonym-keys.p7m" --vault-dir vault --audit-log it-audit.log) \
    > "$T/export.out" 2>&1 || fail "export: $(cat "$T/export.out")"
# IT's key alone cannot do it.
if (cd "$ITM" && env -u MAILRET_CONFIG "$MAILRET_BIN" keys export-pseudonym \
    --key "$T/it.key" --passphrase-file "$T/it.pass" --to "$T/transfer.crt" \
    --out "$T/by-it.p7m" --vault-dir vault --audit-log it-audit.log) > /dev/null 2>&1; then
    fail "IT's key exported the pseudonym key"
fi
mailret keys import-pseudonym "$T/pseudonym-keys.p7m" > "$T/import.out" 2>&1 ||
    fail "import: $(cat "$T/import.out")"
grep -q "1 pseudonym key epoch" "$T/import.out" || fail "import output: $(cat "$T/import.out")"
[ "$(find "$T/state" -name '*.import.pem' | wc -l)" = 0 ] || fail "transfer key left behind"
[ "$(stat -c %a "$T/state/pseudonym.key")" = 600 ] || fail "pseudonym key mode"

# IT pins B's key beside A's, after comparing the fingerprint init-host printed.
python3 - "$T/state/host-keys.pem" "$FPR_B" "$ITM/pinned.pem" <<'PY' || fail "B's key not in its keyring"
import base64, hashlib, re, sys
pem = open(sys.argv[1]).read()
blocks = re.findall(r"-----BEGIN PUBLIC KEY-----\n(.*?)-----END PUBLIC KEY-----", pem, re.S)
for b in blocks:
    if hashlib.sha256(base64.b64decode(b)).hexdigest() == sys.argv[2]:
        with open(sys.argv[3], "a") as f:
            f.write("-----BEGIN PUBLIC KEY-----\n" + b + "-----END PUBLIC KEY-----\n")
        sys.exit(0)
sys.exit(1)
PY

# B purges the rest; its batch is signed by B and uses the same pseudonym key.
mailret purge > /dev/null 2> "$T/purge-b.log" || fail "purge B: $(tail -2 "$T/purge-b.log")"
BB=$(dirname "$(find "$T/archive" -name manifest.json | grep -v "^$BA/")")
[ -d "$BB" ] && [ "$BB" != "$BA" ] || fail "B's batch not found"
SIGNER_B=$(json_field "$BB/manifest.json" 'j["signer"]')
[ "$SIGNER_A" != "$SIGNER_B" ] || fail "B signed with A's key"
[ "$(json_field "$BB/manifest.json" 'j.get("pseudonym_epoch")')" = 0 ] || fail "B's epoch"
[ ! -e "$T/state/manifest.key" ] || fail "a legacy manifest key appeared"

# check and verify on B: A's batches are authentic (A's key in B's keyring), nothing damaged.
set +e
mailret check --offline --json > "$T/check.json" 2> "$T/check.log"
rc=$?
set -e
[ "$rc" = 0 ] || { cat "$T/check.json" >&2; fail "check on B: exit $rc"; }
python3 - "$T/check.json" <<'PY' || fail "check: $(cat "$T/check.json")"
import json, sys
j = json.load(open(sys.argv[1]))
st = [b["status"] for b in j["batches"]]
assert len(st) == 2 and all(s == "ok" for s in st), st
PY
mailret verify all > "$T/verify.out" 2>&1 || fail "verify on B: $(cat "$T/verify.out")"

# IT restores the person from both hosts' batches on its own machine.
rm -rf "$ITM/archive" && cp -a "$T/archive" "$ITM/archive"
ITR() { (cd "$ITM" && env -u MAILRET_CONFIG "$MAILRET_BIN" restore --reason "recovery test" \
        --archive-dir archive --vault-dir vault --audit-log it-audit.log \
        --host-key pinned.pem --it-key "$T/it.key" --it-passphrase-file "$T/it.pass" \
        --reid-key "$T/reid.key" --reid-passphrase-file "$T/reid.pass" \
        --no-ledger "$@"); }
# B's vault copy of epoch-key files is newer than IT's: IT refreshes its copy first.
rm -rf "$ITM/vault" && cp -a "$T/vault" "$ITM/vault"
printf '%s\n' "$ADDR" | ITR --person --maildir out > "$ITM/r.log" 2>&1 ||
    fail "IT restore --person: $(cat "$ITM/r.log")"
r=$(grep -o '^restored [0-9][0-9]*' "$ITM/r.log" | awk '{print $2}')
[ "$r" -ge "$((N1 + N2))" ] || fail "restored $r of the person's $N1 + $N2 messages"
grep -o 'from [0-9]* batches' "$ITM/r.log" | grep -q 'from 2 batches' || fail "not both batches: $(cat "$ITM/r.log")"
check_invariant "after recovery"

# expire on B: A's batch (the older) expires; nothing blocks it.
EA=$(json_field "$BA/manifest.json" 'j["expires"]')
mailret expire --at "$EA" > "$T/expire.out" 2>&1 || fail "expire: $(cat "$T/expire.out")"
[ -f "$BA/expired.json" ] && [ ! -f "$BA/manifest.json" ] || fail "A's batch not expired: $(cat "$T/expire.out")"
[ -f "$BB/manifest.json" ] || fail "B's batch expired early"
echo "PASS purge_recover (A: $N1, B: $N2 messages of the person; $r restored across both hosts)"
