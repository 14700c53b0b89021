#!/bin/bash
# purge_cycle.sh — the full month cycle against the real Dovecot: dry run changes nothing;
# purge archives exactly the messages older than the cutoff (00:00 on the 1st, Copenhagen)
# and expunges them; server + archive == original (SHA-256, restored by IT byte for byte);
# a second purge in the same month finds nothing and says so; check is green; the journal,
# state, log and audit log carry no planted identifier.
# servers: dovecot cyrus
source "$(dirname "$0")/purge_lib.sh"

setup cycle 300 purge-cycle-1
cut=$(month_start_epoch)
old=$(server_older "$cut")
[ "$old" -gt 50 ] || fail "corpus has only $old messages before the cutoff"

mailret purge --dry-run > "$T/dry.out" 2> "$T/dry.log" || fail "dry run: $(tail -3 "$T/dry.log")"
grep -q "would archive and expunge $old message" "$T/dry.out" || { cat "$T/dry.out"; fail "dry run plan"; }
[ "$(server_shas | wc -l)" -eq "$TOTAL" ] || fail "dry run deleted something"
[ ! -d "$T/archive" ] || [ -z "$(ls -A "$T/archive")" ] || fail "dry run archived something"

start=$(date +%s)
mailret purge --json > "$T/purge.json" 2> "$T/purge.log" || fail "purge: $(tail -3 "$T/purge.log")"
echo "purge of $old messages took $(( $(date +%s) - start )) s"
[ "$(json_field "$T/purge.json" 'j["mailboxes"][0]["expunged"]')" = "$old" ] || fail "expunged count"
[ "$(json_field "$T/purge.json" 'j["ingested"]')" = True ] || fail "ingest did not run first"
[ "$(server_older "$cut")" = 0 ] || fail "messages older than the cutoff remain"
[ "$(server_shas | wc -l)" -eq $((TOTAL - old)) ] || fail "newer messages were touched"
check_invariant "after purge"
grep -q "left out by the erasure" "$T/restore.out" || true

mailret purge > "$T/again.out" 2> "$T/again.log" || fail "second purge: $(tail -3 "$T/again.log")"
grep -q "nothing older than the cutoff" "$T/again.out" || { cat "$T/again.out"; fail "second purge found something"; }
[ "$(ls "$T/archive/INBOX" | wc -l)" = 1 ] || fail "second purge made a batch"

mailret check --json > "$T/check.json" 2> "$T/check.log"; rc=$?
[ "$rc" = 0 ] || { cat "$T/check.json"; fail "check after purge: exit $rc"; }
[ "$(json_field "$T/check.json" 'j["batches"][0]["status"]')" = ok ] || fail "batch status"
[ "$(json_field "$T/check.json" 'j["mailboxes"][0]["status"]')" = ok ] || fail "mailbox status"
mailret audit verify > /dev/null || fail "audit chain"

# No planted identifier anywhere on the host's side (archive is encrypted; journal, state,
# logs and audit in clear).
python3 - "$T/corpus/truth.jsonl" "$T/state/purge-journal.sqlite" "$T/state/audit.log" \
    "$T/purge.log" "$T/purge.json" "$T/check.json" <<'PY' || fail "identifier leaked"
import json, sys
needles = set()
for l in open(sys.argv[1], encoding="utf-8"):
    for ident in json.loads(l).get("identifiers", []):
        v = ident.get("value")
        if isinstance(v, str) and len(v) >= 6 and ident.get("kind") in ("email", "cpr", "phone", "name"):
            needles.add(v.encode())
for p in sys.argv[2:]:
    data = open(p, "rb").read()
    for n in needles:
        if n in data:
            print("identifier found in", p); sys.exit(1)
PY
echo "PASS purge_cycle ($old archived and expunged, $((TOTAL - old)) kept)"
