#!/bin/bash
# purge_epochs.sh — pseudonym-key epochs end to end, with a re-identification holder apart
# from IT: a batch made before `keys rotate-pseudonym` keeps epoch 0's tokens, one made after
# carries epoch 1's (manifest pseudonym_epoch, and the tokens in its pseudonymised mail);
# `restore --person` finds the person in batches of both epochs (on the host, and on IT's
# machine with the holder's key, never with IT's key alone); `erase` records a token per
# epoch and every later restore leaves the person's mail out of both batches.
source "$(dirname "$0")/purge_lib.sh"

setup_reid_holder epochs 220 purge-epochs-1

cut1=$(month_start_epoch)
cut2=$(month_start_epoch 2)
# The address with the most messages on both sides of the second cutoff.
read -r ADDR N1 N2 < <(address_on_both_sides "$cut2" "$cut1")
[ -n "$ADDR" ] && [ "$N1" -ge 1 ] && [ "$N2" -ge 1 ] || fail "no address on both sides: $ADDR $N1 $N2"

# Epoch 0: the mail before the second cutoff.  Then a new epoch, and the rest.
mailret purge --cutoff "$(epoch_iso "$cut2")" > /dev/null 2> "$T/purge1.log" ||
    fail "purge 1: $(tail -2 "$T/purge1.log")"
B1=$(dirname "$(find "$T/archive" -name manifest.json)")
mailret keys rotate-pseudonym > "$T/rotate.out" 2>&1 || fail "rotate: $(cat "$T/rotate.out")"
grep -q "epoch 1 " "$T/rotate.out" || fail "rotate output: $(cat "$T/rotate.out")"
mailret purge > /dev/null 2> "$T/purge2.log" || fail "purge 2: $(tail -2 "$T/purge2.log")"
B2=$(dirname "$(find "$T/archive" -name manifest.json | grep -v "^$B1/")")
[ -d "$B2" ] && [ "$B1" != "$B2" ] || fail "second batch not found"
check_invariant "after both purges"

epoch_of() { python3 -c "import json,sys; print(json.load(open(sys.argv[1])).get('pseudonym_epoch', 'absent'))" "$1/manifest.json"; }
[ "$(epoch_of "$B1")" = 0 ] || fail "batch 1 epoch: $(epoch_of "$B1")"
[ "$(epoch_of "$B2")" = 1 ] || fail "batch 2 epoch: $(epoch_of "$B2")"
mailret verify all > "$T/verify.out" 2>&1 || fail "verify: $(cat "$T/verify.out")"
# The epoch is under the signature: changing it makes the manifest unauthentic.
cp "$B2/manifest.json" "$T/manifest.saved"
sed -i 's/"pseudonym_epoch":1/"pseudonym_epoch":0/' "$B2/manifest.json"
! cmp -s "$B2/manifest.json" "$T/manifest.saved" || fail "could not alter the epoch"
if mailret verify all > "$T/verify-bad.out" 2>&1; then fail "altered epoch verified"; fi
cp "$T/manifest.saved" "$B2/manifest.json"

# restore --person on the host: found in both batches, each by its own epoch's token.
person_restore() {  # person_restore OUT BATCH [extra...]: restored count
    local out=$1 batch=$2
    shift 2
    printf '%s\n' "$ADDR" | mailret restore --reason "epoch test" --it-key "$T/it.key" \
        --it-passphrase-file "$T/it.pass" --reid-key "$T/reid.key" \
        --reid-passphrase-file "$T/reid.pass" --person --batch "$batch" --maildir "$out" \
        "$@" > "$out.log" 2>&1 || fail "restore --person $batch: $(cat "$out.log")"
    grep -o '^restored [0-9][0-9]*' "$out.log" | awk '{print $2}'
}
r1=$(person_restore "$T/person1" "$(basename "$B1")")
r2=$(person_restore "$T/person2" "$(basename "$B2")")
[ "$r1" -ge "$N1" ] || fail "epoch-0 batch: $r1 of $N1 messages of the person"
[ "$r2" -ge "$N2" ] || fail "epoch-1 batch: $r2 of $N2 messages of the person"
for d in "$T/person1" "$T/person2"; do
    n=$(find "$d" -type f -path '*/cur/*' | wc -l)
    m=$(grep -rliF "$ADDR" "$d" | wc -l)
    [ "$n" = "$m" ] || fail "$d: $n restored, $m name the person"
done

# On IT's machine (no configuration, copies of archive and vault): the pseudonym key comes
# from the vault, sealed to the re-identification holder; IT's key alone cannot open it.
ITM="$T/itmachine"
mkdir -p "$ITM"
cp -a "$T/archive" "$T/vault" "$ITM/"
cp "$T/state/host-keys.pem" "$ITM/pinned.pem"
IT() { (cd "$ITM" && env -u MAILRET_CONFIG "$MAILRET_BIN" "$@"); }
ITR() { IT restore --reason "epoch test" --archive-dir archive --vault-dir vault \
        --audit-log it-audit.log --host-key pinned.pem --it-key "$T/it.key" \
        --it-passphrase-file "$T/it.pass" --no-ledger "$@"; }
if printf '%s\n' "$ADDR" | ITR --person --maildir out-itonly > "$ITM/itonly.log" 2>&1; then
    fail "IT's key alone turned a person into tokens"
fi
grep -q "re-identification holder" "$ITM/itonly.log" || fail "IT-only error: $(cat "$ITM/itonly.log")"
[ ! -d "$ITM/out-itonly" ] || fail "IT-only restore wrote mail"
printf '%s\n' "$ADDR" | ITR --reid-key "$T/reid.key" --reid-passphrase-file "$T/reid.pass" \
    --person --maildir out-both > "$ITM/both.log" 2>&1 || fail "IT restore --person: $(cat "$ITM/both.log")"
rb=$(grep -o '^restored [0-9][0-9]*' "$ITM/both.log" | awk '{print $2}')
[ "$rb" = "$((r1 + r2))" ] || fail "IT machine: $rb restored, host found $r1 + $r2: $(cat "$ITM/both.log")"
grep -q '"event":"keys.pseudonym.unseal"' "$ITM/it-audit.log" || fail "unseal not audited"

# erase: one sealed ledger entry per epoch.
printf '%s\n' "$ADDR" | mailret erase --email > "$T/erase.out" 2> "$T/erase.log" ||
    fail "erase: $(cat "$T/erase.log")"
[ "$(grep -c 'recorded' "$T/erase.out")" = 2 ] || fail "erase output: $(cat "$T/erase.out")"
for f in "$T/erase.out" "$T/erase.log" "$T/state/audit.log" "$T/rotate.out"; do
    ! grep -qiF "$ADDR" "$f" || fail "the address was written to $f"
done

# After the erasure no restore brings the person back, from either batch.
after=$(archived_shas | wc -l)
erased=$(grep -o '[0-9]* left out by the erasure' "$T/restore.out" | tail -1 | awk '{print $1}')
[ "${erased:-0}" -ge "$((r1 + r2))" ] || fail "erase left out $erased, the person has $r1 + $r2"
! grep -rqiF "$ADDR" "$T/restored" || fail "the erased address still appears in restored mail"
echo "PASS purge_epochs (epoch 0: $r1, epoch 1: $r2 messages of the person; $erased left out after erase, $after restored)"
