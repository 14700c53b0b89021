#!/bin/bash
# ingest_corpus.sh — `mailret members import` + `mailret ingest` against the real Dovecot
# test server on a generated corpus with known truth:
#  - routing precision: every message is routed exactly as truth.jsonl says (case, sender,
#    CPR, unrouted, own, auto) and stored exactly once, byte-for-byte (SHA-256);
#  - no planted identifier in the state database or the log;
#  - the --json report adds up;
#  - a re-run after success fetches and stores nothing;
#  - every message's flags are unchanged by ingest.
# servers: dovecot cyrus
source "$(dirname "$0")/ingest_lib.sh"

new_user corpus
# Every routing rule occurs at 300 messages; Dovecot (the faster server) gets more.
N=800
[ "${MAILRET_TEST_SERVER:-dovecot}" = cyrus ] && N=300
gen_corpus "$N" ingest-corpus-1
write_config
before="$(flag_snapshot)"
[ "$(echo "$before" | wc -l)" -eq "$N" ] || fail "corpus not in the Maildir"
echo "$before" | grep -q ' .*S' || fail "corpus has no \\Seen messages to check flags on"

mailret members import "$T/corpus/members.csv" > "$T/import.out" 2> "$T/import.log" ||
    fail "members import: $(cat "$T/import.log")"
grep -q "^imported " "$T/import.out" || fail "no import summary"

mailret ingest --json > "$T/run1.json" 2> "$T/run1.log" || fail "ingest: $(tail -3 "$T/run1.log")"
check_routing "$T/run1.log" || fail "routing does not match the truth"

# The report adds up and agrees with the truth's counts.
[ "$(json_field "$T/run1.json" 'j["mailboxes"][0]["fetched"]')" = "$N" ] || fail "fetched != $N"
[ "$(json_field "$T/run1.json" 'sum(j["mailboxes"][0]["routed"].values())')" = "$N" ] ||
    fail "routed counts do not add up to $N"
want_none="$(grep -c '"rule": "none"' "$T/corpus/truth.jsonl")"
[ "$(json_field "$T/run1.json" 'j["mailboxes"][0]["unrouted"]')" = "$want_none" ] ||
    fail "unrouted count differs from truth"
[ "$(json_field "$T/run1.json" 'j["mailboxes"][0]["status"]')" = ok ] || fail "status not ok"

# Byte-exact: the stored bytes hash to what the truth says the server holds.
python3 - "$T/state/members.sqlite" <<'PY' || fail "stored bytes differ from their SHA-256"
import hashlib, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for table in ("documents", "unrouted"):
    for sha, raw, size in db.execute("SELECT sha256, raw, size FROM %s" % table):
        assert hashlib.sha256(raw).hexdigest() == sha and len(raw) == size, table
PY

# Re-run: nothing new.
mailret ingest --json > "$T/run2.json" 2> "$T/run2.log" || fail "second ingest failed"
[ "$(json_field "$T/run2.json" 'j["mailboxes"][0]["fetched"]')" = 0 ] || fail "re-run fetched mail"
[ "$(sqlite3 "$T/state/members.sqlite" 'SELECT count(*) FROM documents')" = \
  "$(grep -cE '"rule": "(case|sender|cpr)"' "$T/corpus/truth.jsonl")" ] || fail "re-run changed documents"

# Flags untouched (BODY.PEEK, EXAMINE).
after="$(flag_snapshot)"
[ "$before" = "$after" ] || { diff <(echo "$before") <(echo "$after") | head >&2; fail "flags changed"; }

# The text report has one line per mailbox and the header.
mailret ingest > "$T/run3.txt" 2>/dev/null || fail "third ingest failed"
grep -q '^INBOX ' "$T/run3.txt" || fail "text report lacks the mailbox line"
echo "PASS ingest_corpus"
