#!/bin/bash
# ingest_kill9.sh — kill -9 in the middle of an ingest (mid-batch), then re-run: every
# casework message ends up in the member system exactly once, every unrouted one in the
# queue exactly once, and the state lock does not outlive the killed process.  Repeated at
# a few points so that at least one kill lands between the sink's and the state's commit
# or inside a batch.
source "$(dirname "$0")/ingest_lib.sh"

new_user kill
gen_corpus 1200 ingest-kill-1
write_config
mailret members import "$T/corpus/members.csv" > /dev/null 2>&1 || fail "import"

docs() { sqlite3 "$T/state/members.sqlite" 'SELECT count(*) FROM documents' 2>/dev/null || echo 0; }
kills=0
for threshold in 40 300 700; do
    # The binary itself, not the shell function: $! must be the ingest process.
    "$MAILRET_BIN" -c "$T/mailret.conf" ingest --batch 25 > /dev/null 2> "$T/killed.log" &
    pid=$!
    # Wait until this run has stored more documents, then kill it without warning.
    start=$(docs)
    for _ in $(seq 1 2000); do
        n=$(docs)
        [ "$n" -ge $((start + threshold / 4 + 1)) ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.01
    done
    if kill -9 "$pid" 2>/dev/null; then
        kills=$((kills + 1))
    fi
    wait "$pid" 2>/dev/null || true
done
[ "$kills" -ge 2 ] || fail "ingest finished before it could be killed (only $kills kills)"
partial=$(docs)
want=$(grep -cE '"rule": "(case|sender|cpr)"' "$T/corpus/truth.jsonl")
[ "$partial" -lt "$want" ] || fail "the killed runs were not interrupted"

mailret ingest --json > "$T/final.json" 2> "$T/final.log" || fail "re-run after kill -9: $(tail -3 "$T/final.log")"
check_routing "$T/final.log" || fail "not every message exactly once after kill -9"
[ "$(sqlite3 "$T/state/members.sqlite" \
     'SELECT count(*) FROM (SELECT sha256 FROM documents GROUP BY sha256 HAVING count(*) > 1)')" = 0 ] ||
    fail "duplicate documents"
mailret ingest --json > "$T/again.json" 2>/dev/null || fail "third run"
[ "$(json_field "$T/again.json" 'j["mailboxes"][0]["fetched"]')" = 0 ] || fail "state did not reach the end"
echo "PASS ingest_kill9 ($kills kills, $partial of $want documents before the final run)"
