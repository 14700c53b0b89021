#!/bin/bash
# purge_erase.sh — an erasure request end to end: `mailret erase --email` reads the
# address on stdin, appends its token sealed to IT (audited, no identifier or readable
# token anywhere), and a later restore by IT leaves out every message carrying it, says
# how many, and restores everything else byte for byte.
source "$(dirname "$0")/purge_lib.sh"

setup erase 150 purge-erase-1
mailret purge > /dev/null 2> "$T/purge.log" || fail "purge: $(tail -2 "$T/purge.log")"
cut=$(month_start_epoch)

# The sender address that occurs in the most archived messages (the corpus's truth).
read -r ADDR WANT < <(python3 - "$T/corpus/truth.jsonl" "$cut" <<'PY'
import collections, datetime, json, sys
cut = int(sys.argv[2]); c = collections.Counter()
for l in open(sys.argv[1], encoding="utf-8"):
    t = json.loads(l)
    ts = datetime.datetime.strptime(t["internaldate"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp()
    if ts >= cut:
        continue
    for a in {i["value"].lower() for i in t.get("identifiers", []) if i.get("kind") == "email" and "akasse.example" not in i["value"]}:
        c[a] += 1
a, n = c.most_common(1)[0]
print(a, n)
PY
)
[ -n "$ADDR" ] && [ "$WANT" -ge 1 ] || fail "no address to erase in the corpus"

before=$(archived_shas | wc -l)
grep -rqiF "$ADDR" "$T/restored" || fail "control: the address is not in the restored mail"

printf '%s\n' "$ADDR" | mailret erase --email > "$T/erase.out" 2> "$T/erase.log" || fail "erase: $(cat "$T/erase.log")"
grep -q "recorded as erasure ledger entry 1" "$T/erase.out" || fail "erase output: $(cat "$T/erase.out")"
head -1 "$T/state/erasure.ledger" | grep -qx 'mailret-ledger/2' || fail "ledger not sealed"
! grep -q 'email:' "$T/state/erasure.ledger" || fail "a readable entry in the ledger"
printf '%s\n' "$ADDR" | mailret erase --email - > "$T/erase2.out" 2>/dev/null || fail "second erase"
grep -q "recorded as erasure ledger entry 2" "$T/erase2.out" || fail "second erase: $(cat "$T/erase2.out")"
for f in "$T/state/erasure.ledger" "$T/state/audit.log" "$T/erase.out" "$T/erase.log"; do
    ! grep -qiF "$ADDR" "$f" || fail "the address itself was written to $f"
done
grep -q '"event":"erasure.record"' "$T/state/audit.log" || fail "erasure not audited"

after=$(archived_shas | wc -l)
erased=$(grep -o '[0-9]* left out by the erasure' "$T/restore.out" | tail -1 | awk '{print $1}')
[ "${erased:-0}" -ge 1 ] || fail "restore left nothing out: $(cat "$T/restore.out")"
[ "$((after + erased))" = "$before" ] || fail "restored $after + erased $erased != $before"
[ "$erased" -ge "$WANT" ] || fail "only $erased of $WANT messages with the address left out"
! grep -rqiF "$ADDR" "$T/restored" || fail "the erased address still appears in restored mail"
echo "PASS purge_erase ($erased of $before archived messages left out; $after restored)"
